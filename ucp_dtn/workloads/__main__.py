"""``python -m ucp_dtn.workloads``: write deterministic test audio (see :func:`.audio.main`)."""

import sys

from .audio import main

sys.exit(main())
