"""The HTTP API through a real client: httpx against a uvicorn server on a free port, tiny random models."""

from __future__ import annotations

import io
import json
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from app.api import ApiState, create_app, parse_tts_request, stream_settings  # noqa: E402
from GPT_SoVITS.infer import TTS  # noqa: E402
from GPT_SoVITS.infer.components import load_model_pair  # noqa: E402
from GPT_SoVITS.infer.safety import PathPolicy  # noqa: E402
from tests.conftest import tone_burst, write_audio  # noqa: E402
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("api")
    weights = root / "weights"
    gpt, sovits = save_tiny_weights(weights, name="a")
    gpt_b, _ = save_tiny_weights(weights, seed=1, name="b")
    refs = root / "refs"
    ref = reference_wav(refs / "ref.wav")
    write_audio(refs / "short.wav", tone_burst(1.5))
    voices = root / "voices"
    voices.mkdir()
    (voices / "alice.json").write_text(json.dumps({"ref_audio_path": "../refs/ref.wav", "prompt_text": "参考文本。",
                                                   "prompt_lang": "zh", "text_lang": "zh", "seed": 3}),
                                       encoding="utf-8")
    tts = TTS(load_model_pair(gpt, sovits), ToySSL(), CharFeaturizer(), max_new_tokens=24)
    state = ApiState(tts, PathPolicy.of([refs], what="reference audio"),
                     PathPolicy.of([weights], suffixes=(".ckpt", ".pth"), what="weights_path"),
                     allow_control=False, voices_dir=voices, slots=ApiState.make_slots(2))
    port = free_port()
    config = uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield {"url": f"http://127.0.0.1:{port}", "state": state, "ref": ref, "short": refs / "short.wav",
           "gpt": gpt, "gpt_b": gpt_b, "root": root}
    srv.should_exit = True
    thread.join(timeout=10)


def params(server, **extra) -> dict:
    base = {"text": "今天天气很好。我们去公园吧！", "text_lang": "zh", "ref_audio_path": str(server["ref"]),
            "prompt_text": "这是参考文本。", "prompt_lang": "zh", "seed": 5}
    return {**base, **extra}


