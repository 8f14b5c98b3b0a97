"""The ucp-dtn bundle protocol agent and the Urban Compute Platform roles."""

__version__ = "0.1.0"
"""The package's version (``pyproject.toml`` reads it from here)."""
