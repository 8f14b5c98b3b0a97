"""A TLS stream for trio built on ``ssl.SSLObject`` and memory BIOs, tuned for bulk transfer.

``trio.SSLStream`` hands out at most one TLS record (16 KiB) per ``receive_some`` and reads the
transport 64 KiB at a time, with a pass through the scheduler for each: on loopback it carries
about a third of what the raw socket does, before any TCPCL work. :class:`TlsStream` does the
same job with fewer, larger steps: it reads the transport in large pieces, decrypts every
complete record that arrived in one go, and encrypts a whole ``send_all`` before one transport
write.

It is deliberately small: TLS 1.3 only (no renegotiation, so a write never needs a read), one
task receiving at a time and one sending at a time (they may run concurrently). Writes to the
transport, including the ones a read causes (post-handshake messages, alerts), go out in BIO
order under a FIFO lock. :meth:`TlsStream.send_eof` sends close_notify, after which the peer's
remaining data can still be read, so a session can close gracefully in both directions.
"""

from __future__ import annotations

import contextlib
import ssl

import trio

__all__ = ["TlsStream"]

#: Transport read size: many records per read and per pass through the scheduler.
_TRANSPORT_RECEIVE = 1024 * 1024
#: Decrypted octets handed out per ``receive_some`` when the caller sets no limit.
_DEFAULT_RECEIVE = 1024 * 1024
#: Largest plaintext of one TLS record (RFC 8446 §5.1): what one ``SSLObject.read`` yields.
_RECORD = 16384


class TlsStream(trio.abc.HalfCloseableStream):
    """TLS over ``transport``; call :meth:`do_handshake` first.

    :param server_side: whether we are the TLS server.
    :param server_hostname: name for SNI (and host name checking, if the context does it).
    """

    def __init__(
        self,
        transport: trio.abc.Stream,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
    ) -> None:
        self.transport = transport
        """The underlying stream."""
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
        )
        self._send_lock = trio.StrictFIFOLock()
        self._handshook = False
        self._eof_received = False
        self._eof_sent = False
        self._broken = False
        self._closed = False

    # -- TLS state ---------------------------------------------------------------------------

    def getpeercert(self, binary_form: bool = True) -> bytes | None:
        """The peer's certificate in DER, once the handshake is done (``None`` if it sent
        none)."""
        if not binary_form:
            raise ValueError("only the binary form is available")
        return self._ssl.getpeercert(binary_form=True)

    def version(self) -> str | None:
        """The negotiated protocol version, e.g. ``"TLSv1.3"``."""
        return self._ssl.version()

    def cipher(self) -> tuple[str, str, int] | None:
        """The negotiated cipher suite."""
        return self._ssl.cipher()

    async def do_handshake(self) -> None:
        """Run the TLS handshake.

        :raises trio.BrokenResourceError: it failed; ``__cause__`` is the ``ssl.SSLError``.
        """
        self._check_usable()
        while True:
            try:
                self._ssl.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
                continue
            except ssl.SSLError as exc:
                await self._fail(exc)
            break
        self._handshook = True
        await self._flush()

    # -- trio.abc.HalfCloseableStream -------------------------------------------------------

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Encrypt ``data`` and write it to the transport."""
        self._check_usable()
        if self._eof_sent:
            raise trio.ClosedResourceError("send_eof() was called")
        if data:
            try:
                self._ssl.write(data)
            except ssl.SSLError as exc:
                await self._fail(exc)
        await self._flush(checkpoint=True)

    async def wait_send_all_might_not_block(self) -> None:
        """Wait until the transport can take more data."""
        self._check_usable()
        async with self._send_lock:
            await self.transport.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Decrypted data: everything already available up to ``max_bytes``, else wait for
        some; ``b""`` once the peer sent close_notify."""
        self._check_usable()
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        limit = _DEFAULT_RECEIVE if max_bytes is None else max_bytes
        while True:
            pieces, error = self._decrypt(limit)
            if pieces or self._eof_received:
                # An error after some data resurfaces on the next call (OpenSSL keeps it).
                if error is None and self._outgoing.pending:  # a post-handshake message
                    await self._flush()
                await trio.lowlevel.checkpoint()
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
            if error is not None:
                await self._fail(error)  # sends the alert, if any
            if self._outgoing.pending:
                await self._flush()
            await self._fill()

    def _decrypt(self, limit: int) -> tuple[list[bytes], ssl.SSLError | None]:
        """Decrypt the complete records at hand, up to ``limit`` octets."""
        pieces: list[bytes] = []
        size = 0
        try:
            while size < limit:
                piece = self._ssl.read(min(limit - size, _RECORD))
                if not piece:  # close_notify
                    self._eof_received = True
                    break
                pieces.append(piece)
                size += len(piece)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            # close_notify after ours (the plain empty read is for the other order).
            self._eof_received = True
        except ssl.SSLError as exc:
            return pieces, exc
        return pieces, None

    async def send_eof(self) -> None:
        """Send close_notify; the peer's data can still be received."""
        self._check_usable()
        if self._eof_sent:
            await trio.lowlevel.checkpoint()
            return
        self._eof_sent = True
        try:
            self._ssl.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # it also wants the peer's close_notify: receive_some will read it
        except ssl.SSLError as exc:
            await self._fail(exc)
        await self._flush(checkpoint=True)

    async def aclose(self) -> None:
        """Close the transport (after close_notify, if not sent yet and possible)."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._handshook and not self._broken and not self._eof_sent:
                self._eof_sent = True
                with contextlib.suppress(ssl.SSLError):
                    self._ssl.unwrap()
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self._flush()
        finally:
            await self.transport.aclose()

    # -- internals --------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        if self._broken:
            raise trio.BrokenResourceError("the TLS stream is broken")

    async def _flush(self, *, checkpoint: bool = False) -> None:
        """Write out what the TLS engine produced, in order."""
        if not self._outgoing.pending:
            if checkpoint:
                await trio.lowlevel.checkpoint()
            return
        async with self._send_lock:
            # Read the BIO under the lock: whoever writes first writes the oldest data.
            data = self._outgoing.read()
            if data:
                try:
                    await self.transport.send_all(data)
                except BaseException:
                    self._broken = True
                    raise

    async def _fill(self) -> None:
        """Read the transport into the TLS engine."""
        try:
            data = await self.transport.receive_some(_TRANSPORT_RECEIVE)
        except trio.Cancelled:
            raise  # nothing was read: the stream stays usable
        except BaseException:
            self._broken = True
            raise
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()

    async def _fail(self, exc: ssl.SSLError) -> None:
        """The TLS engine failed: send its alert if any (best effort), then raise."""
        self._broken = True
        data = self._outgoing.read()
        if data:
            with trio.move_on_after(1):
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.transport.send_all(data)
        raise trio.BrokenResourceError(f"TLS failed: {exc}") from exc
