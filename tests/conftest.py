"""Shared fixtures: synthesised test audio (never downloaded) and a seeded RNG."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 32000


def tone_burst(seconds: float, sr: int = SR, freq: float = 220.0, amp: float = 0.5, seed: int = 0) -> np.ndarray:
    """A voiced-like signal: a harmonic tone with a little noise (clearly above any silence threshold)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    sig = sum((amp / k) * np.sin(2 * np.pi * freq * k * t) for k in (1, 2, 3))
    return (sig + 0.01 * rng.standard_normal(t.shape)).astype(np.float32)


def silence(seconds: float, sr: int = SR, level: float = 0.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(int(round(seconds * sr)))).astype(np.float32)


def write_audio(path: Path, audio: np.ndarray, sr: int = SR, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sr, **kwargs)
    return path


def espeak(text: str, path: Path, voice: str = "en") -> Path | None:
    """Speak ``text`` into a wav with espeak-ng; ``None`` if espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(autouse=True)
def _restore_logging():
    """Entry points' ``main()`` install logging handlers on the root logger; undo that after each test."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny_pretrained(tmp_path_factory):
    """A tiny random pretrained set in upstream's layout (BERT, HuBERT, SoVITS G/D, GPT), built once per session."""
    from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained

    return make_tiny_pretrained(tmp_path_factory.mktemp("pretrained"))
