"""Deterministic test audio with known labels, for the audio-classifier workload.

:func:`generate_scene` builds a recording from a seed: a sequence of segments of whole seconds
(2 to 8 s), each one kind of sound — silence, speech-like babble, an engine hum, an alarm (steady,
two-tone or swept) or broadband noise (water, rain) — at a random level, over a faint noise
floor. The result (:class:`Scene`) holds the 16-bit little-endian mono PCM, the segments, and
can say which label every analysis window should get (:meth:`Scene.expected_labels`): the kind
of the one segment covering the window, or ``None`` for a window that straddles two segments.

Only the standard library is used (no numpy): waveforms are one-period wavetables read at a
phase accumulated with :func:`itertools.accumulate`, noise comes from ``Random.randbytes``, so a
10-minute scene at 16 kHz (19 MB) takes a few seconds. Everything derives from ``random.Random``
methods whose output Python keeps stable across versions (``random``, ``randrange``,
``randbytes``, ``choice``), so a seed gives the same segments everywhere, and the same bytes
wherever libm's ``sin`` and ``exp`` round alike (every common platform).

Command line (``python -m ucp_dtn.workloads``) writes a scene as raw PCM or WAV, and the
expected labels beside it.
"""

from __future__ import annotations

import argparse
import enum
import itertools
import math
import random
import struct
import sys
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

__all__ = [
    "DEFAULT_HOP_S",
    "DEFAULT_RATE",
    "DEFAULT_WINDOW_S",
    "Scene",
    "Segment",
    "SoundKind",
    "generate_scene",
    "main",
    "wav_header",
]

DEFAULT_RATE = 16_000
"""Samples per second of generated scenes (and the classifier's default for raw PCM)."""
DEFAULT_WINDOW_S = 1.0
"""The classifier's default analysis window, in seconds."""
DEFAULT_HOP_S = 0.5
"""The classifier's default hop between windows, in seconds."""

_TABLE_BITS = 12
_TABLE = 1 << _TABLE_BITS
_MASK = _TABLE - 1
_FULL_SCALE = 32767
_FLOOR_SHIFT = 10
"""Noise floor under every sound: uniform full-scale noise shifted right (about -66 dBFS)."""
_SILENCE_SHIFT = 12
"""Silence: uniform noise of +-8 LSB (about -78 dBFS)."""


class SoundKind(enum.StrEnum):
    """What a segment sounds like; the values are the classifier's labels."""

    SILENCE = "silence"
    """Nothing but a faint noise floor."""
    SPEECH = "speech"
    """Babble: a harmonic voice with formants, in syllables of 180 to 330 ms, gliding pitch."""
    ENGINE = "engine"
    """A steady low hum: 40 to 110 Hz and its harmonics."""
    ALARM = "alarm"
    """A high tone (1 to 3.5 kHz): steady, two-tone (siren) or swept (chirp)."""
    NOISE = "noise"
    """Broadband noise: running water, rain."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of a scene holding one kind of sound."""

    kind: SoundKind
    """What it sounds like (the label a window inside it should get)."""
    start: int
    """First sample."""
    length: int
    """Number of samples."""
    level_dbfs: float
    """Peak level of the sound relative to full scale (before the noise floor is added)."""
    detail: str
    """The sound's parameters, for people (``f0=143Hz rate=4.2/s``...)."""

    @property
    def end(self) -> int:
        """One past the last sample."""
        return self.start + self.length


@dataclass(frozen=True, slots=True)
class Scene:
    """A generated recording and what is in it."""

    rate: int
    """Samples per second."""
    segments: tuple[Segment, ...]
    """The segments, in order, covering every sample."""
    pcm: bytes
    """The samples: signed 16-bit little-endian mono PCM."""

    @property
    def samples(self) -> int:
        """Number of samples."""
        return len(self.pcm) // 2

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples / self.rate

    def wav(self) -> bytes:
        """The recording as a WAV file (44-byte header, then :attr:`pcm`)."""
        return wav_header(self.samples, self.rate) + self.pcm

    def expected_labels(
        self, window_s: float = DEFAULT_WINDOW_S, hop_s: float = DEFAULT_HOP_S
    ) -> list[SoundKind | None]:
        """The label every complete window should get: the kind of the segment covering it
        whole, or None where it straddles two segments (the classifier's windows: ``window_s``
        long, one every ``hop_s``, only complete ones)."""
        window = round(window_s * self.rate)
        hop = round(hop_s * self.rate)
        if window <= 0 or hop <= 0:
            raise ValueError("window and hop must be positive")
        count = (self.samples - window) // hop + 1 if self.samples >= window else 0
        labels: list[SoundKind | None] = []
        index = 0
        for number in range(count):
            start = number * hop
            while self.segments[index].end <= start:
                index += 1
            segment = self.segments[index]
            labels.append(segment.kind if start + window <= segment.end else None)
        return labels


