"""The GPT text-to-semantic model (upstream's ``Text2SemanticDecoder``), with one KV-cache generator.

Shape legend: B batch, X text (phone) positions, P prompt/audio positions, S = X + P, D model width,
H heads, Dh = D / H, V audio vocabulary (1024 semantic codes + EOS), L layers.

Parameter names follow upstream's state dict *without* the Lightning wrapper's ``model.`` prefix
(``GPT_SoVITS.checkpoints`` adds and strips it), so upstream weights load with ``strict=True``.

Sequence layout used everywhere (training, prefill and decoding)::

    [ text block: left-padded to X ][ audio block: P positions ]

Each text item sits at the right end of its block, so its last phone is always at X - 1. Text positions
attend to all text positions (bidirectional); audio positions attend to all text and causally to audio;
padding is never attended to. Position-table indices count real tokens only, so a padded item gets the same
numbers as when it runs alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from GPT_SoVITS.config import ConfigError
from GPT_SoVITS.models.cpu_threads import intra_op_threads
from GPT_SoVITS.models.quant_linear import INT8_KIND, QUANT_KINDS, make_quantised, quantised_kernel_problem
from GPT_SoVITS.models.sampling import SamplingOptions, sample_step


@dataclass(frozen=True)
class T2SConfig:
    """Architecture of the GPT model; field names follow the ``model`` section of ``s1longer-v2.yaml``."""

    vocab_size: int = 1025  # 1024 semantic codes + EOS
    phoneme_vocab_size: int = 732  # v2 symbol table (v1 GPT configs use 512)
    embedding_dim: int = 512
    hidden_dim: int = 512
    head: int = 16
    linear_units: int = 2048  # feed-forward width
    n_layer: int = 24
    dropout: float = 0.0  # upstream's ``model.dropout``; recorded only: upstream's layers use a fixed 0.1
    eos: int = 1024  # upstream key ``EOS``
    random_bert: int = 0  # recorded for round trips; unused
    max_sec: int = 54  # ``data.max_sec``: upstream's early_stop_num is 50 * max_sec
    top_k: int = 15  # ``inference.top_k``: the default for sampling
    bert_dim: int = 1024  # width of the phone-level BERT features (fixed upstream)
    layer_dropout: float = 0.1  # the fixed dropout upstream uses in attention, FFN and position encodings

    def __post_init__(self) -> None:
        if self.embedding_dim != self.hidden_dim:
            raise ConfigError(f"T2S config: embedding_dim ({self.embedding_dim}) must equal hidden_dim "
                              f"({self.hidden_dim}); the model adds embeddings to the layer inputs directly")
        if self.hidden_dim % self.head:
            raise ConfigError(f"T2S config: hidden_dim {self.hidden_dim} is not divisible by head {self.head}")
        if not 0 <= self.eos < self.vocab_size:
            raise ConfigError(f"T2S config: EOS id {self.eos} is outside the vocabulary (size {self.vocab_size})")

    @classmethod
    def from_upstream(cls, config: Mapping[str, Any]) -> T2SConfig:
        """Build from upstream's config dict (the ``config`` of a GPT .ckpt, or ``s1longer*.yaml``)."""
        if "model" not in config or not isinstance(config["model"], Mapping):
            raise ConfigError("GPT config has no 'model' section; expected the dict stored as 'config' in a GPT "
                              "weights file (sections train/optimizer/data/model/inference)")
        model = dict(config["model"])
        known = {f for f in cls.__dataclass_fields__} | {"EOS"}
        kwargs: dict[str, Any] = {k: v for k, v in model.items() if k in known and k != "EOS"}
        if "EOS" in model:
            kwargs["eos"] = int(model["EOS"])
        data = config.get("data") or {}
        if "max_sec" in data:
            kwargs["max_sec"] = int(data["max_sec"])
        inference = config.get("inference") or {}
        if "top_k" in inference:
            kwargs["top_k"] = int(inference["top_k"])
        return cls(**kwargs)

    def to_upstream(self) -> dict[str, Any]:
        """The model/data/inference sections in upstream's spelling (merge into a full training config)."""
        model: dict[str, Any] = {}
        if self.bert_dim != 1024:  # only toy models change it; upstream has it fixed at 1024
            model["bert_dim"] = self.bert_dim
        return {
            "model": {**model, "vocab_size": self.vocab_size, "phoneme_vocab_size": self.phoneme_vocab_size,
                      "embedding_dim": self.embedding_dim, "hidden_dim": self.hidden_dim, "head": self.head,
                      "linear_units": self.linear_units, "n_layer": self.n_layer, "dropout": self.dropout,
                      "EOS": self.eos, "random_bert": self.random_bert},
            "data": {"max_sec": self.max_sec, "pad_val": self.eos},
            "inference": {"top_k": self.top_k},
        }

    @property
    def early_stop_num(self) -> int:
        """Upstream's inference limit: ``50 * max_sec`` (it uses hz=50 although tokens are 25 Hz)."""
        return 50 * self.max_sec


