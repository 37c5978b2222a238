"""Inference: the :class:`TTS` engine and its request types (``python -m GPT_SoVITS.infer`` is the CLI)."""

from __future__ import annotations

from GPT_SoVITS.infer.components import ModelMismatchError, ModelPair, TextFeatures
from GPT_SoVITS.infer.options import InvalidOptionError, Reference, SynthesisOptions, supported_languages
from GPT_SoVITS.infer.reference import ReferenceAudioError
from GPT_SoVITS.infer.tts import (
    TTS,
    CancelCheck,
    Cancelled,
    EmptyTextError,
    SemanticSentence,
    SentenceReport,
    SynthesisResult,
    token_count_problem,
)

__all__ = [
    "TTS",
    "CancelCheck",
    "Cancelled",
    "EmptyTextError",
    "InvalidOptionError",
    "ModelMismatchError",
    "ModelPair",
    "Reference",
    "ReferenceAudioError",
    "SemanticSentence",
    "SentenceReport",
    "SynthesisOptions",
    "SynthesisResult",
    "TextFeatures",
    "supported_languages",
    "token_count_problem",
]
