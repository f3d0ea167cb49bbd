"""``python -m reconciler`` is the same as ``reconcile``."""

import sys

from reconciler.cli.main import main

sys.exit(main())
