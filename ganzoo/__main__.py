"""`python -m ganzoo`: the same as the `ganzoo` command (what `torchrun -m ganzoo` runs in each process)."""

import sys

from .cli import main

sys.exit(main())
