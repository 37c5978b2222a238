"""The inference WebUI: ``python -m app.inference_webui --gpt G.ckpt --sovits S.pth [--port 9872]``.

:func:`build_inference_ui` builds the page around an already loaded :class:`GPT_SoVITS.infer.TTS`; models are
loaded in :func:`main`, never at import. Handlers only translate widget values into a ``Reference`` and
``SynthesisOptions`` and call the engine.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app.i18n import I18n, available_languages
from app.weights import choices, list_weights
from GPT_SoVITS.audio import float_to_int16
from GPT_SoVITS.checkpoints import CheckpointError
from GPT_SoVITS.infer import (
    TTS,
    EmptyTextError,
    InvalidOptionError,
    ModelMismatchError,
    Reference,
    ReferenceAudioError,
    SynthesisOptions,
    SynthesisResult,
    supported_languages,
)
from GPT_SoVITS.infer.flags import add_device_flags, add_pretrained_dir_flag
from GPT_SoVITS.infer.memory import configure_allocator
from GPT_SoVITS.infer.tts import SINGLE_REQUEST_DECODE_THREADS
from GPT_SoVITS.logs import setup_logging
from GPT_SoVITS.paths import REPO_ROOT, PretrainedPaths
from GPT_SoVITS.versions import DEFAULT_VERSION, RELEASE_ORDER, supported_versions
from tools.webui_launch import launch

log = logging.getLogger(__name__)

ENGINE_ERRORS = (InvalidOptionError, ReferenceAudioError, EmptyTextError, ModelMismatchError, CheckpointError,
                 FileNotFoundError, ValueError)


def weight_choices(root: Path = REPO_ROOT, pretrained: PretrainedPaths | None = None) -> tuple[list[str], list[str]]:
    """GPT and SoVITS files to offer: the release folders of every version (natural order) followed by the
    pretrained base models that exist (see :func:`app.weights.list_weights`)."""
    gpts, sovits = list_weights(root, pretrained or PretrainedPaths())
    return [str(f.path) for f in gpts], [str(f.path) for f in sovits]


def labelled_weight_choices(i18n: I18n, root: Path, pretrained: PretrainedPaths
                            ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The same files as dropdown choices ``(label, path)``: experiment · epoch · step · version."""
    gpts, sovits = list_weights(root, pretrained)
    word = i18n("pretrained")
    return choices(gpts, word), choices(sovits, word)


#: The v4 sampling steps the page offers (upstream's WebUI choices) and its default.
SAMPLE_STEP_CHOICES = [4, 8, 16, 32]
DEFAULT_SAMPLE_STEPS = 8


def _model_info(i18n: I18n, tts: TTS) -> str:
    return i18n("Model version: {version}, audio at {rate} Hz", version=tts.version, rate=tts.sample_rate)


def language_choices(i18n: I18n, version: str) -> list[tuple[str, str]]:
    labels = {
        "all_zh": i18n("Chinese"), "en": i18n("English"), "all_ja": i18n("Japanese"),
        "all_yue": i18n("Cantonese"), "all_ko": i18n("Korean"), "zh": i18n("Chinese-English mix"),
        "ja": i18n("Japanese-English mix"), "yue": i18n("Cantonese-English mix"),
        "ko": i18n("Korean-English mix"), "auto": i18n("Multilingual (detect per segment)"),
        "auto_yue": i18n("Multilingual, Chinese read as Cantonese"),
    }
    return [(labels[code], code) for code in supported_languages(version)]


def split_choices(i18n: I18n) -> list[tuple[str, str]]:
    return [(i18n("No split"), "cut0"), (i18n("Every 4 sentences"), "cut1"), (i18n("Every 50 characters"), "cut2"),
            (i18n("At Chinese full stops (。)"), "cut3"), (i18n("At English full stops (.)"), "cut4"),
            (i18n("At every punctuation mark"), "cut5")]


