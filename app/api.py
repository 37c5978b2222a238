"""HTTP API over the synthesis engine, compatible with upstream's ``api_v2.py`` (plus an OpenAI-style endpoint).

``python -m app.api --gpt G.ckpt --sovits S.pth [-a 127.0.0.1] [-p 9880] [--pretrained-dir DIR]``

Endpoints (see docs/inference.md for the compatibility table):

* ``GET/POST /tts``: upstream's parameter names and defaults; ``media_type`` wav/raw/ogg/aac (+ flac/mp3/opus);
  ``streaming_mode`` 0/false, 1/true (sentence by sentence), 2 and 3 (token chunks of ``min_chunk_length``;
  2 decodes each chunk with more context for smoother seams, 3 with the minimum for speed).
* ``GET /set_gpt_weights?weights_path=…``, ``GET /set_sovits_weights?weights_path=…``,
  ``GET /set_refer_audio?refer_audio_path=…``, ``GET /control?command=exit|restart`` (only with
  ``--allow-control``).
* ``POST /v1/audio/speech``: OpenAI's speech request; ``voice`` names a preset ``<voices-dir>/<voice>.json``.

Errors are HTTP 400 with ``{"message": …}`` as upstream (403 for paths outside the allowed folders, for a
disabled /control and for state changes asked by another web site; 413 for a body over ``--max-body-bytes``).
Requests run in worker threads on one shared engine; see :mod:`GPT_SoVITS.infer.tts` for why they cannot
corrupt each other and why model switches do not affect requests in flight. A synthesis stops (between
sentences or streamed chunks) and gives its slot back when its client disconnects or the server stops
(SIGTERM/SIGINT: stop accepting, cancel what runs, exit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from GPT_SoVITS import oscompat
from GPT_SoVITS.audio import resample
from GPT_SoVITS.checkpoints import CheckpointError
from GPT_SoVITS.infer import (
    TTS,
    Cancelled,
    EmptyTextError,
    InvalidOptionError,
    Reference,
    ReferenceAudioError,
    SynthesisOptions,
    SynthesisResult,
)
from GPT_SoVITS.infer.components import ModelMismatchError
from GPT_SoVITS.infer.flags import add_device_flags, add_weight_flags
from GPT_SoVITS.infer.media import (
    CONTENT_TYPES,
    StreamEncoder,
    UnsupportedMediaTypeError,
    check_media_type,
    encode_audio,
)
from GPT_SoVITS.infer.memory import TrimWhenIdle, configure_allocator
from GPT_SoVITS.infer.options import check_language
from GPT_SoVITS.infer.safety import (
    ForbiddenPathError,
    OriginPolicy,
    PathPolicy,
    RequestLimitError,
    RequestLimits,
    weight_roots,
)
from GPT_SoVITS.infer.serving import RequestCancel, synthesis_slot
from GPT_SoVITS.infer.tts import STREAM_CONTEXT_TOKENS, STREAM_QUALITY_CONTEXT_TOKENS
from GPT_SoVITS.logs import setup_logging
from GPT_SoVITS.paths import REPO_ROOT, PretrainedPaths

log = logging.getLogger(__name__)

#: Seconds a stopping server waits for cancelled requests to answer; it exits this much later in any case (the
#: launcher kills a job 5 s after asking it to stop)
SHUTDOWN_GRACE_SECONDS = 3.0
SHUTDOWN_DEADLINE_SECONDS = 4.0
#: Endpoints that change the server's state (refused from other web sites, see OriginPolicy)
STATE_CHANGING_PATHS = frozenset({"/set_gpt_weights", "/set_sovits_weights", "/set_refer_audio", "/control"})

#: Errors caused by the request (HTTP 400): bad values, unusable reference, empty text, unknown format.
REQUEST_ERRORS = (InvalidOptionError, ReferenceAudioError, EmptyTextError, UnsupportedMediaTypeError,
                  ModelMismatchError, CheckpointError, FileNotFoundError, ValueError)


@dataclass(frozen=True)
class TTSRequest:
    """The fields of upstream's ``/tts`` request with upstream's defaults (extras are ours)."""

    text: str = ""
    text_lang: str = ""
    ref_audio_path: str = ""
    aux_ref_audio_paths: tuple[str, ...] = ()
    prompt_text: str = ""
    prompt_lang: str = ""
    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    text_split_method: str = "cut5"
    batch_size: int = 1
    batch_threshold: float = 0.75  # split_bucket: mean/longest phone count a batch keeps
    split_bucket: bool = True  # batch sentences of similar length (not while streaming)
    speed_factor: float = 1.0
    fragment_interval: float = 0.3
    seed: int = -1
    media_type: str = "wav"
    streaming_mode: int = 0  # 0 off; 1 sentence by sentence; 2/3 token chunks (2 smoother, 3 faster)
    parallel_infer: bool = True  # False = one sentence at a time
    repetition_penalty: float = 1.35
    sample_steps: int | None = None  # v4 only: flow-matching steps (None: 8, the WebUI's; upstream's api_v2: 32)
    super_sampling: bool = False  # v3 only (not supported): accepted, no effect
    overlap_length: int = 2  # accepted; token streaming re-decodes its own fixed context
    min_chunk_length: int = 16  # tokens per streamed chunk in modes 2/3
    check_tokens: bool = False  # ours: the token-count check (docs/inference.md)
    max_retries: int = 2  # ours


_FIELD_TYPES = {name: f.type for name, f in TTSRequest.__dataclass_fields__.items()}


class RequestError(ValueError):
    """A request field has the wrong type or is missing."""


def _coerce(name: str, value: Any) -> Any:
    kind = _FIELD_TYPES[name]
    if kind.endswith(" | None"):  # an optional field: absent, null or empty means "not given"
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
            return None
        kind = kind.removesuffix(" | None")
    if name == "streaming_mode" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return 1 if value.strip().lower() == "true" else 0  # upstream's older boolean form
    try:
        if kind == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "1", "yes", "on"):
                    return True
                if low in ("false", "0", "no", "off", ""):
                    return False
                raise ValueError(value)
            return bool(value)
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            items = json.loads(value) if isinstance(value, str) and value.strip().startswith("[") else value
            items = [items] if isinstance(items, str) else list(items or [])
            return tuple(str(v) for v in items if str(v).strip())
        return "" if value is None else str(value)
    except (TypeError, ValueError, json.JSONDecodeError):
        raise RequestError(f"{name}: {value!r} is not a valid {kind}") from None


def parse_tts_request(params: Mapping[str, Any]) -> TTSRequest:
    """Build a request from query parameters or a JSON body (unknown keys are ignored, as upstream)."""
    values = {name: _coerce(name, value) for name, value in params.items() if name in _FIELD_TYPES}
    return TTSRequest(**values)


@dataclass
class ApiState:
    """What the server holds: the engine, path rules, presets and the default reference."""

    tts: TTS
    ref_policy: PathPolicy
    weights_policy: PathPolicy
    allow_control: bool = False
    voices_dir: Path | None = None
    default_ref: Path | None = None
    argv: list[str] = field(default_factory=list)  # for /control?command=restart
    slots: threading.BoundedSemaphore | None = None  # at most this many syntheses at once; others wait
    limits: RequestLimits = RequestLimits()
    origins: OriginPolicy = OriginPolicy()
    stopping: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM/SIGINT: cancel everything
    memory: TrimWhenIdle = field(default_factory=TrimWhenIdle)  # free memory goes back to the OS when idle
    cancelled: int = 0  # requests stopped because their client left or the server stopped (event loop only)

    @staticmethod
    def make_slots(max_concurrency: int) -> threading.BoundedSemaphore | None:
        return threading.BoundedSemaphore(max_concurrency) if max_concurrency > 0 else None

    def note_cancelled(self, why: str) -> None:
        self.cancelled += 1
        log.info("request cancelled (%s)", why)


@contextlib.asynccontextmanager
async def watch_disconnect(request: Request, cancel: RequestCancel) -> AsyncIterator[None]:
    """While the block runs, a client that closes its connection sets ``cancel`` (the body is already read)."""

    async def watch() -> None:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                cancel.client_gone()
                return

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()


def _error(message: str, status: int = 400, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"message": message, **extra})


#: engine option name → the /tts parameter it comes from (for error messages)
_API_NAMES = {"speed": "speed_factor", "pause": "fragment_interval", "text_split": "text_split_method"}


def _build_job(state: ApiState, req: TTSRequest) -> tuple[str, str, Reference, SynthesisOptions]:
    if not req.text:
        raise RequestError("text is required")
    state.limits.check_text(req.text)
    state.limits.check_references(1 + len(req.aux_ref_audio_paths))
    if not req.text_lang:
        raise RequestError("text_lang is required")
    ref_value = req.ref_audio_path or (str(state.default_ref) if state.default_ref else "")
    if not ref_value:
        raise RequestError("ref_audio_path is required")
    if not req.prompt_lang and req.prompt_text:
        raise RequestError("prompt_lang is required")
    version = state.tts.version
    text_lang = check_language(req.text_lang, version, "text_lang")
    prompt_lang = check_language(req.prompt_lang or text_lang, version, "prompt_lang")
    ref = Reference(state.ref_policy.resolve(ref_value), req.prompt_text, prompt_lang,
                    tuple(state.ref_policy.resolve(p) for p in req.aux_ref_audio_paths))
    try:
        opts = SynthesisOptions(top_k=req.top_k, top_p=req.top_p, temperature=req.temperature,
                                repetition_penalty=req.repetition_penalty, seed=None if req.seed < 0 else req.seed,
                                speed=req.speed_factor, pause=req.fragment_interval,
                                text_split=req.text_split_method,
                                batch_size=req.batch_size if req.parallel_infer else 1,
                                split_bucket=req.split_bucket, batch_threshold=req.batch_threshold,
                                check_tokens=req.check_tokens, max_retries=req.max_retries,
                                sample_steps=req.sample_steps)
    except InvalidOptionError as exc:  # name the field as the client sent it
        field_name, _, rest = str(exc).partition(":")
        raise RequestError(f"{_API_NAMES.get(field_name, field_name)}:{rest}") from None
    check_media_type(req.media_type)
    if req.streaming_mode not in (0, 1, 2, 3):
        raise RequestError(f"streaming_mode: {req.streaming_mode} is not one of 0, 1, 2, 3")
    state.limits.check_sentences(len(state.tts.split(req.text, text_lang, opts.text_split)), opts.text_split)
    return req.text, text_lang, ref, opts


def stream_settings(req: TTSRequest) -> tuple[int, int]:
    """``(chunk_tokens, context_tokens)`` of a streaming mode: 1 whole sentences; 2 token chunks decoded with more
    context ("medium quality" upstream); 3 token chunks with the minimum context ("fastest")."""
    if req.streaming_mode == 1:
        return 0, STREAM_CONTEXT_TOKENS
    context = STREAM_QUALITY_CONTEXT_TOKENS if req.streaming_mode == 2 else STREAM_CONTEXT_TOKENS
    return max(1, req.min_chunk_length), context


class SynthesisStream(StreamingResponse):
    """A streamed synthesis that, however it ends (done, client gone, server stopping), stops the engine and gives
    its slot back at once instead of when the garbage collector finds the abandoned generator."""

    def __init__(self, state: ApiState, parts: Iterator[bytes], cancel: RequestCancel, media_type: str) -> None:
        self._state, self._parts, self._cancel, self._done = state, parts, cancel, False
        super().__init__(self._body(), media_type=media_type)

    async def _body(self) -> AsyncIterator[bytes]:
        try:
            while (data := await run_in_threadpool(next, self._parts, None)) is not None:
                yield data
        except Cancelled:  # the server is stopping (or the client left between chunks): end the stream here
            return
        self._done = True

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            if not self._done:
                self._cancel.client_gone()
                self._state.note_cancelled(f"stream ended early: {self._cancel.reason}")
            with anyio.CancelScope(shield=True):  # runs after a next() in flight has returned
                await run_in_threadpool(self._parts.close)


def _encoded(chunks: Iterator[np.ndarray], first: np.ndarray | None, encoder: StreamEncoder) -> Iterator[bytes]:
    try:
        yield encoder.start()
        if first is not None:
            yield encoder.push(first)
        for chunk in chunks:
            data = encoder.push(chunk)
            if data:
                yield data
        tail = encoder.finish()
        if tail:
            yield tail
    finally:
        chunks.close()  # the engine's generators and the slot, also when the stream is closed early


async def _stream_response(state: ApiState, request: Request, chunks: Iterator[np.ndarray], media_type: str,
                           cancel: RequestCancel) -> StreamingResponse:
    """Start a stream: the first chunk is made before the response begins, so request errors still give a 400."""
    try:
        async with watch_disconnect(request, cancel):
            first = await run_in_threadpool(next, chunks, None)
    except BaseException:
        chunks.close()
        raise
    encoder = StreamEncoder(media_type, state.tts.sample_rate)
    return SynthesisStream(state, _encoded(chunks, first, encoder), cancel, CONTENT_TYPES[media_type])


def _in_slot(state: ApiState, chunks: Iterator[np.ndarray], cancel: RequestCancel) -> Iterator[np.ndarray]:
    """Run a stream inside one concurrency slot (taken at the first chunk, given back when it ends or closes)."""
    with state.memory.running(), synthesis_slot(state.slots, cancel):
        yield from chunks


def _synthesize_in_slot(state: ApiState, text: str, lang: str, ref: Reference, opts: SynthesisOptions,
                        cancel: RequestCancel) -> SynthesisResult:
    with state.memory.running(), synthesis_slot(state.slots, cancel):
        return state.tts.synthesize_detailed(text, lang, ref, opts, cancel=cancel)


def _cancelled(state: ApiState, cancel: RequestCancel, exc: Cancelled) -> tuple[str, int]:
    """The message and status of a cancelled request (503 while stopping; 499, nginx's "client closed")."""
    state.note_cancelled(f"{cancel.reason}; {exc}")
    if state.stopping.is_set():
        return "the server is shutting down; the request was cancelled", 503
    return "the request was cancelled: the client disconnected", 499


async def handle_tts(state: ApiState, params: Mapping[str, Any], request: Request) -> Response:
    cancel = RequestCancel(state.stopping)
    try:
        req = parse_tts_request(params)
        text, lang, ref, opts = _build_job(state, req)
        media_type = check_media_type(req.media_type)
        tts = state.tts
        if req.streaming_mode:
            stream = tts.stream(text, lang, ref, opts, *stream_settings(req), cancel=cancel)
            return await _stream_response(state, request, _in_slot(state, stream, cancel), media_type, cancel)
        async with watch_disconnect(request, cancel):
            result = await run_in_threadpool(_synthesize_in_slot, state, text, lang, ref, opts, cancel)
        data = await run_in_threadpool(encode_audio, result.audio, result.sample_rate, media_type)
        headers = {"X-Seed": str(result.seed)}
        if result.regenerated:
            headers["X-Regenerated-Sentences"] = ",".join(str(s.index) for s in result.regenerated)
        return Response(data, media_type=CONTENT_TYPES[media_type], headers=headers)
    except Cancelled as exc:
        return _error(*_cancelled(state, cancel, exc))
    except ForbiddenPathError as exc:
        return _error(str(exc), 403)
    except (RequestError, RequestLimitError) as exc:
        return _error(str(exc))
    except REQUEST_ERRORS as exc:
        return _error("tts failed", Exception=str(exc))
    except RuntimeError as exc:  # e.g. out of memory: upstream answers 400 "tts failed" for every failure
        log.exception("synthesis failed")
        return _error("tts failed", Exception=str(exc))


def _switch(state: ApiState, kind: str, value: str | None) -> JSONResponse:
    if not value:
        return _error("weights_path is required")
    try:
        path = state.weights_policy.resolve(value)
        if kind == "gpt":
            state.tts.set_gpt(path)
        else:
            state.tts.set_sovits(path)
    except ForbiddenPathError as exc:
        return _error(str(exc), 403)
    except REQUEST_ERRORS as exc:
        return _error(f"change {kind} weight failed", Exception=str(exc))
    return JSONResponse({"message": "success"})


def _preset(state: ApiState, voice: str) -> dict[str, Any]:
    if state.voices_dir is None:
        raise RequestError("this server has no voice presets; start it with --voices-dir <folder>")
    names = sorted(p.stem for p in state.voices_dir.glob("*.json"))
    if voice not in names:
        raise RequestError(f"voice {voice!r} not found; available voices: {', '.join(names) or 'none'}")
    data = json.loads((state.voices_dir / f"{voice}.json").read_text(encoding="utf-8"))
    for key in ("ref_audio_path",):
        if key not in data:
            raise RequestError(f"voice preset {voice}.json has no {key!r}")
    ref_path = Path(data["ref_audio_path"])
    data["ref_audio_path"] = str(ref_path if ref_path.is_absolute() else state.voices_dir / ref_path)
    data["aux_ref_audio_paths"] = [str(p if Path(p).is_absolute() else state.voices_dir / p)
                                   for p in data.get("aux_ref_audio_paths", [])]
    return data


OPENAI_FORMATS = {"mp3": "mp3", "opus": "opus", "aac": "aac", "flac": "flac", "wav": "wav", "pcm": "raw"}
OPENAI_PCM_RATE = 24000  # OpenAI's pcm output is 24 kHz 16-bit mono; clients assume that rate


def _openai_error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": {"message": message, "type": "invalid_request_error",
                                                               "param": None, "code": None}})


