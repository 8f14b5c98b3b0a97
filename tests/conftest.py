"""Shared pytest configuration for ucp-dtn's tests."""
