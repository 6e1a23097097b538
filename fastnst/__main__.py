"""``python -m fastnst`` is the ``fastnst`` command."""

import sys

from fastnst.cli import main

sys.exit(main())