def report_markdown(i18n: I18n, result: SynthesisResult, reused: bool = False) -> str:
    lines = [i18n("{n} sentence(s), {seconds:.2f} s of audio, seed {seed}.", n=len(result.sentences),
                  seconds=len(result.audio) / result.sample_rate, seed=result.seed)]
    if reused:
        lines.append(i18n("The last result's tokens were decoded again (the GPT did not run)."))
    for s in result.sentences:
        if s.attempts > 1 or s.problem:
            status = i18n("still implausible") if s.problem else i18n("fixed")
            lines.append(i18n("- sentence {i} regenerated {k} time(s) ({status}): {text}", i=s.index + 1,
                              k=s.attempts - 1, status=status, text=s.text))
    return "\n".join(lines)


@dataclass
class Controls:
    """The page's widgets, built section by section and wired by :func:`_wire`."""

    gpt: Any = None
    sovits: Any = None
    refresh: Any = None
    model_info: Any = None
    ref_audio: Any = None
    text_free: Any = None
    prompt_text: Any = None
    prompt_lang: Any = None
    aux_refs: Any = None
    text: Any = None
    text_lang: Any = None
    split: Any = None
    batch: Any = None
    bucket: Any = None
    speed: Any = None
    sample_steps: Any = None
    pause: Any = None
    seed: Any = None
    top_k: Any = None
    top_p: Any = None
    temperature: Any = None
    penalty: Any = None
    check: Any = None
    retries: Any = None
    freeze: Any = None
    last: Any = None  # gr.State: this browser session's last result (LastResult)
    preview_btn: Any = None
    preview: Any = None
    go: Any = None
    go_stream: Any = None
    output: Any = None
    stream_output: Any = None
    report: Any = None

    def request_inputs(self) -> list[Any]:
        """The widgets :func:`_request` reads, in its argument order (the sampling steps are passed after the
        buttons' own inputs: the page's API is positional, and they came later)."""
        return [self.ref_audio, self.text_free, self.prompt_text, self.prompt_lang, self.aux_refs, self.text,
                self.text_lang, self.split, self.batch, self.bucket, self.speed, self.pause, self.seed, self.top_k,
                self.top_p, self.temperature, self.penalty, self.check, self.retries]


def _model_section(c: Controls, i18n: I18n, tts: TTS, gpts: list[tuple[str, str]],
                   sovits: list[tuple[str, str]]) -> None:
    current = tts.models
    with gr.Group():
        gr.Markdown("### " + i18n("Models"))
        with gr.Row():
            c.gpt = gr.Dropdown(_with(gpts, current.gpt_path), value=_str(current.gpt_path),
                                label=i18n("GPT model"), allow_custom_value=True,
                                info=i18n("The text-to-semantic model: your fine-tuned GPT_weights file, or the base "
                                          "model."))
            c.sovits = gr.Dropdown(_with(sovits, current.sovits_path), value=_str(current.sovits_path),
                                   label=i18n("SoVITS model"), allow_custom_value=True,
                                   info=i18n("The voice decoder: your fine-tuned SoVITS_weights file, or the base "
                                             "model."))
            c.refresh = gr.Button(i18n("Refresh model list"))
        c.model_info = gr.Markdown(_model_info(i18n, tts))


def _reference_section(c: Controls, i18n: I18n, langs: list[tuple[str, str]]) -> None:
    with gr.Group():
        gr.Markdown("### " + i18n("Reference"))
        with gr.Row():
            c.ref_audio = gr.Audio(type="filepath", label=i18n("Reference audio (3-10 s; longer or shorter is "
                                                               "refused)"), elem_id="ref-audio")
            with gr.Column():
                c.text_free = gr.Checkbox(False, label=i18n("No reference text mode"),
                                          info=i18n("Use only the voice of the reference, not its words. Works "
                                                    "best with a fine-tuned GPT model; also on when the "
                                                    "reference text is empty."))
                c.prompt_text = gr.Textbox(label=i18n("Reference text"), lines=5, elem_id="prompt-text",
                                           info=i18n("Exactly what is said in the reference audio."))
                c.prompt_lang = gr.Dropdown(langs, value="all_zh", label=i18n("Reference language"),
                                            info=i18n("The language spoken in the reference audio."))
            c.aux_refs = gr.File(file_count="multiple", type="filepath",
                                 label=i18n("Extra reference audios (optional, timbre averaged)"))


