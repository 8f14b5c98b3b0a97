"""Incoming transfers of one agent, as they arrive: small ones in memory, large ones in files
beside the store, counted against the store's quota (:class:`Spool`).

Theory of operation
-------------------
The TCPCL link hands each segment of an incoming transfer to a :class:`SpoolSink`
(:mod:`convergence.tcpcl.sink`) and acknowledges the segment once ``write`` returned. A sink
keeps the octets in memory while the transfer is small (``spool_threshold_bytes``) and the
node's receive budget has room; otherwise in a file ``<workdir>/spool/<token>.part`` written
with ``os.write`` (in a worker thread). Octets are reserved in the store's quota
(:meth:`~ucp_dtn.store.BundleStore.reserve`; the whole transfer at once when the Transfer Length
extension announced it, RFC 9174 §5.2.5.1) when they go to a file, and — from the second
segment on — whenever the peer relies on the acknowledgements (reactive fragmentation: it deletes
what was acknowledged, so that must find room), with a small margin for fragment heads and
forwarding edits. A transfer that does not fit is refused with
XFER_REFUSE "No Resources" (RFC 9174 §5.2.4) before its data fills the disk. An acknowledged
segment is in the operating system's hands, so it survives ``kill -9`` of the daemon (not a
power cut: spool files are not fsync'd; the bundle is, once stored). A JSON file beside it
names the peer and whether the session agreed on reactive fragmentation.

When the transfer completes (``.part`` renamed ``.done``), the agent reads it, decodes and
stores the bundle (:meth:`~ucp_dtn.agent.reception.Receiver.on_transfer`), using the sink's
reservation, and the sink is released: file deleted, budget and quota given back.

When it does not complete — the session ended — the sink is *abandoned*: if the session agreed
on reactive fragmentation, what it holds is handed to :class:`Spool`'s ``keep`` callback, which
keeps the acknowledged prefix as fragments (RFC 9171 §5.8) or, for a transfer that was complete
but never processed, the whole bundle; then it is released. After a restart,
:meth:`Spool.recover` does the same with the files left over (a file holds at least what was
acknowledged).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from convergence.tcpcl import SessionExtensionType, XferRefuseReason
from convergence.tcpcl.sink import (
    IncomingTransferStart,
    ReceiveBudget,
    SinkRefusal,
    TransferSink,
)
from ucp_dtn.private_files import FILE_MODE, make_private_directory, write_private
from ucp_dtn.store import BundleStore, Reservation, StoreFullError

from .statistics import Counters

__all__ = ["Spool", "SpoolSink", "SpoolStatistics", "SpooledData"]

logger = logging.getLogger(__name__)

_MARGIN = 4096
"""Octets reserved beyond a transfer's own (see ``SpoolSink._reserve``)."""

_PART = ".part"
_DONE = ".done"
_META = ".json"


def agreed_reactive(start: IncomingTransferStart) -> bool:
    """Whether the peer announced reactive fragmentation in its SESS_INIT."""
    return any(
        item.item_type == SessionExtensionType.REACTIVE_FRAGMENTATION
        for item in start.peer_extensions
    )


class SpooledData:
    """Octets of one transfer, complete or not, wherever they are: what the ``keep`` callback
    reads from."""

    __slots__ = ("_memory", "_path", "complete", "length", "peer")

    def __init__(
        self,
        *,
        peer: str,
        length: int,
        complete: bool,
        memory: bytes | None = None,
        path: Path | None = None,
    ) -> None:
        self.peer = peer
        """The node ID of the peer that sent it."""
        self.length = length
        """Octets held."""
        self.complete = complete
        """Whether the whole transfer arrived."""
        self._memory = memory
        self._path = path

    async def read(self, offset: int, size: int) -> bytes:
        """``size`` octets from ``offset`` (fewer at the end)."""
        if self._memory is not None:
            return self._memory[offset : offset + size]
        assert self._path is not None
        return await trio.to_thread.run_sync(_read_range, self._path, offset, size)


KeepCallback = Callable[[SpooledData, Reservation | None], Awaitable[None]]
"""Keeps what it can of a transfer that did not reach the agent (fragments, or the whole
bundle when complete); takes over the reservation (releases what it does not use)."""


