"""``python -m lensref``: the ``lensref`` command."""

import sys

from .cli import main

sys.exit(main())