def _text_section(c: Controls, i18n: I18n, langs: list[tuple[str, str]], uses_steps: bool) -> None:
    d = SynthesisOptions()
    with gr.Group():
        gr.Markdown("### " + i18n("Text to synthesize"))
        c.text = gr.Textbox(label=i18n("Text"), lines=10, elem_id="text",
                            info=i18n("What the cloned voice should say; long texts are split into sentences."))
        with gr.Row():
            c.text_lang = gr.Dropdown(langs, value="all_zh", label=i18n("Text language"),
                                      info=i18n("The narrower the better: pick a single language if you can."))
            c.split = gr.Dropdown(split_choices(i18n), value=d.text_split, label=i18n("How to split"),
                                  info=i18n("How a long text is cut into pieces generated one after another."))
            c.batch = gr.Slider(1, 20, d.batch_size, step=1, label=i18n("Batch size"),
                                info=i18n("Sentences generated at once: faster on a GPU, more memory."))
            c.bucket = gr.Checkbox(d.split_bucket, label=i18n("Batch sentences of similar length"),
                                   info=i18n("With batch size above 1: less padding, faster; the order of the "
                                             "sentences is kept."))
        with gr.Row():
            c.speed = gr.Slider(0.6, 1.65, d.speed, step=0.05, label=i18n("Speed"),
                                info=i18n("Above 1 speaks faster, below 1 slower."))
            c.sample_steps = gr.Radio(SAMPLE_STEP_CHOICES, value=DEFAULT_SAMPLE_STEPS, label=i18n("Sampling steps"),
                                      info=i18n("v4 only: steps of the flow-matching decoder; more is slower and "
                                                "smoother, 4 is fastest."),
                                      visible=uses_steps, elem_id="sample-steps")
            c.pause = gr.Slider(0.0, 1.0, d.pause, step=0.01, label=i18n("Pause between sentences (s)"),
                                info=i18n("Silence inserted between the generated pieces."))
            c.seed = gr.Number(-1, precision=0, label=i18n("Seed (-1 = random)"),
                               info=i18n("The same seed and settings give the same audio again."))
        with gr.Row():
            c.top_k = gr.Slider(1, 100, d.top_k, step=1, label="top_k",
                                info=i18n("Sample among the k most likely tokens; lower is steadier."))
            c.top_p = gr.Slider(0.05, 1.0, d.top_p, step=0.05, label="top_p",
                                info=i18n("Sample among the most likely tokens covering this probability."))
            c.temperature = gr.Slider(0.05, 1.0, d.temperature, step=0.05, label="temperature",
                                      info=i18n("Do not go too low in no reference text mode."))
            c.penalty = gr.Slider(1.0, 2.0, d.repetition_penalty, step=0.05, label=i18n("Repetition penalty"),
                                  info=i18n("Discourages repeating tokens; helps against repeated words."))
        with gr.Row():
            c.check = gr.Checkbox(False, label=i18n("Check for swallowed or repeated words"),
                                  info=i18n("Regenerate a sentence with a new seed when its length does not fit its "
                                            "text."))
            c.retries = gr.Slider(1, 5, d.max_retries, step=1, label=i18n("Regenerations at most"),
                                  info=i18n("How many new attempts a flagged sentence gets."))
            c.freeze = gr.Checkbox(False, label=i18n("Keep the last result's words (change speed or timbre only)"),
                                   info=i18n("Skips the GPT: the previous result is decoded again with the new "
                                             "speed, pause and reference audios."))
        c.last = gr.State(None)