def wav_header(samples: int, rate: int) -> bytes:
    """The 44-byte RIFF/WAVE header of ``samples`` 16-bit mono PCM samples at ``rate`` Hz."""
    data = 2 * samples
    if data + 36 > 0xFFFFFFFF:
        raise ValueError(f"{samples} samples do not fit in a WAV file")
    return b"RIFF" + struct.pack(
        "<I4s4sIHHIIHH4sI", 36 + data, b"WAVE", b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16,
        b"data", data,
    )  # fmt: skip


def generate_scene(
    seed: int,
    seconds: float,
    *,
    rate: int = DEFAULT_RATE,
    kinds: Sequence[SoundKind] = tuple(SoundKind),
    min_segment_s: int = 2,
    max_segment_s: int = 8,
) -> Scene:
    """A scene of ``seconds`` seconds (rounded down to whole samples) at ``rate`` Hz: segments of
    ``min_segment_s``..``max_segment_s`` whole seconds (the last one cut short), each of a kind
    drawn from ``kinds``; the same arguments always give the same scene."""
    if rate < 4000:
        raise ValueError(f"rate must be >= 4000 Hz, not {rate}")
    if not 1 <= min_segment_s <= max_segment_s:
        raise ValueError("segment lengths must satisfy 1 <= min_segment_s <= max_segment_s")
    if not kinds:
        raise ValueError("kinds must name at least one SoundKind")
    total = int(seconds * rate)
    if total < 0:
        raise ValueError(f"seconds must not be negative, not {seconds}")
    rng = random.Random(seed)
    segments: list[Segment] = []
    parts: list[array[int]] = []
    position = 0
    while position < total:
        kind = SoundKind(rng.choice(list(kinds)))
        length = min(rng.randrange(min_segment_s, max_segment_s + 1) * rate, total - position)
        level = -26.0 + 20.0 * rng.random()
        samples, detail = _SYNTHS[kind](rng, length, rate, level)
        segments.append(Segment(kind, position, length, level, detail))
        parts.append(samples)
        position += length
    pcm = array("h")
    for part in parts:
        pcm.extend(part)
    if sys.byteorder == "big":
        pcm.byteswap()
    return Scene(rate, tuple(segments), pcm.tobytes())


# ------------------------------------------------------------------------------------ synthesis


def _noise(rng: random.Random, length: int, shift: int) -> list[int]:
    """Uniform noise: full-scale 16-bit values shifted right by ``shift``."""
    raw = array("h", rng.randbytes(2 * length))
    return [value >> shift for value in raw]


def _mix(signal: Sequence[float], rng: random.Random, shift: int = _FLOOR_SHIFT) -> array[int]:
    """``signal`` (already in LSB units) rounded, plus the noise floor, clipped to 16 bits."""
    floor = _noise(rng, len(signal), shift)
    return array(
        "h",
        [
            max(-_FULL_SCALE, min(_FULL_SCALE, round(value) + extra))
            for value, extra in zip(signal, floor, strict=True)
        ],
    )


def _wavetable(harmonics: Sequence[tuple[int, float, float]]) -> list[float]:
    """One period of a sum of ``(harmonic, amplitude, phase)``, normalised to a peak of 1."""
    table = [
        sum(
            amplitude * math.sin(2 * math.pi * harmonic * i / _TABLE + phase)
            for harmonic, amplitude, phase in harmonics
        )
        for i in range(_TABLE)
    ]
    peak = max(abs(value) for value in table) or 1.0
    return [value / peak for value in table]


_SINE = _wavetable([(1, 1.0, 0.0)])


def _read_table(table: list[float], phases: Sequence[float], amplitude: float) -> list[float]:
    """``amplitude * table`` at each phase (in cycles)."""
    scaled = [amplitude * value for value in table]
    return [scaled[int(phase * _TABLE) & _MASK] for phase in phases]


def _phases(frequencies: Iterable[float], rate: int, start: float = 0.0) -> list[float]:
    """Phase (in cycles) of an oscillator following ``frequencies`` (Hz per sample)."""
    step = 1.0 / rate
    return list(itertools.accumulate((f * step for f in frequencies), initial=start))[:-1]


def _amplitude(level_dbfs: float) -> float:
    return _FULL_SCALE * math.pow(10.0, level_dbfs / 20.0)


_Synth: TypeAlias = "tuple[array[int], str]"


def _silence(rng: random.Random, length: int, rate: int, level: float) -> _Synth:
    return array("h", _noise(rng, length, _SILENCE_SHIFT)), "floor only"