class TokenEmbedding(nn.Module):
    def __init__(self, num: int, dim: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(num, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


class SinePositionalEmbedding(nn.Module):
    """Adds ``alpha * PE[pos]``: interleaved sin (even channels) / cos (odd channels), learned gain ``alpha``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))

    def table(self, positions: torch.Tensor) -> torch.Tensor:
        """Sinusoids for integer ``positions`` of any shape: ``[..., dim]`` float32."""
        div_term = torch.exp(torch.arange(0, self.dim, 2, dtype=torch.float32, device=positions.device)
                             * -(math.log(10000.0) / self.dim))
        angles = positions.to(torch.float32).unsqueeze(-1) * div_term
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.table(positions).to(x.dtype)


class PackedSelfAttention(nn.Module):
    """Multi-head self-attention with one packed q/k/v projection (upstream keys ``in_proj_*``)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None, dropout: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` [B, S, D], ``allowed`` [B, 1, S, S] bool; returns output [B, S, D] and k, v [B, H, S, Dh]."""
        b, s, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).view(b, s, 3, self.heads, -1).permute(
            2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        return self.out_proj(out.transpose(1, 2).reshape(b, s, d)), k, v


class T2SLayer(nn.Module):
    """Post-norm transformer layer: ``x = LN(x + MHA(x)); x = LN(x + W2 relu(W1 x))``."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.self_attn = PackedSelfAttention(cfg.hidden_dim, cfg.head)
        self.linear1 = nn.Linear(cfg.hidden_dim, cfg.linear_units)
        self.linear2 = nn.Linear(cfg.linear_units, cfg.hidden_dim)
        self.norm1 = nn.LayerNorm(cfg.hidden_dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(cfg.hidden_dim, eps=1e-5)
        self.p = cfg.layer_dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.p if self.training else 0.0
        attn, k, v = self.self_attn(x, allowed, p)
        x = self.norm1(x + F.dropout(attn, p, self.training))
        ff = self.linear2(F.dropout(F.relu(self.linear1(x)), p, self.training))
        x = self.norm2(x + F.dropout(ff, p, self.training))
        return x, k, v


class T2SStack(nn.Module):
    """Holds the layers under upstream's key path ``h.layers.<i>``."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(T2SLayer(cfg) for _ in range(cfg.n_layer))


@dataclass
class T2SLoss:
    """Training outputs: summed cross-entropy (upstream's ``reduction="sum"``) and top-3 accuracy."""

    loss: torch.Tensor
    top3_acc: float
    n_targets: int  # target positions that are not EOS (the accuracy's denominator)


@dataclass
class GenerationResult:
    """Per input sequence: the generated tokens (EOS never included) and whether EOS ended it."""

    tokens: list[torch.Tensor]  # each [n_i] int64, on the model's device
    stopped_on_eos: list[bool]
    logits: list[torch.Tensor] | None = None  # each [n_steps_i, V]: raw output-layer logits (if requested)


def attention_allowed(valid: torch.Tensor, n_text: int) -> torch.Tensor:
    """Mask ``[B, 1, S, S]`` (True = may attend) for the layout [text block (n_text) ; audio block]."""
    s = valid.shape[1]
    idx = torch.arange(s, device=valid.device)
    is_text_key = idx < n_text
    causal_audio = (idx[:, None] >= n_text) & (idx[None, :] <= idx[:, None])  # [S(query), S(key)]
    structure = is_text_key[None, :] | causal_audio
    return (structure[None] & valid[:, None, :])[:, None]


def _left_align_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """Gather index ``[B, width]`` that moves each row's first ``lengths[b]`` entries to the right end."""
    shift = (width - lengths).unsqueeze(1)
    return (torch.arange(width, device=lengths.device).unsqueeze(0) - shift) % width


def left_align(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Right-padded ``[B, W]`` → left-padded (pads move to the left, order kept)."""
    return torch.gather(ids, 1, _left_align_index(lengths, ids.shape[1]))


def _block_positions(valid: torch.Tensor) -> torch.Tensor:
    return (valid.long().cumsum(dim=1) - 1).clamp_min(0)


class Text2SemanticDecoder(nn.Module):
    """GPT model: phones + phone-level BERT features (+ prompt codes) → semantic codes."""

    def __init__(self, cfg: T2SConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.embedding_dim
        self.bert_proj = nn.Linear(cfg.bert_dim, d)
        self.ar_text_embedding = TokenEmbedding(cfg.phoneme_vocab_size, d)
        self.ar_text_position = SinePositionalEmbedding(d)
        self.ar_audio_embedding = TokenEmbedding(cfg.vocab_size, d)
        self.ar_audio_position = SinePositionalEmbedding(d)
        self.h = T2SStack(cfg)
        self.ar_predict_layer = nn.Linear(cfg.hidden_dim, cfg.vocab_size, bias=False)
        self._quantised: list[list[Any]] | None = None  # per layer: the four projections (enable_quantised_decoding)
        self._quant_kind: str | None = None
        # at most this many CPU intra-op threads during decode steps (None: torch's setting); see cpu_threads
        self.decode_threads: int | None = None

    # ------------------------------------------------------------------ full-sequence pass
    def embed(self, text: torch.Tensor, text_valid: torch.Tensor, bert: torch.Tensor, audio: torch.Tensor,
              audio_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer input ``[B, X+P, D]`` and key validity ``[B, X+P]``.

        ``text`` [B, X] (left-padded), ``bert`` [B, bert_dim, X], ``audio`` [B, P]; ``*_valid`` mark real tokens.
        """
        p = self.cfg.layer_dropout if self.training else 0.0
        dtype = self.bert_proj.weight.dtype
        x = self.ar_text_embedding(text) + self.bert_proj(bert.transpose(1, 2).to(dtype))
        x = F.dropout(self.ar_text_position(x, _block_positions(text_valid)), p, self.training)
        y = self.ar_audio_embedding(audio)
        y = F.dropout(self.ar_audio_position(y, _block_positions(audio_valid)), p, self.training)
        return torch.cat([x, y], dim=1), torch.cat([text_valid, audio_valid], dim=1)

    def hidden_states(self, xy: torch.Tensor, valid: torch.Tensor, n_text: int
                      ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
        """Run all layers over a full sequence; returns ``[B, S, D]`` and each layer's k, v ``[B, H, S, Dh]``."""
        allowed = attention_allowed(valid, n_text)
        kv = []
        for layer in self.h.layers:
            xy, k, v = layer(xy, allowed)
            kv.append((k, v))
        return xy, kv

    def teacher_forced_logits(self, phones: torch.Tensor, bert: torch.Tensor, audio: torch.Tensor
                              ) -> torch.Tensor:
        """Logits ``[B, P+1, V]`` predicting audio token j from the position before it (one full pass).

        Row 0 comes from the last phone; row j from audio token j-1. ``phones`` [B, X], ``bert`` [B, 1024, X],
        ``audio`` [B, P]: unpadded batches (equal lengths).
        """
        text_valid = torch.ones_like(phones, dtype=torch.bool)
        audio_valid = torch.ones_like(audio, dtype=torch.bool)
        xy, valid = self.embed(phones, text_valid, bert, audio, audio_valid)
        hidden, _ = self.hidden_states(xy, valid, phones.shape[1])
        return self.ar_predict_layer(hidden[:, phones.shape[1] - 1:])

    def training_logits(self, phones: torch.Tensor, phone_lens: torch.Tensor, bert: torch.Tensor,
                        codes: torch.Tensor, code_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[B, T+1, V]`` from the last phone onward, and targets ``[B, T+1]`` (codes, then EOS).

        Inputs are right-padded as a collate function makes them (see :meth:`forward`).
        """
        eos = self.cfg.eos
        x_len = phones.shape[1]
        text = left_align(phones, phone_lens)
        bert = torch.gather(bert, 2, _left_align_index(phone_lens, x_len).unsqueeze(1).expand_as(bert))
        text_valid = torch.arange(x_len, device=phones.device)[None] >= (x_len - phone_lens)[:, None]
        audio_valid = torch.arange(codes.shape[1], device=codes.device)[None] < code_lens[:, None]
        audio = codes.masked_fill(~audio_valid, eos)
        # targets: every code, then EOS; padding also becomes EOS (upstream trains on those positions too)
        targets = F.pad(audio, (0, 1), value=eos)
        xy, valid = self.embed(text, text_valid, bert, audio, audio_valid)
        hidden, _ = self.hidden_states(xy, valid, x_len)
        logits = self.ar_predict_layer(hidden[:, x_len - 1:])  # [B, T+1, V]
        return logits, targets

    def forward(self, phones: torch.Tensor, phone_lens: torch.Tensor, bert: torch.Tensor, codes: torch.Tensor,
                code_lens: torch.Tensor) -> T2SLoss:
        """Training loss.

        Shapes: ``phones`` [B, X] right-padded, ``phone_lens`` [B], ``bert`` [B, 1024, X], ``codes`` [B, T]
        right-padded semantic codes, ``code_lens`` [B].
        """
        logits, targets = self.training_logits(phones, phone_lens, bert, codes, code_lens)
        loss = F.cross_entropy(logits.transpose(1, 2).float(), targets, reduction="sum")
        acc, n = top3_accuracy(logits.detach(), targets, ignore_index=self.cfg.eos)
        return T2SLoss(loss=loss, top3_acc=acc, n_targets=n)

    def forward_dpo(self, phones: torch.Tensor, phone_lens: torch.Tensor, bert: torch.Tensor,
                    codes: torch.Tensor, code_lens: torch.Tensor, beta: float = 0.2,
                    generator: torch.Generator | None = None) -> T2SLoss:
        """Cross-entropy plus a reference-free DPO loss against corrupted ("rejected") code sequences.

        Each rejected sequence repeats or drops one random span of the real codes (spec §5.6).
        """
        rejected, rejected_lens = make_rejected_codes(codes, code_lens, self.cfg.eos, generator)
        n = phones.shape[0]
        both = self.training_logits(
            torch.cat([phones, phones]), torch.cat([phone_lens, phone_lens]), torch.cat([bert, bert]),
            _pad_cat(codes, rejected, self.cfg.eos), torch.cat([code_lens, rejected_lens]))
        logits, targets = both
        chosen_logits, chosen_targets = logits[:n, : codes.shape[1] + 1], targets[:n, : codes.shape[1] + 1]
        ce = F.cross_entropy(chosen_logits.transpose(1, 2).float(), chosen_targets, reduction="sum")
        logps = _sequence_logps(logits, targets, torch.cat([code_lens, rejected_lens]))
        margin = logps[:n] - logps[n:]
        dpo = -F.logsigmoid(beta * margin).mean()
        acc, count = top3_accuracy(chosen_logits.detach(), chosen_targets, ignore_index=self.cfg.eos)
        return T2SLoss(loss=ce + dpo, top3_acc=acc, n_targets=count)

    # ------------------------------------------------------------------ generation
    @torch.no_grad()  # not inference_mode: callers may feed the tokens to autograd code later
    def generate(self, phones: Sequence[torch.Tensor], bert: Sequence[torch.Tensor],
                 prompts: Sequence[torch.Tensor | None] | None = None, options: SamplingOptions | None = None,
                 generator: torch.Generator | None = None, record_logits: bool = False) -> GenerationResult:
        """Generate semantic codes for a batch of sentences with a KV cache.

        Parameters
        ----------
        phones:
            One 1-D id tensor per sentence (lengths may differ; they are left-padded internally).
        bert:
            Matching phone-level features, each ``[bert_dim, len(phones[i])]``.
        prompts:
            Reference codes per sentence (1-D, lengths may differ), ``None`` for no prompt (upstream's
            reference-free mode: the first token is predicted from the last phone).
        options:
            Sampling and stopping (:class:`SamplingOptions`); defaults to ``top_k = config.top_k``.
        generator:
            Seeds the sampling draws (must live on the model's device); greedy decoding draws nothing.
        record_logits:
            Also return each step's raw output-layer logits (for parity checks).

        Returns
        -------
        GenerationResult: tokens per sentence (EOS removed), whether EOS ended it, optional logits.
        """
        opts = options if options is not None else SamplingOptions(top_k=self.cfg.top_k)
        was_training = self.training
        self.eval()  # generation never uses dropout
        try:
            state = self._prefill(phones, bert, prompts)
            return self._decode(state, opts, generator, record_logits)
        finally:
            self.train(was_training)

    def _prefill(self, phones: Sequence[torch.Tensor], bert: Sequence[torch.Tensor],
                 prompts: Sequence[torch.Tensor | None] | None) -> _DecodeState:
        cfg = self.cfg
        n = len(phones)
        if n == 0 or len(bert) != n or (prompts is not None and len(prompts) != n):
            raise ValueError(f"generate: need as many bert tensors and prompts as phone sequences "
                             f"(got {n} phones, {len(bert)} bert, {None if prompts is None else len(prompts)} prompts)")
        weight = self.bert_proj.weight
        device, dtype = weight.device, weight.dtype
        prompt_list = [None] * n if prompts is None else list(prompts)
        x_lens = [int(p.numel()) for p in phones]
        p_lens = [0 if p is None else int(p.numel()) for p in prompt_list]
        if min(x_lens) == 0:
            raise ValueError("generate: every sentence needs at least one phone")
        x_max, p_max = max(x_lens), max(p_lens)
        text = torch.zeros(n, x_max, dtype=torch.long, device=device)
        text_valid = torch.zeros(n, x_max, dtype=torch.bool, device=device)
        bert_pad = torch.zeros(n, cfg.bert_dim, x_max, dtype=dtype, device=device)
        audio = torch.zeros(n, p_max, dtype=torch.long, device=device)
        audio_valid = torch.zeros(n, p_max, dtype=torch.bool, device=device)
        for i in range(n):
            feats = bert[i]
            if tuple(feats.shape) != (cfg.bert_dim, x_lens[i]):
                raise ValueError(f"generate: bert[{i}] has shape {tuple(feats.shape)}, expected "
                                 f"({cfg.bert_dim}, {x_lens[i]}) to match its {x_lens[i]} phones")
            text[i, x_max - x_lens[i]:] = phones[i].reshape(-1)
            text_valid[i, x_max - x_lens[i]:] = True
            bert_pad[i, :, x_max - x_lens[i]:] = feats
            if p_lens[i]:
                audio[i, p_max - p_lens[i]:] = prompt_list[i].reshape(-1)
                audio_valid[i, p_max - p_lens[i]:] = True
        xy, valid = self.embed(text, text_valid, bert_pad, audio, audio_valid)
        hidden, kv = self.hidden_states(xy, valid, x_max)
        s = x_max + p_max
        cache = _KVCache(cfg.n_layer, n, cfg.head, cfg.hidden_dim // cfg.head, s + 256, dtype, device)
        cache.valid[:, :s] = valid
        for layer, (k, v) in enumerate(kv):
            cache.data[layer, 0, :, :, :s] = k
            cache.data[layer, 1, :, :, :s] = v
        last = torch.tensor([s - 1 if p else x_max - 1 for p in p_lens], device=device)
        first_hidden = hidden[torch.arange(n, device=device), last]
        counts = torch.zeros(n, cfg.vocab_size, dtype=torch.long, device=device)
        seen = counts.scatter_add_(1, audio, audio_valid.long()) > 0  # padding adds 0, never clears a real token
        return _DecodeState(cache=cache, length=s, hidden=first_hidden, seen=seen,
                            positions=torch.tensor(p_lens, device=device), padded=bool((~valid).any()))

    def _layer_weights(self) -> list[tuple[Any, ...]]:
        """Per layer: the q/k/v and attention-output projections and the feed-forward block as callables (float
        or quantised), then the two LayerNorms' parameters. Built once per generation, not per step."""
        quantised = self._quantised
        out = []
        for i, ly in enumerate(self.h.layers):
            if quantised is None:
                # addmm with the transposed weights is exactly what F.linear runs for [B, D] inputs, minus the
                # transpose F.linear makes on every call (3 dispatches per product, ~2.6 % of a step)
                (wq, bq), (wo, bo), (w1, b1), (w2, b2) = ((w.t(), b) for w, b in _projections(ly))
                calls = (functools.partial(torch.addmm, bq, mat2=wq), functools.partial(torch.addmm, bo, mat2=wo),
                         functools.partial(_float_ffn, w1t=w1, b1=b1, w2t=w2, b2=b2))
            else:
                qkv, proj, ff1, ff2 = quantised[i]
                calls = (qkv, proj, functools.partial(_quantised_ffn, ff1=ff1, ff2=ff2))
            out.append((*calls, ly.norm1.weight, ly.norm1.bias, ly.norm2.weight, ly.norm2.bias))
        return out

    @property
    def quantised_decoding(self) -> str | None:
        """The weight format of the decode steps' projections (see :data:`QUANT_KINDS`), None for float."""
        return self._quant_kind

    def enable_int8_decoding(self, enabled: bool = True) -> None:
        """Decode with int8 projections (the ``--int8`` mode, :data:`INT8_KIND`; CPU only), or in float again."""
        self.enable_quantised_decoding(INT8_KIND if enabled else None)

    def enable_quantised_decoding(self, kind: str | None, group: int = 32) -> None:
        """Run the decode steps' four projections per layer with quantised weights (CPU only), or in float (None).

        ``kind`` is one of :data:`QUANT_KINDS`: ``"int8-dynamic"`` (the ``--int8`` mode: fbgemm, int8 weights
        per row and activations quantised per tensor on every product); ``"int8-weight"`` stores each weight as
        int8 with one scale per output row and multiplies bfloat16-rounded activations with torch's weight-only
        int8 kernel (float32 accumulation, bias added in float32): more faithful, a little slower here;
        ``"int4-weight"`` uses torch's int4 kernel with asymmetric scales per ``group`` inputs (32, 64, 128 or
        256): fastest, least faithful. Measurements: docs/models.md ("int8 decoding").

        A snapshot of the current float weights is quantised: call again after changing the weights. The prefill
        pass, attention, LayerNorms and the output layer stay in float. Tokens can differ from float decoding
        (``benchmarks/bench_int8_fidelity.py`` measures by how much). Raises RuntimeError with what to do when the
        model is not on the CPU or this torch build lacks the kernel.
        """
        if kind is None:
            self._quantised, self._quant_kind = None, None
            return
        if kind not in QUANT_KINDS:
            raise ValueError(f"unknown quantised decoding {kind!r}; choose one of {', '.join(QUANT_KINDS)}")
        if self.bert_proj.weight.device.type != "cpu":
            raise RuntimeError(f"{kind} decoding runs on CPU only (torch's CPU kernels); move the GPT to the CPU "
                               f"or decode in float (without --int8)")
        problem = quantised_kernel_problem(kind)
        if problem is not None:
            raise RuntimeError(f"{kind} decoding is not available with this torch build ({torch.__version__}): "
                               f"{problem}. Decode in float (without --int8), or install the torch version in "
                               f"requirements.txt")
        with torch.no_grad():
            self._quantised = [[make_quantised(kind, w, b, group) for w, b in _projections(ly)]
                               for ly in self.h.layers]
        self._quant_kind = kind

    def _step(self, tokens: torch.Tensor, state: _DecodeState, weights: list[tuple[Any, ...]],
              position_table: torch.Tensor) -> torch.Tensor:
        """Feed one token per active sequence at cache slot ``state.length``; returns hidden ``[B, D]``.

        ``position_table`` [N, D] is ``alpha * PE`` for audio positions 0..N-1, computed once per call to
        :meth:`generate` (the same numbers the full pass adds).
        """
        cache, slot = state.cache, state.length
        cache.ensure(slot + 1)
        if state.padded:
            cache.valid[:, slot] = True
        x = self.ar_audio_embedding(tokens) + position_table[state.positions]
        b, d = x.shape
        heads = self.cfg.head
        mask = cache.valid[:, None, None, : slot + 1] if state.padded else None
        shape = (d,)
        new_kv = cache.data.select(4, slot)  # [L, 2, B, H, Dh]: this step's slot of every layer
        past = cache.data.narrow(4, 0, slot + 1)  # [L, 2, B, H, slot+1, Dh]
        for layer, (qkv_proj, out_proj, ffn, g1, be1, g2, be2) in enumerate(weights):
            qkv = qkv_proj(x).view(b, 3, heads, -1)
            new_kv[layer].copy_(qkv[:, 1:].transpose(0, 1))
            keys, values = past[layer]
            attn = F.scaled_dot_product_attention(qkv[:, 0].unsqueeze(2), keys, values, attn_mask=mask)
            # residual sums in place on the fresh product (y + x == x + y bit for bit: no new buffer per add)
            x = F.layer_norm(out_proj(attn.view(b, d)).add_(x), shape, g1, be1, 1e-5)
            x = F.layer_norm(ffn(x).add_(x), shape, g2, be2, 1e-5)
        state.length = slot + 1
        state.positions = state.positions + 1
        return x

    def _steps(self, state: _DecodeState, opts: SamplingOptions, generator: torch.Generator | None
               ) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The decode loop: per step ``(step, rows, tokens, is_eos, done, logits)`` for the sequences still
        running (``rows`` are their indices in the batch); finished sequences leave the batch and the cache."""
        eos = self.cfg.eos
        device = state.seen.device
        active = torch.arange(state.seen.shape[0], device=device)  # original index of each active row
        weights = self._layer_weights()
        hidden = state.hidden
        position_table = self._position_table(state, opts.max_new_tokens)
        threads = self.decode_threads if device.type == "cpu" else None
        for step in range(opts.max_new_tokens):
            logits = self.ar_predict_layer(hidden).float()
            tokens, is_eos = sample_step(logits, state.seen, step, opts, eos, generator)
            count = step + 1
            done = is_eos.clone()
            if (opts.early_stop_num >= 0 and count > opts.early_stop_num) or count >= opts.max_new_tokens:
                done[:] = True
            yield step, active, tokens, is_eos, done, logits
            if bool(done.any()):
                keep = (~done).nonzero().flatten()
                if keep.numel() == 0:
                    return
                active, tokens = active[keep], tokens[keep]
                state.select(keep)
            state.seen.scatter_(1, tokens.unsqueeze(1), True)
            with intra_op_threads(threads):
                hidden = self._step(tokens, state, weights, position_table)

    def _position_table(self, state: _DecodeState, n_steps: int) -> torch.Tensor:
        """``alpha * PE`` ``[N, D]`` for every audio position ``n_steps`` decode steps can reach."""
        pe = self.ar_audio_position
        n_positions = int(state.positions.max()) + n_steps + 1
        table = pe.alpha * pe.table(torch.arange(n_positions, device=state.seen.device))
        return table.to(state.hidden.dtype)

    @torch.no_grad()
    def forced_decode_logits(self, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor | None,
                             tokens: torch.Tensor) -> torch.Tensor:
        """Raw logits ``[n, V]`` of the cached decode path fed ``tokens`` [n] (teacher forcing).

        Row 0 predicts ``tokens[0]`` from the prefill, row j predicts ``tokens[j]`` after ``tokens[:j]``. The steps
        are :meth:`generate`'s (int8 weights when enabled), so running one token sequence through two modes
        compares their next-token distributions step by step without letting sampled tokens diverge.
        """
        was_training = self.training
        self.eval()
        try:
            state = self._prefill([phones], [bert], None if prompt is None else [prompt])
            weights = self._layer_weights()
            table = self._position_table(state, tokens.numel())
            hidden, rows = state.hidden, []
            for j in range(tokens.numel()):
                rows.append(self.ar_predict_layer(hidden).float())
                if j + 1 < tokens.numel():
                    hidden = self._step(tokens[j: j + 1].to(hidden.device), state, weights, table)
            return torch.cat(rows)
        finally:
            self.train(was_training)

    def _decode(self, state: _DecodeState, opts: SamplingOptions, generator: torch.Generator | None,
                record_logits: bool) -> GenerationResult:
        n = state.seen.shape[0]
        out = torch.zeros(n, opts.max_new_tokens, dtype=torch.long, device=state.seen.device)
        lengths, stopped = [0] * n, [False] * n
        recorded: list[tuple[torch.Tensor, torch.Tensor]] = []
        for step, active, tokens, is_eos, done, logits in self._steps(state, opts, generator):
            if record_logits:
                recorded.append((active, logits))
            out[active, step] = tokens
            for row, orig in zip(done.nonzero().flatten().tolist(), active[done].tolist(), strict=True):
                stopped[orig] = bool(is_eos[row])
                lengths[orig] = step if stopped[orig] else step + 1  # an EOS token is not kept
        logits_out = None
        if record_logits:
            logits_out = []
            for i in range(n):
                rows = [lg[(ids == i).nonzero().flatten()] for ids, lg in recorded]
                logits_out.append(torch.cat([r for r in rows if r.numel()]))
        return GenerationResult(tokens=[out[i, : lengths[i]].clone() for i in range(n)], stopped_on_eos=stopped,
                                logits=logits_out)

    @torch.no_grad()
    def generate_chunks(self, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor | None = None,
                        options: SamplingOptions | None = None, generator: torch.Generator | None = None,
                        chunk: int = 16) -> Iterator[torch.Tensor]:
        """Streaming :meth:`generate` for one sentence: yield its tokens every ``chunk`` tokens (the last piece
        may be shorter). Same decode loop, so the tokens equal ``generate``'s with the same generator state.

        ``phones`` [X] ids, ``bert`` [bert_dim, X], ``prompt`` [P] codes or None. EOS is never yielded.
        """
        if chunk < 1:
            raise ValueError(f"chunk must be at least 1 token, got {chunk}")
        opts = options if options is not None else SamplingOptions(top_k=self.cfg.top_k)
        was_training = self.training
        self.eval()
        try:
            state = self._prefill([phones], [bert], None if prompt is None else [prompt])
            pending: list[torch.Tensor] = []
            for _, _, tokens, is_eos, done, _ in self._steps(state, opts, generator):
                if not bool(is_eos[0]):
                    pending.append(tokens[:1])
                if pending and (len(pending) >= chunk or bool(done[0])):
                    yield torch.cat(pending)
                    pending = []
        finally:
            self.train(was_training)


class _KVCache:
    """Preallocated keys/values ``[L, 2, B, H, capacity, Dh]``; grows by doubling, never per step."""

    def __init__(self, n_layer: int, batch: int, heads: int, head_dim: int, capacity: int, dtype: torch.dtype,
                 device: torch.device) -> None:
        self.data = torch.empty(n_layer, 2, batch, heads, capacity, head_dim, dtype=dtype, device=device)
        self.valid = torch.zeros(batch, capacity, dtype=torch.bool, device=device)

    def ensure(self, needed: int) -> None:
        capacity = self.data.shape[4]
        if needed <= capacity:
            return
        new_capacity = max(needed, 2 * capacity)
        data = self.data.new_empty(*self.data.shape[:4], new_capacity, self.data.shape[5])
        data[:, :, :, :, :capacity] = self.data
        valid = self.valid.new_zeros(self.valid.shape[0], new_capacity)
        valid[:, :capacity] = self.valid
        self.data, self.valid = data, valid

    def select(self, rows: torch.Tensor) -> None:
        self.data = self.data.index_select(2, rows)
        self.valid = self.valid.index_select(0, rows)


@dataclass
class _DecodeState:
    cache: _KVCache
    length: int  # filled cache slots (the next token goes to this slot)
    hidden: torch.Tensor  # [B, D] output of the last position (gives the next logits)
    seen: torch.Tensor  # [B, V] bool: tokens already in each sequence (for the repetition penalty)
    positions: torch.Tensor  # [B] audio position of the next token
    padded: bool  # whether any cache slot is padding (then decoding needs a key mask)

    def select(self, rows: torch.Tensor) -> None:
        self.cache.select(rows)
        self.seen = self.seen[rows]
        self.positions = self.positions[rows]


def top3_accuracy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> tuple[float, int]:
    """Fraction of targets (other than ``ignore_index``) found among the 3 highest logits, and their count."""
    keep = targets != ignore_index
    count = int(keep.sum())
    if count == 0:
        return 0.0, 0
    top = logits.topk(min(3, logits.shape[-1]), dim=-1).indices
    hit = (top == targets.unsqueeze(-1)).any(dim=-1)
    return float(hit[keep].float().mean()), count


def make_rejected_codes(codes: torch.Tensor, lengths: torch.Tensor, pad: int,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt each sequence by repeating or dropping one random span; returns padded codes and lengths."""
    rows = []
    for b in range(codes.shape[0]):
        seq = codes[b, : int(lengths[b])]
        start, end = torch.randint(0, seq.numel(), (2,), generator=generator).sort().values.tolist()
        if int(torch.randint(0, 2, (1,), generator=generator)) == 0:
            rows.append(torch.cat([seq[:end], seq[start:]]))  # the span [start, end) appears twice
        else:
            rows.append(torch.cat([seq[:start], seq[end:]]))
    new_lengths = torch.tensor([r.numel() for r in rows], device=codes.device)
    out = codes.new_full((len(rows), int(new_lengths.max())), pad)
    for b, r in enumerate(rows):
        out[b, : r.numel()] = r
    return out, new_lengths


def _float_ffn(x: torch.Tensor, w1t: torch.Tensor, b1: torch.Tensor, w2t: torch.Tensor, b2: torch.Tensor
               ) -> torch.Tensor:
    """``W2 relu(W1 x + b1) + b2`` for ``x`` [B, D] (``w*t`` the transposed weights) with the ReLU in place on the
    fresh product: the layer's feed-forward block, the same operations as ``F.linear`` on 2-D inputs."""
    return torch.addmm(b2, torch.addmm(b1, x, w1t).relu_(), w2t)


def _quantised_ffn(x: torch.Tensor, ff1: Any, ff2: Any) -> torch.Tensor:
    """The feed-forward block with quantised projections: ``ff1.hidden`` gives ``relu(W1 x + b1)`` in the
    format ``ff2`` reads (bfloat16 for the weight-only kernels), so no conversion runs in between."""
    return ff2(ff1.hidden(x))


def _projections(layer: T2SLayer) -> tuple[tuple[torch.Tensor, torch.Tensor], ...]:
    """A layer's (weight, bias) pairs in decode order: packed q/k/v, attention output, FFN in, FFN out."""
    attn = layer.self_attn
    return ((attn.in_proj_weight, attn.in_proj_bias), (attn.out_proj.weight, attn.out_proj.bias),
            (layer.linear1.weight, layer.linear1.bias), (layer.linear2.weight, layer.linear2.bias))


def _pad_cat(a: torch.Tensor, b: torch.Tensor, pad: int) -> torch.Tensor:
    width = max(a.shape[1], b.shape[1])
    return torch.cat([F.pad(a, (0, width - a.shape[1]), value=pad), F.pad(b, (0, width - b.shape[1]), value=pad)])


def _sequence_logps(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Summed log-probability of each row's real targets (its codes and the final EOS)."""
    logp = torch.log_softmax(logits.float(), dim=-1).gather(2, targets.unsqueeze(-1)).squeeze(-1)
    mask = torch.arange(targets.shape[1], device=targets.device)[None] <= lengths[:, None]
    return (logp * mask).sum(dim=1)
