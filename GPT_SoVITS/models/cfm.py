"""The conditional flow-matching (CFM) mel generator of SoVITS v3/v4 and its diffusion transformer (DiT).

Given a condition sequence ``fea`` (the 512-wide output of ``wns1``) and a prompt mel, the CFM integrates a
learned velocity field from Gaussian noise (t = 0) to a normalised 100-band log-mel (t = 1) in a few Euler steps.
The network is F5-TTS's DiT as GPT-SoVITS configures it (compat kit v4 §3):

* a ConvNeXt-V2 text branch on ``fea`` (with a sinusoidal position table) computed once per call,
* an input projection of [noisy mel ; prompt mel ; text branch] plus a grouped convolutional position embedding,
* ``depth`` transformer blocks with adaptive LayerNorm-zero modulation from time + step-size embeddings,
* rotary positions applied to the full query/key width *before* the head split, so only the first
  ``dim_head`` channels (head 0) rotate (upstream's x_transformers behaviour; the pretrained weights rely on it).

Shapes: B batch, n frames (100/s for v4, 93.75/s for v3). Module attribute names are upstream's state-dict keys
(``time_embed.time_mlp``, ``text_embed.text_blocks``, ``input_embed.conv_pos_embed.conv1d``, ``rotary_embed``,
``transformer_blocks.N.attn.to_q``, ``ff.ff.0.0``, ``norm_out.linear``, ``proj_out``…).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from GPT_SoVITS.models.commons import sequence_mask

LN_EPS = 1e-6


@dataclass(frozen=True)
class DiTConfig:
    """Architecture of the CFM's DiT; the defaults are the v3/v4 pretrained model (upstream hard-wires them)."""

    dim: int = 1024  # transformer width
    depth: int = 22  # transformer blocks
    heads: int = 16
    dim_head: int = 64  # heads · dim_head is the attention width; the rotary table covers dim_head channels
    ff_mult: int = 2  # feed-forward width = ff_mult · dim
    mel_dim: int = 100  # mel bands generated (and of the prompt)
    cond_dim: int = 512  # width of the condition "fea" (= the model's wns1 width)
    text_blocks: int = 4  # ConvNeXt-V2 blocks of the text branch
    text_mult: int = 2  # their inner width = text_mult · cond_dim
    dropout: float = 0.1  # attention-output and feed-forward dropout (training only)
    time_freq_dim: int = 256  # sinusoid size of the time / step-size embeddings
    conv_pos_kernel: int = 31
    conv_pos_groups: int = 16
    max_positions: int = 4096  # text-branch position table length; later frames reuse the last row

    def __post_init__(self) -> None:
        if self.dim % self.conv_pos_groups:
            raise ValueError(f"dim ({self.dim}) must be a multiple of conv_pos_groups ({self.conv_pos_groups})")
        if self.conv_pos_kernel % 2 == 0:
            raise ValueError(f"conv_pos_kernel must be odd, got {self.conv_pos_kernel}")
        for name in ("dim_head", "cond_dim", "time_freq_dim"):
            if getattr(self, name) % 2:
                raise ValueError(f"{name} must be even, got {getattr(self, name)}")
        if self.time_freq_dim < 4:
            raise ValueError(f"time_freq_dim must be at least 4, got {self.time_freq_dim}")


# ------------------------------------------------------------------------------------------------ embeddings


def timestep_sinusoid(t: Tensor, dim: int, scale: float = 1000.0) -> Tensor:
    """[B] times → [B, dim]: sines then cosines of scale·t·w_k, w_k = exp(-k·ln(10000) / (dim/2 - 1))."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
    angles = scale * t.unsqueeze(1) * freqs.unsqueeze(0)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    """Time (or step-size) → [B, dim]: sinusoid, Linear, SiLU, Linear (keys ``time_mlp.0`` / ``time_mlp.2``)."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        return self.time_mlp(timestep_sinusoid(t, self.freq_dim).to(t.dtype))


