"""Run the lossy TCP relay: ``python -m convergence.lossy --help``."""

from .cli import main

raise SystemExit(main())
