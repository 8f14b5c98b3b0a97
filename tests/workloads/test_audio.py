"""The test-audio generator: seeded scenes, their segments, expected labels, WAV framing; and the
parser of the classifier's output."""

from __future__ import annotations

import io
import wave
from array import array
from pathlib import Path

import pytest

from ucp_dtn.workloads import (
    ClassifierOutputError,
    SoundKind,
    generate_scene,
    parse_classifier_output,
    score_labels,
    wav_header,
)
from ucp_dtn.workloads.audio import main


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    first = generate_scene(7, 12.0)
    assert generate_scene(7, 12.0) == first
    other = generate_scene(8, 12.0)
    assert other.pcm != first.pcm


def test_segments_cover_every_sample_in_whole_seconds() -> None:
    scene = generate_scene(3, 61.25, rate=8000)
    assert scene.samples == 61.25 * 8000 and len(scene.pcm) == 2 * scene.samples
    assert scene.seconds == 61.25
    assert scene.segments[0].start == 0
    for before, after in zip(scene.segments, scene.segments[1:], strict=False):
        assert before.end == after.start
        assert before.length % 8000 == 0 and 2 * 8000 <= before.length <= 8 * 8000
    assert scene.segments[-1].end == scene.samples


def test_scene_of_one_kind_at_the_requested_level() -> None:
    scene = generate_scene(5, 10.0, kinds=[SoundKind.ENGINE], min_segment_s=5, max_segment_s=5)
    assert [(s.kind, s.start, s.length) for s in scene.segments] == [
        (SoundKind.ENGINE, 0, 80_000),
        (SoundKind.ENGINE, 80_000, 80_000),
    ]
    samples = array("h", scene.pcm)
    for segment in scene.segments:
        peak = max(abs(v) for v in samples[segment.start : segment.end])
        # the hum's peak is its level (+ the noise floor of at most 32 LSB)
        assert abs(peak - 32767 * 10 ** (segment.level_dbfs / 20)) <= 34


def test_silence_is_quiet_and_every_kind_appears_in_a_long_scene() -> None:
    scene = generate_scene(1, 120.0)
    assert {s.kind for s in scene.segments} == set(SoundKind)
    samples = array("h", scene.pcm)
    for segment in scene.segments:
        if segment.kind is SoundKind.SILENCE:
            assert max(abs(v) for v in samples[segment.start : segment.end]) <= 8


def test_expected_labels_mark_windows_straddling_two_segments() -> None:
    scene = generate_scene(2, 9.0, min_segment_s=3, max_segment_s=3)
    kinds = [s.kind for s in scene.segments]
    labels = scene.expected_labels(window_s=1.0, hop_s=0.5)
    # windows start every 0.5 s; the last complete one starts at 8.0 s
    assert len(labels) == 17
    assert labels == [
        *[kinds[0]] * 5, None,
        *[kinds[1]] * 5, None,
        *[kinds[2]] * 5,
    ]  # fmt: skip
    assert scene.expected_labels(window_s=3.0, hop_s=3.0) == kinds
    assert scene.expected_labels(window_s=10.0, hop_s=1.0) == []


def test_wav_framing_reads_back_with_the_stdlib_wave_module() -> None:
    scene = generate_scene(4, 2.5, rate=11025)
    with wave.open(io.BytesIO(scene.wav())) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (
            1,
            2,
            11025,
        )
        assert reader.getnframes() == scene.samples
        assert reader.readframes(scene.samples) == scene.pcm
    assert len(wav_header(0, 16000)) == 44


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"seconds": -1.0}, "seconds"),
        ({"rate": 1000}, "rate"),
        ({"min_segment_s": 3, "max_segment_s": 2}, "segment"),
        ({"kinds": []}, "kinds"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], match: str) -> None:
    options = {"seconds": 5.0, **arguments}
    seconds = options.pop("seconds")
    with pytest.raises(ValueError, match=match):
        generate_scene(1, seconds, **options)  # type: ignore[arg-type]


SAMPLE_OUTPUT = """\
0.000 speech
0.500 speech
1.000 engine
# windows 3 rate 16000 samples 32000 window_s 1.000 hop_s 0.500
# silence 0
# speech 2
# engine 1
# alarm 0
# noise 0
# unknown 0
"""


def test_parse_and_score_classifier_output() -> None:
    report = parse_classifier_output(SAMPLE_OUTPUT)
    assert report.windows == ((0.0, "speech"), (0.5, "speech"), (1.0, "engine"))
    assert report.labels == ["speech", "speech", "engine"]
    assert (report.rate, report.samples, report.window_s, report.hop_s) == (16000, 32000, 1, 0.5)
    assert report.counts["speech"] == 2 and report.counts["unknown"] == 0
    score = score_labels([SoundKind.SPEECH, None, SoundKind.ALARM], report.labels)
    assert (score.matched, score.compared, score.accuracy) == (1, 2, 0.5)
    assert score.confusions == {("alarm", "engine"): 1}
    assert score_labels([None], ["noise"]).accuracy == 1.0
    with pytest.raises(ValueError, match="2 expected labels but 3 windows"):
        score_labels([None, None], report.labels)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no complete summary"),
        (SAMPLE_OUTPUT.replace("1.000 engine", "1.000 tractor"), "unknown label 'tractor'"),
        (SAMPLE_OUTPUT.replace("0.500 speech", "half speech"), "line 2"),
        (SAMPLE_OUTPUT.replace("# windows 3", "# windows 4"), "3 window lines"),
        (SAMPLE_OUTPUT.replace("# noise 0\n", ""), "not every label"),
        (SAMPLE_OUTPUT + "2.000 noise\n", "after the summary"),
        (SAMPLE_OUTPUT + "# bogus\n", "unknown summary line"),
        (SAMPLE_OUTPUT.replace("rate 16000", "rate"), "line 4"),
    ],
)
def test_malformed_classifier_output_is_refused(text: str, match: str) -> None:
    with pytest.raises(ClassifierOutputError, match=match):
        parse_classifier_output(text)


def test_command_line_writes_wav_and_expected_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio, labels = tmp_path / "scene.wav", tmp_path / "labels.txt"
    status = main([str(audio), "--seed", "6", "--seconds", "4.5", "--wav", "--labels", str(labels)])
    assert status == 0
    scene = generate_scene(6, 4.5)
    assert audio.read_bytes() == scene.wav()
    expected = [label.value if label else "mixed" for label in scene.expected_labels()]
    assert labels.read_text().splitlines() == [
        f"{0.5 * n:.3f} {label}" for n, label in enumerate(expected)
    ]
    segments = capsys.readouterr().err.splitlines()
    assert len(segments) == len(scene.segments) and scene.segments[0].kind.value in segments[0]
    with pytest.raises(SystemExit):
        main([str(audio), "--seconds", "-3"])
    assert "seconds must not be negative" in capsys.readouterr().err
