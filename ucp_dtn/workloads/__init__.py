"""Workloads for ucp-dtn: test inputs with known answers for the jobs we ship and benchmark.

* :mod:`~ucp_dtn.workloads.audio` — deterministic test audio (:func:`generate_scene`) with the
  label every analysis window should get, for the audio classifier (``workloads/classifier/``);
* :mod:`~ucp_dtn.workloads.classifier` — reading the classifier's output
  (:func:`parse_classifier_output`) and scoring it against a scene (:func:`score_labels`).

``python -m ucp_dtn.workloads`` writes a scene as raw PCM or WAV. The classifier module itself
(built from ``workloads/classifier/classifier.c`` by ``workloads/classifier/build.sh``) ships in
this package: :func:`classifier_wasm_path`.
"""

from pathlib import Path

from .audio import (
    DEFAULT_HOP_S,
    DEFAULT_RATE,
    DEFAULT_WINDOW_S,
    Scene,
    Segment,
    SoundKind,
    generate_scene,
    wav_header,
)
from .classifier import (
    CLASSIFIER_LABELS,
    ClassifierOutputError,
    ClassifierReport,
    LabelScore,
    parse_classifier_output,
    score_labels,
)

__all__ = [
    "classifier_wasm_path",
    "CLASSIFIER_LABELS",
    "DEFAULT_HOP_S",
    "DEFAULT_RATE",
    "DEFAULT_WINDOW_S",
    "ClassifierOutputError",
    "ClassifierReport",
    "LabelScore",
    "Scene",
    "Segment",
    "SoundKind",
    "generate_scene",
    "parse_classifier_output",
    "score_labels",
    "wav_header",
]


def classifier_wasm_path() -> Path:
    """The audio classifier compiled to wasm32-wasi (committed, shipped as package data)."""
    return Path(__file__).with_name("classifier.wasm")
