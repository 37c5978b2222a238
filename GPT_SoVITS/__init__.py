"""GPT-SoVITS compatible few-shot TTS: the library.

This package never imports Gradio, never reads environment variables and never loads a model at import
time. Front-ends (``app/``, ``tools/``) build on it. The public API is imported lazily, so ``import
GPT_SoVITS`` stays cheap (no torch) until one of these names is used::

    from GPT_SoVITS import TTS, SynthesisOptions, Reference, load_t2s, load_sovits
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "TTS": "GPT_SoVITS.infer.tts",
    "SynthesisOptions": "GPT_SoVITS.infer.options",
    "Reference": "GPT_SoVITS.infer.options",
    "load_t2s": "GPT_SoVITS.models",
    "load_sovits": "GPT_SoVITS.models",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'GPT_SoVITS' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
