"""The text front end every later step calls: text + language code -> phone ids, BERT features, normalised text.

``TextFrontend(bert, version)(text, "auto")`` segments the text by language (:mod:`.lang_segment`), cleans each
segment with its language's cleaner, computes BERT features for Chinese segments (zeros for every other language,
and for all segments when no BERT model is given) and concatenates everything in reading order. A result with fewer
than 6 phones is redone once with a leading ``.``, as upstream does, because the GPT handles very short inputs badly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from GPT_SoVITS.features.bert import BertFeaturizer
from GPT_SoVITS.text.cleaner import clean_text, cleaned_text_to_sequence, supported_languages
from GPT_SoVITS.text.lang_segment import HanDetector, Segment, detect_han, language_codes, segments_for_code

log = logging.getLogger(__name__)

MIN_PHONES = 6
DEFAULT_BERT_SIZE = 1024  # hidden size of chinese-roberta-wwm-ext-large, used for zeros when no BERT is loaded


@dataclass(frozen=True)
class FrontendResult:
    """Output of :class:`TextFrontend`.

    Shapes: ``bert`` is ``(hidden_size, len(phone_ids))`` float32.
    """

    phone_ids: list[int]
    bert: torch.Tensor
    norm_text: str
    phones: list[str]
    segments: tuple[Segment, ...]


class TextFrontend:
    """Language codes -> phones + BERT features for one model version (v1 or any v2-table version)."""

    def __init__(
        self,
        bert: BertFeaturizer | None = None,
        version: str = "v2",
        han_detector: HanDetector | None = detect_han,
    ) -> None:
        self.bert = bert
        self.version = version
        self.han_detector = han_detector
        self.hidden_size = bert.hidden_size if bert is not None else DEFAULT_BERT_SIZE

    def segments(self, text: str, language: str) -> list[Segment]:
        """The language segments ``text`` is read as, for a language code (``auto``, ``zh``, ``all_ja``, ...)."""
        codes = language_codes(self.version)
        if language not in codes:
            raise ValueError(
                f"Language code {language!r} is not available for model version {self.version}; "
                f"use one of: {', '.join(codes)}."
            )
        return segments_for_code(text, language, han=self.han_detector)

    def __call__(self, text: str, language: str) -> FrontendResult:
        """Phone ids, BERT features ``(hidden_size, n_phones)`` and normalised text for ``text``."""
        if not text.strip():
            raise ValueError("The text to read is empty; enter some text (or remove the empty line).")
        result = self._process(text, language)
        if len(result.phone_ids) < MIN_PHONES:
            result = self._process("." + text, language)
        return result

    def _process(self, text: str, language: str) -> FrontendResult:
        segments = self.segments(text, language)
        allowed = supported_languages(self.version)
        phones: list[str] = []
        features: list[torch.Tensor] = []
        norm_parts: list[str] = []
        for segment in segments:
            if segment.language not in allowed:
                raise ValueError(
                    f"Text {segment.text!r} was detected as {segment.language!r}, which model version "
                    f"{self.version} cannot read ({', '.join(allowed)}); choose another language code or model."
                )
            seg_phones, word2ph, norm_text = clean_text(segment.text, segment.language, self.version)
            phones.extend(seg_phones)
            norm_parts.append(norm_text)
            features.append(self._features(segment.language, norm_text, word2ph, len(seg_phones)))
        bert = torch.cat(features, dim=1) if features else self._zeros(0)
        return FrontendResult(
            phone_ids=cleaned_text_to_sequence(phones, self.version),
            bert=bert,
            norm_text="".join(norm_parts),
            phones=phones,
            segments=tuple(segments),
        )

    def _features(self, language: str, norm_text: str, word2ph: list[int] | None, n_phones: int) -> torch.Tensor:
        if language == "zh" and self.bert is not None and word2ph and n_phones:
            return self.bert.phone_level(norm_text, word2ph)
        return self._zeros(n_phones)

    def _zeros(self, n_phones: int) -> torch.Tensor:
        if self.bert is not None:
            return self.bert.zeros(n_phones)
        return torch.zeros(self.hidden_size, n_phones)
