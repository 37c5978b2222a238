"""Tab 0: dataset tools (vocal separation, slicer, denoise, ASR, label fixer)."""

from __future__ import annotations

import os

import gradio as gr

from app.context import AppContext
from app.jobs import AsrJob, DenoiseJob, LabelFixerJob, SliceJob, VocalSeparationJob
from app.polls import polled_tab
from app.widgets import JobPanel, SubWebUIPanel, UserInputError
from tools.asr import BACKENDS, DEFAULT_ASR_BACKEND
from tools.asr import MODELS_DIR as ASR_MODELS_DIR
from tools.asr.funasr import missing_models as missing_funasr_models
from tools.slice_audio import LoudnessMix
from tools.slicer import SlicerParams
from tools.vocal_separation import FORMATS, MODELS_DIR, list_models


def build_tab(ctx: AppContext) -> None:
    i18n = ctx.i18n
    with gr.Tab(i18n("0 - Dataset tools")), polled_tab(ctx):
        gr.Markdown(i18n("Prepare a training set: separate vocals, slice long recordings, denoise, "
                         "transcribe, then proofread the labels."))
        with gr.Accordion(i18n("0a - Vocal separation"), open=False):
            _build_vocal_separation(ctx)
        with gr.Accordion(i18n("0b - Audio slicer"), open=True):
            _build_slicer(ctx)
        with gr.Accordion(i18n("0bb - Denoise"), open=False):
            _build_denoise(ctx)
        with gr.Accordion(i18n("0c - Batch ASR"), open=False):
            _build_asr(ctx)
        with gr.Accordion(i18n("0d - Label fixer"), open=False):
            _build_label_fixer(ctx)


def _required(value: str, message: str) -> str:
    if not str(value or "").strip():
        raise UserInputError(message)
    return str(value)


def _build_vocal_separation(ctx: AppContext) -> None:
    i18n = ctx.i18n
    gr.Markdown(i18n("Separate vocals from accompaniment, or remove reverb and echo, with UVR5 models. MDX-Net .onnx "
                     "models (e.g. UVR-MDX-NET-Voc_FT.onnx, Kim_Vocal_2.onnx) run built in; VR .pth and Roformer "
                     ".ckpt models need the audio-separator package. For a clean voice: first a vocal model, then "
                     "a de-echo or de-reverb model on its output."))
    out_default = str(ctx.path(ctx.settings.output_root) / "uvr5_opt")

    def model_choices(folder: str) -> tuple[list[str], str]:
        models = list_models(ctx.path(folder))
        if models:
            return models, ""
        return [], i18n("No model found in {folder}. Put a UVR5 model file there, e.g. UVR-MDX-NET-Voc_FT.onnx or "
                        "UVR-MDX-NET-Inst_HQ_3.onnx (MDX-Net, built in), or HP5_only_main_vocal.pth (needs "
                        "audio-separator; a Roformer .ckpt also needs its .yaml next to it).",
                        folder=ctx.path(folder))

    models, hint = model_choices(str(MODELS_DIR))
    with gr.Row():
        model_dir = gr.Textbox(str(MODELS_DIR), label=i18n("Model folder"),
                               info=i18n("Folder holding the UVR5 model files (.pth, .onnx, .ckpt + .yaml)."))
        model = gr.Dropdown(models, value=models[0] if models else None, label=i18n("Model"),
                            info=i18n("Voc_FT, Kim_Vocal, Inst_HQ (MDX-Net) or HP2/HP5: vocals and "
                                      "accompaniment; DeEcho/DeReverb: remove echo or reverb."))
        refresh = gr.Button(i18n("Refresh models"), scale=0)
    missing = gr.Markdown(hint)
    with gr.Row():
        source = gr.Textbox(label=i18n("Input file or folder"), info=i18n("A song, or a folder of songs."))
        vocals_dir = gr.Textbox(out_default, label=i18n("Vocals folder"),
                                info=i18n("Where the vocal (or dry) files are written."))
        others_dir = gr.Textbox(out_default, label=i18n("Accompaniment folder"),
                                info=i18n("Where the accompaniment, reverb or echo files are written."))
    with gr.Row():
        fmt = gr.Radio(list(FORMATS), value="flac", label=i18n("Output format"),
                       info=i18n("flac is lossless and smaller than wav."))
        aggressiveness = gr.Slider(0, 20, 10, step=1, label=i18n("Aggressiveness"),
                                   info=i18n("VR models: how hard vocals are extracted; higher removes more."))

    def on_refresh(folder: str):
        choices, text = model_choices(folder)
        return gr.update(choices=choices, value=choices[0] if choices else None), text

    refresh.click(on_refresh, inputs=model_dir, outputs=[model, missing])

    def make_spec(folder, model_v, source_v, vocals_v, others_v, fmt_v, aggr):
        _required(model_v, i18n("Choose a model (put one in the model folder and press Refresh models)."))
        _required(source_v, i18n("Enter a song or a folder of songs."))
        job = VocalSeparationJob(ctx.path(source_v), str(model_v), ctx.path(folder), ctx.path(vocals_v),
                                 ctx.path(others_v), str(fmt_v), int(aggr))
        return job.spec()

    JobPanel(ctx, "vocal_separation", make_spec,
             [model_dir, model, source, vocals_dir, others_dir, fmt, aggressiveness], i18n("Start separation"))


