"""``python -m auditlens.cli``: the ``auditlens`` command."""

import sys

from .command import main

sys.exit(main())
