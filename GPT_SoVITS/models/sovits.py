"""The SoVITS generator of the VITS family (``SynthesizerTrn``: v1, v2, v2Pro, v2ProPlus): semantic codes + phones +
reference spectrogram (+ speaker embedding) → 32 kHz audio.

Shapes: B batch, T25 codes at 25 Hz, T frames at 50 Hz (= 2·T25, one spectrogram frame per 640 samples),
L phones, D the speaker-verification embedding width (20480). Module attribute names (``enc_p``, ``enc_q``,
``dec``, ``flow``, ``ref_enc``, ``ssl_proj``, ``quantizer``, ``sv_emb``, ``ge_to512``, ``prelu``…) are state-dict
keys of upstream files and keep their spelling; see ``SoVITSConfig`` for which upstream config keys map to what.
What a version changes comes from :mod:`GPT_SoVITS.versions`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from GPT_SoVITS.models import attentions
from GPT_SoVITS.models.commons import (
    LRELU_SLOPE,
    Conv1d,
    WNConvTranspose1d,
    fold_weight_norm,
    from_channels_last_2d,
    onednn_fusion_available,
    rand_slice_segments,
    sequence_mask,
    to_channels_last_2d,
)
from GPT_SoVITS.models.modules import WN, MelStyleEncoder, ResBlock1, ResBlock2, ResidualCouplingBlock
from GPT_SoVITS.models.mrte import MRTE
from GPT_SoVITS.models.quantizer import ResidualVectorQuantizer
from GPT_SoVITS.versions import UnknownVersionError, VersionSpec, version_spec

log = logging.getLogger(__name__)

#: Reference-encoder input bins of every version but v1: the lowest 704 of the 1025 linear-spectrogram bins.
V2_REFERENCE_BINS = 704
#: Width of the speaker-verification embedding (ERes2NetV2's 2048 channels × 10 frequency rows).
SV_EMBEDDING_DIM = 20480


class UnsupportedVersionError(ValueError):
    """The config names a model version this class does not build (v3/v4 have their own model class)."""


@dataclass(frozen=True)
class SoVITSConfig:
    """Architecture of the SoVITS generator: upstream ``s2.json`` ``model`` fields plus what it takes from
    ``data``/``train``, plus the widths upstream hard-wires in code (kept configurable so tests can shrink them).
    """

    # --- s2.json "model" section
    inter_channels: int = 192  # latent z channels (flow, posterior, decoder input)
    hidden_channels: int = 192  # transformer / WaveNet width; also MRTE's content width
    filter_channels: int = 768  # transformer FFN width
    n_heads: int = 2
    n_layers: int = 6  # text encoder layers; the SSL encoder and encoder2 get n_layers // 2
    kernel_size: int = 3  # transformer FFN kernel
    p_dropout: float = 0.1
    resblock: str = "1"  # HiFi-GAN residual block type, "1" or "2"
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    upsample_rates: tuple[int, ...] = (10, 8, 2, 2, 2)  # product = samples per frame (hop_length)
    upsample_initial_channel: int = 512
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 8, 2, 2)
    n_layers_q: int = 3  # present in s2.json but unused by upstream (see posterior_layers)
    use_spectral_norm: bool = False  # used by the discriminator only
    gin_channels: int = 512  # style vector (ge) width
    semantic_frame_rate: str = "25hz"  # "25hz": ssl_proj halves the 50 Hz HuBERT rate
    freeze_quantizer: bool = True  # keep the codebook (EMA) fixed while training
    version: str = "v2"  # v1, v2, v2Pro or v2ProPlus (GPT_SoVITS.versions says what each one changes)
    # --- from the "data" / "train" sections
    filter_length: int = 2048  # STFT size; spectrogram bins = filter_length // 2 + 1
    hop_length: int = 640
    segment_size: int = 20480  # training decoder window in samples
    # --- widths fixed in upstream code
    ssl_dim: int = 768  # HuBERT feature width
    codebook_size: int = 1024
    mrte_hidden_channels: int = 512  # MRTE width: gin_channels, or what ge_to512 maps the style vector to (Pro)
    mrte_heads: int = 4
    style_hidden_channels: int = 128
    posterior_layers: int = 16  # WaveNet layers of enc_q
    flow_layers: int = 4  # WaveNet layers per coupling layer
    n_flows: int = 4
    sv_dim: int = SV_EMBEDDING_DIM  # speaker-verification embedding width (versions that use one)

    def __post_init__(self) -> None:
        try:
            spec = version_spec(self.version)
        except UnknownVersionError as exc:
            raise UnsupportedVersionError(str(exc)) from None
        if spec.sovits_family != "vits":
            raise UnsupportedVersionError(f"SoVITS {self.version} is a flow-matching model, not built by this class")
        if not spec.uses_sv_embedding and self.mrte_hidden_channels != self.gin_channels:
            raise ValueError(f"mrte_hidden_channels ({self.mrte_hidden_channels}) must equal gin_channels "
                             f"({self.gin_channels}) in {self.version}: the style vector is added inside MRTE")
        if self.semantic_frame_rate not in ("25hz", "50hz"):
            raise ValueError(f"semantic_frame_rate must be '25hz' or '50hz', got {self.semantic_frame_rate!r}")
        if self.resblock not in ("1", "2"):
            raise ValueError(f"resblock must be '1' or '2', got {self.resblock!r}")
        product = 1
        for rate in self.upsample_rates:
            product *= rate
        if product != self.hop_length:
            raise ValueError(f"upsample_rates multiply to {product} but hop_length is {self.hop_length}")

    @classmethod
    def for_version(cls, version: str, **values: Any) -> SoVITSConfig:
        """Upstream's config of ``version`` (``s2.json`` plus the version's changes), with ``values`` on top."""
        return cls(**{**version_spec(version).model_overrides, **values, "version": version})

    @property
    def spec(self) -> VersionSpec:
        return version_spec(self.version)

    @property
    def uses_sv_embedding(self) -> bool:
        return self.spec.uses_sv_embedding

    @property
    def n_symbols(self) -> int:
        """Rows of the phone embedding: 322 for v1, 732 for every later version."""
        return self.spec.n_symbols

    @property
    def spec_channels(self) -> int:
        return self.filter_length // 2 + 1

    @property
    def reference_bins(self) -> int:
        """Spectrogram bins the reference encoder reads: all of them for v1, the lowest 704 for v2."""
        return self.spec_channels if self.spec.full_band_reference else min(V2_REFERENCE_BINS, self.spec_channels)

    @property
    def segment_frames(self) -> int:
        return self.segment_size // self.hop_length

    @property
    def semantic_upsample(self) -> int:
        """50 Hz frames per semantic code."""
        return 2 if self.semantic_frame_rate == "25hz" else 1

    @classmethod
    def from_upstream(cls, config: Mapping[str, Any]) -> SoVITSConfig:
        """Build from an upstream ``s2.json``-style dict (``model``, ``data``, optional ``train`` sections).

        Keys this class does not know (e.g. webui additions) are ignored and logged, since upstream files
        carry many; unlike :func:`GPT_SoVITS.config.load_config`, which is strict for our own files. Keys the
        file does not have take the version's defaults (:meth:`for_version`).
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        model = dict(config.get("model", {}))
        data = dict(config.get("data", {}))
        train = dict(config.get("train", {}))
        values: dict[str, Any] = {}
        for key, value in model.items():
            if key in fields:
                values[key] = value
            else:
                log.info("SoVITS config: ignoring model key %r", key)
        for key in ("filter_length", "hop_length"):
            if key in data:
                values[key] = data[key]
        if "segment_size" in train:
            values["segment_size"] = train["segment_size"]
        if "version" not in model and "version" in config:
            values["version"] = config["version"]
        for key in ("resblock_kernel_sizes", "upsample_rates", "upsample_kernel_sizes"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])
        if "resblock_dilation_sizes" in values:
            values["resblock_dilation_sizes"] = tuple(tuple(int(d) for d in ds)
                                                      for ds in values["resblock_dilation_sizes"])
        if "resblock" in values:
            values["resblock"] = str(values["resblock"])
        return cls.for_version(str(values.pop("version", "v2")), **values)


