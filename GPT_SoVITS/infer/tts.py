"""The synthesis engine: one :class:`TTS` object behind the CLI, the inference WebUI and the HTTP API.

Pipeline per request (spec §8.1 / §8.3)::

    text ─ split (cut0…cut5) ─ per piece: phones + BERT ─┐
    reference ─ (cached) prompt tokens, style vector, prompt phones/BERT ─┤
                                   GPT (KV cache, batches of sentences) ─ semantic tokens
                                   SoVITS decode (per sentence, speed) ─ audio (32 kHz; v4: CFM mel +
                                   vocoder, 48 kHz), + pause

Concurrency: a request takes one snapshot of the models when it starts, so switching models (``set_gpt`` /
``set_sovits``) never changes the models under a request in flight; every request has its own random
generator, so concurrent requests do not disturb each other's sampling. The text front-end (tokenizers, g2p
dictionaries) is serialised by a lock; the GPT and SoVITS run concurrently.

Cancellation: every entry point takes ``cancel``, a callable polled between pieces of work (text pieces, GPT
batches, sentence decodes, streamed chunks); when it returns True the request stops with :class:`Cancelled`.
It is called from the synthesising thread, so it must be thread-safe (``threading.Event().is_set`` is).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from GPT_SoVITS.infer.components import (
    LazySlot,
    ModelMismatchError,
    ModelPair,
    SpeakerEncoder,
    SSLFeaturizer,
    TextFeatures,
    TextFeaturizer,
    default_text_featurizer,
    load_gpt,
    load_model_pair,
    load_sovits_model,
    load_speaker_encoder,
    load_ssl_featurizer,
    load_vocoder_model,
)
from GPT_SoVITS.infer.memory import release_free_memory
from GPT_SoVITS.infer.options import InvalidOptionError, Reference, SynthesisOptions, check_language
from GPT_SoVITS.infer.reference import PreparedReference, ReferenceCache
from GPT_SoVITS.infer.streaming import ChunkStitcher
from GPT_SoVITS.logs import ProgressCallback
from GPT_SoVITS.models.cpu_features import use_cpu_bf16
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.sovits_v4 import synthesize as synthesize_cfm
from GPT_SoVITS.paths import PretrainedPaths
from GPT_SoVITS.text.split import split_text

log = logging.getLogger(__name__)

SEMANTIC_RATE = 25.0  # semantic tokens per second (v1/v2)
MAX_NEW_TOKENS = 1500  # upstream's cap per sentence: 60 s
# CPU threads for the GPT's layer steps. On a 2-core machine shared with other programs, 1-thread decode steps
# were ~3x faster than 2-thread ones, quiet or with one more core kept busy (benchmarks/bench_load.py,
# docs/models.md), and a lone request's output is bit-identical either way. But torch's thread count is
# process-wide: while one request's decode holds the limit, requests running beside it also compute on one
# thread, and some of their products then differ in the last bits, so concurrent requests would no longer
# reproduce their sequential results exactly. The engine therefore keeps torch's threads (None) unless told;
# the front-ends that run one synthesis at a time (CLI, inference WebUI) pass SINGLE_REQUEST_DECODE_THREADS.
DECODE_THREADS: int | None = None
SINGLE_REQUEST_DECODE_THREADS = 1
#: Engine default of ``cpu_bf16``: "auto" runs the SoVITS decoder in bfloat16 on CPUs with AMX (2.2x faster than
#: float32 on a 10 s decode, audio within 4 % of the float32 peak, RMS within 1 %), in fixed-size windows so
#: oneDNN builds its bfloat16 primitives once, at load, and the memory stays flat (docs/models.md).
CPU_BF16 = "auto"
STREAM_CONTEXT_TOKENS = 4  # tokens of history decoded again before each streamed chunk (fast)
#: Context for smoother seams: on full-size weights the streamed audio's distance from the whole-sentence decode
#: drops from 0.39 to 0.34 (relative RMS) for about 40 % more decoding time (docs/inference.md,
#: benchmarks/bench_stream_context.py).
STREAM_QUALITY_CONTEXT_TOKENS = 25


class EmptyTextError(ValueError):
    """The text to speak contains nothing speakable."""


#: Polled between pieces of work; True stops the request (see the module docstring).
CancelCheck = Callable[[], bool]


class Cancelled(RuntimeError):
    """The caller cancelled the request (client gone, server stopping); ``done`` of ``total`` sentences were made."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"synthesis cancelled after {done} of {total} sentence(s)" if total else
                         "synthesis cancelled before it started")
        self.done, self.total = done, total


