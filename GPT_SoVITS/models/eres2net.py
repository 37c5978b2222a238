"""ERes2NetV2, the speaker-verification network of v2Pro/v2ProPlus (3D-Speaker's architecture).

Only the path GPT-SoVITS uses is implemented as ``forward``: log-mel fbank [B, T, feat_dim] → the fused
stage-3/stage-4 feature map [B, C4, F4, T4] → its mean over time, flattened channel-major, [B, C4·F4]
(20480 values for the pretrained network: 2048 channels × 10 frequency rows). The time-pooling layer and the
192-dim ``seg_1`` projection of the original network exist only as weights (``seg_1`` is kept so that
upstream's ``sv/pretrained_eres2netv2w24s4ep4.ckpt`` loads strictly; it is never called).

Module and parameter names follow the checkpoint's keys (``conv1``, ``layer3.0.fuse_models.1.local_att.3``,
``layer3_ds``, ``fuse34``, ``seg_1``), registered in the checkpoint's order.

Shapes for the pretrained configuration (m_channels 64, base width 24, scale 4, expansion 4, 80 bins):

====== ====== ======== ============ ===============
stage  blocks  planes  block width  output [C, F]
====== ====== ======== ============ ===============
stem      –       –         –        [64, 80]
1         3      64        24        [256, 80]
2         4     128        48        [512, 40]
3         6     256        96        [1024, 20]  (AFF fusion inside blocks)
4         3     512       192        [2048, 10]  (AFF fusion inside blocks)
====== ====== ======== ============ ===============

Stride-2 stages halve frequency and time, rounding up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

#: Upper bound of the clipped ReLU used inside the residual blocks (the stem uses a plain ReLU).
ACTIVATION_CLIP = 20.0


@dataclass(frozen=True)
class ERes2NetV2Config:
    """Architecture of an ERes2NetV2 (defaults: upstream's ``ERes2NetV2(baseWidth=24, scale=4, expansion=4)``)."""

    feat_dim: int = 80  # fbank bins (the image height)
    m_channels: int = 64  # stem width; stage i has m_channels·2^i "planes"
    base_width: int = 24  # block width = floor(planes · base_width / 64)
    scale: int = 4  # sub-bands per block (each block_width channels wide)
    expansion: int = 4  # block output channels = planes · expansion
    num_blocks: tuple[int, int, int, int] = (3, 4, 6, 3)
    embedding_size: int = 192  # seg_1's output (weights only)
    aff_reduction: int = 4  # AFF bottleneck: channels // aff_reduction

    def planes(self, stage: int) -> int:
        return self.m_channels * 2 ** stage

    def block_width(self, stage: int) -> int:
        return int(math.floor(self.planes(stage) * self.base_width / 64.0))

    def stage_channels(self, stage: int) -> int:
        return self.planes(stage) * self.expansion

    @property
    def out_freq(self) -> int:
        """Frequency rows after the three stride-2 stages (ceil halving): 80 → 10."""
        freq = self.feat_dim
        for _ in range(3):
            freq = -(-freq // 2)
        return freq

    @property
    def embedding_dim(self) -> int:
        """Width of the speaker embedding (``forward``'s output): 2048 · 10 = 20480 for the pretrained network."""
        return self.stage_channels(3) * self.out_freq

    @property
    def stats_dim(self) -> int:
        """``seg_1``'s input width (mean and std statistics as upstream sizes them; only the weight shape uses it)."""
        return 2 * (self.feat_dim // 8) * self.m_channels * 8 * self.expansion

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor]) -> ERes2NetV2Config:
        """Infer the architecture from a checkpoint's shapes (upstream stores no config).

        ``feat_dim`` is read back from ``seg_1``'s width, which upstream sizes with ``feat_dim // 8``, so it
        comes back as a multiple of 8 (80 for every real file). Raises ``KeyError`` or ``ValueError`` when the
        tensors do not describe an ERes2NetV2; the caller still loads strictly, which checks every other shape.
        """
        m_channels = int(state_dict["conv1.weight"].shape[0])
        num_blocks = tuple(len({key.split(".")[1] for key in state_dict if key.startswith(f"layer{i}.")})
                           for i in range(1, 5))
        if min(num_blocks) < 1:
            raise ValueError(f"blocks per stage {num_blocks}: every stage needs at least one block")
        scale = len({key.split(".")[3] for key in state_dict if key.startswith("layer1.0.convs.")})
        expansion = int(state_dict["layer1.0.conv3.weight"].shape[0]) // m_channels
        width4 = int(state_dict["layer4.0.convs.0.weight"].shape[0])
        # the largest stage pins base_width down best: width4 = floor(8·m·bw / 64)
        base_width = math.ceil(width4 * 64 / (8 * m_channels))
        fuse_channels = int(state_dict["fuse34.local_att.3.weight"].shape[0])
        aff_reduction = fuse_channels // int(state_dict["fuse34.local_att.0.weight"].shape[0])
        seg_in, unit = int(state_dict["seg_1.weight"].shape[1]), 2 * m_channels * 8 * expansion
        if seg_in % unit:
            raise ValueError(f"seg_1 input width {seg_in} is not a multiple of {unit}")
        cfg = cls(feat_dim=8 * (seg_in // unit), m_channels=m_channels, base_width=base_width, scale=scale,
                  expansion=expansion, num_blocks=num_blocks,  # type: ignore[arg-type]
                  embedding_size=int(state_dict["seg_1.weight"].shape[0]), aff_reduction=aff_reduction)
        if any(int(state_dict[f"layer{i + 1}.0.convs.0.weight"].shape[0]) != cfg.block_width(i) for i in range(4)):
            raise ValueError("block widths do not follow one base width")
        return cfg


def clipped_relu(x: Tensor) -> Tensor:
    """ReLU clipped at 20, in place: every caller passes a fresh intermediate that nothing else reads."""
    return F.hardtanh(x, 0.0, ACTIVATION_CLIP, inplace=True)


@torch.no_grad()
def fold_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Identity:
    """Fold an eval-mode BatchNorm into the convolution before it; returns the Identity that replaces ``bn``.

    ``conv`` gains a bias. The fold is computed in float64, so outputs change only by float rounding.
    """
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    weight = conv.weight.double() * scale.view(-1, *([1] * (conv.weight.dim() - 1)))
    conv.weight = nn.Parameter(weight.to(conv.weight.dtype), requires_grad=False)
    conv.bias = nn.Parameter((bn.bias.double() + (bias - bn.running_mean.double()) * scale).to(conv.weight.dtype),
                             requires_grad=False)
    return nn.Identity()


class AFF(nn.Module):
    """Attentional feature fusion: a learnt per-position mix ``x·m + y·(2 − m)``, m = 1 + tanh(attention)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        inner = channels // reduction
        self.local_att = nn.Sequential(
            nn.Conv2d(2 * channels, inner, kernel_size=1), nn.BatchNorm2d(inner), nn.SiLU(),
            nn.Conv2d(inner, channels, kernel_size=1), nn.BatchNorm2d(channels))

    def fold_batch_norms(self) -> None:
        self.local_att[1] = fold_batch_norm(self.local_att[0], self.local_att[1])
        self.local_att[4] = fold_batch_norm(self.local_att[3], self.local_att[4])

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        mix = 1.0 + torch.tanh(self.local_att(torch.cat((x, y), dim=1)))
        return x * mix + y * (2.0 - mix)


class ERes2NetV2Block(nn.Module):
    """Res2Net-style block: 1×1 expand, ``scale`` hierarchical 3×3 sub-band convs, 1×1 project, residual.

    Sub-band i ≥ 1 joins the running value by addition (stages 1–2) or by :class:`AFF` (stages 3–4).
    """

    def __init__(self, in_channels: int, planes: int, stride: int, cfg: ERes2NetV2Config, stage: int,
                 fuse: bool) -> None:
        super().__init__()
        width = cfg.block_width(stage)
        out_channels = planes * cfg.expansion
        self.width = width
        self.conv1 = nn.Conv2d(in_channels, width * cfg.scale, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(width * cfg.scale)
        self.convs = nn.ModuleList(nn.Conv2d(width, width, kernel_size=3, padding=1, bias=False)
                                   for _ in range(cfg.scale))
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(cfg.scale))
        if fuse:
            self.fuse_models = nn.ModuleList(AFF(width, cfg.aff_reduction) for _ in range(cfg.scale - 1))
        self.conv3 = nn.Conv2d(width * cfg.scale, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride,
                                                    bias=False), nn.BatchNorm2d(out_channels))

    def fold_batch_norms(self) -> None:
        self.bn1 = fold_batch_norm(self.conv1, self.bn1)
        for i, conv in enumerate(self.convs):
            self.bns[i] = fold_batch_norm(conv, self.bns[i])
        for fuser in getattr(self, "fuse_models", ()):
            fuser.fold_batch_norms()
        self.bn3 = fold_batch_norm(self.conv3, self.bn3)
        if len(self.shortcut):
            self.shortcut[1] = fold_batch_norm(self.shortcut[0], self.shortcut[1])

    def forward(self, x: Tensor) -> Tensor:
        bands = torch.split(clipped_relu(self.bn1(self.conv1(x))), self.width, dim=1)
        fusers = getattr(self, "fuse_models", None)
        outputs = []
        running = bands[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            if i > 0:
                running = fusers[i - 1](running, bands[i]) if fusers is not None else running + bands[i]
            running = clipped_relu(bn(conv(running)))
            outputs.append(running)
        out = self.bn3(self.conv3(torch.cat(outputs, dim=1)))
        return clipped_relu(out + self.shortcut(x))


class ERes2NetV2(nn.Module):
    """Speaker-embedding network: fbank [B, T, feat_dim] → embedding [B, :attr:`embedding_dim`]."""

    def __init__(self, cfg: ERes2NetV2Config = ERes2NetV2Config()) -> None:
        super().__init__()
        self.config = cfg
        self.conv1 = nn.Conv2d(1, cfg.m_channels, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cfg.m_channels)
        in_channels = cfg.m_channels
        for stage, blocks in enumerate(cfg.num_blocks):
            layer = []
            for index in range(blocks):
                stride = 2 if stage > 0 and index == 0 else 1
                layer.append(ERes2NetV2Block(in_channels, cfg.planes(stage), stride, cfg, stage, fuse=stage >= 2))
                in_channels = cfg.stage_channels(stage)
            self.add_module(f"layer{stage + 1}", nn.Sequential(*layer))
        self.layer3_ds = nn.Conv2d(cfg.stage_channels(2), cfg.stage_channels(3), kernel_size=3, stride=2, padding=1,
                                   bias=False)
        self.fuse34 = AFF(cfg.stage_channels(3), cfg.aff_reduction)
        self.seg_1 = nn.Linear(cfg.stats_dim, cfg.embedding_size)  # weights only: forward never uses it
        self.prepared = False

    @property
    def embedding_dim(self) -> int:
        return self.config.embedding_dim

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, Tensor], cfg: ERes2NetV2Config | None = None,
                        device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> ERes2NetV2:
        """Build straight from weights (strict), skipping random initialisation; the model is in eval mode.

        ``cfg`` defaults to :meth:`ERes2NetV2Config.from_state_dict`. BatchNorm ``num_batches_tracked``
        counters may be absent (they are unused in eval). ``state_dict`` itself is not modified.
        """
        cfg = cfg or ERes2NetV2Config.from_state_dict(state_dict)
        weights = {key: value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype, copy=True)
                   for key, value in state_dict.items()}
        with torch.device("meta"):
            model = cls(cfg)
        for name, module in model.named_modules():
            if isinstance(module, nn.BatchNorm2d):
                weights.setdefault(f"{name}.num_batches_tracked", torch.zeros((), dtype=torch.long, device=device))
        model.load_state_dict(weights, strict=True, assign=True)
        return model.eval()

    def prepare_for_inference(self) -> ERes2NetV2:
        """Fold every BatchNorm into its convolution and switch to channels-last layout (eval only).

        About 5× faster on CPU (oneDNN prefers channels-last; the folds remove 157 BatchNorm passes); the
        embedding moves by float rounding only (≈ 3e-4 on values up to 70, against the kit's 2e-3). The state
        dict then has conv biases instead of BatchNorm entries, so prepare only models used for inference.
        """
        if self.prepared:
            return self
        self.eval()
        self.bn1 = fold_batch_norm(self.conv1, self.bn1)
        for stage in range(1, 5):
            for block in getattr(self, f"layer{stage}"):
                block.fold_batch_norms()
        self.fuse34.fold_batch_norms()
        self.to(memory_format=torch.channels_last)
        self.prepared = True
        return self

    def feature_map(self, fbank: Tensor) -> Tensor:
        """fbank [B, T, F] → fused stage-3/4 map [B, C4, F4, T4] (upstream ``forward3`` before its mean)."""
        x = fbank.transpose(1, 2).unsqueeze(1)  # [B, 1, F, T]: frequency is the image height
        if self.prepared:
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        stage3 = self.layer3(x)
        stage4 = self.layer4(stage3)
        return self.fuse34(stage4, self.layer3_ds(stage3))

    def forward(self, fbank: Tensor) -> Tensor:
        """fbank [B, T, F] → embedding [B, C4·F4]: channel-major flatten, plain mean over every frame.

        Padded frames count like real ones, so a batch of zero-padded clips does not give each clip's own
        embedding; embed clips of different lengths one at a time.
        """
        return self.feature_map(fbank).flatten(1, 2).mean(dim=-1)
