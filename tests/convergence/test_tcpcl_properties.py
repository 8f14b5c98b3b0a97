"""Property tests of the TCPCLv4 session driven by hypothesis: random MRUs, random chunking
of the byte stream, random write sizes and acknowledgement schedules, cut connections, and
arbitrary API calls in any state."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from convergence.tcpcl import (
    Event,
    IncomingTransfer,
    LocalProtocolError,
    SessionClosed,
    SessionConfig,
    SessionState,
    SessTermReason,
    TransferCompleted,
    TransferReceived,
    TransferRefused,
    XferRefuseReason,
)
from convergence.tcpcl.session import Session
from convergence.tcpcl.state import TRANSITIONS

from .tcpcl_pair import SessionPair


def random_chunker(seed: int, largest: int) -> object:
    rng = random.Random(seed)

    def chunker(data: bytes) -> Iterable[bytes]:
        pos = 0
        while pos < len(data):
            size = rng.randint(1, largest)
            yield data[pos : pos + size]
            pos += size

    return chunker


@dataclass
class Receiver:
    """The user of one session's receiving side: stores bundles, then acknowledges."""

    session: Session
    rng: random.Random
    received: dict[int, bytes] = field(default_factory=dict)
    open: set[int] = field(default_factory=set)  # may be acknowledged
    complete: set[int] = field(default_factory=set)  # END seen, final ack pending
    seen: int = 0

    def observe(self, events: list[Event]) -> None:
        for event in events[self.seen :]:
            if isinstance(event, IncomingTransfer):
                self.open.add(event.transfer_id)
            elif isinstance(event, TransferReceived):
                assert event.transfer_id not in self.received, "delivered twice"
                assert event.data is not None
                self.received[event.transfer_id] = event.data
                if event.ack_pending:
                    self.complete.add(event.transfer_id)
                else:
                    self.open.discard(event.transfer_id)
        self.seen = len(events)

    def ack_some(self) -> None:
        for tid in sorted(self.open):
            if self.rng.random() < 0.5:
                self.session.ack_transfer(tid)
                if tid in self.complete:
                    self.complete.discard(tid)
                    self.open.discard(tid)

    def ack_all(self) -> None:
        for tid in sorted(self.complete):
            self.session.ack_transfer(tid)
            self.open.discard(tid)
        self.complete.clear()


mrus = st.one_of(st.integers(1, 64), st.integers(65, 5000))
sizes = st.lists(st.integers(0, 6000), max_size=5)


@settings(max_examples=150, deadline=None)
@given(
    client_mru=mrus,
    server_mru=mrus,
    up_sizes=sizes,
    down_sizes=sizes,
    seed=st.integers(0, 2**32),
    largest_chunk=st.integers(1, 3000),
    max_bytes=st.one_of(st.none(), st.integers(1, 4000)),
    acks=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
    steps=st.lists(st.integers(0, 5), max_size=40),
)
def test_every_transfer_arrives_exactly_once_and_intact(
    client_mru: int,
    server_mru: int,
    up_sizes: list[int],
    down_sizes: list[int],
    seed: int,
    largest_chunk: int,
    max_bytes: int | None,
    acks: tuple[bool, bool, bool, bool],
    steps: list[int],
) -> None:
    rng = random.Random(seed)
    up = [rng.randbytes(n) for n in up_sizes]
    down = [rng.randbytes(n) for n in down_sizes]
    pair = SessionPair(
        SessionConfig(segment_mru=client_mru, auto_ack_segments=acks[0], auto_ack_final=acks[1]),
        SessionConfig(segment_mru=server_mru, auto_ack_segments=acks[2], auto_ack_final=acks[3]),
        chunker=random_chunker(seed, largest_chunk),  # type: ignore[arg-type]
        max_bytes=max_bytes,
    )
    pair.pump()
    users = {s: Receiver(s, random.Random(seed + i)) for i, s in enumerate(pair.events)}
    sent: dict[Session, dict[int, bytes]] = {pair.client: {}, pair.server: {}}
    queues = {pair.client: list(up), pair.server: list(down)}

    def observe() -> None:
        for session, user in users.items():
            user.observe(pair.events[session])

    for step in steps:
        session = pair.client if step % 2 else pair.server
        if step < 2 and queues[session]:
            data = queues[session].pop(0)
            sent[session][session.send_transfer(data)] = data
        elif step < 4:
            pair.transmit(session, limit=rng.randint(1, 5000))
        else:
            observe()
            users[session].ack_some()
    for session, queue in queues.items():
        for data in queue:
            sent[session][session.send_transfer(data)] = data
    while True:
        pair.pump()
        observe()
        if not any(user.complete for user in users.values()):
            break
        for user in users.values():
            user.ack_all()
    for session in (pair.client, pair.server):
        peer = pair.other(session)
        assert users[peer].received == sent[session]
        completed = [e.transfer_id for e in pair.of_type(session, TransferCompleted)]
        assert sorted(completed) == sorted(sent[session])
        assert session.idle
    pair.client.close()
    pair.pump()
    for session in (pair.client, pair.server):
        assert pair.events[session][-1] == SessionClosed(clean=True, reason=SessTermReason.UNKNOWN)


