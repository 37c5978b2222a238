"""The HTTP API under hostile or heavy use, through a real client (httpx) against a running server.

Request limits (413/400 naming the flag), clients that leave (the synthesis stops and its slot is given back),
state changes asked by other web sites (403), SIGTERM with a long request in flight (the process exits).
The in-process server has one synthesis slot, so a request that did not give its slot back blocks the next one.
"""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import soundfile as sf

httpx = pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

from app.api import ApiState, build_parser, create_app, make_state  # noqa: E402
from GPT_SoVITS.infer import TTS  # noqa: E402
from GPT_SoVITS.infer.components import load_model_pair  # noqa: E402
from GPT_SoVITS.infer.safety import OriginPolicy, PathPolicy, RequestLimits  # noqa: E402
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights  # noqa: E402
from tests.servers import free_port  # noqa: E402

SENTENCE = "今天天气很好。"
LONG_TEXT = SENTENCE * 450  # within the default limits; minutes of work for one slot
ALLOWED = "http://studio.example:8080"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("api_hardening")
    weights = root / "weights"
    gpt, sovits = save_tiny_weights(weights, name="a")
    gpt_b, _ = save_tiny_weights(weights, seed=1, name="b")
    refs = root / "refs"
    ref = reference_wav(refs / "ref.wav")
    voices = root / "voices"
    voices.mkdir()
    (voices / "alice.json").write_text(json.dumps({"ref_audio_path": "../refs/ref.wav", "prompt_text": "参考文本。",
                                                   "prompt_lang": "zh", "text_lang": "zh", "seed": 3}),
                                       encoding="utf-8")
    tts = TTS(load_model_pair(gpt, sovits), ToySSL(), CharFeaturizer(), max_new_tokens=24)
    state = ApiState(tts, PathPolicy.of([refs], what="reference audio"),
                     PathPolicy.of([weights], suffixes=(".ckpt", ".pth"), what="weights_path"),
                     allow_control=False, voices_dir=voices, slots=ApiState.make_slots(1),
                     limits=RequestLimits(), origins=OriginPolicy.of([ALLOWED]))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(state), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "state": state, "ref": ref, "gpt": gpt, "gpt_b": gpt_b}
    srv.should_exit = True
    thread.join(timeout=10)


def params(server, **extra) -> dict:
    base = {"text": SENTENCE, "text_lang": "zh", "ref_audio_path": str(server["ref"]), "prompt_text": "这是参考文本。",
            "prompt_lang": "zh", "seed": 5, "media_type": "raw"}
    return {**base, **extra}


def wait_for(condition: Callable[[], bool], what: str, guard: float = 300.0) -> None:
    """Poll ``condition``; the guard only stops a broken server from hanging the suite."""
    deadline = time.monotonic() + guard
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def assert_served(server) -> None:
    """A short request completes: the slot is free."""
    with httpx.Client(base_url=server["url"], timeout=300) as client:
        response = client.post("/tts", json=params(server))
    assert response.status_code == 200 and len(response.content) > 0


# ------------------------------------------------------------------------------------------------ limits
def test_a_body_over_the_limit_is_413_naming_the_flag(server) -> None:
    big = {**params(server), "padding": "x" * (2 << 20)}
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        declared = client.post("/tts", json=big)
        chunked = client.post("/tts", content=(part for part in [json.dumps(big).encode()[i:i + 65536]
                                                                 for i in range(0, 2 << 20, 65536)]),
                              headers={"content-type": "application/json"})
        openai = client.post("/v1/audio/speech", json={"input": "x" * (2 << 20), "voice": "alice"})
    for response in (declared, chunked):
        assert response.status_code == 413
        assert "limit is 1048576 bytes" in response.json()["message"]
        assert "--max-body-bytes" in response.json()["message"]
    assert openai.status_code == 413 and "--max-body-bytes" in openai.json()["error"]["message"]
    assert server["state"].tts.references.computed <= 1  # nothing was synthesised for them