def _stop_if_cancelled(cancel: CancelCheck | None, done: int, total: int) -> None:
    if cancel is not None and cancel():
        exc = Cancelled(done, total)
        log.info("%s", exc)
        raise exc


@dataclass(frozen=True)
class SentenceReport:
    """What happened to one piece of the text."""

    index: int
    text: str
    n_phones: int
    n_tokens: int
    attempts: int  # 1 = first try accepted; more = regenerated by the token-count check
    problem: str | None  # the check's complaint about the final attempt (None = plausible or not checked)
    seed: int  # seed of the generator that produced the final tokens
    seconds: float  # audio length without the pause


@dataclass(frozen=True)
class SemanticSentence:
    """What the GPT produced for one sentence: enough to decode it again without the GPT."""

    phones: tuple[int, ...]
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class SynthesisResult:
    sample_rate: int
    audio: np.ndarray  # float32 [-1, 1], mono
    sentences: tuple[SentenceReport, ...]
    seed: int  # the request seed: passing it again reproduces this result
    semantic: tuple[SemanticSentence, ...] = ()  # per sentence, for :meth:`TTS.resynthesize`
    version: str = ""  # model version the phones belong to

    @property
    def regenerated(self) -> list[SentenceReport]:
        """Sentences the token-count check regenerated at least once."""
        return [s for s in self.sentences if s.attempts > 1]


def token_count_problem(n_phones: int, n_tokens: int, stopped_on_eos: bool, opts: SynthesisOptions) -> str | None:
    """Why a generated token count is implausible for a phone count, or None if it is plausible.

    Speech runs at roughly 3–25 phones per second (the GPT training set is filtered to that range); at 25
    tokens per second that bounds the token count. Too few tokens means swallowed words; too many, or no
    end-of-speech token at all, means repeated words or babbling.
    """
    if not stopped_on_eos:
        return f"no end of speech after {n_tokens} tokens (runaway generation)"
    seconds = max(n_tokens, 1) / SEMANTIC_RATE
    rate = n_phones / seconds
    if rate > opts.max_phone_rate:
        return (f"too short: {n_tokens} tokens ({seconds:.2f} s) for {n_phones} phones = {rate:.1f} phones/s "
                f"> {opts.max_phone_rate:g} (words were probably swallowed)")
    if rate < opts.min_phone_rate:
        return (f"too long: {n_tokens} tokens ({seconds:.2f} s) for {n_phones} phones = {rate:.1f} phones/s "
                f"< {opts.min_phone_rate:g} (words were probably repeated)")
    return None


