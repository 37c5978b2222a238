"""Model definitions (``nn.Module``s only) and small loaders that build them from weight files."""

from __future__ import annotations

from pathlib import Path

import torch

from GPT_SoVITS.checkpoints import (
    CheckpointError,
    LoadedWeights,
    describe_pretrained,
    load_gpt_weights,
    load_sovits_weights,
)
from GPT_SoVITS.config import ConfigError
from GPT_SoVITS.models.lora import merge_lora_release
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.models.sovits_v4 import SoVITSV3Config, SynthesizerTrnV3
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.models.vocoder import load_vocoder
from GPT_SoVITS.paths import PretrainedPaths
from GPT_SoVITS.versions import version_spec


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
                for_inference: bool = True, pretrained: PretrainedPaths | None = None
                ) -> tuple[SynthesizerTrn | SynthesizerTrnV3, SoVITSConfig | SoVITSV3Config]:
    """Build the SoVITS model of a SoVITS weight file (release, pretrained or resume), of any supported version.

    The architecture comes from the file's config (upstream's ``s2.json`` defaults where it has none) and the
    version found in the file (:mod:`GPT_SoVITS.versions`): v1/v2/v2Pro/v2ProPlus build :class:`SynthesizerTrn`,
    v4 builds :class:`SynthesizerTrnV3`. A v4 LoRA release holds only an adapter: it is merged into the version's
    pretrained base model from ``pretrained`` (default: the project's ``pretrained_models``), as upstream does.
    Release files have no ``enc_q``; pretrained files do, and it is kept only when ``for_inference`` is False.
    With ``for_inference`` the model is in eval mode with weight norm folded away.
    """
    loaded = load_sovits_weights(path)
    if version_spec(loaded.version).sovits_family == "cfm":
        model_v3 = _load_cfm_model(loaded, pretrained or PretrainedPaths(), device, dtype)
        return (model_v3.prepare_for_inference() if for_inference else model_v3), model_v3.cfg
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


def _load_cfm_model(loaded: LoadedWeights, pretrained: PretrainedPaths, device: str | torch.device,
                    dtype: torch.dtype) -> SynthesizerTrnV3:
    """A v3/v4 model from a full file, or from the version's pretrained base with a LoRA release merged in."""
    base = loaded
    if loaded.lora_rank is not None:
        base_path = pretrained.sovits_g(loaded.version)
        if not base_path.exists():
            raise FileNotFoundError(f"{loaded.path} is a {loaded.version} LoRA release: it holds only the fine-tuned "
                                    f"adapter and needs the pretrained base model too. "
                                    f"{describe_pretrained(base_path)}")
        base = load_sovits_weights(base_path)
        if base.lora_rank is not None or base.version != loaded.version:
            raise CheckpointError(f"{base_path} is not the {loaded.version} base model a LoRA release is merged into")
    try:
        model = SynthesizerTrnV3.from_upstream(base.config, base.state_dict, loaded.version, device, dtype)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{base.path}: its SoVITS {loaded.version} config cannot be used ({exc})") from None
    except RuntimeError as exc:
        raise CheckpointError(f"{base.path}: the weights do not fit the SoVITS {loaded.version} model its config "
                              f"describes ({str(exc).splitlines()[0]})") from None
    if loaded.lora_rank is not None:
        weights = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
                   for k, v in loaded.state_dict.items()}
        merge_lora_release(model, weights, loaded.lora_rank)
    return model


__all__ = ["SoVITSConfig", "SoVITSV3Config", "SynthesizerTrn", "SynthesizerTrnV3", "T2SConfig", "Text2SemanticDecoder",
           "load_sovits", "load_t2s", "load_vocoder"]
