"""The executor's input cache (:mod:`ucp_dtn.roles.executor.input_cache`): values by SHA-256,
bounded, least recently used first out, checked against their digest, kept across a restart."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ucp_dtn.roles.executor.input_cache import InputCache
from ucp_dtn.ucp.messages import MAX_HAVE


def digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def test_values_come_back_by_digest_and_names_say_what_to_offer(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "inputs", 1000)
    cache.open()
    audio, other = b"a" * 300, b"b" * 200
    assert cache.have_for("survey") == ()
    assert cache.store(digest(audio), audio)
    cache.note("survey/a.pcm", digest(audio))
    assert cache.store(digest(other), other)
    cache.note("elsewhere", digest(other))
    assert cache.have_for("survey/a.pcm") == (digest(audio),)
    assert cache.have_for("survey") == (digest(audio),)  # a name with its subkeys
    assert cache.have_for("surv*") == (digest(audio),)
    assert cache.have_for("survey2") == ()
    assert cache.read(digest(audio)) == audio
    assert cache.read(digest(b"never")) is None
    stats = cache.statistics()
    assert (stats.size, stats.values, stats.hits, stats.bytes_saved) == (500, 2, 1, 300)
    assert oct((tmp_path / "inputs" / digest(audio).hex()).stat().st_mode & 0o777) == "0o600"


def test_a_value_not_matching_its_digest_or_too_large_is_not_kept(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "inputs", 100)
    cache.open()
    assert not cache.store(digest(b"right"), b"wrong")
    assert not cache.store(digest(b"x" * 101), b"x" * 101)
    assert cache.statistics().rejected == 2
    assert list((tmp_path / "inputs").iterdir()) == []


def test_the_least_recently_used_values_go_first(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "inputs", 250)
    cache.open()
    one, two, three = b"1" * 100, b"2" * 100, b"3" * 100
    cache.store(digest(one), one)
    cache.store(digest(two), two)
    assert cache.read(digest(one)) == one  # now two is the least recently used
    cache.store(digest(three), three)
    assert cache.holds(digest(one)) and cache.holds(digest(three))
    assert not cache.holds(digest(two))
    assert not (tmp_path / "inputs" / digest(two).hex()).exists()
    assert cache.statistics().evicted == 1
    # A name whose value went is not offered any more.
    cache.note("n", digest(two))
    assert cache.have_for("n") == ()


def test_standard_input_is_linked_not_copied(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "inputs", 1000)
    cache.open()
    data = b"stdin bytes"
    cache.store(digest(data), data)
    target = tmp_path / "stdin"
    assert cache.link(digest(data), target)
    assert target.read_bytes() == data
    assert os.stat(target).st_ino == (tmp_path / "inputs" / digest(data).hex()).stat().st_ino
    assert not cache.link(digest(b"gone"), tmp_path / "other")
    assert cache.statistics().hits == 1
    # A value fetched and kept just now is linked too, but saved no fetch: no hit.
    assert cache.link(digest(data), tmp_path / "fresh", hit=False)
    assert (cache.statistics().hits, cache.statistics().bytes_saved) == (1, len(data))


def test_values_survive_a_restart_and_partial_writes_are_dropped(tmp_path: Path) -> None:
    directory = tmp_path / "inputs"
    first = InputCache(directory, 1000)
    first.open()
    data = b"kept"
    first.store(digest(data), data)
    (directory / "partial.tmp").write_bytes(b"half")
    again = InputCache(directory, 1000)
    again.open()
    assert again.read(digest(data)) == data
    assert not (directory / "partial.tmp").exists()
    # A smaller bound at the next start drops what no longer fits.
    small = InputCache(directory, 2)
    small.open()
    assert small.statistics().values == 0


@pytest.mark.parametrize("limit", [0, -5])
def test_a_zero_bound_keeps_nothing(tmp_path: Path, limit: int) -> None:
    cache = InputCache(tmp_path / "inputs", limit)
    cache.open()
    assert not cache.enabled
    assert not cache.store(digest(b"x"), b"x")
    cache.note("n", digest(b"x"))
    assert cache.have_for("n") == ()
    assert not (tmp_path / "inputs").exists()


def test_offers_are_bounded(tmp_path: Path) -> None:
    cache = InputCache(tmp_path / "inputs", 10**6)
    cache.open()
    for n in range(MAX_HAVE + 10):
        value = b"v%d" % n
        cache.store(digest(value), value)
        cache.note(f"many/{n}", digest(value))
    assert len(cache.have_for("many")) == MAX_HAVE
