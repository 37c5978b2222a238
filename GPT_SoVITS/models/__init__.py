"""Model definitions (``nn.Module``s only) and small loaders that build them from weight files."""

from __future__ import annotations

from pathlib import Path

import torch

from GPT_SoVITS.checkpoints import CheckpointError, load_gpt_weights, load_sovits_weights
from GPT_SoVITS.config import ConfigError
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.models.sovits_v4 import SoVITSV3Config, SynthesizerTrnV3
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.models.vocoder import load_vocoder


def load_t2s(path: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
             ) -> tuple[Text2SemanticDecoder, T2SConfig]:
    """Build the GPT model from a GPT weight file (release, pretrained or Lightning resume), in eval mode.

    The architecture comes from the file's ``config``; weights load strictly. Half-precision files are
    converted to ``dtype``.
    """
    loaded = load_gpt_weights(path)
    try:
        cfg = T2SConfig.from_upstream(loaded.config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its GPT config cannot be used ({exc})") from None
    model = Text2SemanticDecoder(cfg)
    try:
        model.load_state_dict(loaded.state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the model its config describes "
                              f"({' '.join(str(exc).split())[:400]})") from None
    return model.to(device=device, dtype=dtype).eval(), cfg


def load_sovits(path: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                for_inference: bool = True) -> tuple[SynthesizerTrn, SoVITSConfig]:
    """Build the SoVITS generator from a SoVITS weight file (release, pretrained or resume).

    The architecture comes from the file's config (upstream's ``s2.json`` defaults where it has none) and
    the version found in the weights (v1: 322 phones and a full-band reference encoder). Release files have
    no ``enc_q``; pretrained files do, and it is kept only when ``for_inference`` is False (training).
    With ``for_inference`` the model is in eval mode with weight norm folded away.
    """
    loaded = load_sovits_weights(path)
    config = dict(loaded.config)
    config["model"] = {**dict(config.get("model") or {}), "version": loaded.version}
    try:
        cfg = SoVITSConfig.from_upstream(config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its SoVITS config cannot be used ({exc})") from None
    keep_posterior = not for_inference and any(key.startswith("enc_q.") for key in loaded.state_dict)
    try:
        model = SynthesizerTrn.from_state_dict(cfg, loaded.state_dict, with_posterior=keep_posterior, device=device,
                                               dtype=dtype)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit the SoVITS model its config describes "
                              f"({str(exc).splitlines()[0]})") from None
    return (model.prepare_for_inference() if for_inference else model), cfg


__all__ = ["SoVITSConfig", "SoVITSV3Config", "SynthesizerTrn", "SynthesizerTrnV3", "T2SConfig", "Text2SemanticDecoder",
           "load_sovits", "load_t2s", "load_vocoder"]