def text_position_table(length: int, dim: int, max_positions: int, device: torch.device | str | None = None,
                        theta: float = 10000.0) -> Tensor:
    """[length, dim] float32 rows [cos(i·θ_j) ; sin(i·θ_j)], θ_j = theta^(-2j/dim), i clamped to max_positions-1.

    Upstream precomputes max_positions rows once; each row only depends on i, so computing the rows needed
    gives the same values (and no non-persistent buffer has to survive meta-device construction).
    """
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, device=device)[: dim // 2].float() / dim))
    positions = torch.arange(length, device=device).clamp(max=max_positions - 1).float()
    angles = torch.outer(positions, freqs)
    return torch.cat((angles.cos(), angles.sin()), dim=-1)


class GRN(nn.Module):
    """Global response normalisation (ConvNeXt-V2) over the *frame* axis of [B, n, C]."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        gx = torch.norm(x, p=2, dim=1, keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    """x + pwconv2(GRN(GELU(pwconv1(LN(dwconv(x)))))) on [B, n, C]; depthwise kernel 7 over frames."""

    def __init__(self, dim: int, inner_dim: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.pwconv1 = nn.Linear(dim, inner_dim)
        self.act = nn.GELU()
        self.grn = GRN(inner_dim)
        self.pwconv2 = nn.Linear(inner_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x.transpose(1, 2)).transpose(1, 2)
        y = self.pwconv2(self.grn(self.act(self.pwconv1(self.norm(y)))))
        return x + y


class TextEmbedding(nn.Module):
    """The text branch on the condition ``fea`` [B, n, C]: position table, then ConvNeXt-V2 blocks.

    GRN normalises over all frames, so the output of a frame depends on the whole sequence it is part of.
    """

    def __init__(self, dim: int, n_blocks: int, mult: int, max_positions: int) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.text_blocks = nn.Sequential(*(ConvNeXtV2Block(dim, dim * mult) for _ in range(n_blocks)))

    def forward(self, text: Tensor, drop_text: bool = False) -> Tensor:
        if drop_text:
            text = torch.zeros_like(text)
        table = text_position_table(text.shape[1], text.shape[2], self.max_positions, text.device)
        return self.text_blocks(text + table.to(text.dtype))


class ConvPositionEmbedding(nn.Module):
    """Two grouped convolutions over frames, each followed by Mish; padded frames are zeroed around it."""

    def __init__(self, dim: int, kernel_size: int = 31, groups: int = 16) -> None:
        super().__init__()
        self.conv1d = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=kernel_size // 2), nn.Mish(),
            nn.Conv1d(dim, dim, kernel_size, groups=groups, padding=kernel_size // 2), nn.Mish(),
        )

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is not None:
            x = x.masked_fill(~mask.unsqueeze(-1), 0.0)
        out = self.conv1d(x.transpose(1, 2)).transpose(1, 2)
        return out.masked_fill(~mask.unsqueeze(-1), 0.0) if mask is not None else out


class InputEmbedding(nn.Module):
    """[noisy mel ; prompt mel ; text branch] → width ``dim``, plus the convolutional position embedding."""

    def __init__(self, mel_dim: int, text_dim: int, dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.proj = nn.Linear(mel_dim * 2 + text_dim, dim)
        self.conv_pos_embed = ConvPositionEmbedding(dim, kernel_size, groups)

    def forward(self, x: Tensor, cond: Tensor, text_embed: Tensor, mask: Tensor | None = None) -> Tensor:
        h = self.proj(torch.cat((x, cond, text_embed), dim=-1))
        return self.conv_pos_embed(h, mask) + h


class RotaryEmbedding(nn.Module):
    """Rotary frequencies (x_transformers layout). ``inv_freq`` is a persistent buffer: it is in the files."""

    def __init__(self, dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)))

    def rotation(self, length: int) -> tuple[Tensor, Tensor]:
        """(cos, sin) [length, dim] float32 of the angles i·inv_freq, each repeated for both channels of a pair."""
        positions = torch.arange(length, device=self.inv_freq.device).float()
        angles = (positions[:, None] * self.inv_freq.float()[None, :]).repeat_interleave(2, dim=-1)
        return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, rotation: tuple[Tensor, Tensor]) -> Tensor:
    """Rotate the first ``rot`` channels of x [B, n, C] in interleaved pairs by ``rotation`` = (cos, sin) [n, rot]
    (see :meth:`RotaryEmbedding.rotation`); the other channels pass through.

    Pair (u, v) → (u·cos − v·sin, v·cos + u·sin). Computed in float32, returned in x's dtype.
    """
    cos, sin = rotation
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot].float(), x[..., rot:]
    u, v = x_rot.unflatten(-1, (rot // 2, 2)).unbind(-1)
    rotated_half = torch.stack((-v, u), dim=-1).flatten(-2)
    out = x_rot * cos + rotated_half * sin
    return torch.cat((out.to(x.dtype), x_pass), dim=-1)


# ---------------------------------------------------------------------------------------------- transformer


class Attention(nn.Module):
    """Multi-head self-attention with rotary positions on the un-split query/key (see the module docstring)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dim_head = dim_head
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(dropout)])

    def forward(self, x: Tensor, rotation: tuple[Tensor, Tensor], mask: Tensor | None = None) -> Tensor:
        """x [B, n, dim], rotation (cos, sin) [n, dim_head], mask [B, n] (True = valid) → [B, n, dim]."""
        batch, length, _ = x.shape
        q = apply_rotary(self.to_q(x), rotation)
        k = apply_rotary(self.to_k(x), rotation)
        v = self.to_v(x)
        q, k, v = (t.view(batch, length, self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v))
        attn_mask = mask[:, None, None, :] if mask is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        out = out.transpose(1, 2).reshape(batch, length, self.heads * self.dim_head)
        out = self.to_out[1](self.to_out[0](out))
        return out.masked_fill(~mask.unsqueeze(-1), 0.0) if mask is not None else out


