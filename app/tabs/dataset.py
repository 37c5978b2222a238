"""Tab 0: dataset tools (vocal separation, slicer, denoise, ASR, label fixer)."""

from __future__ import annotations

import os

import gradio as gr

from app.context import AppContext
from app.jobs import SliceJob
from app.widgets import JobPanel, UserInputError, note
from tools.slice_audio import LoudnessMix
from tools.slicer import SlicerParams


def build_tab(ctx: AppContext) -> None:
    i18n = ctx.i18n
    with gr.Tab(i18n("0 - Dataset tools")):
        gr.Markdown(i18n("Prepare a training set: separate vocals, slice long recordings, denoise, "
                         "transcribe, then proofread the labels."))
        with gr.Accordion(i18n("0a - Vocal separation"), open=False):
            note(i18n("Not built yet: vocal separation will come in a later release."))
        with gr.Accordion(i18n("0b - Audio slicer"), open=True):
            _build_slicer(ctx)
        with gr.Accordion(i18n("0bb - Denoise"), open=False):
            note(i18n("Not built yet: denoising will come in a later release."))
        with gr.Accordion(i18n("0c - Batch ASR"), open=False):
            note(i18n("Not built yet: batch speech recognition will come in a later release."))
        with gr.Accordion(i18n("0d - Label fixer"), open=False):
            note(i18n("Not built yet: the label proofreading WebUI will come in a later release."))


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

        def flow_on() -> None:  # upstream: the slicer output becomes the input of denoise, ASR and 1A
            ctx.workflow.push(denoise_input=str(output), asr_input=str(output), audio_dir=str(output))

        return job.spec(on_finished=flow_on)

    JobPanel(ctx, "slicer", make_spec,
             [inp, out, threshold, min_length, min_interval, hop_size, max_sil_kept, max_peak, alpha, processes],
             i18n("Start slicing"))
