"""``python -m mlscale.airflow.cli``: the ``mlscale`` command (the installed console script is the same)."""

import sys

from mlscale.airflow.cli import main

sys.exit(main())
