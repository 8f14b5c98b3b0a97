"""Test doubles for the sans-IO TCPCLv4 session (in the spirit of h11's ConnectionPair).

* :class:`SessionPair` wires an active and a passive :class:`Session` together and shuttles
  bytes between them, optionally in arbitrary chunks, in bounded ``data_to_send`` pieces,
  truncated, or not at all (a cut connection). TLS is simulated: on ``StartTls`` the pair
  calls ``tls_established`` at once.
* :class:`RawPeer` is a peer written by hand: the test sends exact bytes to one session and
  decodes what it answers, to exercise peers that break the RFC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from convergence.tcpcl import (
    ContactHeader,
    Event,
    Message,
    MessageReader,
    SessInit,
    Session,
    SessionConfig,
    StartTls,
    encode_contact_header,
    encode_message,
)

Chunker = Callable[[bytes], Iterable[bytes]]


def whole(data: bytes) -> Iterable[bytes]:
    """Deliver data as it was produced."""
    return (data,)


class SessionPair:
    """An active ``client`` and a passive ``server`` connected by a perfect in-memory pipe."""

    def __init__(
        self,
        client_config: SessionConfig | None = None,
        server_config: SessionConfig | None = None,
        *,
        now: float = 0.0,
        chunker: Chunker = whole,
        max_bytes: int | None = None,
    ) -> None:
        self.now = now
        self.chunker = chunker
        self.max_bytes = max_bytes
        self.client = Session(client_config or SessionConfig(), active=True, now=now)
        self.server = Session(server_config or SessionConfig(), active=False, now=now)
        self.events: dict[Session, list[Event]] = {self.client: [], self.server: []}
        #: Octets each side produced so far (what went on the wire, in order).
        self.sent: dict[Session, bytearray] = {self.client: bytearray(), self.server: bytearray()}
        self.cut_off = False

    def other(self, session: Session) -> Session:
        return self.server if session is self.client else self.client

    def collect(self, session: Session) -> list[Event]:
        """Move the session's new events into ``self.events``; simulate TLS."""
        new = session.events()
        self.events[session].extend(new)
        if any(isinstance(e, StartTls) for e in new):
            session.tls_established(self.now)
            new += self.collect(session)
        return new

    def transmit(self, source: Session, *, limit: int | None = None) -> int:
        """Write out what ``source`` has to send (at most ``limit`` octets) to its peer."""
        target = self.other(source)
        moved = 0
        while limit is None or moved < limit:
            room = self.max_bytes
            if limit is not None:
                left = limit - moved
                room = left if room is None else min(room, left)
            data = bytes(source.data_to_send(self.now, room))
            if not data:
                break
            moved += len(data)
            self.sent[source] += data
            if self.cut_off:
                continue
            for chunk in self.chunker(data):
                target.receive_data(chunk, self.now)
                self.collect(target)
        self.collect(source)
        return moved

    def pump(self, *, rounds: int = 10_000) -> None:
        """Shuttle bytes both ways until neither side has anything to send."""
        self.collect(self.client)
        self.collect(self.server)
        for _ in range(rounds):
            if not (self.transmit(self.client) + self.transmit(self.server)):
                return
        raise AssertionError("sessions kept talking")

    def advance(self, seconds: float) -> None:
        """Move time forward, firing both sessions' timers that fall due, in order."""
        end = self.now + seconds
        while True:
            due = [
                (deadline, session)
                for session in (self.client, self.server)
                if (deadline := session.next_deadline()) is not None and deadline <= end
            ]
            if not due:
                break
            deadline, session = min(due, key=lambda item: item[0])
            self.now = max(self.now, deadline)
            session.handle_timer(self.now)
            self.collect(session)
            self.pump()
        self.now = end

    def cut(self) -> None:
        """The connection breaks: nothing more is delivered, both sides see it closed."""
        self.cut_off = True
        for session in (self.client, self.server):
            session.connection_closed(self.now)
            self.collect(session)

    def of_type(self, session: Session, kind: type) -> list[Event]:
        return [e for e in self.events[session] if isinstance(e, kind)]


def established_pair(
    client_config: SessionConfig | None = None,
    server_config: SessionConfig | None = None,
    **kwargs: object,
) -> SessionPair:
    """A pair whose session is established (events of the handshake are kept)."""
    pair = SessionPair(client_config, server_config, **kwargs)  # type: ignore[arg-type]
    pair.pump()
    return pair


class RawPeer:
    """Drives one :class:`Session` with hand-made bytes and decodes its answers."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.reader = MessageReader(contact_header=True)
        self.received: list[ContactHeader | Message] = []
        self.events: list[Event] = []
        self.now = 0.0

    def send(self, data: bytes) -> list[ContactHeader | Message]:
        """Feed ``data`` to the session; return what it sends back."""
        self.session.receive_data(data, self.now)
        return self.drain()

    def send_message(self, *messages: Message) -> list[ContactHeader | Message]:
        return self.send(b"".join(encode_message(m) for m in messages))

    def drain(self) -> list[ContactHeader | Message]:
        """Decode everything the session has to send."""
        new: list[ContactHeader | Message] = []
        while data := self.session.data_to_send(self.now):
            self.reader.feed(bytes(data))
        while (value := self.reader.next_message()) is not None:
            new.append(value)
        self.received.extend(new)
        self.events.extend(self.session.events())
        return new

    def establish(self, sess_init: SessInit | None = None) -> list[ContactHeader | Message]:
        """Run contact header and SESS_INIT exchange from the raw side (no TLS)."""
        init = sess_init or SessInit(30, 1 << 20, 1 << 30, "dtn://raw/")
        out = self.drain()
        if self.session.active:
            out += self.send(encode_contact_header(ContactHeader()))
            out += self.send_message(init)
        else:
            out += self.send(encode_contact_header(ContactHeader()) + encode_message(init))
        return out


def raw_session(config: SessionConfig | None = None, *, active: bool = False) -> RawPeer:
    """A session driven by a :class:`RawPeer`."""
    return RawPeer(Session(config or SessionConfig(), active=active, now=0.0))
