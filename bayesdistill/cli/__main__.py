"""``python -m bayesdistill.cli ARGS`` runs the command line."""

import sys

from .app import main

sys.exit(main())
