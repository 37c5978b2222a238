"""Token sampling for the text-to-semantic model, in upstream's order (spec §5.7).

Per step, on the logits of the active sequences ``[B, V]``:

1. repetition penalty over every token already in the sequence (prompt included): negative logits are
   multiplied by the penalty, positive ones divided; a token seen several times is changed only once;
2. top-p on the penalised logits (skipped for ``top_p >= 1``);
3. division by ``max(temperature, 1e-5)``;
4. top-k (values below the k-th largest are removed);
5. softmax and an exponential race, ``argmax(p / Exp(1))``, which draws from ``p``.

With ``top_k == 1`` the race always returns the argmax, so that case is computed directly and draws no
random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingOptions:
    """How :meth:`Text2SemanticDecoder.generate` picks tokens and when it stops."""

    top_k: int = 15  # keep the k most likely tokens (upstream's ``inference.top_k`` of s1longer-v2.yaml)
    top_p: float = 1.0  # nucleus filter on the penalised logits; 1.0 switches it off
    temperature: float = 1.0  # logits are divided by max(temperature, 1e-5)
    repetition_penalty: float = 1.35  # applied to every token already in the sequence, prompt included
    early_stop_num: int = -1  # stop once MORE than this many tokens were made (40 gives 41); -1: no limit
    max_new_tokens: int = 1500  # upstream's hard step cap (60 s of 25 Hz tokens)
    min_new_tokens: int = 11  # EOS cannot be chosen during the first this-many steps (upstream: 11)

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Penalise the logits of tokens marked in ``seen`` ([B, V] bool); returns a new tensor."""
    if penalty == 1.0:
        return logits
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalised, logits)


def top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Remove the tail whose cumulative probability exceeds ``top_p`` (the most likely token always stays)."""
    if top_p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    remove_sorted = cumulative > top_p
    remove_sorted[:, 0] = False
    remove = torch.zeros_like(remove_sorted).scatter(1, order, remove_sorted)
    return logits.masked_fill(remove, float("-inf"))


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Remove every logit below the ``top_k``-th largest of its row."""
    k = min(top_k, logits.shape[-1])
    pivot = torch.topk(logits, k, dim=-1).values[:, -1:]
    return logits.masked_fill(logits < pivot, float("-inf"))


def choose_tokens(logits: torch.Tensor, opts: SamplingOptions,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Steps 2–5 on already penalised logits ``[B, V]``; returns token ids ``[B]``."""
    if opts.top_k == 1:
        return logits.argmax(dim=-1)
    logits = top_p_filter(logits, opts.top_p)
    if opts.temperature != 1.0:  # dividing by 1 is exact: skipping it saves an operation per step
        logits = logits / max(opts.temperature, 1e-5)
    logits = top_k_filter(logits, opts.top_k)
    probs = torch.softmax(logits.float(), dim=-1)
    race = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return (probs / race).argmax(dim=-1)


def sample_step(logits: torch.Tensor, seen: torch.Tensor, step: int, opts: SamplingOptions, eos: int,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step on raw logits ``[B, V]``: tokens ``[B]`` and whether each one ends its sequence.

    ``seen`` [B, V] marks the tokens already in each sequence (prompt included). EOS is blocked while
    ``step < opts.min_new_tokens``. A sequence ends when the chosen token is EOS or, as upstream checks, when
    EOS is the most likely token after the penalty.
    """
    scores = apply_repetition_penalty(logits, seen, opts.repetition_penalty)
    if step < opts.min_new_tokens:
        scores = scores.clone() if scores is logits else scores
        scores[:, eos] = float("-inf")
    tokens = choose_tokens(scores, opts, generator)
    is_eos = tokens == eos
    if opts.top_k != 1:  # with top_k == 1 the chosen token *is* the argmax
        is_eos |= scores.argmax(dim=-1) == eos
    return tokens, is_eos
