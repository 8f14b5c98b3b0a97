"""``python -m ucp_dtn.daemon``: the same as ``ucp-bpnode``."""

import sys

from .bpnode import main

sys.exit(main())