@dataclass(frozen=True, slots=True)
class SpoolStatistics:
    """The spool's counters and gauges."""

    in_memory: int
    """Octets of incoming transfers held in memory by sinks now."""
    in_files: int
    """Octets of incoming transfers in spool files now."""
    transfers: int
    """Incoming transfers open now."""
    spooled: int
    """Transfers that went to a file since start."""
    refused: int
    """Transfers refused for lack of quota or disk."""
    abandoned: int
    """Transfers that ended before completing and were handed to ``keep``."""
    recovered: int
    """Spool files found at start."""


class Spool:
    """The incoming transfers of one agent (see the module docstring)."""

    def __init__(
        self,
        store: BundleStore,
        path: Path | None,
        budget: ReceiveBudget,
        *,
        threshold: int,
        reactive: bool,
        keep: KeepCallback,
        counters: Counters | None = None,
    ) -> None:
        self.store = store
        self._counters = counters
        self.path = path
        """Directory of the spool files (``None``: everything stays in memory)."""
        self.budget = budget
        self.threshold = threshold
        """Largest transfer kept in memory."""
        self.reactive = reactive
        """Whether this node keeps what arrived of transfers cut short."""
        self._keep = keep
        self._open: set[SpoolSink] = set()
        self.received = 0
        """Octets of incoming transfers longer than one segment taken since start (all
        sessions): it grows while a large bundle arrives, which is what patient waiters watch
        (small messages, like route advertisements, do not count)."""
        self._spooled = 0
        self._refused = 0
        self._abandoned = 0
        self._recovered = 0
        if path is not None:
            make_private_directory(path)  # spool files are bundles: for our user only

    def sink_for(self, start: IncomingTransferStart) -> TransferSink | XferRefuseReason:
        """The link's sink factory: a sink for a transfer that starts, or "No Resources"."""
        reservation: Reservation | None = None
        total = start.total_length
        if total is not None:
            # RFC 9174 §5.2.5.1: the Transfer Length extension lets a receiver "preemptively
            # refuse bundles that would exceed their resources". One that will go to a file
            # holds its space in the quota from now on.
            try:
                if total > self.threshold and self.path is not None:
                    reservation = self.store.reserve(total)
                elif not self.store.can_accept(total):
                    raise StoreFullError(f"store full: {total} bytes do not fit")
            except StoreFullError as exc:
                self._refusing()
                logger.info(
                    "refusing a transfer of %d octets from %s: %s", total, start.peer_node_id, exc
                )
                return XferRefuseReason.NO_RESOURCES
        sink = SpoolSink(
            self, start, reservation, reactive=self.reactive and agreed_reactive(start)
        )
        self._open.add(sink)
        return sink

    def statistics(self) -> SpoolStatistics:
        """A snapshot of the spool."""
        return SpoolStatistics(
            in_memory=sum(sink.in_memory for sink in self._open),
            in_files=sum(sink.size - sink.in_memory for sink in self._open),
            transfers=len(self._open),
            spooled=self._spooled,
            refused=self._refused,
            abandoned=self._abandoned,
            recovered=self._recovered,
        )

    async def recover(self) -> int:
        """After a restart: hand every spool file left over to ``keep`` (a ``.part`` file
        holds at least what was acknowledged; a ``.done`` file a whole transfer), then delete
        it. Returns how many there were."""
        if self.path is None:
            return 0
        found = await trio.to_thread.run_sync(_leftovers, self.path)
        for data_path, meta_path in found:
            try:
                meta = json.loads(await trio.to_thread.run_sync(meta_path.read_text))
                peer = str(meta["peer"])
                reactive = bool(meta.get("reactive"))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.warning(
                    "spool file %s has no usable description (%s): deleting", data_path, exc
                )
                peer, reactive = "", False
            complete = data_path.suffix == _DONE
            length = (await trio.to_thread.run_sync(data_path.stat)).st_size
            if (reactive or complete) and peer and length:
                logger.info(
                    "keeping %s transfer of %d octets from %s found in the spool",
                    "a complete" if complete else "an interrupted",
                    length,
                    peer,
                )
                data = SpooledData(peer=peer, length=length, complete=complete, path=data_path)
                await self._keep(data, None)
            await trio.to_thread.run_sync(_remove, data_path, meta_path)
            self._recovered += 1
        return len(found)

    # -- for SpoolSink -------------------------------------------------------------------------

    def _opened_file(self) -> None:
        self._spooled += 1

    def _refusing(self) -> None:
        self._refused += 1
        if self._counters is not None:
            self._counters.refused_transfers += 1

    def _closed(self, sink: SpoolSink) -> None:
        self._open.discard(sink)

    async def _abandoned_sink(self, data: SpooledData, reservation: Reservation | None) -> None:
        self._abandoned += 1
        await self._keep(data, reservation)


