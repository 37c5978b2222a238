"""The HTTP API with a tiny v4 model: 48 kHz in every media type and in streams, sample_steps honoured (and refused
for a version without it), and the switch between a v2 and a v4 SoVITS file."""

from __future__ import annotations

import io
import struct
import threading
import time

import numpy as np
import pytest
import soundfile as sf
import torch

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from app.api import ApiState, create_app  # noqa: E402
from GPT_SoVITS.checkpoints import save_sovits_weights  # noqa: E402
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_SOVITS, sovits_upstream_config, write_v4  # noqa: E402
from GPT_SoVITS.infer import TTS  # noqa: E402
from GPT_SoVITS.infer.components import LazySlot, load_model_pair, load_vocoder_model  # noqa: E402
from GPT_SoVITS.infer.safety import PathPolicy  # noqa: E402
from GPT_SoVITS.models import SynthesizerTrn  # noqa: E402
from GPT_SoVITS.paths import PretrainedPaths  # noqa: E402
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights  # noqa: E402
from tests.servers import free_port  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("api_v4")
    weights = root / "weights"
    s2g, vocoder = write_v4(root / "pretrained", seed=1)
    gpt, _ = save_tiny_weights(weights, name="g")
    torch.manual_seed(0)  # a v2 model reading the tiny v4's HuBERT width (768), to switch to
    v2 = save_sovits_weights(weights / "v2_e1_s1.pth", SynthesizerTrn(TINY_SOVITS, with_posterior=False).state_dict(),
                             sovits_upstream_config(TINY_SOVITS), 1, 1)
    ref = reference_wav(root / "refs" / "ref.wav")
    pretrained = PretrainedPaths(root / "pretrained")
    tts = TTS(load_model_pair(gpt, s2g, pretrained=pretrained), ToySSL(dim=768), CharFeaturizer(), max_new_tokens=10,
              vocoder=LazySlot(loader=lambda: load_vocoder_model(vocoder), what="vocoder"), pretrained=pretrained)
    state = ApiState(tts, PathPolicy.of([root / "refs"], what="reference audio"),
                     PathPolicy.of([weights, root / "pretrained"], suffixes=(".ckpt", ".pth"), what="weights_path"),
                     allow_control=False, slots=ApiState.make_slots(1))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield {"url": f"http://127.0.0.1:{port}", "ref": ref, "v2": v2, "v4": s2g, "tts": tts}
    srv.should_exit = True
    thread.join(timeout=10)


def params(server, **extra) -> dict:
    return {"text": "今天天气很好。", "text_lang": "zh", "ref_audio_path": str(server["ref"]),
            "prompt_text": "这是参考文本。", "prompt_lang": "zh", "seed": 5, "sample_steps": 2, **extra}


def test_v4_answers_48k_wav_and_honours_sample_steps(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=300) as client:
        two = client.get("/tts", params=params(server))
        four = client.get("/tts", params=params(server, sample_steps=4))
        again = client.post("/tts", json=params(server))
        bad = client.get("/tts", params=params(server, sample_steps=0))
    assert two.status_code == 200, two.text
    audio, rate = sf.read(io.BytesIO(two.content), dtype="float32")
    assert rate == 48000 and audio.size and np.isfinite(audio).all()
    assert again.content == two.content and four.content != two.content
    assert bad.status_code == 400 and "sample_steps" in bad.json()["message"]


def test_v4_streams_carry_the_48k_rate(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=300) as client:
        wav = client.get("/tts", params=params(server, streaming_mode=1, media_type="wav")).content
        raw = client.get("/tts", params=params(server, streaming_mode=3, media_type="raw")).content
    assert wav[:4] == b"RIFF" and struct.unpack("<I", wav[24:28])[0] == 48000
    assert len(raw) % 2 == 0 and len(raw) > 0


def test_switching_to_v2_refuses_sample_steps_and_back(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=300) as client:
        assert client.get("/set_sovits_weights", params={"weights_path": str(server["v2"])}).status_code == 200
        refused = client.get("/tts", params=params(server))
        plain = client.get("/tts", params=params(server, sample_steps=""))
        assert client.get("/set_sovits_weights", params={"weights_path": str(server["v4"])}).status_code == 200
        back = client.get("/tts", params=params(server))
    assert refused.status_code == 400
    assert "sample_steps: v2 models have no sampling steps" in refused.json()["Exception"]
    assert plain.status_code == 200 and sf.info(io.BytesIO(plain.content)).samplerate == 32000
    assert back.status_code == 200 and sf.info(io.BytesIO(back.content)).samplerate == 48000