def _build_denoise(ctx: AppContext) -> None:
    i18n = ctx.i18n
    with gr.Row():
        inp = ctx.bind("denoise_input", gr.Textbox(label=i18n("Input folder"),
                                                   info=i18n("Folder of clips to denoise (the slicer output).")))
        out = ctx.bind("denoise_output", gr.Textbox(
            label=i18n("Output folder"), info=i18n("Denoised clips keep their names, sample rate and length.")))
    with gr.Row():
        method = gr.Dropdown(["spectral", "frcrn"], value="spectral", label=i18n("Method"),
                             info=i18n("spectral: built in, no model; frcrn: upstream's model, needs ModelScope "
                                       "and tools/denoise-model/speech_frcrn_ans_cirm_16k."))
        strength = gr.Slider(0, 1, 0.9, step=0.05, label=i18n("Strength"),
                             info=i18n("Share of the estimated noise removed; lower sounds more natural."))
        stationary = gr.Checkbox(True, label=i18n("Steady noise"),
                                 info=i18n("On for hiss and hum; off for noise that changes over time."))

    def make_spec(inp_v, out_v, method_v, strength_v, stationary_v):
        _required(inp_v, i18n("Enter the folder of clips to denoise."))
        output = ctx.path(_required(out_v, i18n("Enter an output folder.")))
        job = DenoiseJob(ctx.path(inp_v), output, str(method_v), float(strength_v), bool(stationary_v))
        # upstream: the denoised folder becomes the input of ASR and the 1A audio folder
        return job.spec(flows={"asr_input": str(output), "audio_dir": str(output)})

    JobPanel(ctx, "denoise", make_spec, [inp, out, method, strength, stationary], i18n("Start denoising"),
             flow_fields=("asr_input", "audio_dir"))


def _build_asr(ctx: AppContext) -> None:
    i18n = ctx.i18n
    first = BACKENDS[DEFAULT_ASR_BACKEND]
    with gr.Row():
        inp = ctx.bind("asr_input", gr.Textbox(label=i18n("Input folder"),
                                               info=i18n("Folder of clips to transcribe (slicer or denoise output).")))
        out = ctx.bind("asr_output", gr.Textbox(
            label=i18n("Output folder"), info=i18n("The label file <input folder name>.list is written here.")))
    with gr.Row():
        labels = {"funasr": i18n("Damo ASR (Chinese classic)"), "sensevoice": i18n("SenseVoice (fast, 5 languages)"),
                  "faster-whisper": i18n("Faster Whisper (multilingual)")}  # upstream's menu names
        backend = gr.Dropdown([(labels.get(name, info.label), name) for name, info in BACKENDS.items()],
                              value=first.name, label=i18n("ASR model"), elem_id="asr-backend",
                              info=i18n("Damo ASR: Chinese with punctuation (Paraformer) or Cantonese; SenseVoice: "
                                        "fast, zh/en/ja/ko/yue; Faster Whisper: many languages."))
        size = gr.Dropdown(list(first.sizes), value=first.default_size, label=i18n("Model size"),
                           info=i18n("Larger is more accurate and slower."))
        language = gr.Dropdown(list(first.languages), value=first.default_language, label=i18n("Language"),
                               info=i18n("Language spoken in the clips; auto detects it per clip."),
                               elem_id="asr-language")
        precision = gr.Dropdown(list(first.precisions), value=first.default_precision(cuda=False),
                                label=i18n("Precision"), info=i18n("int8 is fastest on CPU; float16 on a GPU."))
    model_dir = gr.Textbox(str(ASR_MODELS_DIR), label=i18n("Model folder"), elem_id="asr-model-dir",
                           info=i18n("Folder holding the ASR model folders under upstream's names (e.g. "
                                     "SenseVoiceSmall, faster-whisper-large-v3); FunASR models are never "
                                     "downloaded."))

    def on_backend(name: str):
        info = BACKENDS[name]
        return (gr.update(choices=list(info.sizes), value=info.default_size),
                gr.update(choices=list(info.languages), value=info.default_language),
                gr.update(choices=list(info.precisions), value=info.default_precision(cuda=False)))

    backend.change(on_backend, inputs=backend, outputs=[size, language, precision])

    def make_spec(inp_v, out_v, backend_v, size_v, language_v, precision_v, model_dir_v):
        source = ctx.path(_required(inp_v, i18n("Enter the folder of clips to transcribe.")))
        models = ctx.path(str(model_dir_v).strip() or str(ASR_MODELS_DIR))
        info = BACKENDS.get(str(backend_v))
        if info is not None and info.module == "funasr" and str(language_v) in info.languages:
            # a missing FunASR model is said here, in the UI's language, before a job starts
            missing = missing_funasr_models(str(backend_v), str(language_v), models)
            if missing:
                raise UserInputError("\n".join(
                    i18n("ASR model missing: create the folder {folder} and put the files of {repository} in it "
                         "(from {source}), or set the model folder to the folder that holds it.", folder=folder,
                         repository=model.repository, source=model.source) for model, folder, _ in missing))
        job = AsrJob(source, ctx.path(_required(out_v, i18n("Enter an output folder."))), str(backend_v),
                     str(size_v), str(language_v), str(precision_v), model_path=models)
        # upstream: the .list goes to the label fixer and 1A, the clips folder to 1A
        return job.spec(flows={"list_path": str(job.list_path), "audio_dir": str(source)})

    JobPanel(ctx, "asr", make_spec, [inp, out, backend, size, language, precision, model_dir], i18n("Start ASR"),
             flow_fields=("list_path", "audio_dir"))


