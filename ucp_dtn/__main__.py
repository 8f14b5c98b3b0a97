"""``python -m ucp_dtn demo``: see :mod:`ucp_dtn.demo`."""

from __future__ import annotations

import sys

from .demo import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["demo"]:
        args = args[1:]
    sys.exit(main(args))
