"""The Airflow edge: everything in mlscale that imports Airflow lives in this package.

``hooks/`` map connections to library objects, ``sensors/`` and ``operators/`` are the custom operators,
``tasks/`` the glue of ``@task`` functions, ``settings`` builds the :class:`~mlscale.settings.Platform` from
Variables, ``aws`` reads the ``aws_default`` connection, ``reports_app`` serves the reports view inside the
API server and ``cli`` is the ``mlscale`` command. The rest of ``mlscale`` is plain Python and never imports
Airflow (``make lint`` checks it with import-linter).
"""