class FeedForward(nn.Module):
    """Linear → tanh-GELU → dropout → Linear (keys ``ff.0.0`` and ``ff.2``)."""

    def __init__(self, dim: int, mult: int, dropout: float) -> None:
        super().__init__()
        inner = dim * mult
        self.ff = nn.Sequential(nn.Sequential(nn.Linear(dim, inner), nn.GELU(approximate="tanh")),
                                nn.Dropout(dropout), nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(x)


class AdaLayerNormZero(nn.Module):
    """Modulation of a block: Linear(SiLU(e)) → shift/scale/gate for attention, then for the feed-forward."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 6)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=LN_EPS)

    def forward(self, x: Tensor, emb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        shift1, scale1, gate1, shift2, scale2, gate2 = torch.chunk(self.linear(self.silu(emb)), 6, dim=1)
        x = self.norm(x) * (1 + scale1[:, None]) + shift1[:, None]
        return x, gate1, shift2, scale2, gate2


class AdaLayerNormZeroFinal(nn.Module):
    """Final modulation: Linear(SiLU(e)) → scale then shift (note: the opposite order of the blocks)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, dim * 2)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=LN_EPS)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        scale, shift = torch.chunk(self.linear(self.silu(emb)), 2, dim=1)
        return self.norm(x) * (1 + scale)[:, None, :] + shift[:, None, :]


class DiTBlock(nn.Module):
    """h + gate₁·attn(mod₁(h)), then + gate₂·ff(mod₂(h))."""

    def __init__(self, dim: int, heads: int, dim_head: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = AdaLayerNormZero(dim)
        self.attn = Attention(dim, heads, dim_head, dropout)
        self.ff_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=LN_EPS)
        self.ff = FeedForward(dim, ff_mult, dropout)

    def forward(self, x: Tensor, emb: Tensor, rotation: tuple[Tensor, Tensor], mask: Tensor | None = None) -> Tensor:
        normed, gate1, shift2, scale2, gate2 = self.attn_norm(x, emb)
        x = x + gate1.unsqueeze(1) * self.attn(normed, rotation, mask)
        normed = self.ff_norm(x) * (1 + scale2[:, None]) + shift2[:, None]
        return x + gate2.unsqueeze(1) * self.ff(normed)