@pytest.mark.parametrize(("change", "fragment"), [
    ({"text": "好" * 10_001}, "text is 10001 characters long; the limit is 10000"),
    ({"text": SENTENCE * 501, "text_split_method": "cut5"}, "splits into 501 sentences with cut5; the limit is 500"),
    ({"aux_ref_audio_paths": ["ref.wav"] * 10}, "names 11 reference audios"),
])
def test_text_sentence_and_reference_limits_are_400_naming_their_flags(server, change: dict, fragment: str
                                                                      ) -> None:
    flag = {"text is": "--max-text-chars", "splits": "--max-sentences", "names": "--max-references"}
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        response = client.post("/tts", json=params(server, **change))
    assert response.status_code == 400
    message = response.json()["message"]
    assert fragment in message and next(f for k, f in flag.items() if fragment.startswith(k)) in message


def test_openai_text_limit_and_a_bad_speed_name_their_field(server) -> None:
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        too_long = client.post("/v1/audio/speech", json={"input": "好" * 10_001, "voice": "alice"})
        fast = client.post("/v1/audio/speech", json={"input": SENTENCE, "voice": "alice", "speed": "fast"})
    assert too_long.status_code == 400 and "input is 10001 characters" in too_long.json()["error"]["message"]
    assert fast.status_code == 400 and fast.json()["error"]["message"] == "speed: 'fast' is not a number"


def test_limit_flags_and_their_defaults() -> None:
    args = build_parser().parse_args(["--gpt", "g.ckpt", "--sovits", "s.pth", "--max-text-chars", "50",
                                      "--allow-origin", "http://a.example:81/"])
    assert (args.max_body_bytes, args.max_sentences, args.max_references) == (1 << 20, 500, 10)
    state = make_state(object(), args, [])
    assert state.limits == RequestLimits(max_text_chars=50)
    assert state.origins.allowed == ("http://a.example:81",)


# ------------------------------------------------------------------------------------------ disconnects
def test_a_client_that_leaves_stops_its_synthesis_and_frees_the_slot(server, caplog) -> None:
    state = server["state"]
    total = len(state.tts.split(LONG_TEXT, "zh", "cut5"))
    before = state.cancelled
    with caplog.at_level(logging.INFO, logger="GPT_SoVITS.infer.tts"):
        with httpx.Client(base_url=server["url"], timeout=httpx.Timeout(60, read=1.0)) as client, \
                pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
            client.post("/tts", json=params(server, text=LONG_TEXT))
        wait_for(lambda: state.cancelled > before, "the server noticing the disconnect")
    done = [r.getMessage() for r in caplog.records if r.getMessage().startswith("synthesis cancelled after")]
    assert len(done) == 1, done
    assert int(done[0].split()[3]) < total and done[0].endswith(f"of {total} sentence(s)")
    assert_served(server)


def test_a_closed_stream_and_a_client_waiting_for_the_slot_give_up(server) -> None:
    state = server["state"]
    before = state.cancelled
    with httpx.Client(base_url=server["url"], timeout=120) as holder, \
            holder.stream("POST", "/tts", json=params(server, text=LONG_TEXT, streaming_mode=1)) as stream:
        assert stream.status_code == 200
        chunks = stream.iter_raw()  # kept: a discarded iterator closes the connection
        next(chunks)  # the stream holds the only slot now
        with httpx.Client(base_url=server["url"], timeout=httpx.Timeout(60, read=1.0)) as waiting, \
                pytest.raises(httpx.ReadTimeout):
            waiting.post("/tts", json=params(server))
        wait_for(lambda: state.cancelled == before + 1, "the waiting request giving up")
        # leaving the block closes the streaming connection mid-stream
    wait_for(lambda: state.cancelled == before + 2, "the stream noticing the disconnect")
    assert_served(server)


