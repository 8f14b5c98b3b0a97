"""Differential test: Wireshark's ``tcpcl`` dissector reads a session of our trio adapter.

Two links talk over an in-memory stream pair on trio's virtual clock; the active side's stream
records every chunk each way, in order. The chunks become a synthetic pcap (raw IPv4, a TCP
connection with a handshake, proper sequence and acknowledgement numbers, a FIN exchange), which
``tshark`` dissects as TCPCLv4 (``-d tcp.port==PORT,tcpcl``). The session carries real BPv7
bundles both ways, single-segment and multi-segment (with a Transfer Length extension), a
refused transfer, keepalives, and a clean SESS_TERM exchange. Wireshark must report no
malformed packet and no expert error, reassemble every transfer, and recognise every bundle
inside as BPv7 (with valid CRCs).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import trio
import trio.testing

from bpv7 import Bundle, CreationTimestamp
from convergence.tcpcl import XferRefuseReason
from convergence.tcpcl.link import LinkConfig, TcpclLink, TransferOutcome
from convergence.tcpcl.listener import open_stream_link

from .link_fixtures import RecordingStream

TSHARK = shutil.which("tshark")
pytestmark = pytest.mark.skipif(TSHARK is None, reason="tshark (Wireshark) is not installed")

PORT = 40556  # not TCPCL's registered 4556: the dissector must be mapped with -d
CLIENT = (b"\x0a\x00\x00\x01", 51000)
SERVER = (b"\x0a\x00\x00\x02", PORT)
_ERROR_SEVERITY = 0x00800000  # Wireshark's PI_ERROR
_WARNING_SEVERITY = 0x00600000  # PI_WARN


def _bundle(source: str, destination: str, payload: bytes, sequence: int) -> bytes:
    return Bundle.build(
        source=source,
        destination=destination,
        payload=payload,
        creation=CreationTimestamp(800_000_000_000, sequence),
        lifetime_ms=3_600_000,
    ).encode()


# -- pcap ----------------------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


_SYN, _ACK, _PSH, _FIN = 0x02, 0x10, 0x08, 0x01


def _packet(
    source: tuple[bytes, int],
    destination: tuple[bytes, int],
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    options: bytes = b"",
) -> bytes:
    """An IPv4 packet carrying one TCP segment, checksums included."""
    offset = (20 + len(options)) // 4
    header = struct.pack(
        "!HHIIBBHHH",
        source[1],
        destination[1],
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        offset << 4,
        flags,
        0xFFFF,  # window (scaled by the option in the handshake)
        0,
        0,
    )
    segment = header + options + payload
    pseudo = source[0] + destination[0] + struct.pack("!BBH", 0, 6, len(segment))
    segment = segment[:16] + struct.pack("!H", _checksum(pseudo + segment)) + segment[18:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), 0, 0x4000, 64, 6, 0, source[0], destination[0]
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + segment


def write_pcap(path: Path, log: list[tuple[bool, bytes]], *, mss: int = 16000) -> int:
    """Write the chunks of ``log`` (``(from_client, data)`` in order) as one TCP connection;
    return the number of packets."""
    packets: list[bytes] = []
    isn = {True: 1_000_000, False: 5_000_000}
    sent = {True: 0, False: 0}
    ends = {True: CLIENT, False: SERVER}
    # MSS 65495 (loopback), NOP, window scale 8 (a 16 MiB window).
    options = struct.pack("!BBH", 2, 4, 65495) + b"\x01\x03\x03\x08"
    packets.append(_packet(CLIENT, SERVER, isn[True], 0, _SYN, options=options))
    packets.append(_packet(SERVER, CLIENT, isn[False], isn[True] + 1, _SYN | _ACK, options=options))
    packets.append(_packet(CLIENT, SERVER, isn[True] + 1, isn[False] + 1, _ACK))

    def seq(side: bool) -> int:
        return isn[side] + 1 + sent[side]

    for from_client, data in log:
        for start in range(0, len(data), mss):
            piece = data[start : start + mss]
            packets.append(
                _packet(
                    ends[from_client],
                    ends[not from_client],
                    seq(from_client),
                    seq(not from_client),
                    _ACK | _PSH,
                    piece,
                )
            )
            sent[from_client] += len(piece)
            # The other side acknowledges at once.
            packets.append(
                _packet(
                    ends[not from_client],
                    ends[from_client],
                    seq(not from_client),
                    seq(from_client),
                    _ACK,
                )
            )
    for side in (True, False):
        packets.append(_packet(ends[side], ends[not side], seq(side), seq(not side), _FIN | _ACK))
        sent[side] += 1
    packets.append(_packet(CLIENT, SERVER, seq(True), seq(False), _ACK))
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))  # raw IP
        for index, packet in enumerate(packets):
            seconds, micros = divmod(1_000_000_000 + index * 1000, 1_000_000)
            out.write(struct.pack("<IIII", seconds, micros, len(packet), len(packet)))
            out.write(packet)
    return len(packets)


# -- the session ---------------------------------------------------------------------------------


class _Log(RecordingStream):
    """Records the chunks in the order they crossed, with their direction."""

    def __init__(self, inner: trio.abc.HalfCloseableStream) -> None:
        super().__init__(inner)
        self.log: list[tuple[bool, bytes]] = []

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await super().send_all(data)
        self.log.append((True, bytes(data)))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await super().receive_some(max_bytes)
        if data:
            self.log.append((False, data))
        return data


async def _record_session() -> tuple[list[tuple[bool, bytes]], list[bytes]]:
    left, right = trio.testing.memory_stream_pair()
    recorder = _Log(left)
    bundles = [
        _bundle("dtn://a/app", "dtn://b/svc", b"hello", 1),
        _bundle("ipn:7.1", "ipn:9.2", bytes(range(256)) * 40, 2),  # several segments
        _bundle("dtn://a/app", "dtn://b/svc", b"refuse me", 3),
    ]
    reply = _bundle("dtn://b/svc", "dtn://a/app", b"world" * 100, 4)
    client_config = LinkConfig("dtn://a/", keepalive_s=5, max_segment_size=4000)
    server_config = LinkConfig("dtn://b/", keepalive_s=5)
    received: list[bytes] = []

    async def serve() -> None:
        async with open_stream_link(right, server_config, active=False) as link:
            async for transfer in link:
                if transfer.data == bundles[2]:
                    await transfer.refuse(XferRefuseReason.NOT_ACCEPTABLE)
                    continue
                received.append(transfer.data)
                await transfer.accept()
                if len(received) == 2:
                    link.start_send(reply)

    async def client(link: TcpclLink) -> None:
        results = [await link.send(b) for b in bundles]
        assert [r.outcome for r in results] == [TransferOutcome.ACKED] * 2 + [
            TransferOutcome.REFUSED
        ]
        transfer = await link.receive()
        assert transfer.data == reply
        await transfer.accept()
        await trio.sleep(12)  # idle: keepalives both ways
        assert link.statistics().keepalives_sent >= 2

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        async with open_stream_link(recorder, client_config, active=True) as link:
            await client(link)
    assert received == bundles[:2]
    return recorder.log, [*bundles[:2], reply]


def _tshark(pcap: Path, *fields: str) -> list[list[str]]:
    assert TSHARK is not None
    # Two passes (-2), as the GUI does: the tcpcl dissector relates segments, acknowledgements
    # and refusals across frames, and in one pass it flags a transfer's segments as "missing
    # END" while it has not yet seen the END segment.
    command = [TSHARK, "-2", "-n", "-r", str(pcap), "-d", f"tcp.port=={PORT},tcpcl"]
    command += ["-T", "fields"]
    command += ["-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in result.stdout.splitlines()]


async def test_tshark_dissects_our_session(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    log, bundles = await _record_session()
    pcap = tmp_path / "tcpcl.pcap"
    assert write_pcap(pcap, log) > 10
    rows = _tshark(
        pcap,
        "frame.number",
        "_ws.malformed",
        "_ws.expert.severity",
        "_ws.expert.message",
        "tcpcl.v4.mhdr.type",
        "tcpcl.v4.xfer_id",
        "tcpcl.xfer.reassembled.length",
        "bpv7.primary.src_uri",
        "bpv7.block_failed_crc",
        "tcpcl.v4.xferext.transfer_length.total_len",
        "bpv7.crc_status",
    )
    problems = [
        row
        for row in rows
        if row[1]
        or any(int(severity, 0) >= _ERROR_SEVERITY for severity in row[2].split("|") if severity)
        or row[8]
    ]
    assert problems == []
    # Warnings: only that the bundle payloads (our test bytes) have no dissector.
    warnings = {
        message
        for row in rows
        for severity, message in zip(row[2].split("|"), row[3].split("|"), strict=True)
        if severity and int(severity, 0) >= _WARNING_SEVERITY
    }
    assert warnings <= {"Unknown type code"}
    crc_statuses = {status for row in rows for status in row[10].split("|") if status}
    assert crc_statuses == {"1"}  # every primary and canonical block CRC "Good"
    types = [int(t, 0) for row in rows for t in row[4].split("|") if t]
    # Message type codes (RFC 9174 Table 2): every kind we exchanged was recognised.
    for code, name in [
        (7, "SESS_INIT"),
        (1, "XFER_SEGMENT"),
        (2, "XFER_ACK"),
        (3, "XFER_REFUSE"),
        (4, "KEEPALIVE"),
        (5, "SESS_TERM"),
    ]:
        assert code in types, f"no {name} dissected"
    assert types.count(7) == 2 and types.count(5) == 2
    # The multi-segment transfer was reassembled from its segments, with its announced length.
    reassembled = {int(n) for row in rows for n in row[6].split("|") if n}
    announced = {int(n) for row in rows for n in row[9].split("|") if n}
    assert reassembled == announced == {len(bundles[1])}
    # Every transfer (the refused one too) was recognised as a BPv7 bundle, once.
    sources = [s for row in rows for s in row[7].split("|") if s]
    assert sorted(sources) == sorted(["dtn://a/app", "ipn:7.1", "dtn://a/app", "dtn://b/svc"])


def test_pcap_writer_numbers_tcp_correctly(tmp_path: Path) -> None:
    """The synthetic capture alone: tshark sees one clean TCP stream with our bytes in it."""
    pcap = tmp_path / "plain.pcap"
    log = [(True, b"x" * 40000), (False, b"y" * 10), (True, b"z")]
    write_pcap(pcap, log)
    rows = _tshark(pcap, "tcp.stream", "tcp.len", "tcp.analysis.flags", "_ws.expert.severity")
    assert {row[0] for row in rows} == {"0"}
    assert sum(int(row[1]) for row in rows) == 40011
    assert [row for row in rows if row[2]] == []
