"""``python -m search_spaces``: see ``search_spaces.cli``."""

import sys

from search_spaces.cli import main

sys.exit(main())