def _output_section(c: Controls, i18n: I18n) -> None:
    with gr.Accordion(i18n("Preview how the text is split"), open=False):
        c.preview_btn = gr.Button(i18n("Split the text"))
        c.preview = gr.Textbox(label=i18n("Pieces, one per line"), lines=6, interactive=False)
    with gr.Row():
        c.go = gr.Button(i18n("Synthesize"), variant="primary", elem_id="synthesize")
        c.go_stream = gr.Button(i18n("Synthesize (streaming)"))
    c.output = gr.Audio(label=i18n("Output audio"), type="numpy", elem_id="output-audio")
    c.stream_output = gr.Audio(label=i18n("Streamed audio"), streaming=True, autoplay=True)
    c.report = gr.Markdown(elem_id="report")


def _request(i18n: I18n, ref_v: str | None, free_v: bool, ptext_v: str, plang_v: str, aux_v: list[str] | None,
             text_v: str, tlang_v: str, split_v: str, batch_v: float, bucket_v: bool, speed_v: float,
             pause_v: float, seed_v: float, k_v: float, p_v: float, temp_v: float, pen_v: float, check_v: bool,
             retries_v: float, steps_v: float | None = None, uses_steps: bool = False
             ) -> tuple[str, str, Reference, SynthesisOptions]:
    """Widget values → (text, language, reference, options); the sampling steps only count for a v4 model."""
    if not ref_v:
        raise gr.Error(i18n("Upload a reference audio first."))
    ref = Reference(Path(ref_v), "" if free_v else (ptext_v or ""), plang_v, tuple(Path(p) for p in (aux_v or [])))
    opts = SynthesisOptions(top_k=int(k_v), top_p=float(p_v), temperature=float(temp_v),
                            repetition_penalty=float(pen_v), seed=None if int(seed_v) < 0 else int(seed_v),
                            speed=float(speed_v), pause=float(pause_v), text_split=split_v, batch_size=int(batch_v),
                            split_bucket=bool(bucket_v), check_tokens=bool(check_v), max_retries=int(retries_v),
                            sample_steps=int(steps_v) if uses_steps and steps_v else None)
    return text_v or "", tlang_v, ref, opts


@dataclass(frozen=True)
class LastResult:
    """What "keep the last result's words" reuses: the result and the text settings that produced it."""

    text: str
    lang: str
    split: str
    result: SynthesisResult


