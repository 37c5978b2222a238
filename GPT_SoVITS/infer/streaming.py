"""Token-level streaming: stitch the audio decoded from overlapping token windows.

The tokens come in chunks from :meth:`Text2SemanticDecoder.generate_chunks`; :class:`ChunkStitcher` turns the
audio decoded from overlapping token windows into one continuous signal with a short crossfade at every seam.
"""

from __future__ import annotations

import numpy as np


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
