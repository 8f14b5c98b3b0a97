"""The Urban Compute Platform layer: UCP messages, roles and the WebAssembly job runtime."""