def bucket_batches(lengths: Sequence[int], batch_size: int, threshold: float) -> list[list[int]]:
    """Group item indices into batches of at most ``batch_size`` items of similar length, shortest first.

    A batched GPT pass costs as much as its longest item for every item, so a batch grows (in order of length)
    only while its mean length stays at least ``threshold`` × its longest: with 0.75 at most a quarter of its
    work is padding. ``threshold`` 0 fills every batch to ``batch_size``.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lambda i: (lengths[i], i)):
        n = lengths[i]
        if current and (len(current) >= batch_size or total + n < threshold * n * (len(current) + 1)):
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        batches.append(current)
    return batches


def _join(sentences: Sequence[np.ndarray], pause: float, sample_rate: int) -> np.ndarray:
    """The sentences, each followed by ``pause`` seconds of silence (at the output rate: upstream sizes the pause
    at 32 kHz even for 48 kHz output, so its v4 pauses are two thirds of the request)."""
    silence = np.zeros(int(round(pause * sample_rate)), dtype=np.float32)
    parts = [part for audio in sentences for part in (audio, silence)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def _log_speed(what: str, n_sentences: int, audio: np.ndarray, sample_rate: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    seconds = len(audio) / sample_rate
    log.info("%s %d sentence(s), %.2f s of audio in %.2f s (RTF %.3f)", what, n_sentences, seconds, elapsed,
             elapsed / max(seconds, 1e-9))


class TTS:
    """Text-to-speech with a GPT + SoVITS model pair. Build with :meth:`from_paths` (or directly in tests)."""

    def __init__(self, models: ModelPair, ssl: SSLFeaturizer, text: TextFeaturizer, *, device: str = "cpu",
                 half: bool = False, cache_size: int = 8, max_new_tokens: int = MAX_NEW_TOKENS,
                 int8: bool = False, speaker: SpeakerEncoder | LazySlot[SpeakerEncoder] | None = None,
                 vocoder: torch.nn.Module | LazySlot[torch.nn.Module] | None = None,
                 pretrained: PretrainedPaths | None = None, decode_threads: int | None = DECODE_THREADS,
                 cpu_bf16: str = CPU_BF16) -> None:
        models.check()
        self._speaker = (speaker if isinstance(speaker, LazySlot)
                         else LazySlot(speaker, what="speaker-verification model"))
        self._vocoder = vocoder if isinstance(vocoder, LazySlot) else LazySlot(vocoder, what="vocoder")
        self.pretrained = pretrained  # base models of LoRA releases (None: the project's pretrained_models)
        self._load_helpers(models)  # a missing speaker-verification model or vocoder is reported now
        self.int8 = int8  # CPU only: GPT decoding with int8 weights (faster; tokens can differ from float)
        if int8:
            models.t2s.enable_int8_decoding()
        # CPU threads for the GPT's one-token decode steps (None: torch's setting); see DECODE_THREADS
        self.decode_threads = decode_threads
        models.t2s.decode_threads = decode_threads
        # bfloat16 SoVITS decoder ("auto": where the CPU computes bfloat16 natively); see use_bf16_decoder
        self.cpu_bf16 = cpu_bf16
        self.bf16_decoder = use_cpu_bf16(cpu_bf16, models.device)
        self._prepare_sovits(models.sovits)
        self._models = models
        self.device = device
        self.half = half
        self.max_new_tokens = max_new_tokens
        self._text = text
        self._text_lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._rng_lock = threading.Lock()
        self.references = ReferenceCache(ssl, text, self._text_lock, cache_size, self._speaker)

    @classmethod
    def from_paths(cls, gpt: Path, sovits: Path, pretrained: PretrainedPaths = PretrainedPaths(),
                   device: str = "cpu", half: bool = False, int8: bool = False,
                   decode_threads: int | None = DECODE_THREADS, cpu_bf16: str = CPU_BF16) -> TTS:
        """Load the GPT and SoVITS files plus BERT and HuBERT from ``pretrained`` (upstream's folder layout).

        Parameters
        ----------
        gpt, sovits : weight files (release ``GPT_weights*/…ckpt`` / ``SoVITS_weights*/…pth`` or pretrained).
        pretrained : where ``chinese-roberta-wwm-ext-large``, ``chinese-hubert-base`` and (for v2Pro/v2ProPlus
            models, loaded when one is first used) ``sv/pretrained_eres2netv2w24s4ep4.ckpt`` live.
        device : ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
        half : float16 weights (GPU only; CPU always runs float32).
        int8 : CPU only: decode the GPT with int8 weights (faster; tokens can differ from float decoding).
        decode_threads : CPU only: at most this many threads for the GPT's decode steps (None: all of torch's);
            see :data:`DECODE_THREADS`.
        cpu_bf16 : ``"auto"``, ``"on"`` or ``"off"``: run the SoVITS decoder (v1/v2/v2Pro/v2ProPlus) in bfloat16
            on the CPU; ``auto`` does where the CPU has AMX-BF16 or AVX-512-BF16 (see :data:`CPU_BF16`).
        """
        half = half and not str(device).startswith("cpu")
        models = load_model_pair(gpt, sovits, device, half, pretrained)
        ssl = load_ssl_featurizer(pretrained, device, half)
        text = default_text_featurizer(pretrained, device, half)
        speaker = LazySlot(loader=lambda: load_speaker_encoder(pretrained.sv, device, half),
                           what="speaker-verification model")
        # the only vocoder a supported version uses is v4's (v3's BigVGAN is not supported)
        vocoder = LazySlot(loader=lambda: load_vocoder_model(pretrained.vocoder("v4"), device, half), what="vocoder")
        return cls(models, ssl, text, device=device, half=half, int8=int8, speaker=speaker, vocoder=vocoder,
                   pretrained=pretrained, decode_threads=decode_threads, cpu_bf16=cpu_bf16)

    # ------------------------------------------------------------------------------------------ models
    @property
    def models(self) -> ModelPair:
        """The current model pair (a request keeps the snapshot it started with)."""
        return self._models

    @property
    def version(self) -> str:
        return self._models.version

    @property
    def sample_rate(self) -> int:
        """Of the current models' audio (32 kHz; v4 48 kHz)."""
        return self._models.sample_rate

    def _load_helpers(self, pair: ModelPair) -> None:
        """Load what ``pair``'s version needs besides the two models (speaker encoder, vocoder), or raise."""
        if pair.needs_speaker_encoder:
            self._speaker.get()
        if pair.needs_vocoder:
            self._vocoder.get()

    def _prepare_sovits(self, sovits: torch.nn.Module) -> None:
        """Apply the engine's precision choice to a SoVITS model it is about to use (v4 models stay as loaded)."""
        if self.bf16_decoder and hasattr(sovits, "use_bf16_decoder"):
            sovits.use_bf16_decoder(warm_up=True)
            # the warm-up's work buffers are freed but glibc keeps the pages (~300 MiB measured); hand them back
            release_free_memory()

    def _dtype(self) -> torch.dtype:
        return torch.float16 if self.half else torch.float32

    def set_models(self, gpt: Path | None = None, sovits: Path | None = None) -> None:
        """Load another GPT and/or SoVITS file (both at once when given together).

        Requests in flight finish with the models they started with. On any error (unreadable file, a GPT
        that cannot read the SoVITS version's phones) the current models stay.
        """
        with self._switch_lock:
            pair = self._models
            if gpt is not None:
                t2s = load_gpt(Path(gpt), self.device, self._dtype())
                if self.int8:
                    t2s.enable_int8_decoding()
                t2s.decode_threads = self.decode_threads
                pair = pair.with_gpt(t2s, Path(gpt))
            if sovits is not None:
                model = load_sovits_model(Path(sovits), self.device, self._dtype(), self.pretrained)
                self._prepare_sovits(model)
                pair = pair.with_sovits(model, Path(sovits))
            pair.check()
            self._load_helpers(pair)
            self._models = pair
        log.info("models switched: GPT %s, SoVITS %s (version %s)", pair.gpt_path, pair.sovits_path, pair.version)

    def set_gpt(self, path: Path) -> None:
        """Load another GPT file; requests in flight finish with the old one."""
        self.set_models(gpt=path)

    def set_sovits(self, path: Path) -> None:
        """Load another SoVITS file (its version decides the pipeline); requests in flight are unaffected."""
        self.set_models(sovits=path)

    # ------------------------------------------------------------------------------------------ text
    def split(self, text: str, lang: str, method: str = "cut1") -> list[str]:
        """The pieces a text is synthesised in (for previews; the same split synthesis uses)."""
        return split_text(text, method, "en" if lang == "en" else "zh")

    def _featurize(self, pieces: Sequence[str], lang: str, version: str, cancel: CancelCheck | None = None
                   ) -> list[TextFeatures]:
        out = []
        with self._text_lock:
            for piece in pieces:
                _stop_if_cancelled(cancel, 0, len(pieces))
                out.append(self._text(piece, lang, version))
        return out

    def _pieces(self, text: str, lang: str, ref: Reference, opts: SynthesisOptions, models: ModelPair
                ) -> tuple[str, list[str], PreparedReference]:
        lang = check_language(lang, models.version, "text language")
        if opts.sample_steps is not None and not models.needs_vocoder:
            raise InvalidOptionError(f"sample_steps: {models.version} models have no sampling steps (only the "
                                     "flow-matching v4 has); leave the option out for this model.")
        if not ref.text_free:
            check_language(ref.lang, models.version, "reference language")
        pieces = self.split(text, lang, opts.text_split)
        if not pieces:
            raise EmptyTextError("The text to synthesize is empty or has no speakable characters; enter some text.")
        return lang, pieces, self.references.get(ref, models)

    def _feature_batches(self, pieces: Sequence[str], lang: str, version: str, opts: SynthesisOptions,
                         cancel: CancelCheck | None = None) -> Iterator[list[tuple[int, str, TextFeatures]]]:
        """Batches of ``(order, piece, features)``; ``order`` numbers the pieces that have phones (the others are
        dropped). Raises :class:`EmptyTextError` if no piece has any.

        Without bucketing the pieces are featurized a batch at a time, in text order, so the first audio does
        not wait for the whole text. With ``split_bucket`` (and ``batch_size > 1``) every piece is featurized
        first and the batches group pieces of similar length (:func:`bucket_batches`).
        """
        size = opts.batch_size
        if opts.split_bucket and size > 1 and len(pieces) > size:
            kept = self._kept(pieces, self._featurize(pieces, lang, version, cancel))
            if kept:
                lengths = [len(f.phones) for _, f in kept]
                for batch in bucket_batches(lengths, size, opts.batch_threshold):
                    yield [(i, kept[i][0], kept[i][1]) for i in batch]
        else:
            kept = []
            for start in range(0, len(pieces), size):
                chunk = pieces[start:start + size]
                new = self._kept(chunk, self._featurize(chunk, lang, version))  # the caller checks per batch
                if new:
                    yield [(len(kept) + i, p, f) for i, (p, f) in enumerate(new)]
                kept.extend(new)
        if not kept:
            raise EmptyTextError(f"No phones could be made from the text in language {lang!r}; check the text "
                                 "language setting.")

    @staticmethod
    def _kept(pieces: Sequence[str], feats: Sequence[TextFeatures]) -> list[tuple[str, TextFeatures]]:
        return [(p, f) for p, f in zip(pieces, feats, strict=True) if f.phones]

    # ------------------------------------------------------------------------------------------ GPT / SoVITS
    def _sampling(self, opts: SynthesisOptions, max_new: int) -> SamplingOptions:
        return SamplingOptions(top_k=opts.top_k, top_p=opts.top_p, temperature=opts.temperature,
                               repetition_penalty=opts.repetition_penalty, max_new_tokens=max_new)

    def _max_new_tokens(self, features: Sequence[TextFeatures], opts: SynthesisOptions) -> int:
        if not opts.check_tokens:
            return self.max_new_tokens
        # beyond this many tokens a sentence is flagged anyway, so stop there instead of running to 60 s
        longest = max(len(f.phones) for f in features)
        return min(self.max_new_tokens, math.ceil(longest * SEMANTIC_RATE / opts.min_phone_rate) + 1)

    def _gpt_inputs(self, feats: TextFeatures, ref: PreparedReference) -> tuple[torch.Tensor, torch.Tensor]:
        device = self._models.device
        if ref.text is None:
            phones, bert = feats.phones, feats.bert
        else:
            phones = ref.text.phones + feats.phones
            bert = torch.cat([ref.text.bert.to(device), feats.bert.to(device)], dim=1)
        return torch.tensor(phones, dtype=torch.long, device=device), bert.to(device)

    def _generate(self, models: ModelPair, batch: Sequence[TextFeatures], ref: PreparedReference,
                  opts: SynthesisOptions, generator: torch.Generator) -> tuple[list[torch.Tensor], list[bool]]:
        inputs = [self._gpt_inputs(f, ref) for f in batch]
        prompts = None if ref.codes is None else [ref.codes] * len(batch)
        result = models.t2s.generate([p for p, _ in inputs], [b for _, b in inputs], prompts,
                                     self._sampling(opts, self._max_new_tokens(batch, opts)), generator)
        return result.tokens, result.stopped_on_eos

    def _generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self._models.device).manual_seed(seed)

    @torch.inference_mode()
    def _decode(self, models: ModelPair, tokens: torch.Tensor, phone_ids: Sequence[int], ref: PreparedReference,
                opts: SynthesisOptions, seed: int | None, normalize: bool = True) -> np.ndarray:
        if tokens.numel() == 0:
            tokens = torch.zeros(1, dtype=torch.long, device=tokens.device)  # upstream's "bad zero prediction"
        codes = tokens.view(1, 1, -1)
        phones = torch.tensor([list(phone_ids)], dtype=torch.long, device=codes.device)
        if models.needs_vocoder:  # v4: flow-matching mel, vocoder; its noise comes from a per-sentence generator
            generator = None if seed is None else torch.Generator(device=codes.device).manual_seed(seed)
            wave = synthesize_cfm(models.sovits, self._vocoder.get(), ref.cfm, codes, phones, opts.speed,
                                  opts.sample_steps, generator=generator)
            audio = wave.float().cpu().numpy()
            return audio if normalize else np.clip(audio, -1.0, 1.0)  # synthesize_cfm divides a peak > 1 already
        if seed is None:
            wave = models.sovits.decode(codes, phones, None, noise_scale=opts.noise_scale, speed=opts.speed, ge=ref.ge)
        else:
            # the prior noise comes from torch's global generator; seeding it makes the audio reproducible
            with self._rng_lock:
                torch.manual_seed(seed)
                wave = models.sovits.decode(codes, phones, None, noise_scale=opts.noise_scale, speed=opts.speed,
                                            ge=ref.ge)
        audio = wave[0, 0].float().cpu().numpy()
        if not normalize:
            return np.clip(audio, -1.0, 1.0)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        return audio / peak if peak > 1.0 else audio

    # ------------------------------------------------------------------------------------------ public API
    def iter_sentences(self, text: str, lang: str, ref: Reference, opts: SynthesisOptions = SynthesisOptions(),
                       progress: ProgressCallback | None = None, cancel: CancelCheck | None = None
                       ) -> Iterator[tuple[np.ndarray, SentenceReport]]:
        """Yield ``(audio, report)`` per piece of the text, in order, as soon as each is ready.

        ``audio`` is float32 at the models' rate (:attr:`sample_rate`) without the pause. Raises
        :class:`InvalidOptionError`, :class:`ReferenceAudioError` or :class:`EmptyTextError` before any audio is
        made, :class:`Cancelled` when ``cancel()`` turns True.
        """
        for audio, report, _ in self._sentences(self._models, text, lang, ref, opts, progress, cancel):
            yield audio, report

    def _sentences(self, models: ModelPair, text: str, lang: str, ref: Reference, opts: SynthesisOptions,
                   progress: ProgressCallback | None, cancel: CancelCheck | None = None
                   ) -> Iterator[tuple[np.ndarray, SentenceReport, SemanticSentence]]:
        """:meth:`iter_sentences` with the semantic tokens of each sentence; ``models`` is the request's snapshot."""
        _stop_if_cancelled(cancel, 0, 0)
        lang, pieces, prepared = self._pieces(text, lang, ref, opts, models)
        seed = opts.seed if opts.seed is not None else secrets.randbelow(2**31)
        generator = self._generator(seed)
        decode_seeded = opts.seed is not None
        ready: dict[int, tuple[np.ndarray, SentenceReport, SemanticSentence]] = {}
        next_out = 0
        for batch in self._feature_batches(pieces, lang, models.version, opts, cancel):
            _stop_if_cancelled(cancel, next_out + len(ready), len(pieces))
            tokens, stopped = self._generate(models, [f for _, _, f in batch], prepared, opts, generator)
            for offset, (order, piece, feats) in enumerate(batch):
                _stop_if_cancelled(cancel, next_out + len(ready), len(pieces))
                toks, used_seed, attempts, problem = tokens[offset], seed, 1, None
                if opts.check_tokens:
                    toks, used_seed, attempts, problem = self._check_and_retry(
                        models, feats, prepared, opts, toks, stopped[offset], seed, order)
                audio = self._decode(models, toks, feats.phones, prepared, opts,
                                     used_seed if decode_seeded else None)
                report = SentenceReport(order, piece, len(feats.phones), int(toks.numel()), attempts, problem,
                                        used_seed, len(audio) / models.sample_rate)
                ready[order] = (audio, report, SemanticSentence(tuple(feats.phones), tuple(toks.tolist())))
                if progress is not None:
                    progress(len(ready) + next_out, len(pieces))
            while next_out in ready:  # text order, whatever order the batches were made in
                yield ready.pop(next_out)
                next_out += 1

    def _check_and_retry(self, models: ModelPair, feats: TextFeatures, ref: PreparedReference,
                         opts: SynthesisOptions, tokens: torch.Tensor, stopped: bool, seed: int, index: int
                         ) -> tuple[torch.Tensor, int, int, str | None]:
        problem = token_count_problem(len(feats.phones), int(tokens.numel()), stopped, opts)
        used_seed, attempt = seed, 1
        while problem is not None and attempt <= opts.max_retries:
            used_seed = (seed + 7919 * attempt + index) % 2**63
            log.warning("sentence %d: %s; regenerating with seed %d (retry %d/%d)", index, problem, used_seed,
                        attempt, opts.max_retries)
            new_tokens, new_stopped = self._generate(models, [feats], ref, opts, self._generator(used_seed))
            tokens, attempt = new_tokens[0], attempt + 1
            problem = token_count_problem(len(feats.phones), int(tokens.numel()), new_stopped[0], opts)
        if problem is not None:
            log.warning("sentence %d still implausible after %d attempts: %s", index, attempt, problem)
        return tokens, used_seed, attempt, problem

    def synthesize_detailed(self, text: str, lang: str, ref: Reference,
                            opts: SynthesisOptions = SynthesisOptions(),
                            progress: ProgressCallback | None = None,
                            cancel: CancelCheck | None = None) -> SynthesisResult:
        """Synthesize the whole text; returns the audio plus a report per sentence (:class:`Cancelled` when
        ``cancel()`` turns True)."""
        started = time.perf_counter()
        if opts.seed is None:  # draw it here so the reported seed reproduces this exact result
            opts = opts.replace(seed=secrets.randbelow(2**31))
        models = self._models  # one snapshot for the whole request
        made = list(self._sentences(models, text, lang, ref, opts, progress, cancel))
        audio = _join([a for a, _, _ in made], opts.pause, models.sample_rate)
        _log_speed("synthesized", len(made), audio, models.sample_rate, started)
        return SynthesisResult(models.sample_rate, audio, tuple(r for _, r, _ in made), opts.seed,
                               tuple(sem for _, _, sem in made), models.version)

    def resynthesize(self, previous: SynthesisResult, ref: Reference, opts: SynthesisOptions = SynthesisOptions()
                     ) -> SynthesisResult:
        """Decode ``previous``'s semantic tokens again, without the GPT (upstream's "freeze").

        The words and their rhythm stay; speed, pause, noise scale and the reference timbre (main and extra
        audios) can change. With ``opts.seed`` None each sentence reuses its previous seed, so unchanged options
        give the previous audio again. The GPT options of ``opts`` are not used.
        """
        started = time.perf_counter()
        models = self._models
        if not previous.semantic:
            raise EmptyTextError("There is no earlier result to decode again; synthesize the text first.")
        if previous.version != models.version:
            raise ModelMismatchError(f"The earlier result was made with {previous.version} models but the loaded "
                                     f"SoVITS is {models.version}; synthesize the text again.")
        if not ref.text_free:
            check_language(ref.lang, models.version, "reference language")
        prepared = self.references.get(ref, models)
        parts, reports = [], []
        for report, sem in zip(previous.sentences, previous.semantic, strict=True):
            seed = opts.seed if opts.seed is not None else report.seed
            tokens = torch.tensor(sem.tokens, dtype=torch.long, device=models.device)
            audio = self._decode(models, tokens, sem.phones, prepared, opts, seed)
            parts.append(audio)
            reports.append(dataclasses.replace(report, seed=seed, seconds=len(audio) / models.sample_rate))
        audio = _join(parts, opts.pause, models.sample_rate)
        _log_speed("decoded again", len(parts), audio, models.sample_rate, started)
        seed = previous.seed if opts.seed is None else opts.seed
        return SynthesisResult(models.sample_rate, audio, tuple(reports), seed, previous.semantic, previous.version)

    def synthesize(self, text: str, lang: str, ref: Reference, opts: SynthesisOptions = SynthesisOptions(),
                   progress: ProgressCallback | None = None, cancel: CancelCheck | None = None
                   ) -> tuple[int, np.ndarray]:
        """Synthesize ``text`` (language code ``lang``) in the voice of ``ref``.

        Returns
        -------
        ``(sample rate, audio)``: float32 mono in [-1, 1] (32 kHz; v4 48 kHz); sentences joined with
        ``opts.pause`` seconds of silence.
        """
        result = self.synthesize_detailed(text, lang, ref, opts, progress, cancel)
        return result.sample_rate, result.audio

    def stream(self, text: str, lang: str, ref: Reference, opts: SynthesisOptions = SynthesisOptions(),
               chunk_tokens: int = 0, context_tokens: int = STREAM_CONTEXT_TOKENS, cancel: CancelCheck | None = None
               ) -> Iterator[np.ndarray]:
        """Yield float32 audio (at :attr:`sample_rate`) as it is made: sentence by sentence (each followed by its
        pause).

        With ``chunk_tokens > 0`` each sentence is also streamed in pieces of that many semantic tokens
        (25 per second), so the first audio of a long sentence arrives after ``chunk_tokens`` GPT steps. In that
        mode sentences are generated one at a time and the token-count check is off (audio already sent
        cannot be taken back). Each chunk is decoded after ``context_tokens`` tokens of the sentence's earlier
        tokens (then cut off and crossfaded): more context gives smoother seams for more decoding time.
        ``cancel`` is polled between sentences and chunks (:class:`Cancelled`).
        """
        models = self._models
        silence = np.zeros(int(round(opts.pause * models.sample_rate)), dtype=np.float32)
        opts = opts.replace(split_bucket=False)  # bucketing would hold back the first sentence
        if chunk_tokens > 0 and models.needs_vocoder:
            # a flow-matching decode of a few tokens would sound nothing like the sentence's: stream by sentence
            log.info("%s models stream sentence by sentence (token chunks need the VITS decoder)", models.version)
            chunk_tokens = 0
        if chunk_tokens <= 0:
            for audio, _ in self.iter_sentences(text, lang, ref, opts, cancel=cancel):
                yield audio
                if silence.size:
                    yield silence
            return
        _stop_if_cancelled(cancel, 0, 0)
        lang, pieces, prepared = self._pieces(text, lang, ref, opts, models)
        seed = opts.seed if opts.seed is not None else secrets.randbelow(2**31)
        generator = self._generator(seed)
        sampling = self._sampling(opts, self.max_new_tokens)
        for batch in self._feature_batches(pieces, lang, models.version, opts.replace(batch_size=1), cancel):
            index, _, feats = batch[0]
            phones, bert = self._gpt_inputs(feats, prepared)
            stitcher = ChunkStitcher()
            tokens = torch.zeros(0, dtype=torch.long, device=phones.device)
            chunks = models.t2s.generate_chunks(phones, bert, prepared.codes, sampling, generator, chunk_tokens)
            for k, new in enumerate(chunks):
                _stop_if_cancelled(cancel, index, len(pieces))
                context = min(context_tokens, tokens.numel())
                tokens = torch.cat([tokens, new])
                window = tokens[tokens.numel() - new.numel() - context:]
                # with a request seed every window's decoder noise is seeded too, so the stream is reproducible
                window_seed = None if opts.seed is None else (seed + 104729 * (k + 1) + 7919 * index) % 2**63
                audio = self._decode(models, window, feats.phones, prepared, opts, window_seed, normalize=False)
                out = stitcher.push(audio, context, new.numel())
                if out.size:
                    yield out
            tail = stitcher.flush()
            if tail.size:
                yield tail
            if silence.size:
                yield silence
