"""Media encoding, streaming WAV framing, path safety and subtitle parsing for the inference front-ends."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from GPT_SoVITS.infer.__main__ import parse_srt
from GPT_SoVITS.infer.media import (
    MEDIA_TYPES,
    StreamEncoder,
    UnsupportedMediaTypeError,
    check_media_type,
    encode_audio,
    wav_stream_header,
)
from GPT_SoVITS.infer.safety import ForbiddenPathError, PathPolicy

SR = 32000


def sine(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.4 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def test_wav_and_raw_hold_the_same_int16_samples() -> None:
    audio = sine()
    decoded, sr = sf.read(io.BytesIO(encode_audio(audio, SR, "wav")), dtype="int16")
    raw = np.frombuffer(encode_audio(audio, SR, "raw"), dtype="<i2")
    assert sr == SR and np.array_equal(decoded, raw)
    assert np.abs(raw.astype(np.float32) / 32767 - audio).max() < 1e-4


@pytest.mark.parametrize("media_type", ["ogg", "flac", "mp3", "opus"])
def test_compressed_formats_decode_to_about_the_same_length(media_type: str) -> None:
    audio, rate = sf.read(io.BytesIO(encode_audio(sine(), SR, media_type)))
    expected = SR if media_type != "opus" else 48000  # libsndfile's Opus needs 48 kHz
    assert rate == expected and abs(len(audio) - expected) < expected * 0.1


def test_aac_is_adts_and_decodes() -> None:
    data = encode_audio(sine(), SR, "aac")
    assert data[:2] == b"\xff\xf1"
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray() for f in container.decode(audio=0)]
    assert abs(sum(f.shape[-1] for f in frames) - SR) < 4096


def test_streaming_wav_header_says_unknown_length() -> None:
    header = wav_stream_header(SR)
    assert len(header) == 44 and header[:4] == b"RIFF" and header[36:40] == b"data"
    assert struct.unpack("<I", header[4:8])[0] == 0xFFFFFFFF
    channels, rate, byte_rate, block, bits = struct.unpack("<HIIHH", header[22:36])
    assert (channels, rate, byte_rate, block, bits) == (1, SR, SR * 2, 2, 16)


def test_stream_encoders_concatenate_to_the_whole_signal() -> None:
    audio = sine(1.0)
    enc = StreamEncoder("wav", SR)
    body = enc.start() + enc.push(audio[:12000]) + enc.push(audio[12000:]) + enc.finish()
    assert body[44:] == encode_audio(audio, SR, "raw")
    aac = StreamEncoder("aac", SR)
    data = aac.start() + aac.push(audio[:12000]) + aac.push(np.zeros(0, np.float32)) + aac.push(audio[12000:])
    data += aac.finish()
    with av.open(io.BytesIO(data)) as container:
        assert abs(sum(f.samples for f in container.decode(audio=0)) - SR) < 4096


def test_media_type_check() -> None:
    assert check_media_type(" WAV ") == "wav"
    assert set(MEDIA_TYPES) >= {"wav", "raw", "ogg", "aac"}
    with pytest.raises(UnsupportedMediaTypeError, match="mp4"):
        check_media_type("mp4")


def test_path_policy_allows_only_inside_its_folders(tmp_path: Path) -> None:
    allowed = tmp_path / "refs"
    (allowed / "sub").mkdir(parents=True)
    inside = allowed / "sub" / "a.wav"
    inside.write_bytes(b"x")
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    policy = PathPolicy.of([allowed], base=allowed, what="reference audio")
    assert policy.resolve(str(inside)) == inside.resolve()
    assert policy.resolve("sub/a.wav") == inside.resolve()  # relative to the base folder
    for bad in (str(secret), "../secret.txt", "sub/../../secret.txt", "/etc/passwd", "", "a\x00b"):
        with pytest.raises(ForbiddenPathError):
            policy.resolve(bad)
    link = allowed / "link.wav"
    os.symlink(secret, link)
    with pytest.raises(ForbiddenPathError, match="outside"):
        policy.resolve(str(link))  # a symlink pointing out is judged by its target
    typed = PathPolicy.of([allowed], suffixes=(".ckpt", ".pth"), what="weights_path")
    with pytest.raises(ForbiddenPathError, match=".ckpt or .pth"):
        typed.resolve(str(inside))


def test_parse_srt() -> None:
    content = ("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\nHello <b>there</b>\r\nfriend\r\n\r\n"
               "junk block\n\n"
               "7\n01:02:03.250 --> 01:02:04.000\n你好。\n\n"
               "8\n00:00:09,000 --> 00:00:10,000\n\n")
    cues = parse_srt(content)
    assert [(c.number, c.text) for c in cues] == [(1, "Hello there friend"), (7, "你好。")]
    assert cues[0].start == 1.0 and cues[0].end == 2.5
    assert cues[1].start == pytest.approx(3723.25)