@settings(max_examples=150, deadline=None)
@given(
    mru=mrus,
    sizes=st.lists(st.integers(0, 4000), min_size=1, max_size=6),
    seed=st.integers(0, 2**32),
    cut_after=st.integers(0, 30_000),
    refuse_every=st.integers(0, 4),
)
def test_a_cut_connection_never_loses_an_acknowledged_bundle(
    mru: int, sizes: list[int], seed: int, cut_after: int, refuse_every: int
) -> None:
    rng = random.Random(seed)
    pair = SessionPair(
        SessionConfig(),
        SessionConfig(segment_mru=mru, auto_ack_final=False),
        chunker=random_chunker(seed, 700),  # type: ignore[arg-type]
    )
    pair.pump()
    bundles = {pair.client.send_transfer(data): data for data in (rng.randbytes(n) for n in sizes)}
    stored: dict[int, bytes] = {}
    budget = cut_after
    seen = 0
    while budget > 0 and not pair.cut_off:
        moved = pair.transmit(pair.client, limit=min(budget, rng.randint(1, 3000)))
        moved += pair.transmit(pair.server, limit=max(1, budget - moved))
        budget -= moved
        for event in pair.events[pair.server][seen:]:
            if isinstance(event, TransferReceived):
                assert event.data is not None
                if refuse_every and event.transfer_id % refuse_every == 0:
                    pair.server.refuse_transfer(event.transfer_id, XferRefuseReason.NO_RESOURCES)
                else:
                    stored[event.transfer_id] = event.data  # stored durably, then acked
                    pair.server.ack_transfer(event.transfer_id)
        seen = len(pair.events[pair.server])
        if not moved:
            break
    pair.cut()
    end = pair.events[pair.client][-1]
    assert isinstance(end, SessionClosed)
    completed = {e.transfer_id for e in pair.of_type(pair.client, TransferCompleted)}
    refused = {e.transfer_id for e in pair.of_type(pair.client, TransferRefused)}
    # Every bundle the sender may forget (completed) is stored intact at the receiver ...
    for tid in completed:
        assert stored[tid] == bundles[tid]
    # ... and every other one is reported back, refused or unacknowledged, exactly once.
    assert completed | refused | set(end.unacknowledged) == set(bundles)
    assert not (completed & refused) and not (set(end.unacknowledged) & (completed | refused))


operations = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "send",
                "close",
                "abort",
                "ack",
                "refuse",
                "tls",
                "timer",
                "transmit",
                "garbage",
                "cut",
            ]
        ),
        st.integers(0, 3),
        st.binary(max_size=8),
    ),
    max_size=25,
)


def reachable(state: SessionState) -> set[SessionState]:
    seen = {state}
    frontier = [state]
    while frontier:
        for target in TRANSITIONS[frontier.pop()].values():
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


@settings(max_examples=200, deadline=None)
@given(ops=operations, seed=st.integers(0, 1000), tls=st.booleans())
def test_any_call_in_any_state_is_legal_or_a_local_error(
    ops: list[tuple[str, int, bytes]], seed: int, tls: bool
) -> None:
    from convergence.tcpcl import TlsPolicy

    policy = TlsPolicy.OPTIONAL if tls else TlsPolicy.DISABLED
    config = SessionConfig(tls=policy, segment_mru=50, keepalive_interval=5)
    pair = SessionPair(config, SessionConfig(tls=policy, segment_mru=50, keepalive_interval=5))
    rng = random.Random(seed)
    for name, arg, blob in ops:
        session = rng.choice([pair.client, pair.server])
        before = {s: s.state for s in (pair.client, pair.server)}
        try:
            if name == "send":
                session.send_transfer(bytes(arg * 40))
            elif name == "close":
                session.close(SessTermReason(arg))
            elif name == "abort":
                session.abort()
            elif name == "ack":
                session.ack_transfer(arg)
            elif name == "refuse":
                session.refuse_transfer(arg, XferRefuseReason(arg))
            elif name == "tls":
                session.tls_established(pair.now)
            elif name == "timer":
                pair.advance(arg * 3.0)
            elif name == "transmit":
                pair.transmit(session, limit=arg * 30 + 1)
            elif name == "garbage" and session.state is not SessionState.TLS_WAIT:
                session.receive_data(blob, pair.now)
            elif name == "cut":
                pair.cut()
        except LocalProtocolError:
            pass
        for s in (pair.client, pair.server):
            pair.collect(s)
            assert s.state in reachable(before[s])
    pair.pump()
    for s in (pair.client, pair.server):
        events = pair.events[s]
        closes = [i for i, e in enumerate(events) if isinstance(e, SessionClosed)]
        assert len(closes) <= 1
        if closes:
            assert closes[0] == len(events) - 1 and s.state is SessionState.CLOSED
