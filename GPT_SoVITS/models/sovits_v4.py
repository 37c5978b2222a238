"""SoVITS v3/v4 (``SynthesizerTrnV3``): semantic codes + phones + reference → a normalised mel by flow matching.

v3 and v4 keep v2's front half (``ssl_proj`` + quantizer, the text/SSL encoder ``enc_p`` with MRTE and the
style encoder ``ref_enc``) and replace the flow and HiFi-GAN decoder by:

``enc_p`` hidden (50 Hz, 192) → ``bridge`` (1×1 conv to 512 + LeakyReLU) → nearest upsampling to the mel rate
(×2 for v4, ×1.875 for v3) → ``wns1`` (1×1 conv, ge-conditioned WaveNet, 1×1 conv) = the condition ``fea``
→ ``cfm`` (a DiT sampled with a few Euler steps, :mod:`GPT_SoVITS.models.cfm`) → normalised log-mel → a
separate vocoder (:mod:`GPT_SoVITS.models.vocoder` for v4).

What differs between v3 and v4 is a handful of constants, held by :class:`CFMVariant` (one table,
:data:`CFM_VARIANTS`); the model code never branches on the version string.

Shapes: T25 codes at 25 Hz, L phones, T frames at the mel rate (v4: 100/s, v3: 93.75/s), C = ``fea_channels``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from GPT_SoVITS.config import from_dict
from GPT_SoVITS.features.spectrogram import MEL_V3, MEL_V4, MelFrontEnd, denorm_mel_v4
from GPT_SoVITS.models.cfm import CFM, DiTConfig, RotaryEmbedding
from GPT_SoVITS.models.commons import Conv1d, fold_weight_norm, sequence_mask
from GPT_SoVITS.models.modules import WN, MelStyleEncoder
from GPT_SoVITS.models.quantizer import ResidualVectorQuantizer
from GPT_SoVITS.models.sovits import SoVITSConfig, TextEncoder, UnsupportedVersionError
from GPT_SoVITS.versions import VersionSpec, version_spec

log = logging.getLogger(__name__)

INV_FREQ_KEY = "cfm.estimator.rotary_embed.inv_freq"


@dataclass(frozen=True)
class CFMVariant:
    """The constants that make a ``SynthesizerTrnV3`` a v3 or a v4 model (compat kit v4 §1.2)."""

    version: str
    upsample_factor: float  # 50 Hz encoder frames → mel frames (nearest, by scale factor as upstream)
    mask_factor: float  # wns1 mask length per semantic code at speed 1
    max_prompt_frames: int  # longest reference mel that conditions the CFM (the last frames are kept)
    chunk_frames: int  # prompt + generated frames per sampler call in the chunked decode
    mel: MelFrontEnd  # reference-mel front end (input rate, STFT, 100 bands)
    default_sample_steps: int  # classic webui default

    @property
    def frame_rate(self) -> float:
        """Mel frames per second."""
        return self.mel.frame_rate

    @property
    def output_sampling_rate(self) -> int:
        """Of the vocoder output (GPT_SoVITS.versions holds it with the rest of what the version means)."""
        return version_spec(self.version).sample_rate

    @property
    def release_tag(self) -> bytes:
        """2-byte header of LoRA release files."""
        tag = version_spec(self.version).release_tag
        assert tag is not None
        return tag


V4 = CFMVariant("v4", upsample_factor=2.0, mask_factor=4.0, max_prompt_frames=500, chunk_frames=1000, mel=MEL_V4,
                default_sample_steps=8)
V3 = CFMVariant("v3", upsample_factor=1.875, mask_factor=3.875, max_prompt_frames=468, chunk_frames=934, mel=MEL_V3,
                default_sample_steps=32)
CFM_VARIANTS: dict[str, CFMVariant] = {"v3": V3, "v4": V4}

#: Model-section keys of our own files that upstream's s2.json lacks (only written when not the default).
_EXTRA_MODEL_KEYS = ("fea_channels", "wns1_layers", "wns1_kernel_size", "dit")


@dataclass(frozen=True)
class SoVITSV3Config:
    """Architecture of ``SynthesizerTrnV3``. Upstream builds it from the v2 ``s2.json`` with
    ``model.version`` = v3/v4 and hard-wires the rest; the defaults here are that full-size model."""

    version: str = "v4"  # a key of CFM_VARIANTS
    encoder: SoVITSConfig = SoVITSConfig()  # enc_p, ref_enc, ssl_proj, quantizer: the v2 parts (version "v2")
    fea_channels: int = 512  # bridge / wns1 width = the DiT's condition width
    wns1_layers: int = 8
    wns1_kernel_size: int = 5
    dit: DiTConfig = DiTConfig()

    def __post_init__(self) -> None:
        if self.version not in CFM_VARIANTS:
            raise UnsupportedVersionError(f"SynthesizerTrnV3 builds {sorted(CFM_VARIANTS)} models, not "
                                          f"{self.version!r}")
        if self.encoder.version != "v2":
            raise ValueError(f"the v3/v4 encoder is the v2 one (732 phones, 704 reference bins); got encoder "
                             f"version {self.encoder.version!r}")
        if self.encoder.mrte_hidden_channels != self.encoder.gin_channels:
            raise ValueError("encoder.mrte_hidden_channels must equal encoder.gin_channels (ge is added in MRTE)")
        if self.dit.cond_dim != self.fea_channels:
            raise ValueError(f"dit.cond_dim ({self.dit.cond_dim}) must equal fea_channels ({self.fea_channels})")
        if self.dit.mel_dim != self.variant.mel.n_mels:
            raise ValueError(f"dit.mel_dim ({self.dit.mel_dim}) must equal the mel bands ({self.variant.mel.n_mels})")

    @property
    def variant(self) -> CFMVariant:
        return CFM_VARIANTS[self.version]

    @property
    def spec(self) -> VersionSpec:
        return version_spec(self.version)

    @property
    def uses_sv_embedding(self) -> bool:
        return self.spec.uses_sv_embedding

    # what the engine reads of any SoVITS config, here from the v2 encoder
    @property
    def ssl_dim(self) -> int:
        return self.encoder.ssl_dim

    @property
    def filter_length(self) -> int:
        return self.encoder.filter_length

    @property
    def hop_length(self) -> int:
        return self.encoder.hop_length

    @classmethod
    def from_upstream(cls, config: Mapping[str, Any]) -> SoVITSV3Config:
        """Build from an upstream ``s2.json``-style dict whose ``model.version`` (or top-level ``version``) is
        v3 or v4. Our tiny files add ``fea_channels``/``wns1_*``/``dit`` to the model section."""
        model = dict(config.get("model") or {})
        version = str(model.get("version") or config.get("version") or "v4")
        extras = {key: model.pop(key) for key in _EXTRA_MODEL_KEYS if key in model}
        model["version"] = "v2"
        encoder = SoVITSConfig.from_upstream({**config, "model": model, "version": "v2"})
        if "dit" in extras:
            extras["dit"] = from_dict(DiTConfig, extras["dit"], "model.dit")
        return cls(version=version, encoder=encoder, **extras)

    def to_upstream(self) -> dict[str, Any]:
        """The ``s2.json``-style sections a file of this model carries (inverse of :meth:`from_upstream`)."""
        enc = self.encoder
        model = {f.name: getattr(enc, f.name) for f in dataclasses.fields(enc)
                 if f.name not in ("filter_length", "hop_length", "segment_size")}
        model["version"] = self.version
        default = SoVITSV3Config(version=self.version)
        for key in _EXTRA_MODEL_KEYS:
            if getattr(self, key) != getattr(default, key):
                value = getattr(self, key)
                model[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return {"model": model, "data": {"filter_length": enc.filter_length, "hop_length": enc.hop_length,
                                         "sampling_rate": 32000, "win_length": enc.filter_length},
                "train": {"segment_size": enc.segment_size}, "version": self.version}


class ConditionEncoder(nn.Module):
    """``wns1``: 1×1 conv → ge-conditioned WaveNet → 1×1 conv, masked to ``lengths`` frames."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int,
                 dilation_rate: int, n_layers: int, gin_channels: int = 0) -> None:
        super().__init__()
        self.pre = Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = Conv1d(hidden_channels, out_channels, 1)

    def forward(self, x: Tensor, lengths: Tensor, g: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x [B, C, T], lengths [B] (may exceed T: then nothing is masked) → (out [B, out, T], mask [B, 1, T])."""
        mask = sequence_mask(lengths, x.shape[2]).unsqueeze(1).to(x.dtype)
        x = self.enc(self.pre(x) * mask, mask, g=g)
        return self.proj(x) * mask, mask


class SynthesizerTrnV3(nn.Module):
    """SoVITS v3/v4 generator (no posterior encoder: training and inference build the same module).

    :meth:`decode_encp` gives the condition ``fea`` of codes + phones; ``cfm.inference`` samples a mel from it;
    :func:`synthesize` runs upstream's chunked decode to audio. :meth:`forward` is the LoRA training loss.
    """

    def __init__(self, cfg: SoVITSV3Config = SoVITSV3Config()) -> None:
        super().__init__()
        enc = cfg.encoder
        self.cfg = cfg
        self.enc_p = TextEncoder(enc)
        self.ref_enc = MelStyleEncoder(enc.reference_bins, enc.style_hidden_channels, enc.gin_channels)
        stride = enc.semantic_upsample
        self.ssl_proj = Conv1d(enc.ssl_dim, enc.ssl_dim, stride, stride=stride)
        self.quantizer = ResidualVectorQuantizer(dimension=enc.ssl_dim, n_q=1, bins=enc.codebook_size)
        self.bridge = nn.Sequential(Conv1d(enc.hidden_channels, cfg.fea_channels, 1), nn.LeakyReLU())
        self.wns1 = ConditionEncoder(cfg.fea_channels, cfg.fea_channels, cfg.fea_channels, cfg.wns1_kernel_size, 1,
                                     cfg.wns1_layers, gin_channels=enc.gin_channels)
        self.linear_mel = Conv1d(cfg.fea_channels, cfg.dit.mel_dim, 1)  # trained upstream, never used
        self.cfm = CFM(cfg.dit)

    @property
    def variant(self) -> CFMVariant:
        return self.cfg.variant

    @classmethod
    def from_state_dict(cls, cfg: SoVITSV3Config, state_dict: Mapping[str, Tensor], device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> SynthesizerTrnV3:
        """Build directly from weights (plain layout, e.g. ``s2Gv4.pth["weight"]``) without random initialisation.

        Every tensor must be present and fit, except the rotary ``inv_freq`` table, which is computed when a
        file lacks it (upstream would use its own initial value too). Unexpected keys raise as well. Tensors
        are copied, converted to ``dtype`` on ``device``.
        """
        weights = {key: value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype, copy=True)
                   for key, value in state_dict.items()}
        if INV_FREQ_KEY not in weights:
            log.info("the weights have no %s; using the standard rotary table", INV_FREQ_KEY)
            weights[INV_FREQ_KEY] = RotaryEmbedding(cfg.dit.dim_head).inv_freq.to(device=device, dtype=dtype)
        with torch.device("meta"):
            model = cls(cfg)
        model.load_state_dict(weights, strict=True, assign=True)
        return model

    @classmethod
    def from_upstream(cls, config: Mapping[str, Any], state_dict: Mapping[str, Tensor], version: str | None = None,
                      device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> SynthesizerTrnV3:
        """Build from a weight file's upstream config (``s2.json``-style) and plain state dict (its ``weight``).

        ``version`` ("v3"/"v4") overrides the config's, as upstream does for files whose header names it.
        """
        if version is not None:
            config = {**config, "model": {**dict(config.get("model") or {}), "version": version}}
        return cls.from_state_dict(SoVITSV3Config.from_upstream(config), state_dict, device, dtype)

    def prepare_for_inference(self) -> SynthesizerTrnV3:
        """eval(), no gradients, weight norm of ``wns1`` folded into plain weights (same outputs, cheaper).

        The state dict then has ``weight`` instead of ``weight_g``/``weight_v`` in ``wns1``: merge LoRA files
        and save before calling this, not after.
        """
        self.eval()
        self.requires_grad_(False)
        fold_weight_norm(self)
        return self

    # ---------------------------------------------------------------------------------------------- inference

    def reference_embedding(self, refer: Tensor) -> Tensor:
        """Style vector ``ge`` [B, gin, 1] of a reference linear spectrogram [B, 1025, T] (its lowest 704 bins)."""
        lengths = torch.tensor([refer.shape[2]], device=refer.device)
        mask = sequence_mask(lengths, refer.shape[2]).unsqueeze(1).to(refer.dtype)
        return self.ref_enc(refer[:, : self.cfg.encoder.reference_bins] * mask, mask)

    def semantic_features(self, codes: Tensor) -> Tensor:
        """Codes [n_q, B, T25] → codebook vectors at 50 Hz [B, ssl_dim, 2·T25]."""
        quantized = self.quantizer.decode(codes)
        factor = self.cfg.encoder.semantic_upsample
        return F.interpolate(quantized, size=quantized.shape[-1] * factor, mode="nearest") if factor != 1 else quantized

    @torch.no_grad()
    def extract_latent(self, ssl: Tensor) -> Tensor:
        """HuBERT features [B, ssl_dim, T50] → codes [B, n_q, T25] (the same codes as v2)."""
        return self.quantizer.encode(self.ssl_proj(ssl)).transpose(0, 1)

    def condition(self, hidden: Tensor, ge: Tensor, lengths: Tensor) -> Tensor:
        """``enc_p`` hidden [B, 192, T50] → ``fea`` [B, C, T]: bridge, upsampling to the mel rate, ``wns1``."""
        fea = F.interpolate(self.bridge(hidden), scale_factor=self.variant.upsample_factor, mode="nearest")
        return self.wns1(fea, lengths, ge)[0]

    @torch.no_grad()
    def decode_encp(self, codes: Tensor, text: Tensor, refer: Tensor | None, ge: Tensor | None = None,
                    speed: float = 1.0) -> tuple[Tensor, Tensor]:
        """The condition of the CFM for one utterance (upstream's ``decode_encp``).

        Parameters
        ----------
        codes : semantic codes [n_q, B, T25] (n_q = 1).
        text : phone ids [B, L].
        refer : reference linear spectrogram [B, 1025, T_spec]; only used when ``ge`` is None.
        ge : style vector [B, gin, 1] to use instead of computing it (inference passes the prompt's back in).
        speed : > 1 speaks faster; ``enc_p`` then gives int(2·T25 / speed) + 1 frames.

        Returns
        -------
        (fea [B, C, floor(frames50 · upsample_factor)], ge [B, gin, 1]). At speed 1 the frames past
        int(mask_factor · T25) are zero, otherwise past int(mask_factor · T25 / speed) + 1.
        """
        if codes.dim() != 3 or codes.shape[2] == 0:
            raise ValueError(f"decode_encp needs codes shaped [n_q, B, T25] with T25 ≥ 1, got {tuple(codes.shape)}")
        if text.dim() != 2 or text.shape[1] == 0:
            raise ValueError(f"decode_encp needs phone ids shaped [B, L] with L ≥ 1, got {tuple(text.shape)}")
        if ge is None:
            if refer is None:
                raise ValueError("decode_encp needs a reference spectrogram or a style vector ge")
            ge = self.reference_embedding(refer)
        n_codes = codes.shape[2]
        factor = self.variant.mask_factor
        mask_len = int(n_codes * factor) if speed == 1 else int(n_codes * factor / speed) + 1
        device = codes.device
        y_lengths = torch.tensor([n_codes * self.cfg.encoder.semantic_upsample], device=device)
        text_lengths = torch.tensor([text.shape[-1]], device=device)
        hidden, _, _, _ = self.enc_p(self.semantic_features(codes), y_lengths, text, text_lengths, ge, speed)
        return self.condition(hidden, ge, torch.tensor([mask_len], device=device)), ge

    # ----------------------------------------------------------------------------------------------- training

    def forward(self, ssl: Tensor, spec: Tensor, spec_lengths: Tensor, mel: Tensor, mel_lengths: Tensor,
                text: Tensor, text_lengths: Tensor, use_grad_ckpt: bool = False) -> Tensor:
        """Flow-matching training loss (spec §14.4), a scalar.

        ssl [B, ssl_dim, T50] HuBERT features, spec [B, 1025, T50] linear spectrogram (for ge), mel [B, 100, T]
        normalised log-mel at the mel rate, text [B, L] phone ids, with their lengths [B]. With
        ``encoder.freeze_quantizer`` (upstream's setting) ``ssl_proj``, the quantizer and ``enc_p`` run in eval
        mode without gradients; ``ref_enc``, ``bridge``, ``wns1`` and the CFM learn. Each item's prompt is its
        first floor(U(0,1) · ⅔ · mel length) frames.
        """
        spec_mask = sequence_mask(spec_lengths, spec.shape[2]).unsqueeze(1).to(spec.dtype)
        ge = self.ref_enc(spec[:, : self.cfg.encoder.reference_bins] * spec_mask, spec_mask)
        frozen = self.cfg.encoder.freeze_quantizer
        if frozen:
            for module in (self.ssl_proj, self.quantizer, self.enc_p):
                module.eval()
        with torch.autocast(device_type=ssl.device.type, enabled=False), torch.set_grad_enabled(
                torch.is_grad_enabled() and not frozen):
            quantized, _, _ = self.quantizer(self.ssl_proj(ssl.to(self.ssl_proj.weight.dtype)))
            factor = self.cfg.encoder.semantic_upsample
            quantized = F.interpolate(quantized, size=quantized.shape[-1] * factor, mode="nearest")
            hidden, _, _, _ = self.enc_p(quantized, spec_lengths, text, text_lengths, ge)
        fea = self.condition(hidden, ge, mel_lengths)
        prompt_lengths = (torch.rand(mel.shape[0], device=mel.device) * mel_lengths * 2 / 3).floor().long()
        frames = min(mel.shape[-1], fea.shape[-1])
        return self.cfm(mel[:, :, :frames], mel_lengths.clamp(max=frames), prompt_lengths, fea[:, :, :frames],
                        use_grad_ckpt)


# ------------------------------------------------------------------------------------------ chunked decoding


@dataclass(frozen=True)
class CFMReference:
    """The reference side of a v3/v4 decode: computed once per reference, reused for every sentence.

    ``fea`` [1, C, T] and ``mel`` [1, 100, T] are cut as upstream does: to T = min(mel frames, condition
    frames) from the start, then to the last ``max_prompt_frames``. ``ge`` [1, gin, 1].
    """

    fea: Tensor
    mel: Tensor
    ge: Tensor

    @property
    def frames(self) -> int:
        return int(self.mel.shape[-1])


@torch.no_grad()
def prepare_reference(model: SynthesizerTrnV3, prompt_codes: Tensor, prompt_phones: Tensor, refer_spec: Tensor | None,
                      ref_mel: Tensor, ge: Tensor | None = None) -> CFMReference:
    """Condition and prompt mel of a reference (upstream's per-reference work of the v3/v4 decode).

    prompt_codes [1, 1, T25] (HuBERT codes of the reference + 0.3 s silence), prompt_phones [1, L] (its
    transcript), refer_spec [1, 1025, T] (v2 spectrogram, for ge; unused when ``ge`` is given), ref_mel [1, 100,
    frames]: the *normalised* reference mel (``norm_mel_v4(mel_v4(wave32k))`` for v4, the v3 front end for v3).
    """
    fea, ge = model.decode_encp(prompt_codes, prompt_phones, refer_spec, ge)
    frames = min(ref_mel.shape[-1], fea.shape[-1])
    mel = ref_mel[:, :, :frames].to(fea.dtype)
    fea = fea[:, :, :frames]
    limit = model.variant.max_prompt_frames
    if frames > limit:
        mel, fea = mel[:, :, -limit:], fea[:, :, -limit:]
    return CFMReference(fea=fea, mel=mel, ge=ge)


def chunk_bounds(target_frames: int, prompt_frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """[start, end) of each chunk of the target condition: ``chunk_frames - prompt_frames`` frames each."""
    step = chunk_frames - prompt_frames
    if step < 1:
        raise ValueError(f"the prompt ({prompt_frames} frames) leaves no room in a {chunk_frames}-frame chunk")
    return [(start, min(start + step, target_frames)) for start in range(0, target_frames, step)]


@torch.no_grad()
def sample_mel_chunked(model: SynthesizerTrnV3, reference: CFMReference, fea: Tensor, sample_steps: int,
                       noise: Sequence[Tensor] | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Upstream's sequential chunked sampling: normalised mel [1, 100, N] for a target condition [1, C, N].

    Each chunk samples [prompt ; next chunk_frames − T target frames] and keeps the generated part; the next
    chunk's prompt is the last T generated frames and its prompt condition the last T frames of this chunk's
    condition. ``noise`` (one [1, 100, T + chunk length] tensor per chunk, see :func:`chunk_bounds`) replaces
    the random draws; otherwise they come from ``generator`` (or torch's global generator).
    """
    bounds = chunk_bounds(fea.shape[-1], reference.frames, model.variant.chunk_frames)
    if noise is not None and len(noise) != len(bounds):
        raise ValueError(f"{len(bounds)} chunks need {len(bounds)} noise tensors, got {len(noise)}")
    prompt_mel, prompt_fea = reference.mel, reference.fea
    pieces = []
    for index, (start, end) in enumerate(bounds):
        chunk = fea[:, :, start:end]
        condition = torch.cat([prompt_fea, chunk], dim=2).transpose(1, 2)
        lengths = torch.tensor([condition.shape[1]], device=fea.device)
        out = model.cfm.inference(condition, lengths, prompt_mel, sample_steps, inference_cfg_rate=0.0,
                                  noise=None if noise is None else noise[index], generator=generator)
        generated = out[:, :, prompt_mel.shape[-1]:]
        pieces.append(generated)
        prompt_mel, prompt_fea = generated[:, :, -reference.frames:], chunk[:, :, -reference.frames:]
    return torch.cat(pieces, dim=2)


@torch.no_grad()
def synthesize(model: SynthesizerTrnV3, vocoder: nn.Module, reference: CFMReference, codes: Tensor, phones: Tensor,
               speed: float = 1.0, sample_steps: int | None = None, noise: Sequence[Tensor] | None = None,
               generator: torch.Generator | None = None) -> Tensor:
    """One sentence of v3/v4 audio, as upstream's sequential path makes it.

    Parameters
    ----------
    model, vocoder : the SoVITS v3/v4 model and the matching vocoder (v4: :func:`load_vocoder`); both in eval mode.
    reference : :func:`prepare_reference` of the reference audio.
    codes : generated semantic codes [1, 1, T25]; phones : target phone ids [1, L].
    speed : > 1 speaks faster (only ``enc_p``'s frame count changes).
    sample_steps : Euler steps per chunk (default: the variant's webui default, 8 for v4).
    noise, generator : see :func:`sample_mel_chunked`.

    Returns
    -------
    mono audio [samples] at ``model.variant.output_sampling_rate``, divided by its peak when that exceeds 1.
    """
    fea, _ = model.decode_encp(codes, phones, None, ge=reference.ge, speed=speed)
    steps = sample_steps or model.variant.default_sample_steps
    mel = sample_mel_chunked(model, reference, fea, steps, noise=noise, generator=generator)
    wave = vocoder(denorm_mel_v4(mel))[0, 0]
    peak = wave.abs().max()
    return wave / peak if peak > 1 else wave