def _wire_synthesis(c: Controls, i18n: I18n, tts: TTS) -> None:
    def synthesize(*values: Any) -> tuple[tuple[int, np.ndarray], str, LastResult]:
        *request, freeze_v, steps_v, last = values
        try:
            text_v, lang_v, ref, opts = _request(i18n, *request, steps_v, uses_steps=tts.models.needs_vocoder)
            reusable = (last is not None and last.result.version == tts.version
                        and (last.text, last.lang, last.split) == (text_v, lang_v, opts.text_split))
            reused = bool(freeze_v and reusable)
            if reused:
                result = tts.resynthesize(last.result, ref, opts)
            else:
                if freeze_v:
                    gr.Info(i18n("Nothing to reuse for this text yet: it is generated anew."))
                result = tts.synthesize_detailed(text_v, lang_v, ref, opts)
        except ENGINE_ERRORS as exc:
            raise gr.Error(i18n("Synthesis failed: {reason}", reason=str(exc))) from None
        if result.regenerated:
            gr.Warning(i18n("Some sentences were regenerated; see the report below the audio."))
        return ((result.sample_rate, float_to_int16(result.audio)), report_markdown(i18n, result, reused),
                LastResult(text_v, lang_v, opts.text_split, result))

    def synthesize_stream(*values: Any) -> Iterator[tuple[int, np.ndarray]]:
        if shutil.which("ffmpeg") is None:  # Gradio encodes streamed audio with the ffmpeg program
            raise gr.Error(i18n("Streaming needs the ffmpeg program, which is not installed: run bash install.sh "
                                "again (it installs ffmpeg) or install ffmpeg with your package manager. "
                                "Synthesize without streaming works without it."))
        try:
            text_v, lang_v, ref, opts = _request(i18n, *values, uses_steps=tts.models.needs_vocoder)
            for chunk in tts.stream(text_v, lang_v, ref, opts):
                yield tts.sample_rate, float_to_int16(chunk)
        except ENGINE_ERRORS as exc:
            raise gr.Error(i18n("Synthesis failed: {reason}", reason=str(exc))) from None

    def split_preview(text_v: str, lang_v: str, split_v: str) -> str:
        return "\n".join(tts.split(text_v or "", lang_v, split_v))

    c.preview_btn.click(split_preview, inputs=[c.text, c.text_lang, c.split], outputs=c.preview,
                        api_name="split_text")
    c.go.click(synthesize, inputs=[*c.request_inputs(), c.freeze, c.sample_steps, c.last],
               outputs=[c.output, c.report, c.last],
               api_name="synthesize")
    c.go_stream.click(synthesize_stream, inputs=[*c.request_inputs(), c.sample_steps], outputs=c.stream_output,
                      api_name="synthesize_stream")
    c.prompt_text.change(lambda t: gr.update(value=True) if not (t or "").strip() else gr.update(),
                         inputs=c.prompt_text, outputs=c.text_free)


def _wire_models(c: Controls, i18n: I18n, tts: TTS, root: Path, pretrained: PretrainedPaths) -> None:
    def switch(gpt_v: str, sovits_v: str) -> dict[Any, Any]:
        current = tts.models
        try:
            tts.set_models(gpt=Path(gpt_v) if gpt_v and Path(gpt_v) != current.gpt_path else None,
                           sovits=Path(sovits_v) if sovits_v and Path(sovits_v) != current.sovits_path else None)
        except ENGINE_ERRORS as exc:
            gr.Warning(i18n("Cannot load the model: {reason}", reason=str(exc)))
        langs = language_choices(i18n, tts.version)
        codes = [code for _, code in langs]
        lang = "all_zh" if "all_zh" in codes else codes[0]
        return {c.gpt: gr.update(value=_str(tts.models.gpt_path)),
                c.sovits: gr.update(value=_str(tts.models.sovits_path)),
                c.model_info: _model_info(i18n, tts),
                c.sample_steps: gr.update(visible=tts.models.needs_vocoder),
                c.prompt_lang: gr.update(choices=langs, value=lang),
                c.text_lang: gr.update(choices=langs, value=lang)}

    def refresh_lists() -> dict[Any, Any]:
        gpts, sovits = labelled_weight_choices(i18n, root, pretrained)
        return {c.gpt: gr.update(choices=_with(gpts, tts.models.gpt_path)),
                c.sovits: gr.update(choices=_with(sovits, tts.models.sovits_path))}

    outputs = [c.gpt, c.sovits, c.model_info, c.sample_steps, c.prompt_lang, c.text_lang]
    c.gpt.input(switch, inputs=[c.gpt, c.sovits], outputs=outputs, api_name="switch_models")  # user edits only
    c.sovits.input(switch, inputs=[c.gpt, c.sovits], outputs=outputs, api_name=False)
    c.refresh.click(refresh_lists, outputs=[c.gpt, c.sovits], api_name="refresh_models")