class DiT(nn.Module):
    """The velocity network (``cfm.estimator``). All tensors frames-first: [B, n, C]."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.time_embed = TimestepEmbedding(cfg.dim, cfg.time_freq_dim)
        self.d_embed = TimestepEmbedding(cfg.dim, cfg.time_freq_dim)
        self.text_embed = TextEmbedding(cfg.cond_dim, cfg.text_blocks, cfg.text_mult, cfg.max_positions)
        self.input_embed = InputEmbedding(cfg.mel_dim, cfg.cond_dim, cfg.dim, cfg.conv_pos_kernel,
                                          cfg.conv_pos_groups)
        self.rotary_embed = RotaryEmbedding(cfg.dim_head)
        self.transformer_blocks = nn.ModuleList(
            DiTBlock(cfg.dim, cfg.heads, cfg.dim_head, cfg.ff_mult, cfg.dropout) for _ in range(cfg.depth))
        self.norm_out = AdaLayerNormZeroFinal(cfg.dim)
        self.proj_out = nn.Linear(cfg.dim, cfg.mel_dim)
        self.gradient_checkpointing = False  # recompute block activations in backward (training memory)

    def predict(self, x: Tensor, cond: Tensor, text_embed: Tensor, emb: Tensor, mask: Tensor | None = None) -> Tensor:
        """Velocity [B, n, mel] from the noisy mel x, prompt mel ``cond`` [B, n, mel], the text-branch output
        [B, n, cond_dim] and the summed time + step-size embedding ``emb`` [B, dim]; mask [B, n] or None."""
        h = self.input_embed(x, cond, text_embed, mask)
        rotation = self.rotary_embed.rotation(x.shape[1])
        for block in self.transformer_blocks:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                h = checkpoint(block, h, emb, rotation, mask, use_reentrant=False)
            else:
                h = block(h, emb, rotation, mask)
        return self.proj_out(self.norm_out(h, emb))

    def forward(self, x: Tensor, cond: Tensor, text: Tensor, time: Tensor, dt: Tensor, mask: Tensor | None = None,
                drop_audio_cond: bool = False, drop_text: bool = False) -> Tensor:
        """One network call: x, cond [B, n, mel], text (the condition ``fea``) [B, n, cond_dim], time and
        step size [B] → velocity [B, n, mel]. ``drop_*`` zero the prompt / condition (classifier-free guidance)."""
        if drop_audio_cond:
            cond = torch.zeros_like(cond)
        emb = self.time_embed(time) + self.d_embed(dt)
        return self.predict(x, cond, self.text_embed(text, drop_text), emb, mask)


# ------------------------------------------------------------------------------------------------------ CFM


class CFM(nn.Module):
    """Flow-matching wrapper around the DiT (``cfm``; its only child is ``estimator``)."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.in_channels = cfg.mel_dim
        self.estimator = DiT(cfg)

    @torch.no_grad()
    def inference(self, mu: Tensor, x_lens: Tensor, prompt: Tensor, n_timesteps: int, temperature: float = 1.0,
                  inference_cfg_rate: float = 0.0, *, noise: Tensor | None = None,
                  generator: torch.Generator | None = None) -> Tensor:
        """Sample a normalised mel by Euler integration from t = 0 to 1 in ``n_timesteps`` equal steps.

        Parameters
        ----------
        mu : the condition ``fea``, frames first [B, n, cond_dim] (upstream's layout for this call).
        x_lens : valid frames per item [B] (n at inference; shorter items get attention masks).
        prompt : the prompt mel [B, mel, p], p ≤ n: conditions the first p frames, which are held at zero in the
            state and dropped by callers.
        n_timesteps : Euler steps; the step size 1/n_timesteps is also a network input.
        temperature : std of the starting noise.
        inference_cfg_rate : classifier-free guidance strength (0 = off, upstream's setting everywhere).
        noise : [B, mel, n] used instead of the random draw (then ``temperature`` is not applied).
        generator : source of the random draw when ``noise`` is None.

        Returns
        -------
        [B, mel, n]; the first p columns are zero.
        """
        batch, length = mu.shape[0], mu.shape[1]
        if n_timesteps < 1:
            raise ValueError(f"n_timesteps must be at least 1, got {n_timesteps}")
        if prompt.shape[-1] > length:
            raise ValueError(f"the prompt ({prompt.shape[-1]} frames) is longer than the condition ({length})")
        if noise is None:
            x = torch.randn(batch, self.in_channels, length, device=mu.device, dtype=mu.dtype,
                            generator=generator) * temperature
        else:
            if tuple(noise.shape) != (batch, self.in_channels, length):
                raise ValueError(f"noise must be shaped {(batch, self.in_channels, length)}, got {tuple(noise.shape)}")
            x = noise.to(device=mu.device, dtype=mu.dtype, copy=True)
        prompt_len = prompt.shape[-1]
        cond = torch.zeros_like(x)
        cond[:, :, :prompt_len] = prompt[:, :, :prompt_len]
        x[:, :, :prompt_len] = 0
        cond = cond.transpose(1, 2)
        x_lens = torch.as_tensor(x_lens, device=mu.device).reshape(-1)
        mask = sequence_mask(x_lens, length) if bool((x_lens < length).any()) else None

        net = self.estimator
        step = 1.0 / n_timesteps
        d_emb = net.d_embed(torch.full((batch,), step, device=mu.device, dtype=mu.dtype))
        text = net.text_embed(mu)  # does not depend on t: once per call
        guided = inference_cfg_rate > 1e-5
        text_null = net.text_embed(mu, drop_text=True) if guided else None
        t = 0.0
        for _ in range(n_timesteps):
            emb = net.time_embed(torch.ones(batch, device=mu.device, dtype=mu.dtype) * t) + d_emb
            x_t = x.transpose(1, 2)
            v = net.predict(x_t, cond, text, emb, mask)
            if guided:
                v_null = net.predict(x_t, torch.zeros_like(cond), text_null, emb, mask)
                v = v + (v - v_null) * inference_cfg_rate
            x = x + step * v.transpose(1, 2)
            t = t + step
            x[:, :, :prompt_len] = 0
        return x

    def forward(self, x1: Tensor, x_lens: Tensor, prompt_lens: Tensor, mu: Tensor, use_grad_ckpt: bool = False,
                shortcut_probability: float = 0.3) -> Tensor:
        """Flow-matching training loss (spec §14.4) on a batch of normalised mels.

        x1 [B, mel, n] target mels, x_lens [B] their lengths, prompt_lens [B] prompt frames per item, mu [B,
        cond_dim, n] the condition (channels first, as the model produces it). Returns a scalar: the mean over
        items of the squared velocity error on frames ``prompt_len … x_len``. With ``shortcut_probability``
        (upstream: 0.3) per batch the
        target is a two-step shortcut (the detached network's mean velocity over two steps of size d = 2^-k,
        k ∈ 2…7) and the prediction gets step size 2d; otherwise the target is x1 − x0 at step size 0.
        """
        batch, _, length = x1.shape
        net = self.estimator
        net.gradient_checkpointing = use_grad_ckpt
        x1 = x1.transpose(1, 2)  # [B, n, mel]
        mu = mu.transpose(1, 2)
        frames = torch.arange(length, device=x1.device)
        valid = frames[None, :] < x_lens[:, None]  # [B, n]
        in_prompt = (frames[None, :] < prompt_lens[:, None]).unsqueeze(-1)
        t = torch.rand(batch, device=x1.device, dtype=x1.dtype)
        x0 = torch.randn_like(x1)
        xt = (x0 + t[:, None, None] * (x1 - x0)).masked_fill(in_prompt, 0.0)
        cond = x1.masked_fill(~in_prompt, 0.0)
        target = x1 - x0
        d_input = torch.zeros_like(t)
        if torch.rand(()) < shortcut_probability:
            k = torch.randint(2, 8, (batch,), device=x1.device)
            d = torch.pow(2.0, -k.to(x1.dtype))
            d_small = torch.where(d < 0.01, torch.zeros_like(d), d)
            with torch.no_grad():
                v1 = net(xt, cond, mu, t, d_small, valid)
                x_mid = (xt + d[:, None, None] * v1).masked_fill(in_prompt, 0.0)
                v2 = net(x_mid, cond, mu, t + d, d_small, valid)
                target = (v1 + v2) / 2
            d_input = 2 * d
        pred = net(xt, cond, mu, t, d_input, valid)
        counted = (valid.unsqueeze(-1) & ~in_prompt).to(pred.dtype)  # [B, n, 1]
        squared = ((pred - target) ** 2 * counted).sum(dim=(1, 2))
        per_item = squared / (counted.sum(dim=(1, 2)).clamp(min=1) * pred.shape[-1])
        return per_item.mean()
