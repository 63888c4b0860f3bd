import sys

from mlscale.cli import main

# Subcommands with their own parsers (each module's ``main(argv)``).
COMMANDS = {"lineage": "mlscale.cli.lineage", "access-report": "mlscale.cli.access", "approve": "mlscale.cli.approve",
            "rollback": "mlscale.cli.rollback"}

if len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
    import importlib
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(importlib.import_module(COMMANDS[sys.argv[1]]).main(sys.argv[2:]))
if sys.argv[1:2] in (["-h"], ["--help"]):
    try:
        main()
    except SystemExit:
        print("\nmore commands:\n  lineage <uri>         what a partition/file came from and influenced"
              "\n  access-report         sensitive-data accesses per purpose, actor, dataset"
              "\n  approve               record a human approval of a model version for the promotion gate"
              "\n  rollback              point champion back at an earlier version (recorded)"
              "\n(`python -m mlscale.cli <command> --help` for their options)")
        raise
sys.exit(main())