def build_inference_ui(tts: TTS, i18n: I18n | None = None, root: Path = REPO_ROOT,
                       pretrained: PretrainedPaths | None = None) -> gr.Blocks:
    """The inference page for ``tts`` (nothing is loaded or launched here)."""
    i18n = i18n or I18n("en_US")
    pretrained = pretrained or PretrainedPaths()
    gpts, sovits = labelled_weight_choices(i18n, root, pretrained)
    langs = language_choices(i18n, tts.version)
    controls = Controls()
    with gr.Blocks(title="GPT-SoVITS") as demo:
        gr.Markdown(i18n("This software is open source under the MIT licence. The authors have no control over "
                         "it; users and distributors of generated audio are fully responsible for their use."))
        _model_section(controls, i18n, tts, gpts, sovits)
        _reference_section(controls, i18n, langs)
        _text_section(controls, i18n, langs, tts.models.needs_vocoder)
        _output_section(controls, i18n)
        _wire_synthesis(controls, i18n, tts)
        _wire_models(controls, i18n, tts, root, pretrained)
    return demo


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _with(options: list[tuple[str, str]], current: Path | None) -> list[tuple[str, str]]:
    """The choices plus the loaded file when it is not among them (a file given on the command line)."""
    if current is None or any(value == str(current) for _, value in options):
        return options
    return [(str(current), str(current)), *options]


def build_parser() -> argparse.ArgumentParser:
    pretrained = PretrainedPaths()
    parser = argparse.ArgumentParser(prog="python -m app.inference_webui", description="GPT-SoVITS inference WebUI",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--gpt", type=Path, default=None,
                        help=f"GPT weights (default: the pretrained base of {DEFAULT_VERSION} if present, else of the "
                             f"newest version present, e.g. {pretrained.gpt(DEFAULT_VERSION)})")
    parser.add_argument("--sovits", type=Path, default=None,
                        help=f"SoVITS weights (default: the pretrained base of the same version, e.g. "
                             f"{pretrained.sovits_g(DEFAULT_VERSION)})")
    add_pretrained_dir_flag(parser)
    parser.add_argument("--weights-root", type=Path, default=REPO_ROOT,
                        help="folder holding the release folders GPT_weights_<version>/ and SoVITS_weights_<version>/")
    parser.add_argument("--port", type=int, default=9872, help="port of the page")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes the page")
    add_device_flags(parser, decode_threads=SINGLE_REQUEST_DECODE_THREADS)  # one synthesis at a time
    parser.add_argument("--lang", choices=available_languages(), default=None, help="UI language")
    parser.add_argument("--share", action="store_true", help="also create a public Gradio share link")
    parser.add_argument("locale", nargs="?", choices=available_languages(),
                        help="upstream style: a bare UI language as the last argument")
    return parser


def default_models(pretrained: PretrainedPaths) -> tuple[Path, Path]:
    """The pretrained pair to start with: upstream's default version if both files are present, else the newest
    supported version whose files are (else upstream's default, which then names the missing file)."""
    order = [DEFAULT_VERSION, *sorted(supported_versions(), key=RELEASE_ORDER.index, reverse=True)]
    for version in order:
        if pretrained.gpt(version).is_file() and pretrained.sovits_g(version).is_file():
            return pretrained.gpt(version), pretrained.sovits_g(version)
    return pretrained.gpt(DEFAULT_VERSION), pretrained.sovits_g(DEFAULT_VERSION)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    configure_allocator()  # as the API: large tensors go back to the OS (SoVITS decode peak, docs/models.md)
    pretrained = PretrainedPaths(args.pretrained_dir)
    default_gpt, default_sovits = default_models(pretrained)
    gpt, sovits = args.gpt or default_gpt, args.sovits or default_sovits
    tts = TTS.from_paths(gpt, sovits, pretrained, args.device, args.half, args.int8,
                         args.decode_threads, args.cpu_bf16)
    demo = build_inference_ui(tts, I18n(args.lang or args.locale), args.weights_root, pretrained)
    log.info("inference WebUI on http://%s:%d", args.host, args.port)
    launch(demo, server_name=args.host, server_port=args.port, share=args.share, inbrowser=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