class SpoolSink:
    """One incoming transfer (see the module docstring)."""

    __slots__ = (
        "_counted",
        "_fd",
        "_finished",
        "_memory",
        "_name",
        "_released",
        "_reservation",
        "_spool",
        "in_memory",
        "peer",
        "reactive",
        "size",
    )

    def __init__(
        self,
        spool: Spool,
        start: IncomingTransferStart,
        reservation: Reservation | None,
        *,
        reactive: bool,
    ) -> None:
        self._spool = spool
        self.peer = start.peer_node_id
        """The sender's node ID."""
        # Octets of transfers longer than one segment count as progress (a multi-segment
        # transfer announces its length; without it, from the second segment on).
        self._counted = start.total_length is not None
        self.reactive = reactive
        """Whether what arrives of it is kept if the session ends first."""
        self._reservation = reservation
        self._memory: list[bytes] = []
        self.in_memory = 0
        """Octets held in memory (taken from the receive budget)."""
        self.size = 0
        """Octets written."""
        self._fd: int | None = None
        self._name: str | None = None
        self._finished = False
        self._released = False

    @property
    def spooled(self) -> bool:
        """Whether the octets are in a file."""
        return self._name is not None

    def take_reservation(self) -> Reservation | None:
        """The quota reservation for this transfer's octets, for the store's ``put`` (the
        sink no longer releases it)."""
        reservation, self._reservation = self._reservation, None
        return reservation

    def _reserve(self, size: int) -> None:
        # A little more than the octets: keeping them may add fragment heads and forwarding
        # edits, and what the peer saw acknowledged must find room (it deletes its copy).
        size += min(_MARGIN, size // 8) + size // 1000
        try:
            if self._reservation is None:
                self._reservation = self._spool.store.reserve(size)
            else:
                self._reservation.grow(size)
        except StoreFullError as exc:
            self._spool._refusing()
            raise SinkRefusal(XferRefuseReason.NO_RESOURCES, str(exc)) from None

    async def write(self, data: bytes | memoryview) -> None:
        """Keep ``data``: in memory (counted in the receive budget), or appended to the spool
        file; counted in the store's quota when in a file, or when the peer relies on the
        acknowledgements (reactive fragmentation: it deletes what was acknowledged), from the
        second segment on (a single-segment transfer has no acknowledgement before the final
        one)."""
        length = len(data)
        if not length:
            return
        total = self.size + length
        spool = self._spool
        if self._counted or self.size:
            spool.received += length
        if self._name is None:
            in_memory = total <= spool.threshold or spool.path is None
            if self.reactive and self.size:
                # The first segment is acknowledged by now: the peer will rely on it.
                self._reserve(total)
            if in_memory and (spool.budget.try_acquire(length) or spool.path is None):
                if spool.path is not None:
                    self.in_memory += length
                self._memory.append(bytes(data))
                self.size = total
                return
            self._reserve(total)
            await self._open_file()
        else:
            self._reserve(total)
        assert self._fd is not None
        try:
            await trio.to_thread.run_sync(_write_all, self._fd, data)
        except OSError as exc:
            raise _refusal(exc) from None
        self.size = total

    async def _open_file(self) -> None:
        spool = self._spool
        assert spool.path is not None
        name = secrets.token_hex(12)
        meta = json.dumps({"peer": self.peer, "reactive": self.reactive})
        memory, self._memory = self._memory, []
        try:
            self._fd = await trio.to_thread.run_sync(_create, spool.path, name, meta, memory)
        except OSError as exc:
            raise _refusal(exc) from None
        finally:
            spool.budget.release(self.in_memory)
            self.in_memory = 0
        self._name = name
        spool._opened_file()

    async def finish(self) -> None:
        """The transfer is complete: close the file (renamed ``.done``)."""
        self._finished = True
        if self._fd is not None:
            fd, self._fd = self._fd, None
            path = self._spool.path
            assert path is not None and self._name is not None
            await trio.to_thread.run_sync(_finish_file, fd, path, self._name)

    async def read(self) -> bytes:
        """The whole transfer."""
        if self._name is None:
            if len(self._memory) > 1:
                self._memory = [b"".join(self._memory)]
            return self._memory[0] if self._memory else b""
        path = self._spool.path
        assert path is not None
        suffix = _DONE if self._finished else _PART
        return await trio.to_thread.run_sync((path / (self._name + suffix)).read_bytes)

    def _data(self) -> SpooledData:
        path = self._spool.path
        if self._name is None or path is None:
            return SpooledData(
                peer=self.peer,
                length=self.size,
                complete=self._finished,
                memory=b"".join(self._memory),
            )
        suffix = _DONE if self._finished else _PART
        return SpooledData(
            peer=self.peer,
            length=self.size,
            complete=self._finished,
            path=path / (self._name + suffix),
        )

    async def abandon(self, acknowledged: int) -> None:
        """The transfer did not reach the agent: keep what can be kept (if the session agreed
        on reactive fragmentation, or it is complete), then release everything."""
        try:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                await trio.to_thread.run_sync(os.close, fd)
            if self.size and not self._released and (self.reactive or self._finished):
                logger.info(
                    "transfer from %s ended after %d octets (%d acknowledged)%s",
                    self.peer,
                    self.size,
                    acknowledged,
                    ", complete" if self._finished else "",
                )
                await self._spool._abandoned_sink(self._data(), self.take_reservation())
        finally:
            await self.release()

    async def release(self) -> None:
        """Delete the file, give back memory budget and unused quota. Idempotent."""
        if self._released:
            return
        self._released = True
        spool = self._spool
        spool._closed(self)
        spool.budget.release(self.in_memory)
        self.in_memory = 0
        self._memory = []
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None
        fd, self._fd = self._fd, None
        if self._name is not None and spool.path is not None:
            name, self._name = self._name, None
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(_discard, fd, spool.path, name)


def _refusal(exc: OSError) -> SinkRefusal:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return SinkRefusal(XferRefuseReason.NO_RESOURCES, f"disk full: {exc.strerror}")
    logger.error("spool file failed: %s", exc)
    return SinkRefusal(XferRefuseReason.NO_RESOURCES, f"spool file failed: {exc.strerror or exc}")


# -- blocking helpers (run in worker threads) ---------------------------------------------------


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _create(directory: Path, name: str, meta: str, initial: list[bytes]) -> int:
    write_private(directory / (name + _META), meta.encode())
    fd = os.open(
        directory / (name + _PART),
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
        FILE_MODE,
    )
    try:
        for piece in initial:
            _write_all(fd, piece)
    except BaseException:
        os.close(fd)
        _remove(directory / (name + _PART), directory / (name + _META))
        raise
    return fd


def _finish_file(fd: int, directory: Path, name: str) -> None:
    os.close(fd)
    os.rename(directory / (name + _PART), directory / (name + _DONE))


def _discard(fd: int | None, directory: Path, name: str) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    _remove(directory / (name + _PART), directory / (name + _DONE), directory / (name + _META))


def _remove(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _read_range(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as file:
        file.seek(offset)
        return file.read(size)


def _leftovers(directory: Path) -> list[tuple[Path, Path]]:
    found = []
    for entry in sorted(directory.iterdir()):
        if entry.suffix in (_PART, _DONE):
            found.append((entry, entry.with_suffix(_META)))
        elif entry.suffix == _META and not (
            entry.with_suffix(_PART).exists() or entry.with_suffix(_DONE).exists()
        ):
            _remove(entry)
    return found
