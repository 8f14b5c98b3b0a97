"""Session states of TCPCLv4 and the one table of their transitions.

Theory of operation
===================

A TCPCL session (RFC 9174 §3.3, Figures 4 to 14) lives on one TCP connection and runs in two
phases, like a WebSocket: a handshake, then framed messages.

Handshake. The active entity (the one that connected) sends its contact header at once; the
passive entity waits for it and then answers with its own (§4.1). Both are in
``CONTACT_WAIT`` until the peer's header has arrived and been validated (§4.3): bad magic
closes the connection silently; a version other than 4 makes a passive entity send its header
plus SESS_TERM "Version mismatch", an active one just close. If both headers set CAN_TLS and
our policy agrees, the session goes to ``TLS_WAIT``: the caller runs the TLS handshake on the
connection (active = client) and reports success with ``tls_established()``. Then, or directly
when TLS is not used, ``SESS_INIT_WAIT``: the active entity sends SESS_INIT and waits for the
passive one's; the passive entity waits, then sends its own (§4.6). Negotiating the two
(§4.7) gives ``ESTABLISHED``. All of this must finish within the establishment timeout.

Established. Both directions carry transfers independently: the sender segments each bundle
(XFER_SEGMENT START ... END, never interleaving two transfers), the receiver acknowledges
each segment cumulatively (XFER_ACK) or refuses the transfer (XFER_REFUSE). KEEPALIVE goes
out when we have sent nothing for the negotiated interval; having received nothing for twice
the interval ends the session ("Idle timeout").

Ending. Sending a SESS_TERM — to initiate, or as the REPLY to the peer's — moves the session
to ``ENDING`` (§6.1): transfers in progress in either direction may finish, new ones are
neither started nor accepted (an attempted one is refused with "Session Terminating"). Both
sides may initiate at the same moment; each then counts the other's SESS_TERM as the reply.
When our SESS_TERM is sent, the peer's received, and no transfer is in progress either way,
the session is ``CLOSED`` cleanly.

Failure. Anything abrupt — the peer breaking the protocol, a timeout, the connection lost,
``abort()`` — goes straight to ``CLOSED`` from any state, after queueing whatever the RFC says
to send (MSG_REJECT, SESS_TERM, or nothing). In ``CLOSED`` the caller writes out the remaining
bytes and closes the connection; further input is ignored.

The transitions below are the only ones; the session drives them with the inputs of
:class:`SessionInput`. Sub-states that do not change what is allowed (whether our contact
header was sent yet, whether the peer's SESS_TERM was received, live vs. idle) are flags kept
by the session.
"""

from __future__ import annotations

import enum

from .errors import LocalProtocolError

__all__ = ["SessionInput", "SessionState", "StateMachine"]


class SessionState(enum.Enum):
    """Top-level state of a session (RFC 9174 §3.1 "Session State Changed")."""

    #: Contact header exchange in progress (§4.1 to §4.3).
    CONTACT_WAIT = "contact-wait"
    #: Contact headers agreed on TLS: waiting for the caller's TLS handshake (§4.4.3).
    TLS_WAIT = "tls-wait"
    #: Waiting for the peer's SESS_INIT (§4.6).
    SESS_INIT_WAIT = "sess-init-wait"
    #: Session established: transfers in both directions (§5).
    ESTABLISHED = "established"
    #: We sent SESS_TERM: only transfers in progress may finish (§6.1).
    ENDING = "ending"
    #: Terminal: flush the remaining output and close the connection.
    CLOSED = "closed"


class SessionInput(enum.Enum):
    """What makes the session change state."""

    #: Peer contact header valid, TLS not used.
    CONTACT_OK = "contact-ok"
    #: Peer contact header valid, TLS negotiated.
    CONTACT_OK_TLS = "contact-ok-tls"
    #: The caller finished the TLS handshake.
    TLS_DONE = "tls-done"
    #: Peer SESS_INIT valid; parameters negotiated.
    SESS_INIT_OK = "sess-init-ok"
    #: We queued a SESS_TERM (initiating or replying).
    SESS_TERM_SENT = "sess-term-sent"
    #: Both SESS_TERMs exchanged and no transfer in progress.
    ENDING_DONE = "ending-done"
    #: Protocol error, timeout, connection lost or abort.
    FAIL = "fail"


_S = SessionState
_I = SessionInput

#: state -> {input -> next state}. Inputs missing from a row are illegal in that state.
TRANSITIONS: dict[SessionState, dict[SessionInput, SessionState]] = {
    _S.CONTACT_WAIT: {
        _I.CONTACT_OK: _S.SESS_INIT_WAIT,
        _I.CONTACT_OK_TLS: _S.TLS_WAIT,
        _I.FAIL: _S.CLOSED,
    },
    _S.TLS_WAIT: {
        _I.TLS_DONE: _S.SESS_INIT_WAIT,
        _I.FAIL: _S.CLOSED,
    },
    _S.SESS_INIT_WAIT: {
        _I.SESS_INIT_OK: _S.ESTABLISHED,
        _I.SESS_TERM_SENT: _S.ENDING,
        _I.FAIL: _S.CLOSED,
    },
    _S.ESTABLISHED: {
        _I.SESS_TERM_SENT: _S.ENDING,
        _I.FAIL: _S.CLOSED,
    },
    _S.ENDING: {
        _I.ENDING_DONE: _S.CLOSED,
        _I.FAIL: _S.CLOSED,
    },
    _S.CLOSED: {},
}


class StateMachine:
    """Holds the current :class:`SessionState` and applies :data:`TRANSITIONS`."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = SessionState.CONTACT_WAIT

    def process(self, event: SessionInput) -> SessionState:
        """Apply ``event``; return the new state.

        :raises LocalProtocolError: ``event`` is not allowed in the current state.
        """
        try:
            self.state = TRANSITIONS[self.state][event]
        except KeyError:
            raise LocalProtocolError(
                f"cannot handle {event.name} in state {self.state.name}"
            ) from None
        return self.state
