"""ucp-dtn tests (a package, so that tests/bpv7 etc. do not shadow the real packages)."""
