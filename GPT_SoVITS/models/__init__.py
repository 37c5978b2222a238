"""Model definitions (``nn.Module``s only) and small loaders that build them from weight files."""

from __future__ import annotations

from pathlib import Path

import torch

from GPT_SoVITS.checkpoints import CheckpointError, load_gpt_weights
from GPT_SoVITS.config import ConfigError
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder


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
                              f"({str(exc).splitlines()[0]})") from None
    return model.to(device=device, dtype=dtype).eval(), cfg


__all__ = ["T2SConfig", "Text2SemanticDecoder", "load_t2s"]