# --------------------------------------------------------------------------------------- cross-site requests
@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Referer": "http://evil.example/page.html"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},  # a browser that sent neither (referrerpolicy=no-referrer)
    {"Origin": "http://127.0.0.1:1"},  # another port is another origin
])
@pytest.mark.parametrize("path", ["/set_gpt_weights", "/set_sovits_weights", "/set_refer_audio", "/control"])
def test_state_changes_asked_by_other_sites_are_refused(server, headers: dict, path: str) -> None:
    models = server["state"].tts.models
    query = {"weights_path": str(server["gpt_b"]), "refer_audio_path": str(server["ref"]), "command": "exit"}
    with httpx.Client(base_url=server["url"], timeout=60) as client:
        response = client.get(path, params=query, headers=headers)
    assert response.status_code == 403
    message = response.json()["message"]
    assert message.startswith("cross-site request refused")
    if "Origin" in headers or "Referer" in headers:
        assert "--allow-origin" in message
    assert server["state"].tts.models is models


def test_scripts_same_origin_pages_and_allowed_origins_may_change_state(server) -> None:
    port = server["port"]
    allowed = [{}, {"Origin": f"http://127.0.0.1:{port}"}, {"Origin": f"http://localhost:{port}"},
               {"Referer": f"http://127.0.0.1:{port}/docs"}, {"Sec-Fetch-Site": "same-origin"},
               {"Sec-Fetch-Site": "none"}, {"Origin": ALLOWED}]
    with httpx.Client(base_url=server["url"], timeout=120) as client:
        for headers in allowed:
            for path in (server["gpt_b"], server["gpt"]):
                response = client.get("/set_gpt_weights", params={"weights_path": str(path)}, headers=headers)
                assert response.status_code == 200, (headers, response.text)
        assert server["state"].tts.models.gpt_path == server["gpt"]
        preflight = client.options("/tts", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"})
        tts = client.get("/tts", params=params(server), headers={"Origin": "http://evil.example"})
    assert preflight.headers.get("access-control-allow-origin") == ALLOWED
    assert tts.status_code == 200 and "access-control-allow-origin" not in tts.headers  # not readable cross-site


# ----------------------------------------------------------------------------------------------- SIGTERM
def test_sigterm_with_a_long_request_in_flight_exits_promptly_and_cleanly(tmp_path: Path) -> None:
    from GPT_SoVITS.dev.make_tiny_pretrained import make_tiny_pretrained
    from GPT_SoVITS.paths import REPO_ROOT

    pretrained = make_tiny_pretrained(tmp_path / "pretrained")
    ref = reference_wav(tmp_path / "refs" / "ref.wav")
    port = free_port()
    log_path = tmp_path / "api.log"
    cmd = [sys.executable, "-m", "app.api", "--gpt", str(pretrained.gpt("v2")), "--sovits",
           str(pretrained.sovits_g("v2")), "--pretrained-dir", str(pretrained.root), "-p", str(port),
           "--ref-dir", str(tmp_path / "refs")]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    replies: list[object] = []
    try:
        wait_for(lambda: _answers(url) or proc.poll() is not None, "the server to start")
        assert proc.poll() is None, log_path.read_text()
        query = {"text": SENTENCE * 200, "text_lang": "zh", "ref_audio_path": str(ref), "prompt_text": "参考。",
                 "prompt_lang": "zh", "seed": 1}
        client = threading.Thread(target=_request, args=(url, query, replies), daemon=True)
        client.start()
        wait_for(lambda: "reference prepared" in log_path.read_text(errors="replace"), "the synthesis to start")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)  # a guard only: the server used to wait for the whole request
        client.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(errors="replace")
    assert proc.returncode == 0, log_text
    # the engine stopped at its next sentence, or (one sentence taking longer) the shutdown deadline cut it short
    assert "synthesis cancelled after" in log_text or "exiting without waiting" in log_text
    # 503 when the synthesis noticed the stop; 500 or a closed connection when the deadline cut it short
    assert replies and (replies[0] in (500, 503) or isinstance(replies[0], httpx.TransportError)), replies


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/v1/models", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _request(url: str, query: dict, replies: list[object]) -> None:
    try:
        response = httpx.get(url + "/tts", params=query, timeout=300)
        replies.append(response.status_code)
        if response.status_code == 200:
            sf.info(io.BytesIO(response.content))
    except httpx.TransportError as exc:
        replies.append(exc)
