import sys

try:
    from runner.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python is still loading: no traceback
    sys.exit(130)

sys.exit(main())
