"""Fixtures for the BPv7 codec tests."""

import pytest

from bpv7 import Bundle, CreationTimestamp, DtnEID, parse_eid


@pytest.fixture
def simple_bundle() -> Bundle:
    """A small valid bundle: dtn EIDs, CRC-32C everywhere, 100-byte payload."""
    return Bundle.build(
        source=DtnEID("src", "app"),
        destination=parse_eid("dtn://dst/svc"),
        payload=bytes(range(100)),
        creation=CreationTimestamp(800_000_000_000, 1),
        lifetime_ms=3_600_000,
    )
