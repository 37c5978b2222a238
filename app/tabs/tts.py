"""Tab 1: GPT-SoVITS TTS, with the shared experiment header and sub-tabs 1A formatting, 1B fine-tuning, 1C inference."""

from __future__ import annotations

import gradio as gr

from app.context import AppContext
from app.tabs import inference, prepare, train


def build_tab(ctx: AppContext) -> None:
    i18n = ctx.i18n
    with gr.Tab(i18n("1 - GPT-SoVITS TTS")):
        ctx.bind("exp_name", gr.Textbox(
            label=i18n("Experiment name"),
            info=i18n("Everything of this voice is stored in logs/<name>; use a plain folder name.")))
        with gr.Tab(i18n("1A - Dataset formatting")):
            prepare.build_tab(ctx)
        with gr.Tab(i18n("1B - Fine-tuning")):
            train.build_tab(ctx)
        with gr.Tab(i18n("1C - Inference")):
            inference.build_tab(ctx)
