"""The ucp-dtn bundle protocol agent and the Urban Compute Platform roles."""
