"""Tab 1: GPT-SoVITS TTS, with the shared header (experiment name, model version) and sub-tabs 1A, 1B and 1C."""

from __future__ import annotations

import gradio as gr

from app.context import AppContext
from app.i18n import I18n
from app.polls import polled_tab
from app.tabs import inference, prepare, train
from GPT_SoVITS.versions import DEFAULT_VERSION, trainable_versions


def version_note(i18n: I18n, ctx: AppContext) -> str:
    """Why the launcher starts with the version it shows (the pretrained files it found or misses)."""
    choice = ctx.version_choice
    if choice is None:
        return ""
    folder = str(ctx.path(ctx.settings.pretrained_dir))
    if choice.version == DEFAULT_VERSION and not choice.missing_default:
        return i18n("Version {version} is preselected: upstream's default, and its pretrained files are in {folder}.",
                    version=choice.version, folder=folder)
    missing = ", ".join(p.name for p in choice.missing_default[:4])
    if choice.complete:
        return i18n("Version {version} is preselected: it is the newest version whose pretrained files are all in "
                    "{folder}. {default} (upstream's default) lacks: {missing}.", version=choice.version,
                    folder=folder, default=DEFAULT_VERSION, missing=missing)
    return i18n("No version has all its pretrained files in {folder}; {version} (upstream's default) lacks: "
                "{missing}. See pretrained_models/README.md.", folder=folder, version=choice.version, missing=missing)


def build_tab(ctx: AppContext) -> None:
    i18n = ctx.i18n
    with gr.Tab(i18n("1 - GPT-SoVITS TTS")):
        with gr.Row():
            exp_name = ctx.bind("exp_name", gr.Textbox(
                label=i18n("Experiment name"), scale=3,
                info=i18n("Everything of this voice is stored in logs/<name>; use a plain folder name.")))
            version = ctx.bind("version", gr.Dropdown(
                list(trainable_versions()), label=i18n("Model version"), scale=1,
                info=i18n("Which model generation to fine-tune: sets the pretrained files, the weight folders and "
                          "the 1A steps.")))
        gr.Markdown(version_note(i18n, ctx), elem_id="version-note")
        with gr.Tab(i18n("1A - Dataset formatting")), polled_tab(ctx):
            prepare.build_tab(ctx, exp_name, version)
        with gr.Tab(i18n("1B - Fine-tuning")), polled_tab(ctx):
            train.build_tab(ctx, exp_name, version)
        with gr.Tab(i18n("1C - Inference")) as inference_tab, polled_tab(ctx):
            inference.build_tab(ctx, exp_name, version, inference_tab)