def _speech(rng: random.Random, length: int, rate: int, level: float) -> _Synth:
    f0 = 95.0 + 135.0 * rng.random()
    formants = (
        (300.0 + 500.0 * rng.random(), 120.0),
        (900.0 + 1300.0 * rng.random(), 180.0),
        (2300.0 + 800.0 * rng.random(), 250.0),
    )
    harmonics = []
    for k in range(1, int(3800 // f0) + 1):
        hz = k * f0
        gain = sum(math.exp(-(((hz - centre) / width) ** 2) / 2) for centre, width in formants)
        harmonics.append((k, (0.15 + gain) / math.sqrt(k), 2 * math.pi * rng.random()))
    table = _wavetable(harmonics)
    # Pitch glides +-6% at 0.9 Hz; syllables at 3-5.5 per second, each with its own loudness.
    glide = 2 * math.pi * 0.9 / rate
    frequencies = [f0 * (1.0 + 0.06 * math.sin(glide * i)) for i in range(length)]
    voice = _read_table(table, _phases(frequencies, rate), _amplitude(level))
    syllable_rate = 3.0 + 2.5 * rng.random()
    syllable = rate / syllable_rate
    gains = [0.4 + 0.6 * rng.random() for _ in range(int(length / syllable) + 2)]
    omega = math.pi / syllable
    envelope = [gains[int(i / syllable)] * math.sin(omega * i) ** 2 for i in range(length)]
    signal = [v * e for v, e in zip(voice, envelope, strict=True)]
    return _mix(signal, rng), f"f0={f0:.0f}Hz syllables={syllable_rate:.1f}/s"


def _engine(rng: random.Random, length: int, rate: int, level: float) -> _Synth:
    f0 = 40.0 + 70.0 * rng.random()
    table = _wavetable(
        [(k, 1.0 / k**1.2, 2 * math.pi * rng.random()) for k in range(1, 9)],
    )
    phases = _phases(itertools.repeat(f0, length), rate)
    return _mix(_read_table(table, phases, _amplitude(level)), rng), f"f0={f0:.0f}Hz"


def _alarm(rng: random.Random, length: int, rate: int, level: float) -> _Synth:
    style = rng.choice(("steady", "two-tone", "sweep"))
    low = 1000.0 + 1500.0 * rng.random()
    high = low + 400.0 + 600.0 * rng.random()
    period = round(rate * (0.5 + rng.random()))  # samples per cycle of the pattern
    frequencies: Sequence[float]
    if style == "steady":
        frequencies = list(itertools.repeat(low, length))
        detail = f"steady {low:.0f}Hz"
    elif style == "two-tone":
        half = period // 2
        frequencies = [low if (i // half) % 2 == 0 else high for i in range(length)]
        detail = f"two-tone {low:.0f}/{high:.0f}Hz every {half / rate:.2f}s"
    else:
        span = high - low
        frequencies = [
            low + span * (1.0 - abs(2.0 * (i % period) / period - 1.0)) for i in range(length)
        ]
        detail = f"sweep {low:.0f}-{high:.0f}Hz in {period / rate:.2f}s"
    phases = _phases(frequencies, rate)
    return _mix(_read_table(_SINE, phases, _amplitude(level)), rng), detail


def _broadband(rng: random.Random, length: int, rate: int, level: float) -> _Synth:
    # Uniform noise at the level rounded to a power of two: the shift sets the loudness.
    shift = max(1, min(6, round(-level / 6.02)))
    samples = array("h", _noise(rng, length, shift))
    return samples, f"white noise >>{shift}"


_SYNTHS = {
    SoundKind.SILENCE: _silence,
    SoundKind.SPEECH: _speech,
    SoundKind.ENGINE: _engine,
    SoundKind.ALARM: _alarm,
    SoundKind.NOISE: _broadband,
}


# ------------------------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    """``python -m ucp_dtn.workloads``: write a scene and its expected labels."""
    parser = argparse.ArgumentParser(
        prog="python -m ucp_dtn.workloads",
        description="Write deterministic test audio with known labels (16-bit mono PCM).",
    )
    parser.add_argument("output", type=Path, help="audio file to write ('-': stdout)")
    parser.add_argument("--seed", type=int, default=1, help="scene seed (default 1)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration (default 60)")
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE, help="sample rate in Hz")
    parser.add_argument("--wav", action="store_true", help="write a WAV file, not raw PCM")
    parser.add_argument(
        "--labels", type=Path, help="also write the expected label per window ('t label' lines)"
    )
    args = parser.parse_args(argv)
    try:
        scene = generate_scene(args.seed, args.seconds, rate=args.rate)
    except ValueError as exc:
        parser.error(str(exc))
    data = scene.wav() if args.wav else scene.pcm
    if str(args.output) == "-":
        sys.stdout.buffer.write(data)
    else:
        args.output.write_bytes(data)
    if args.labels is not None:
        lines = [
            f"{number * DEFAULT_HOP_S:.3f} {label.value if label else 'mixed'}\n"
            for number, label in enumerate(scene.expected_labels())
        ]
        args.labels.write_text("".join(lines))
    for segment in scene.segments:
        sys.stderr.write(
            f"{segment.start / scene.rate:8.3f} {segment.length / scene.rate:5.2f}s "
            f"{segment.kind.value:8} {segment.level_dbfs:6.1f} dBFS  {segment.detail}\n"
        )
    return 0
