"""Token-level streaming: generate semantic tokens in chunks and stitch the decoded audio chunks.

:func:`generate_token_chunks` is the single-sequence version of :meth:`Text2SemanticDecoder.generate` (same
prefill, same per-step sampling, same stopping rules) that yields the new tokens every ``chunk`` steps instead
of returning them at the end. :class:`ChunkStitcher` turns audio decoded from overlapping token windows into
one continuous signal with a short crossfade at every seam.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from GPT_SoVITS.models.sampling import SamplingOptions, apply_repetition_penalty, choose_tokens


@torch.no_grad()  # as generate(): the tokens may later meet autograd code
def generate_token_chunks(model: torch.nn.Module, phones: torch.Tensor, bert: torch.Tensor,
                          prompt: torch.Tensor | None, opts: SamplingOptions, chunk: int,
                          generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Yield the generated tokens of one sentence in pieces of ``chunk`` tokens (the last may be shorter).

    ``phones`` [X] ids, ``bert`` [bert_dim, X], ``prompt`` [P] codes or None (no-reference-text mode).
    EOS is never yielded. Uses the model's own prefill and KV-cache step, so the tokens are exactly those
    :meth:`generate` would produce with the same generator state (``test_token_chunks_equal_the_batch_generator``
    guards this: these are the model's private helpers, so a change there must be mirrored here).
    """
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 token, got {chunk}")
    eos = model.cfg.eos
    state = model._prefill([phones], [bert], None if prompt is None else [prompt])
    weights = model._layer_weights()
    hidden = state.hidden
    pe = model.ar_audio_position
    n_positions = int(state.positions.max()) + opts.max_new_tokens + 1
    position_table = (pe.alpha * pe.table(torch.arange(n_positions, device=hidden.device))).to(hidden.dtype)
    pending: list[torch.Tensor] = []
    for step in range(opts.max_new_tokens):
        logits = model.ar_predict_layer(hidden).float()
        scores = apply_repetition_penalty(logits, state.seen, opts.repetition_penalty)
        if step < opts.min_new_tokens:
            scores = scores.clone() if scores is logits else scores
            scores[:, eos] = float("-inf")
        token = choose_tokens(scores, opts, generator)
        if int(token[0]) == eos or (opts.top_k != 1 and int(scores.argmax(dim=-1)[0]) == eos):
            break
        pending.append(token)
        count = step + 1
        if len(pending) >= chunk:
            yield torch.cat(pending)
            pending = []
        if (opts.early_stop_num >= 0 and count > opts.early_stop_num) or count >= opts.max_new_tokens:
            break
        state.seen[0, token] = True
        hidden = model._step(token, state, weights, position_table)
    if pending:
        yield torch.cat(pending)


class ChunkStitcher:
    """Joins audio decoded from overlapping token windows.

    Each window is decoded with ``context`` tokens before the new ones, so the decoder sees some history;
    the audio of those context tokens is cut off again except for ``fade`` samples, which are crossfaded
    with the end of the previous window (held back for that purpose).
    """

    def __init__(self, fade: int = 640) -> None:
        self.fade = fade
        self._held = np.zeros(0, dtype=np.float32)

    def push(self, audio: np.ndarray, n_context: int, n_new: int) -> np.ndarray:
        """Audio of a window of ``n_context + n_new`` tokens → the samples that are final now."""
        audio = np.asarray(audio, dtype=np.float32)
        per_token = len(audio) / max(1, n_context + n_new)
        start = int(round(n_context * per_token))
        fade = min(self.fade, start, len(self._held))
        head = audio[start:]
        if fade > 0:
            ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
            overlap = self._held[len(self._held) - fade:] * (1 - ramp) + audio[start - fade:start] * ramp
            out_prefix = np.concatenate([self._held[: len(self._held) - fade], overlap])
        else:
            out_prefix = self._held
        keep = min(self.fade, len(head))
        self._held = head[len(head) - keep:].copy()
        return np.concatenate([out_prefix, head[: len(head) - keep]])

    def flush(self) -> np.ndarray:
        """The held-back tail (call once after the last window)."""
        held, self._held = self._held, np.zeros(0, dtype=np.float32)
        return held
