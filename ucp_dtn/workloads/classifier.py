"""Reading what the audio classifier (``workloads/classifier/``) prints, and scoring it.

The classifier prints one line per window, ``<t_start> <label>`` (perhaps followed by
``name=value`` features), then summary lines starting with ``#``::

    # windows 1199 rate 16000 samples 9600000 window_s 1.000 hop_s 0.500
    # silence 240
    ...

:func:`parse_classifier_output` turns that into a :class:`ClassifierReport`;
:func:`score_labels` compares its labels with a scene's expected ones
(:meth:`~ucp_dtn.workloads.audio.Scene.expected_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .audio import SoundKind

__all__ = [
    "CLASSIFIER_LABELS",
    "ClassifierOutputError",
    "ClassifierReport",
    "LabelScore",
    "parse_classifier_output",
    "score_labels",
]

CLASSIFIER_LABELS = ("silence", "speech", "engine", "alarm", "noise", "unknown")
"""Every label the classifier prints, in the order of its summary."""


class ClassifierOutputError(ValueError):
    """The text is not what the classifier prints (the message says where)."""


@dataclass(frozen=True, slots=True)
class ClassifierReport:
    """The classifier's output, parsed."""

    windows: tuple[tuple[float, str], ...]
    """``(t_start seconds, label)`` of every window, in order."""
    counts: dict[str, int]
    """Windows per label, from the summary (every label of :data:`CLASSIFIER_LABELS`)."""
    rate: int
    """Sample rate the input was read at."""
    samples: int
    """Samples read."""
    window_s: float
    """Window length in seconds."""
    hop_s: float
    """Hop between windows in seconds."""

    @property
    def labels(self) -> list[str]:
        """The label of every window, in order."""
        return [label for _, label in self.windows]


@dataclass(frozen=True, slots=True)
class LabelScore:
    """How many windows got their expected label."""

    matched: int
    """Windows labelled as expected."""
    compared: int
    """Windows with an expected label (windows straddling two segments are not compared)."""
    confusions: dict[tuple[str, str], int]
    """``(expected, got)`` → count, for the windows that did not match."""

    @property
    def accuracy(self) -> float:
        """``matched / compared`` (1.0 when nothing was compared)."""
        return self.matched / self.compared if self.compared else 1.0


def parse_classifier_output(text: str) -> ClassifierReport:
    """Parse the classifier's stdout; :class:`ClassifierOutputError` if it is not well formed."""
    windows: list[tuple[float, str]] = []
    counts: dict[str, int] = {}
    header: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split()
        try:
            if not words:
                raise ValueError("empty line")
            if words[0] == "#":
                if len(words) > 1 and words[1] == "windows":
                    header = dict(zip(words[1::2], words[2::2], strict=True))
                elif len(words) == 3 and words[1] in CLASSIFIER_LABELS:
                    counts[words[1]] = int(words[2])
                else:
                    raise ValueError("unknown summary line")
            elif header or counts:
                raise ValueError("a window line after the summary")
            elif words[1] not in CLASSIFIER_LABELS:
                raise ValueError(f"unknown label {words[1]!r}")
            else:
                windows.append((float(words[0]), words[1]))
        except (ValueError, IndexError) as exc:
            raise ClassifierOutputError(f"line {number}: {exc}: {line[:80]!r}") from None
    try:
        report = ClassifierReport(
            windows=tuple(windows),
            counts=counts,
            rate=int(header["rate"]),
            samples=int(header["samples"]),
            window_s=float(header["window_s"]),
            hop_s=float(header["hop_s"]),
        )
        declared = int(header["windows"])
    except (KeyError, ValueError) as exc:
        raise ClassifierOutputError(f"no complete summary line ({exc})") from None
    if set(counts) != set(CLASSIFIER_LABELS):
        raise ClassifierOutputError(f"the summary counts {sorted(counts)}, not every label")
    if declared != len(windows) or sum(counts.values()) != len(windows):
        raise ClassifierOutputError(
            f"{len(windows)} window lines, but the summary says {declared} windows "
            f"and counts {sum(counts.values())}"
        )
    return report


def score_labels(expected: Sequence[SoundKind | None], got: Sequence[str]) -> LabelScore:
    """Compare labels window by window; windows expected as None are not compared."""
    if len(expected) != len(got):
        raise ValueError(f"{len(expected)} expected labels but {len(got)} windows")
    matched = compared = 0
    confusions: dict[tuple[str, str], int] = {}
    for want, have in zip(expected, got, strict=True):
        if want is None:
            continue
        compared += 1
        if want.value == have:
            matched += 1
        else:
            confusions[want.value, have] = confusions.get((want.value, have), 0) + 1
    return LabelScore(matched, compared, confusions)
