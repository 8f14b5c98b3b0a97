"""``python -m ucp_dtn.cli``: the same as ``ucp``."""

import sys

from .main import main

sys.exit(main())
