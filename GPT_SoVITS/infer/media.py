"""Encoding synthesized audio for files and HTTP responses: wav, raw PCM, ogg, flac, mp3, aac, opus.

Whole files go through :func:`encode_audio`. Streams go through :class:`StreamEncoder`: ``wav`` is one header
(with the "unknown length" sizes 0xFFFFFFFF, as streaming WAV writers do) followed by raw 16-bit PCM; ``raw``
is bare PCM; ``ogg``/``mp3``/``flac`` send each chunk as a complete small file (chained Ogg streams and
concatenated MP3 frames play back-to-back); ``aac`` is one continuous ADTS stream.

aac uses PyAV's bundled FFmpeg encoder (no ffmpeg program needed); the others use libsndfile via soundfile.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from GPT_SoVITS.audio import float_to_int16

#: media type → (soundfile format, subtype) for the formats libsndfile writes.
_SOUNDFILE_FORMATS = {
    "wav": ("WAV", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
    "opus": ("OGG", "OPUS"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
}
MEDIA_TYPES = ("wav", "raw", "ogg", "aac", "flac", "mp3", "opus")
CONTENT_TYPES = {"wav": "audio/wav", "raw": "audio/raw", "ogg": "audio/ogg", "aac": "audio/aac",
                 "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}
#: libsndfile's Opus encoder only takes these rates.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class UnsupportedMediaTypeError(ValueError):
    """The requested audio format is not one this server can write."""


def check_media_type(media_type: str) -> str:
    media_type = str(media_type).strip().lower()
    if media_type not in MEDIA_TYPES:
        raise UnsupportedMediaTypeError(f"media_type: {media_type!r} is not supported; use one of "
                                        f"{', '.join(MEDIA_TYPES)}")
    return media_type


def wav_stream_header(sample_rate: int, channels: int = 1, bits: int = 16) -> bytes:
    """A 44-byte PCM WAV header whose RIFF and data sizes say "unknown length" (0xFFFFFFFF)."""
    block = channels * bits // 8
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, bits) +
            b"data" + struct.pack("<I", 0xFFFFFFFF))


def _soundfile_bytes(audio: np.ndarray, sample_rate: int, media_type: str) -> bytes:
    fmt, subtype = _SOUNDFILE_FORMATS[media_type]
    if media_type == "opus" and sample_rate not in _OPUS_RATES:
        from GPT_SoVITS.audio import resample

        audio = resample(np.asarray(audio, dtype=np.float32), sample_rate, 48000)
        sample_rate = 48000
    buffer = io.BytesIO()
    data = float_to_int16(audio) if subtype == "PCM_16" else np.clip(audio, -1.0, 1.0).astype(np.float32)
    sf.write(buffer, data, sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


class _AacEncoder:
    """One continuous AAC (ADTS) stream through PyAV; bytes come out as frames complete."""

    def __init__(self, sample_rate: int, bitrate: int = 192_000) -> None:
        import av

        self._av = av
        self._buffer = io.BytesIO()
        self._container = av.open(self._buffer, mode="w", format="adts")
        self._stream = self._container.add_stream("aac", rate=sample_rate)
        self._stream.bit_rate = bitrate
        self._stream.layout = "mono"
        self._rate = sample_rate
        self._pts = 0

    def _take(self) -> bytes:
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data

    def push(self, audio: np.ndarray) -> bytes:
        samples = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0).reshape(1, -1)
        frame = self._av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = self._rate
        frame.pts = self._pts
        self._pts += samples.shape[1]
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return self._take()

    def finish(self) -> bytes:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._take()


def encode_audio(audio: np.ndarray, sample_rate: int, media_type: str) -> bytes:
    """A complete file (or raw PCM) of ``audio`` (float32 mono in [-1, 1])."""
    media_type = check_media_type(media_type)
    if media_type == "raw":
        return float_to_int16(audio).tobytes()
    if media_type == "aac":
        encoder = _AacEncoder(sample_rate)
        return encoder.push(audio) + encoder.finish()
    return _soundfile_bytes(audio, sample_rate, media_type)


class StreamEncoder:
    """Turns a sequence of float32 chunks into the bytes of one streamed response."""

    def __init__(self, media_type: str, sample_rate: int) -> None:
        self.media_type = check_media_type(media_type)
        self.sample_rate = sample_rate
        self._aac = _AacEncoder(sample_rate) if self.media_type == "aac" else None

    def start(self) -> bytes:
        return wav_stream_header(self.sample_rate) if self.media_type == "wav" else b""

    def push(self, audio: np.ndarray) -> bytes:
        if audio.size == 0:
            return b""
        if self.media_type in ("wav", "raw"):
            return float_to_int16(audio).tobytes()
        if self._aac is not None:
            return self._aac.push(audio)
        return _soundfile_bytes(audio, self.sample_rate, self.media_type)

    def finish(self) -> bytes:
        return self._aac.finish() if self._aac is not None else b""
