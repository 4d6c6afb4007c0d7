"""``python -m minideconv`` — the same as the ``minideconv`` command."""

import sys

from .cli import main

sys.exit(main())
