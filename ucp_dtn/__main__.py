"""``python -m ucp_dtn demo``: the same as ``ucp demo`` (see :mod:`ucp_dtn.demo`)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] != ["demo"]:
        args = ["demo", *args]
    sys.exit(main(args))