def _number(source: Mapping[str, Any], name: str, default: Any, kind: type, where: str = "") -> Any:
    """``source[name]`` as ``kind`` (int/float), with the field's name in the error."""
    value = source.get(name, default)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError):
        noun = "an integer" if kind is int else "a number"
        raise RequestError(f"{name}{where}: {value!r} is not {noun}") from None


async def handle_openai_speech(state: ApiState, body: Mapping[str, Any], request: Request) -> Response:
    cancel = RequestCancel(state.stopping)
    try:
        text = str(body.get("input") or "")
        voice = str(body.get("voice") or "")
        fmt = str(body.get("response_format") or "mp3").lower()
        if fmt not in OPENAI_FORMATS:
            raise RequestError(f"response_format {fmt!r} is not supported; use one of {', '.join(OPENAI_FORMATS)}")
        preset = _preset(state, voice)
        text_lang = check_language(preset.get("text_lang", "auto"), state.tts.version, "text_lang")
        prompt_lang = check_language(preset.get("prompt_lang", text_lang), state.tts.version, "prompt_lang")
        ref = Reference(Path(preset["ref_audio_path"]), preset.get("prompt_text", ""), prompt_lang,
                        tuple(Path(p) for p in preset["aux_ref_audio_paths"]))
        in_preset = f" (voice preset {voice}.json)"
        seed = preset.get("seed")
        opts = SynthesisOptions(speed=_number(body, "speed", 1.0, float),
                                text_split=preset.get("text_split_method", "cut5"),
                                top_k=_number(preset, "top_k", 15, int, in_preset),
                                top_p=_number(preset, "top_p", 1.0, float, in_preset),
                                temperature=_number(preset, "temperature", 1.0, float, in_preset),
                                seed=None if seed is None else _number(preset, "seed", None, int, in_preset))
        if not text:
            raise RequestError("input is required")
        state.limits.check_text(text, "input")
        state.limits.check_references(1 + len(ref.extra_audios))
        state.limits.check_sentences(len(state.tts.split(text, text_lang, opts.text_split)), opts.text_split)
        async with watch_disconnect(request, cancel):
            result = await run_in_threadpool(_synthesize_in_slot, state, text, text_lang, ref, opts, cancel)
    except Cancelled as exc:
        return _openai_error(*_cancelled(state, cancel, exc))
    except (RequestError, RequestLimitError) as exc:
        return _openai_error(str(exc))
    except REQUEST_ERRORS as exc:
        return _openai_error(str(exc))
    audio, rate = result.audio, result.sample_rate
    if fmt == "pcm":
        audio, rate = resample(audio, rate, OPENAI_PCM_RATE), OPENAI_PCM_RATE
    data = await run_in_threadpool(encode_audio, audio, rate, OPENAI_FORMATS[fmt])
    content_type = "audio/pcm" if fmt == "pcm" else CONTENT_TYPES[OPENAI_FORMATS[fmt]]
    return Response(data, media_type=content_type)