def _build_label_fixer(ctx: AppContext) -> None:
    i18n = ctx.i18n
    with gr.Row():
        list_path = ctx.bind("list_path", gr.Textbox(
            label=i18n("Label file (.list)"),
            info=i18n("The .list file to proofread (a folder holding one .list also works).")))
        batch = gr.Slider(1, 50, 10, step=1, label=i18n("Lines per page"),
                          info=i18n("How many clips the label fixer shows at once."))

    def make_spec(list_v, batch_v):
        job = LabelFixerJob(ctx.path(_required(list_v, i18n("Enter the path of the .list file."))),
                            ctx.settings.ports.label_fixer, ctx.settings.host, int(batch_v), ctx.i18n.language)
        return job.spec(), job.url

    SubWebUIPanel(ctx, "label_fixer", make_spec, [list_path, batch], i18n("Open label fixer"),
                  i18n("Close label fixer"))


def _build_slicer(ctx: AppContext) -> None:
    i18n, defaults, mix = ctx.i18n, SlicerParams(), LoudnessMix()
    with gr.Row():
        inp = ctx.bind("slicer_input", gr.Textbox(
            label=i18n("Input file or folder"), info=i18n("An audio file, or a folder of audio files to slice.")))
        out = ctx.bind("slicer_output", gr.Textbox(
            label=i18n("Output folder"), info=i18n("Where the sliced clips are written (32 kHz, 16-bit wav).")))
    with gr.Row():
        threshold = gr.Number(defaults.threshold, label=i18n("threshold (dB)"),
                              info=i18n("Volume below this counts as silence; raise it for noisy recordings."))
        min_length = gr.Number(defaults.min_length, precision=0, label=i18n("min_length (ms)"),
                               elem_id="slicer-min-length",
                               info=i18n("Minimum clip length; shorter pieces are joined to the next one."))
        min_interval = gr.Number(defaults.min_interval, precision=0, label=i18n("min_interval (ms)"),
                                 info=i18n("Minimum silence length to cut at; lower it for dense speech."))
        hop_size = gr.Number(defaults.hop_size, precision=0, label=i18n("hop_size (ms)"),
                             info=i18n("Analysis step; smaller is more precise and slower."))
        max_sil_kept = gr.Number(defaults.max_sil_kept, precision=0, label=i18n("max_sil_kept (ms)"),
                                 info=i18n("Maximum silence kept at the edges of each clip."))
    with gr.Row():
        max_peak = gr.Slider(0, 1, mix.max_peak, step=0.05, label=i18n("max"),
                             info=i18n("Peak level of the normalised part of the mix."))
        alpha = gr.Slider(0, 1, mix.alpha, step=0.05, label=i18n("alpha_mix"),
                          info=i18n("How much normalised audio is mixed into each clip."))
        n_cpu = os.cpu_count() or 1
        processes = gr.Slider(1, n_cpu, min(4, n_cpu), step=1, label=i18n("processes"),
                              info=i18n("Number of files sliced in parallel."))

    def make_spec(inp_v, out_v, thr, min_len, min_int, hop, max_sil, peak, alpha_v, procs):
        if not str(inp_v).strip():
            raise UserInputError(i18n("Enter an input file or folder to slice."))
        if not str(out_v).strip():
            raise UserInputError(i18n("Enter an output folder."))
        output = ctx.path(out_v)
        job = SliceJob(ctx.path(inp_v), output,
                       SlicerParams(float(thr), int(min_len), int(min_int), int(hop), int(max_sil)),
                       LoudnessMix(float(peak), float(alpha_v)), int(procs))
        # upstream: the slicer output becomes the input of denoise, ASR and 1A
        return job.spec(flows={"denoise_input": str(output), "asr_input": str(output), "audio_dir": str(output)})

    JobPanel(ctx, "slicer", make_spec,
             [inp, out, threshold, min_length, min_interval, hop_size, max_sil_kept, max_peak, alpha, processes],
             i18n("Start slicing"), flow_fields=("denoise_input", "asr_input", "audio_dir"))
