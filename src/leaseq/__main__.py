"""``python -m leaseq``: the command line."""

import sys

from leaseq.cli import main

sys.exit(main())