# --------------------------------------------------------------------------------------------------- encoders


class TextEncoder(nn.Module):
    """Prior encoder ``enc_p``: semantic frames and phones → prior mean/log-std of z (plus the hidden sequence)."""

    def __init__(self, cfg: SoVITSConfig) -> None:
        super().__init__()
        hidden = cfg.hidden_channels
        self.out_channels = cfg.inter_channels
        self.ssl_proj = Conv1d(cfg.ssl_dim, hidden, 1)
        half = cfg.n_layers // 2
        self.encoder_ssl = attentions.Encoder(hidden, cfg.filter_channels, cfg.n_heads, half, cfg.kernel_size,
                                              cfg.p_dropout)
        self.encoder_text = attentions.Encoder(hidden, cfg.filter_channels, cfg.n_heads, cfg.n_layers,
                                               cfg.kernel_size, cfg.p_dropout)
        self.text_embedding = nn.Embedding(cfg.n_symbols, hidden)
        self.mrte = MRTE(hidden, cfg.mrte_hidden_channels, hidden, cfg.mrte_heads)
        self.encoder2 = attentions.Encoder(hidden, cfg.filter_channels, cfg.n_heads, half, cfg.kernel_size,
                                           cfg.p_dropout)
        self.proj = Conv1d(hidden, cfg.inter_channels * 2, 1)

    def forward(self, y: Tensor, y_lengths: Tensor, text: Tensor, text_lengths: Tensor, ge: Tensor | None,
                speed: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """y [B, ssl_dim, T], text [B, L] → (hidden [B, C, T'], m [B, inter, T'], logs, mask [B, 1, T']).

        ``speed`` ≠ 1 linearly resamples the hidden sequence to ``int(T / speed) + 1`` frames before ``proj``.
        """
        y_mask = sequence_mask(y_lengths, y.shape[2]).unsqueeze(1).to(y.dtype)
        y = self.ssl_proj(y * y_mask) * y_mask
        y = self.encoder_ssl(y * y_mask, y_mask)
        text_mask = sequence_mask(text_lengths, text.shape[1]).unsqueeze(1).to(y.dtype)
        text_enc = self.encoder_text(self.text_embedding(text).transpose(1, 2) * text_mask, text_mask)
        y = self.mrte(y, y_mask, text_enc, text_mask, ge)
        y = self.encoder2(y * y_mask, y_mask)
        if speed != 1:
            y = F.interpolate(y, size=int(y.shape[-1] / speed) + 1, mode="linear")
            y_mask = F.interpolate(y_mask, size=y.shape[-1], mode="nearest")
        stats = self.proj(y) * y_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        return y, m, logs, y_mask


class PosteriorEncoder(nn.Module):
    """``enc_q`` (training only): linear spectrogram → z ~ N(m, exp(logs))."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int,
                 dilation_rate: int, n_layers: int, gin_channels: int = 0) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.pre = Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels=gin_channels)
        self.proj = Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, x: Tensor, x_lengths: Tensor, g: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if g is not None:
            g = g.detach()  # upstream: the style encoder gets no gradient through the posterior
        x_mask = sequence_mask(x_lengths, x.shape[2]).unsqueeze(1).to(x.dtype)
        x = self.enc(self.pre(x) * x_mask, x_mask, g=g)
        stats = self.proj(x) * x_mask
        m, logs = torch.split(stats, self.out_channels, dim=1)
        z = (m + torch.randn_like(m) * torch.exp(logs)) * x_mask
        return z, m, logs, x_mask


class GeneratorShape(Protocol):
    """What :class:`Generator` reads from its config (:class:`SoVITSConfig`, or the v4 vocoder's config)."""

    inter_channels: int  # input channels
    upsample_initial_channel: int
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    gin_channels: int


#: Window sizes (frames, largest first) of the bfloat16 decoder (:meth:`SynthesizerTrn.use_bf16_decoder`): 128
#: frames (2.56 s of audio) for the bulk of a sentence, 32 for what is left over and for short streamed chunks.
BF16_WINDOW_FRAMES = (128, 32)


class Generator(nn.Module):
    """HiFi-GAN decoder ``dec``: z [B, inter, T] (+ style g) → waveform [B, 1, T·hop] in (-1, 1).

    ``post_bias`` gives the output convolution a bias (the v4 vocoder has one, SoVITS v1/v2 decoders do not).
    """

    def __init__(self, cfg: GeneratorShape, post_bias: bool = False) -> None:
        super().__init__()
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        initial = cfg.upsample_initial_channel
        self.conv_pre = Conv1d(cfg.inter_channels, initial, 7, 1, padding=3)
        block = ResBlock1 if cfg.resblock == "1" else ResBlock2
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        channels = initial
        for i, (rate, kernel) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)):
            channels = initial // (2 ** (i + 1))
            self.ups.append(WNConvTranspose1d(initial // (2**i), channels, kernel, rate, padding=(kernel - rate) // 2,
                                              init_std=0.01))
            for kernel_size, dilation in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
                self.resblocks.append(block(channels, kernel_size, tuple(dilation)))
        self.conv_post = Conv1d(channels, 1, 7, 1, padding=3, bias=post_bias)
        if cfg.gin_channels:
            self.cond = Conv1d(cfg.gin_channels, initial, 1)
        # Inference fast path on CPU (switched on by SynthesizerTrn.prepare_for_inference): the upsampling
        # stack runs in the channels-last 2-D layout with fused conv+pointwise oneDNN ops. Same math, about
        # 1e-6 apart from the plain path; off by default so training uses upstream's exact kernels.
        self.fast_cpu_inference = False
        self.hop = math.prod(cfg.upsample_rates)  # output samples per input frame
        # Windowed inference (SynthesizerTrn.use_bf16_decoder): (window sizes, context) in frames, or None
        self.window: tuple[tuple[int, ...], int] | None = None

    def forward(self, x: Tensor, g: Tensor | None = None) -> Tensor:
        if self.window is not None and self._fast_path(x.device):
            return self._forward_windows(x, g, *self.window)
        x = self._input_layer(x, g)
        if self._fast_path(x.device):
            return self._forward_fast(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            acc = blocks[0](x)
            for block in blocks[1:]:
                acc = acc + block(x)
            x = acc / self.num_kernels
        x = F.leaky_relu(x)  # default slope 0.01 here, as in upstream (not LRELU_SLOPE)
        return torch.tanh(self.conv_post(x.to(self.conv_post.weight.dtype)))

    def context_frames(self) -> int:
        """Input frames on each side that can change one output frame (an upper bound of the receptive field's
        radius, from the layers' kernels, dilations and strides): 13 for the v2 decoder, measured ≈ 9.3."""
        radius = (self.conv_pre.kernel_size[0] - 1) / 2
        rate = 1
        for i, up in enumerate(self.ups):
            rate *= up.stride[0]
            radius += up.kernel_size[0] / rate  # a transposed conv's output sample reads ⌈k/s⌉ inputs
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            radius += max(block.receptive_radius() for block in blocks) / rate
        radius += (self.conv_post.kernel_size[0] - 1) / 2 / rate
        return math.ceil(radius)

    def _fast_path(self, device: torch.device) -> bool:
        return (self.fast_cpu_inference and device.type == "cpu" and not torch.is_grad_enabled()
                and self.conv_pre.weight.dtype in (torch.float32, torch.bfloat16))

    def _input_layer(self, x: Tensor, g: Tensor | None) -> Tensor:
        dtype = self.conv_pre.weight.dtype  # bfloat16 after SynthesizerTrn.use_bf16_decoder, else the input's
        x = self.conv_pre(x.to(dtype))
        return x if g is None else x + self.cond(g.to(dtype))

    @staticmethod
    def window_plan(frames: int, sizes: Sequence[int], context: int) -> list[int]:
        """Window sizes covering ``frames``: as many of the largest as fit, then the cheapest cover of the rest
        (counting each window's ``context`` frames on both sides) by windows of a single size."""
        whole, rest = divmod(frames, sizes[0])
        if rest == 0:
            return [sizes[0]] * whole
        size = min(sizes, key=lambda s: (-(-rest // s) * (s + 2 * context), -s))
        return [sizes[0]] * whole + [size] * -(-rest // size)

    def _forward_windows(self, x: Tensor, g: Tensor | None, sizes: tuple[int, ...], context: int) -> Tensor:
        """Decode in windows of a few fixed shapes, ``[1, inter, size + 2·context]``, keeping each window's middle.

        Every window sees ``context`` neighbouring frames on each side (more than the decoder's receptive field,
        about 9.3 frames for the v2 decoder), so a window's middle is what one pass over the whole input computes
        there. At the two ends of the input, the layers of a single pass see zeros beyond the edge (each
        convolution's padding); the end windows zero every intermediate activation outside the input to match,
        so the whole result equals one pass up to float rounding. The point is the fixed shapes: oneDNN builds
        (slowly) and caches its bfloat16 primitives per input shape, so a few window sizes make that a one-time
        cost and a bounded cache instead of one for every sentence length.
        """
        batch, _, frames = x.shape
        plan = self.window_plan(frames, sizes, context)
        padded = F.pad(x, (context, sum(plan) - frames + context))
        hop = self.hop
        items = []
        for i in range(batch):
            style = None if g is None else g[i:i + 1]
            pieces, start = [], 0
            for size in plan:
                width = size + 2 * context
                h = self._input_layer(padded[i:i + 1, :, start:start + width], style)
                # the frames of the input inside this window, in window coordinates
                lo, hi = max(0, context - start), min(width, context + frames - start)
                valid = None if (lo, hi) == (0, width) else (lo, hi)
                if valid is not None:
                    h[..., :lo] = 0
                    h[..., hi:] = 0
                pieces.append(self._forward_fast(h, valid)[..., context * hop:(context + size) * hop])
                start += size
            items.append(torch.cat(pieces, dim=-1))
        return torch.cat(items)[..., :frames * hop]

    def _forward_fast(self, x: Tensor, valid: tuple[int, int] | None = None) -> Tensor:
        """The upsampling stack and output conv in the channels-last layout, in place where safe.

        ``valid``: the frames [lo, hi) that lie inside the decoded input (see :meth:`_forward_windows`); every
        activation outside them, at each stage's rate, is set to zero.
        """
        fused = onednn_fusion_available()
        x = to_channels_last_2d(x)
        rate = 1
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu_(x, LRELU_SLOPE) if i else F.leaky_relu(x, LRELU_SLOPE))
            rate *= up.stride[0]
            mask = None
            if valid is not None:
                mask = torch.zeros(1, 1, 1, x.shape[-1], dtype=x.dtype, device=x.device)
                mask[..., valid[0] * rate:valid[1] * rate] = 1
                x.mul_(mask)
            activated = F.leaky_relu(x, LRELU_SLOPE)  # first step of every block of this stage
            acc: Tensor | None = None
            for block in self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]:
                out = block.forward_inference(x, activated, fused, mask)
                acc = out if acc is None else acc.add_(out)
            assert acc is not None
            x = acc.div_(self.num_kernels)
        x = F.leaky_relu_(x)  # default slope 0.01, as in forward()
        weight = self.conv_post.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = F.conv2d(x.to(weight.dtype), weight, self.conv_post.bias, 1, (0, self.conv_post.padding[0]))
        return from_channels_last_2d(torch.tanh_(x))


# ----------------------------------------------------------------------------------------------- the model


@dataclass
class SoVITSTrainOutput:
    """What one training forward returns (upstream returns the same values as a tuple)."""

    audio: Tensor  # [B, 1, segment_size] decoded random window
    commit_loss: Tensor  # scalar quantizer commitment loss (upstream's kl_ssl)
    slice_starts: Tensor  # [B] start frame of each window
    y_mask: Tensor  # [B, 1, T]
    z: Tensor  # [B, inter, T] posterior sample
    z_p: Tensor  # [B, inter, T] z mapped through the flow
    m_p: Tensor  # [B, inter, T] prior mean
    logs_p: Tensor  # [B, inter, T] prior log-std
    m_q: Tensor  # [B, inter, T] posterior mean
    logs_q: Tensor  # [B, inter, T] posterior log-std
    quantized: Tensor  # [B, ssl_dim, T] quantized SSL features at 50 Hz
    ge: Tensor  # [B, gin, 1] style vector


class SynthesizerTrn(nn.Module):
    """SoVITS generator. ``with_posterior=False`` builds the inference layout (no ``enc_q`` keys).

    The codebook and ``ssl_proj`` turn HuBERT features into semantic codes (:meth:`extract_latent`);
    :meth:`decode` turns codes + phones + reference spectrogram(s) into audio; :meth:`forward` is the
    training pass.
    """

    def __init__(self, cfg: SoVITSConfig, with_posterior: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.enc_p = TextEncoder(cfg)
        self.dec = Generator(cfg)
        if with_posterior:
            self.enc_q = PosteriorEncoder(cfg.spec_channels, cfg.inter_channels, cfg.hidden_channels, 5, 1,
                                          cfg.posterior_layers, gin_channels=cfg.gin_channels)
        self.flow = ResidualCouplingBlock(cfg.inter_channels, cfg.hidden_channels, 5, 1, cfg.flow_layers,
                                          cfg.n_flows, gin_channels=cfg.gin_channels)
        self.ref_enc = MelStyleEncoder(cfg.reference_bins, cfg.style_hidden_channels, cfg.gin_channels)
        stride = 2 if cfg.semantic_frame_rate == "25hz" else 1
        self.ssl_proj = Conv1d(cfg.ssl_dim, cfg.ssl_dim, stride, stride=stride)
        self.quantizer = ResidualVectorQuantizer(dimension=cfg.ssl_dim, n_q=1, bins=cfg.codebook_size)
        if cfg.uses_sv_embedding:  # v2Pro/v2ProPlus: the speaker embedding joins the style vector (spec §13.2)
            self.sv_emb = nn.Linear(cfg.sv_dim, cfg.gin_channels)
            self.ge_to512 = nn.Linear(cfg.gin_channels, cfg.mrte_hidden_channels)
            self.prelu = nn.PReLU(num_parameters=cfg.gin_channels)

    @classmethod
    def from_state_dict(cls, cfg: SoVITSConfig, state_dict: Mapping[str, Tensor], with_posterior: bool | None = None,
                        device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> SynthesizerTrn:
        """Build directly from weights (loaded strictly), skipping random initialisation (~52 M values).

        ``with_posterior`` defaults to whether ``state_dict`` has ``enc_q`` keys; when False, such keys are
        dropped. Tensors are copied (converted to ``dtype`` on ``device``), so ``state_dict`` stays untouched.
        """
        has_enc_q = any(key.startswith("enc_q.") for key in state_dict)
        if with_posterior is None:
            with_posterior = has_enc_q
        weights = {key: value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype, copy=True)
                   for key, value in state_dict.items() if with_posterior or not key.startswith("enc_q.")}
        with torch.device("meta"):
            model = cls(cfg, with_posterior=with_posterior)
        model.load_state_dict(weights, strict=True, assign=True)
        return model

    @property
    def has_posterior(self) -> bool:
        return hasattr(self, "enc_q")

    def drop_posterior(self) -> None:
        """Delete ``enc_q`` (inference layout; upstream does the same after loading)."""
        if self.has_posterior:
            del self.enc_q

    def prepare_for_inference(self) -> SynthesizerTrn:
        """eval(), no gradients, weight norm folded into plain weights, decoder in the faster CPU layout.

        Outputs equal the unprepared model's up to float rounding (about 1e-6). The state dict then holds plain
        ``weight`` keys instead of ``weight_g``/``weight_v``: prepare a model for serving, not for saving.
        """
        self.eval()
        self.requires_grad_(False)
        folded = fold_weight_norm(self)
        log.debug("folded weight norm in %d layers", folded)
        self.dec.fast_cpu_inference = True
        return self

    def use_bf16_decoder(self, windows: Sequence[int] | None = BF16_WINDOW_FRAMES, warm_up: bool = False
                         ) -> SynthesizerTrn:
        """Store the HiFi-GAN decoder's weights in bfloat16 and run it in bfloat16 (CPU inference, one way).

        On CPUs with AMX-BF16/AVX-512-BF16 its convolutions (most of a decode's time) run 2–3× as fast and their
        weights take half the memory. Everything else stays in the model's dtype: the encoders and the flow
        (attention, LayerNorm, the flow's exp/subtract), and the decoder's output convolution, which reads the
        bfloat16 activations in float32 so the audio is float32. The audio differs from the float32 decoder's by
        about 0.4 % of its peak (RMS; largest sample ≈ 2 %), within the bound of 1 % / 4 % that docs/models.md
        states and tests check (``benchmarks/bench_bf16.py`` measures it).

        ``windows``: decode in windows of these sizes in frames (plus the receptive field's context on each
        side; see :meth:`Generator._forward_windows`), so that every decode reuses a few shapes. oneDNN builds
        its bfloat16 primitives (slowly) per input shape and caches them; without windows every new sentence
        length pays the build and grows the cache (docs/models.md). ``None`` decodes each input in one pass.
        ``warm_up`` decodes one silent window of each size now, so that the builds (a few seconds) happen here
        and not in the first request. Folds weight norm first (:meth:`prepare_for_inference`); the float32
        decoder weights are released.
        """
        sizes = None if windows is None else tuple(sorted(windows, reverse=True))
        if sizes is not None and (not sizes or sizes[-1] < 1):
            raise ValueError(f"decoder windows need sizes of at least 1 frame, got {windows}")
        if not self.dec.fast_cpu_inference:
            self.prepare_for_inference()
        if self.dec.conv_pre.weight.dtype != torch.bfloat16:
            post_dtype = self.dec.conv_post.weight.dtype
            self.dec.to(torch.bfloat16)  # parameters and the cached channels-last kernels
            self.dec.conv_post.to(post_dtype)
        self.dec.window = None if sizes is None else (sizes, self.dec.context_frames())
        if warm_up:
            device = self.dec.conv_pre.weight.device
            style = torch.zeros(1, self.cfg.gin_channels, 1, device=device) if self.cfg.gin_channels else None
            with torch.no_grad():
                for size in sizes or ():
                    self.dec(torch.zeros(1, self.cfg.inter_channels, size, device=device), style)
        return self

    @property
    def bf16_decoder(self) -> bool:
        """Whether :meth:`use_bf16_decoder` is in effect."""
        return self.dec.conv_pre.weight.dtype == torch.bfloat16

    # ---------------------------------------------------------------------------------------------- inference

    def reference_embedding(self, refer: Tensor, sv_emb: Tensor | None = None) -> Tensor:
        """Style vector ``ge`` [B, gin, 1] of one reference linear spectrogram [B, spec_channels, T].

        Versions with a speaker-verification embedding need ``sv_emb`` [B, sv_dim] of the same reference: ge is
        then ``prelu(ref_enc(spec) + sv_emb(sv_emb))``.
        """
        lengths = torch.tensor([refer.shape[2]], device=refer.device)
        mask = sequence_mask(lengths, refer.shape[2]).unsqueeze(1).to(refer.dtype)
        return self._style(self.ref_enc(refer[:, : self.cfg.reference_bins] * mask, mask), sv_emb)

    def _style(self, ge: Tensor, sv_emb: Tensor | None) -> Tensor:
        """Add the speaker embedding to the reference encoder's output (Pro versions); ge [B, gin, 1]."""
        if not self.cfg.uses_sv_embedding:
            return ge
        if sv_emb is None:
            raise ValueError(f"a {self.cfg.version} model needs the speaker-verification embedding of each "
                             "reference (sv_emb)")
        return self.prelu(ge + self.sv_emb(sv_emb.to(ge.dtype)).unsqueeze(-1))

    def average_reference_embedding(self, refers: Sequence[Tensor],
                                    sv_embs: Sequence[Tensor] | None = None) -> Tensor:
        """Mean style vector of several references (upstream's multi-reference timbre fusion).

        With speaker embeddings (one per reference, in the same order) each reference's ge is formed first and
        the mean is taken after the PReLU, as upstream does.
        """
        if not refers:
            raise ValueError("at least one reference spectrogram is needed")
        if sv_embs is not None and len(sv_embs) != len(refers):
            raise ValueError(f"{len(refers)} reference spectrogram(s) but {len(sv_embs)} speaker embedding(s)")
        embs = list(sv_embs) if sv_embs is not None else [None] * len(refers)
        return torch.stack([self.reference_embedding(r, e) for r, e in zip(refers, embs, strict=True)], 0).mean(0)

    def text_condition(self, ge: Tensor) -> Tensor:
        """The style vector as MRTE takes it: ``ge_to512(ge)`` [B, 512, 1] for Pro versions, else ``ge`` itself."""
        if not self.cfg.uses_sv_embedding:
            return ge
        return self.ge_to512(ge.transpose(1, 2)).transpose(1, 2)

    @torch.no_grad()
    def decode(self, codes: Tensor, text: Tensor, refer: Tensor | Sequence[Tensor] | None,
               noise_scale: float = 0.5, speed: float = 1.0, sv_emb: Tensor | Sequence[Tensor] | None = None,
               ge: Tensor | None = None) -> Tensor:
        """Synthesize audio.

        Parameters
        ----------
        codes : semantic codes [n_q, B, T25] (upstream's layout; ``n_q`` = 1).
        text : phone ids [B, L].
        refer : reference linear spectrogram [B, spec_channels, T] or a list of them (style vectors averaged).
        noise_scale : std multiplier of the prior sample; 0 gives z = m_p.
        speed : > 1 speaks faster (the hidden sequence is resampled to ``int(2·T25 / speed) + 1`` frames).
        sv_emb : Pro versions: the speaker embedding [B, sv_dim] of each reference (a list matching ``refer``).
        ge : precomputed style vector [B, gin, 1]; when given, ``refer`` and ``sv_emb`` are not used.

        Returns
        -------
        waveform [B, 1, frames · hop_length] at 32 kHz.
        """
        if codes.dim() != 3 or codes.shape[2] == 0:
            raise ValueError(f"decode needs codes shaped [n_q, B, T25] with T25 ≥ 1, got {tuple(codes.shape)}")
        if text.dim() != 2 or text.shape[1] == 0:
            raise ValueError(f"decode needs phone ids shaped [B, L] with L ≥ 1, got {tuple(text.shape)}")
        if ge is None and refer is not None:
            if isinstance(refer, Tensor):
                ge = self.reference_embedding(refer, sv_emb if not isinstance(sv_emb, Sequence) else sv_emb[0])
            else:
                ge = self.average_reference_embedding(refer, [sv_emb] if isinstance(sv_emb, Tensor) else sv_emb)
        y_lengths = torch.tensor([codes.shape[2] * self.cfg.semantic_upsample], device=codes.device)
        text_lengths = torch.tensor([text.shape[-1]], device=text.device)
        quantized = self.semantic_features(codes)
        text_ge = None if ge is None else self.text_condition(ge)
        _, m_p, logs_p, y_mask = self.enc_p(quantized, y_lengths, text, text_lengths, text_ge, speed)
        z_p = m_p + torch.randn_like(m_p) * torch.exp(logs_p) * noise_scale if noise_scale else m_p
        z = self.flow(z_p, y_mask, g=ge, reverse=True)
        return self.dec(z * y_mask, g=ge).to(z.dtype)  # float32 even from a bfloat16 decoder

    def semantic_features(self, codes: Tensor) -> Tensor:
        """Codes [n_q, B, T25] → codebook vectors at 50 Hz [B, ssl_dim, T] (each repeated, nearest)."""
        quantized = self.quantizer.decode(codes)
        if self.cfg.semantic_upsample != 1:
            quantized = F.interpolate(quantized, size=quantized.shape[-1] * self.cfg.semantic_upsample,
                                      mode="nearest")
        return quantized

    @torch.no_grad()
    def extract_latent(self, ssl: Tensor) -> Tensor:
        """HuBERT features [B, ssl_dim, T50] → codes [B, n_q, T25].

        Note the layout: upstream returns ``codes.transpose(0, 1)`` here, i.e. (batch, n_q, T), while
        :meth:`decode` takes (n_q, batch, T); with B = n_q = 1 both are [1, 1, T25] and callers use ``[0, 0]``.
        """
        return self.quantizer.encode(self.ssl_proj(ssl)).transpose(0, 1)

    # ----------------------------------------------------------------------------------------------- training

    def forward(self, ssl: Tensor, y: Tensor, y_lengths: Tensor, text: Tensor, text_lengths: Tensor,
                sv_emb: Tensor | None = None) -> SoVITSTrainOutput:
        """Training pass: ssl [B, ssl_dim, T] HuBERT features, y [B, spec_channels, T] linear spectrogram,
        text [B, L] phone ids; Pro versions also take each item's speaker embedding ``sv_emb`` [B, sv_dim].
        Needs ``enc_q``."""
        if not self.has_posterior:
            raise RuntimeError("this SynthesizerTrn was built without enc_q (inference layout); build it with "
                               "with_posterior=True to train")
        y_mask = sequence_mask(y_lengths, y.shape[2]).unsqueeze(1).to(y.dtype)
        ge = self._style(self.ref_enc(y[:, : self.cfg.reference_bins] * y_mask, y_mask), sv_emb)
        if self.cfg.freeze_quantizer:
            # As upstream: eval mode, so no codebook EMA update and no straight-through estimator; the codes
            # are then a plain lookup and ssl_proj gets no gradient (it stays in the optimizer, unchanged).
            self.ssl_proj.eval()
            self.quantizer.eval()
        with torch.autocast(device_type=ssl.device.type, enabled=False):
            quantized, _, commit_loss = self.quantizer(self.ssl_proj(ssl.to(self.ssl_proj.weight.dtype)))
        if self.cfg.semantic_upsample != 1:
            quantized = F.interpolate(quantized, size=quantized.shape[-1] * self.cfg.semantic_upsample,
                                      mode="nearest")
        _, m_p, logs_p, y_mask = self.enc_p(quantized, y_lengths, text, text_lengths, self.text_condition(ge))
        z, m_q, logs_q, y_mask = self.enc_q(y, y_lengths, g=ge)
        z_p = self.flow(z, y_mask, g=ge)
        z_slice, starts = rand_slice_segments(z, y_lengths, self.cfg.segment_frames)
        audio = self.dec(z_slice, g=ge)
        return SoVITSTrainOutput(audio, commit_loss, starts, y_mask, z, z_p, m_p, logs_p, m_q, logs_q, quantized, ge)
