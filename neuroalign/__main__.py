"""``python -m neuroalign`` runs the ``neuroalign`` command."""

import sys

from neuroalign.cli import main

sys.exit(main())
