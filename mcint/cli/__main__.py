"""``python -m mcint.cli`` runs the ``mcint`` command."""

import sys

from . import main

sys.exit(main())
