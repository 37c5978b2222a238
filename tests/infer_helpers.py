"""Tiny random models and inputs for the inference tests (engine, CLI, API, WebUI).

The models are the real classes with small widths; the SoVITS keeps hop 640 so audio lengths are real
(1280 samples per semantic token). Weight files are written with the project's release writers, so the
engines under test go through the real loading code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from GPT_SoVITS.checkpoints import save_gpt_weights, save_sovits_weights
from GPT_SoVITS.infer.components import ModelPair, TextFeatures
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.text.symbols import symbols
from tests.conftest import silence, tone_burst, write_audio

BERT_DIM = 8
SSL_DIM = 16
SV_DIM = 24  # speaker-embedding width of the tiny Pro models (the real one is 20480)


def tiny_t2s_config(version: str = "v2") -> T2SConfig:
    return T2SConfig(phoneme_vocab_size=512 if version == "v1" else 732, embedding_dim=16, hidden_dim=16, head=2,
                     linear_units=32, n_layer=2, bert_dim=BERT_DIM)


def tiny_sovits_config(version: str = "v2") -> SoVITSConfig:
    """Tiny widths for any SoVITS version of the VITS family (Pro versions: a 20-wide style vector, SV_DIM input)."""
    return SoVITSConfig.for_version(
        version, inter_channels=8, hidden_channels=8, filter_channels=16, n_heads=2, n_layers=2,
        resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),), upsample_rates=(10, 8, 8),
        upsample_initial_channel=16, upsample_kernel_sizes=(20, 16, 16), mrte_hidden_channels=16,
        gin_channels=20 if version.startswith("v2Pro") else 16, style_hidden_channels=8, ssl_dim=SSL_DIM,
        codebook_size=1024, posterior_layers=1, flow_layers=1, n_flows=1, filter_length=1024, sv_dim=SV_DIM)


def tiny_models(version: str = "v2", seed: int = 0, fold: bool = True) -> tuple[Text2SemanticDecoder,
                                                                              SynthesizerTrn]:
    """Random tiny models; ``fold=False`` keeps weight norm (the layout weight files store)."""
    torch.manual_seed(seed)
    t2s = Text2SemanticDecoder(tiny_t2s_config(version)).eval()
    sovits = SynthesizerTrn(tiny_sovits_config(version), with_posterior=False)
    return t2s, (sovits.prepare_for_inference() if fold else sovits.eval())


def tiny_pair(version: str = "v2", seed: int = 0) -> ModelPair:
    t2s, sovits = tiny_models(version, seed)
    return ModelPair(t2s, sovits)


def save_tiny_weights(folder: Path, version: str = "v2", seed: int = 0, name: str = "tiny") -> tuple[Path, Path]:
    """Write a GPT .ckpt and a SoVITS .pth release file of the tiny models; returns their paths."""
    t2s, sovits = tiny_models(version, seed, fold=False)
    t2s_cfg, s_cfg = t2s.cfg, sovits.cfg
    gpt_config = t2s_cfg.to_upstream()
    gpt_config["model"]["bert_dim"] = t2s_cfg.bert_dim  # tiny-only width, read back by T2SConfig.from_upstream
    gpt = save_gpt_weights(folder / f"{name}-{version}-e1.ckpt", t2s.state_dict(), gpt_config, epoch=1)
    model_section = {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(s_cfg).items()
                     if k not in ("filter_length", "hop_length", "segment_size")}
    model_section["resblock_dilation_sizes"] = [list(d) for d in s_cfg.resblock_dilation_sizes]
    sovits_config = {"model": model_section, "data": {"filter_length": s_cfg.filter_length,
                                                      "hop_length": s_cfg.hop_length}, "version": version}
    sov = save_sovits_weights(folder / f"{name}-{version}_e1_s1.pth", sovits.state_dict(), sovits_config, 1, 1,
                              version)
    return gpt, sov


class CharFeaturizer:
    """A small deterministic text featurizer: one phone per word character (ids from the real table)."""

    def __init__(self, bert_dim: int = BERT_DIM) -> None:
        self.bert_dim = bert_dim
        self.calls = 0

    def __call__(self, text: str, lang: str, version: str) -> TextFeatures:
        self.calls += 1
        table = symbols(version)
        phones = [(ord(ch) % (len(table) - 1)) + 1 for ch in text if ch.isalnum()]
        bert = torch.zeros(self.bert_dim, len(phones))
        return TextFeatures(phones, bert, text)


class ToySpeaker:
    """A deterministic stand-in for the speaker-verification model: 32 kHz wave statistics → [1, SV_DIM]."""

    def __init__(self, dim: int = SV_DIM) -> None:
        self.proj = torch.randn(dim, 4, generator=torch.Generator().manual_seed(11))
        self.calls = 0

    def __call__(self, wav32k: np.ndarray) -> torch.Tensor:
        self.calls += 1
        x = torch.as_tensor(wav32k, dtype=torch.float32)
        stats = torch.stack([x.mean(), x.std(), x.abs().max(), (x[1:] * x[:-1]).mean()])
        return (self.proj @ stats).unsqueeze(0)


class ToySSL:
    """A deterministic stand-in for HuBERT: frame energies projected to ``dim`` channels at 50 Hz."""

    def __init__(self, dim: int = SSL_DIM) -> None:
        self.proj = torch.randn(dim, 4, generator=torch.Generator().manual_seed(7))
        self.calls = 0

    def __call__(self, wav16k: np.ndarray) -> torch.Tensor:
        self.calls += 1
        frames = len(wav16k) // 320
        x = torch.as_tensor(wav16k[: frames * 320], dtype=torch.float32).view(frames, 320)
        stats = torch.stack([x.mean(1), x.std(1), x.abs().max(1).values, (x[:, 1:] * x[:, :-1]).mean(1)], 1)
        return (self.proj @ stats.T).unsqueeze(0)


def reference_wav(path: Path, seconds: float = 4.0, freq: float = 180.0) -> Path:
    audio = np.concatenate([tone_burst(seconds * 0.45, freq=freq), silence(seconds * 0.1),
                            tone_burst(seconds * 0.45, freq=freq * 1.3)])
    return write_audio(path, audio)