def test_get_and_post_tts_return_the_same_wav(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        got = client.get("/tts", params=params(server))
        posted = client.post("/tts", json=params(server))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "audio/wav"
    audio, sr = sf.read(io.BytesIO(got.content), dtype="float32")
    assert sr == 32000 and audio.ndim == 1 and len(audio) > 0 and np.isfinite(audio).all()
    assert posted.content == got.content


def test_media_types_decode(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        wav = client.get("/tts", params=params(server, media_type="wav")).content
        raw = client.get("/tts", params=params(server, media_type="raw")).content
        ogg = client.get("/tts", params=params(server, media_type="ogg"))
        aac = client.get("/tts", params=params(server, media_type="aac"))
    reference, _ = sf.read(io.BytesIO(wav), dtype="int16")
    np.testing.assert_array_equal(np.frombuffer(raw, dtype="<i2"), reference)
    assert ogg.headers["content-type"] == "audio/ogg"
    decoded, sr = sf.read(io.BytesIO(ogg.content))
    assert sr == 32000 and abs(len(decoded) - len(reference)) < 2048
    assert aac.headers["content-type"] == "audio/aac" and aac.content[:2] == b"\xff\xf1"  # ADTS sync word
    with av.open(io.BytesIO(aac.content)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert abs(samples - len(reference)) < 4096


def test_sentence_streaming_wav_is_a_header_plus_the_same_pcm(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        whole = client.get("/tts", params=params(server, media_type="raw")).content
        with client.stream("GET", "/tts", params=params(server, streaming_mode=1)) as response:
            assert response.status_code == 200
            pieces = list(response.iter_raw())
    body = b"".join(pieces)
    assert body[:4] == b"RIFF" and body[8:12] == b"WAVE"
    assert struct.unpack("<I", body[40:44])[0] == 0xFFFFFFFF  # unknown length: a stream
    assert struct.unpack("<I", body[24:28])[0] == 32000
    assert body[44:] == whole


def test_token_streaming_sends_audio_in_several_chunks(server) -> None:
    chunks = []
    with httpx.Client(base_url=server["url"], timeout=120) as client, client.stream(
            "POST", "/tts", json=params(server, media_type="raw", streaming_mode=2, min_chunk_length=6,
                                        text="今天天气很好。")) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            chunks.append(chunk)
    assert len(chunks) >= 3
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2")
    assert len(pcm) >= 11 * 1280 and np.abs(pcm).max() > 0


@pytest.mark.parametrize(("change", "status", "fragment"), [
    ({"text": ""}, 400, "text is required"),
    ({"text_lang": ""}, 400, "text_lang is required"),
    ({"ref_audio_path": ""}, 400, "ref_audio_path is required"),
    ({"text_lang": "xx"}, 400, "text_lang"),
    ({"prompt_lang": "xx"}, 400, "prompt_lang"),
    ({"media_type": "mp4"}, 400, "media_type"),
    ({"text_split_method": "cut9"}, 400, "text_split_method: 'cut9'"),
    ({"speed_factor": 9}, 400, "speed_factor: 9.0 is out of range"),
    ({"top_k": "many"}, 400, "top_k"),
    ({"top_p": 3}, 400, "top_p"),
    ({"batch_threshold": 1.5}, 400, "batch_threshold: 1.5 is out of range"),
    ({"streaming_mode": 7}, 400, "streaming_mode"),
    ({"ref_audio_path": "/etc/passwd"}, 403, "outside the folders"),
    ({"ref_audio_path": "../../../../etc/hostname"}, 403, "outside the folders"),
])
def test_bad_requests_get_a_json_message(server, change: dict, status: int, fragment: str) -> None:
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        response = client.get("/tts", params=params(server, **change))
    assert response.status_code == status
    body = response.json()
    assert fragment in body["message"] + body.get("Exception", "")


def test_reference_outside_3_to_10_s_is_a_400_with_the_reason(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        response = client.post("/tts", json=params(server, ref_audio_path=str(server["short"]), streaming_mode=1))
    assert response.status_code == 400
    assert "between 3 and 10 s" in response.json()["Exception"]


def test_concurrent_requests_each_get_their_own_audio(server) -> None:
    """6 requests at once (2 synthesize at a time, the rest wait): each gets exactly the audio it gets alone."""
    seeds = list(range(40, 46))
    with httpx.Client(base_url=server["url"], timeout=300) as client:
        expected = {s: client.get("/tts", params=params(server, seed=s, media_type="raw")).content for s in seeds}

        def fetch(seed: int) -> bytes:
            response = client.get("/tts", params=params(server, seed=seed, media_type="raw"))
            assert response.status_code == 200
            return response.content

        with ThreadPoolExecutor(len(seeds)) as pool:
            results = dict(zip(seeds, pool.map(fetch, seeds), strict=True))
    assert len({expected[s] for s in seeds}) > 1  # different seeds, different audio
    for s in seeds:
        assert results[s] == expected[s]


def test_switching_weights_mid_stream_does_not_change_the_stream(server) -> None:
    query = params(server, media_type="raw", streaming_mode=1, text_split_method="cut5", seed=9)
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        expected = client.get("/tts", params=query).content
        with client.stream("GET", "/tts", params=query) as response:
            chunks = response.iter_raw()
            first = b""
            while not first:
                first = next(chunks)
            assert client.get("/set_gpt_weights", params={"weights_path": str(server["gpt_b"])}).status_code == 200
            rest = b"".join(chunks)
        after = client.get("/tts", params={**query, "streaming_mode": 0}).content
        assert client.get("/set_gpt_weights", params={"weights_path": str(server["gpt"])}).status_code == 200
    assert first + rest == expected
    assert after != expected  # the new GPT serves the next request


def test_switching_weights_is_limited_to_allowed_folders(server, tmp_path: Path) -> None:
    outside = tmp_path / "x.ckpt"
    outside.write_bytes(b"junk")
    broken = server["root"] / "weights" / "broken.ckpt"
    broken.write_bytes(b"junk")
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        ok = client.get("/set_gpt_weights", params={"weights_path": str(server["gpt_b"])})
        assert ok.status_code == 200 and ok.json() == {"message": "success"}
        assert server["state"].tts.models.gpt_path == server["gpt_b"]
        back = client.get("/set_gpt_weights", params={"weights_path": str(server["gpt"])})
        assert back.status_code == 200
        denied = client.get("/set_sovits_weights", params={"weights_path": str(outside)})
        assert denied.status_code == 403
        failed = client.get("/set_gpt_weights", params={"weights_path": str(broken)})
        assert failed.status_code == 400 and failed.json()["message"] == "change gpt weight failed"
        missing = client.get("/set_gpt_weights")
        assert missing.status_code == 400
    assert server["state"].tts.models.gpt_path == server["gpt"]


def test_aux_references_repeated_in_the_query_string(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        plain = client.get("/tts", params=params(server, media_type="raw")).content
        query = [*params(server, media_type="raw").items(), ("aux_ref_audio_paths", str(server["ref"])),
                 ("aux_ref_audio_paths", str(server["short"]))]
        mixed = client.get("/tts", params=query)
        outside = client.get("/tts", params=[*query, ("aux_ref_audio_paths", "/etc/hostname")])
    assert mixed.status_code == 200 and mixed.content != plain  # the timbre changed
    assert outside.status_code == 403


def test_set_refer_audio_becomes_the_default_reference(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        bad = client.get("/set_refer_audio", params={"refer_audio_path": str(server["short"])})
        assert bad.status_code == 400 and "between 3 and 10 s" in bad.json()["Exception"]
        ok = client.get("/set_refer_audio", params={"refer_audio_path": str(server["ref"])})
        assert ok.status_code == 200
        response = client.get("/tts", params=params(server, ref_audio_path="", prompt_text=""))
    assert response.status_code == 200


def test_control_is_off_unless_enabled(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=30) as client:
        response = client.get("/control", params={"command": "exit"})
    assert response.status_code == 403 and "--allow-control" in response.json()["message"]


def test_openai_speech_with_a_voice_preset(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        wav = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "今天天气很好。", "voice": "alice",
                                                    "response_format": "wav"})
        pcm = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "今天天气很好。", "voice": "alice",
                                                    "response_format": "pcm"})
        unknown = client.post("/v1/audio/speech", json={"input": "你好。", "voice": "bob"})
        default = client.post("/v1/audio/speech", json={"model": "tts-1", "input": "今天天气很好。", "voice": "alice"})
        too_fast = client.post("/v1/audio/speech", json={"input": "今天天气很好。", "voice": "alice", "speed": 9})
    assert wav.status_code == 200, wav.text
    audio, sr = sf.read(io.BytesIO(wav.content))
    assert sr == 32000 and len(audio) > 0
    assert pcm.status_code == 200 and len(pcm.content) % 2 == 0
    assert unknown.status_code == 400 and "alice" in unknown.json()["error"]["message"]
    assert default.status_code == 200 and default.headers["content-type"] == "audio/mpeg"  # OpenAI's default: mp3
    mp3, mp3_rate = sf.read(io.BytesIO(default.content))
    assert mp3_rate == 32000 and abs(len(mp3) - len(audio)) < 4096
    assert too_fast.status_code == 400 and "speed" in too_fast.json()["error"]["message"]
    samples_24k = len(pcm.content) // 2
    assert abs(samples_24k - len(audio) * 24000 / 32000) < 64  # pcm is resampled to OpenAI's 24 kHz


def test_request_parsing_accepts_upstream_spellings() -> None:
    req = parse_tts_request({"streaming_mode": "true", "aux_ref_audio_paths": '["a.wav", "b.wav"]', "seed": "7",
                             "parallel_infer": "false", "unknown_field": 1})
    assert req.streaming_mode == 1 and req.aux_ref_audio_paths == ("a.wav", "b.wav") and req.seed == 7
    assert req.parallel_infer is False
    assert parse_tts_request({"streaming_mode": True}).streaming_mode == 1
    assert parse_tts_request({"streaming_mode": 3}).streaming_mode == 3
    modes = [stream_settings(parse_tts_request({"streaming_mode": m, "min_chunk_length": 10})) for m in (1, 2, 3)]
    assert modes[0][0] == 0  # whole sentences
    assert modes[1][0] == modes[2][0] == 10 and modes[1][1] > modes[2][1]  # mode 2: more context than mode 3
    assert parse_tts_request({}).text_split_method == "cut5"


def test_api_process_starts_from_the_command_line_and_exits_on_control(tmp_path: Path) -> None:
    """``python -m app.api`` with the tiny pretrained set: serves /tts, then /control exit stops the process."""
    import subprocess
    import sys

    from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained
    from GPT_SoVITS.paths import REPO_ROOT

    pretrained = make_tiny_pretrained(tmp_path / "pretrained")
    ref = reference_wav(tmp_path / "refs" / "ref.wav")
    port = free_port()
    cmd = [sys.executable, "-m", "app.api", "--gpt", str(pretrained.gpt("v2")), "--sovits",
           str(pretrained.sovits_g("v2")), "--pretrained-dir", str(pretrained.root), "-p", str(port),
           "--ref-dir", str(tmp_path / "refs"), "--allow-control"]
    log_path = tmp_path / "api.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                httpx.get(url + "/v1/models", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.5)
        response = httpx.get(url + "/tts", params={"text": "你好。", "text_lang": "zh", "ref_audio_path": str(ref),
                                                   "prompt_text": "参考。", "prompt_lang": "zh", "seed": 1},
                             timeout=300)
        assert response.status_code == 200, response.text
        assert sf.info(io.BytesIO(response.content)).samplerate == 32000
        assert httpx.get(url + "/control", params={"command": "exit"}, timeout=10).status_code == 200
        assert proc.wait(timeout=30) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
