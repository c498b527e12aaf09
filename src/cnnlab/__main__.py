"""``python -m cnnlab``: the command line (also what ``torchrun -m cnnlab`` runs on each rank)."""

from cnnlab.cli import main

raise SystemExit(main())
