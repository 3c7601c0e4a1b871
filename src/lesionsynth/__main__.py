"""``python -m lesionsynth ...`` (also what ``torchrun -m lesionsynth train ...`` runs)."""

import sys

from lesionsynth.cli import main

sys.exit(main())
