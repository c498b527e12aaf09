"""``python -m cnnlab`` (what ``torchrun -m cnnlab train ...`` runs)."""

import sys

from cnnlab.cli import main

sys.exit(main())