class RequestGuard:
    """ASGI middleware in front of every route: refuses a state change asked by another web site (403) and a body
    or query string over ``--max-body-bytes`` (413) before any route runs, then replays the body it read."""

    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["path"] in STATE_CHANGING_PATHS:
            why = self.state.origins.refusal(headers, scope.get("server"))
            if why is not None:
                log.warning("%s %s refused: %s", scope["method"], scope["path"], why)
                await self._reply(scope, receive, send, why, 403)
                return
        limits = self.state.limits
        try:
            limits.check_body(len(scope.get("query_string", b"")), "query string")
            declared = headers.get("content-length", "")
            if declared.isdigit():
                limits.check_body(int(declared))
            body = await self._read_body(receive)
        except RequestLimitError as exc:
            await self._reply(scope, receive, send, str(exc), 413)
            return
        if body is None:  # the client left while sending
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, for the routes' disconnect watchers

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            part = message.get("body", b"")
            size += len(part)
            self.state.limits.check_body(size)
            parts.append(part)
            if not message.get("more_body", False):
                return b"".join(parts)

    @staticmethod
    async def _reply(scope: Scope, receive: Receive, send: Send, message: str, status: int) -> None:
        response = _openai_error(message, status) if scope["path"].startswith("/v1/") else _error(message, status)
        await response(scope, receive, send)


def create_app(state: ApiState) -> FastAPI:
    """The FastAPI application over ``state.tts`` (nothing is loaded here)."""
    app = FastAPI(title="GPT-SoVITS API", description="Compatible with upstream api_v2")
    _add_tts_routes(app, state)
    _add_admin_routes(app, state)
    _add_openai_routes(app, state)
    app.add_middleware(RequestGuard, state=state)
    if state.origins.allowed:  # pages of the allowed origins may also read the responses (CORS)
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(state.origins.allowed), allow_methods=["GET", "POST"],
                           allow_headers=["*"], expose_headers=["X-Seed", "X-Regenerated-Sentences"])
    return app


def _add_tts_routes(app: FastAPI, state: ApiState) -> None:
    @app.get("/tts")
    async def tts_get(request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        aux = request.query_params.getlist("aux_ref_audio_paths")
        if len(aux) > 1:  # ?aux_ref_audio_paths=a.wav&aux_ref_audio_paths=b.wav
            params["aux_ref_audio_paths"] = aux
        return await handle_tts(state, params, request)

    @app.post("/tts")
    async def tts_post(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error("the request body must be a JSON object")
        if not isinstance(body, dict):
            return _error("the request body must be a JSON object")
        return await handle_tts(state, body, request)


def _add_admin_routes(app: FastAPI, state: ApiState) -> None:
    @app.get("/set_gpt_weights")
    async def set_gpt_weights(weights_path: str | None = None) -> JSONResponse:
        return await run_in_threadpool(_switch, state, "gpt", weights_path)

    @app.get("/set_sovits_weights")
    async def set_sovits_weights(weights_path: str | None = None) -> JSONResponse:
        return await run_in_threadpool(_switch, state, "sovits", weights_path)

    @app.get("/set_refer_audio")
    async def set_refer_audio(refer_audio_path: str | None = None) -> JSONResponse:
        if not refer_audio_path:
            return _error("refer_audio_path is required")
        try:
            path = state.ref_policy.resolve(refer_audio_path)
            # validates the file (3–10 s) and caches its spectrogram; used when a request has no ref_audio_path
            await run_in_threadpool(state.tts.references.get, Reference(path), state.tts.models)
        except ForbiddenPathError as exc:
            return _error(str(exc), 403)
        except REQUEST_ERRORS as exc:
            return _error("set refer audio failed", Exception=str(exc))
        state.default_ref = path
        return JSONResponse({"message": "success"})

    @app.get("/control")
    async def control(command: str | None = None) -> Response:
        if not state.allow_control:
            return _error("/control is disabled; start the server with --allow-control to allow exit/restart", 403)
        if command not in ("exit", "restart"):
            return _error("command must be 'exit' or 'restart'")
        action = _restart if command == "restart" else _exit
        return JSONResponse({"message": f"{command} scheduled"}, background=BackgroundTask(action, state.argv))


def _add_openai_routes(app: FastAPI, state: ApiState) -> None:
    @app.post("/v1/audio/speech")
    async def openai_speech(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _openai_error("the request body must be a JSON object")
        if not isinstance(body, dict):
            return _openai_error("the request body must be a JSON object")
        return await handle_openai_speech(state, body, request)

    @app.get("/v1/models")
    async def openai_models() -> JSONResponse:
        return JSONResponse({"object": "list", "data": [{"id": "gpt-sovits", "object": "model",
                                                          "owned_by": "local"}]})


def _exit(_argv: list[str]) -> None:
    log.info("exit requested through /control")
    oscompat.interrupt_self()


def _restart(argv: list[str]) -> None:
    log.info("restart requested through /control")
    utf8 = ["-X", "utf8"] if sys.flags.utf8_mode else []  # the Windows package's Python ignores PYTHONUTF8
    oscompat.replace_process([sys.executable, *utf8, "-m", "app.api", *argv])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.api", description="GPT-SoVITS HTTP API (api_v2 compatible)",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_weight_flags(parser)
    parser.add_argument("-a", "--bind-addr", "--bind_addr", dest="bind_addr", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 exposes the API to your network")
    parser.add_argument("-p", "--port", type=int, default=9880, help="port")
    add_device_flags(parser)
    parser.add_argument("--ref-dir", type=Path, action="append", default=[],
                        help="folder clients may use reference audio from (repeatable; default: the repository)")
    parser.add_argument("--weights-dir", type=Path, action="append", default=[],
                        help="extra folder clients may load weights from (GPT_weights*/, SoVITS_weights*/ and the "
                             "pretrained folder are always allowed)")
    parser.add_argument("--voices-dir", type=Path, default=None,
                        help="folder of <voice>.json presets for POST /v1/audio/speech")
    parser.add_argument("--allow-control", action="store_true", help="enable GET /control?command=exit|restart")
    parser.add_argument("--max-concurrency", type=int, default=4,
                        help="syntheses run at once (more wait their turn; bounds memory); 0 = no limit")
    limits = RequestLimits()
    parser.add_argument("--max-body-bytes", type=int, default=limits.max_body_bytes,
                        help="largest request body (and query string) in bytes; larger ones get 413")
    parser.add_argument("--max-text-chars", type=int, default=limits.max_text_chars,
                        help="most characters of text one request may ask to speak")
    parser.add_argument("--max-sentences", type=int, default=limits.max_sentences,
                        help="most sentences (pieces after the text split) one request may ask for")
    parser.add_argument("--max-references", type=int, default=limits.max_references,
                        help="most reference audios (ref_audio_path + aux_ref_audio_paths) one request may name")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="web page origin (e.g. http://192.168.1.5:8080) allowed to switch models, set the "
                             "reference or use /control, and to read responses (CORS); repeatable. Pages of other "
                             "sites are refused; scripts and api_v2 clients (no Origin header) always work")
    return parser


def make_state(tts: TTS, args: argparse.Namespace, argv: list[str]) -> ApiState:
    ref_roots = args.ref_dir or [REPO_ROOT]
    ref_policy = PathPolicy.of(ref_roots, what="reference audio", flag="--ref-dir")
    weights_policy = PathPolicy.of(weight_roots(REPO_ROOT, args.pretrained_dir, args.weights_dir),
                                   suffixes=(".ckpt", ".pth"), what="weights_path", flag="--weights-dir")
    limits = RequestLimits(args.max_body_bytes, args.max_text_chars, args.max_sentences, args.max_references)
    return ApiState(tts, ref_policy, weights_policy, args.allow_control,
                    args.voices_dir.resolve() if args.voices_dir else None, argv=argv,
                    slots=ApiState.make_slots(args.max_concurrency), limits=limits,
                    origins=OriginPolicy.of(args.allow_origin))


def serve(app: FastAPI, state: ApiState, host: str, port: int) -> None:
    """Run uvicorn until SIGTERM/SIGINT; then stop accepting, cancel the running syntheses and return.

    uvicorn alone waits for every open request to finish (a long synthesis kept a stopped server alive for
    minutes) and then re-raises the signal; here the signal also sets ``state.stopping``, which the engine sees
    between sentences, and the process exits normally. A sentence can take longer than the launcher waits (up to
    60 s of audio in one GPT run), so a watchdog ends the process :data:`SHUTDOWN_DEADLINE_SECONDS` after the
    signal whatever is still running (the API writes no files, so nothing is lost).
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not state.stopping.is_set():
                state.stopping.set()
                threading.Thread(target=_exit_after, args=(SHUTDOWN_DEADLINE_SECONDS,), daemon=True,
                                 name="shutdown watchdog").start()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            signals = (signal.SIGINT, *oscompat.SHUTDOWN_SIGNALS)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    config = uvicorn.Config(app, host=host, port=port, workers=1, timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS)
    Server(config).run()


def _exit_after(seconds: float) -> None:
    time.sleep(seconds)
    log.warning("a synthesis was still running %.0f s after the stop signal (one long sentence); exiting without "
                "waiting for it", seconds)
    logging.shutdown()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        OriginPolicy.of(args.allow_origin)
    except ValueError as exc:
        parser.error(str(exc))
    setup_logging()
    configure_allocator()  # freed tensors go back to the OS (docs/inference.md, Memory)
    tts = TTS.from_paths(args.gpt, args.sovits, PretrainedPaths(args.pretrained_dir), args.device, args.half,
                             args.int8, args.decode_threads, args.cpu_bf16)
    state = make_state(tts, args, argv)
    log.info("API on http://%s:%d", args.bind_addr, args.port)
    serve(create_app(state), state, args.bind_addr, args.port)
    log.info("API stopped%s", f" ({state.cancelled} request(s) cancelled)" if state.cancelled else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
