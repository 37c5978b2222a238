"""Sub-tab 1C: choose a GPT and a SoVITS file and open the inference WebUI as a job (port 9872 by default)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.context import AppContext
from app.i18n import refusal
from app.inference_webui import weight_choices
from app.processes import JobSpec
from app.weights import choices, list_weights, newest_pair
from app.widgets import JobPanel, UserInputError

JOB_NAME = "inference_webui"


@dataclass(frozen=True)
class InferenceWebUIJob:
    """``python -m app.inference_webui`` with the models and settings chosen in the launcher."""

    gpt: Path
    sovits: Path
    pretrained_dir: Path
    port: int = 9872
    host: str = "127.0.0.1"
    device: str = "cpu"
    half: bool = False
    lang: str | None = None
    weights_root: Path | None = None  # where GPT_weights_<version>/ ... are listed (default: the repository root)

    module = "app.inference_webui"

    def to_argv(self) -> list[str]:
        argv = ["--gpt", str(self.gpt), "--sovits", str(self.sovits), "--pretrained-dir", str(self.pretrained_dir),
                "--port", str(self.port), "--host", self.host, "--device", self.device,
                "--half" if self.half else "--no-half"]
        argv += ["--weights-root", str(self.weights_root)] if self.weights_root else []
        return argv + (["--lang", self.lang] if self.lang else [])

    def validate(self) -> None:
        for path, what in ((self.gpt, "GPT"), (self.sovits, "SoVITS")):
            if not path.is_file():
                raise refusal("{what} model not found: {path}", what=what, path=path)

    def spec(self, gpu: str | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), gpu=gpu)


def inference_job_spec(ctx: AppContext, gpt_v: str | None, sovits_v: str | None, device_v: str = "cpu",
                       half_v: bool = False) -> JobSpec:
    """The job the "Open the inference WebUI" button starts, from the tab's values."""
    i18n = ctx.i18n
    if not gpt_v or not sovits_v:
        if not any(weight_choices(ctx.weights_root, ctx.pretrained)):
            raise UserInputError(i18n(
                "No model files were found. Put the pretrained base models into {folder} (its README lists "
                "the files) or fine-tune a voice in 1B, then press Refresh model list.",
                folder=str(ctx.path(ctx.settings.pretrained_dir))))
        raise UserInputError(i18n("Choose a GPT model and a SoVITS model first."))
    for path, what in ((ctx.path(gpt_v), "GPT"), (ctx.path(sovits_v), "SoVITS")):
        if not path.is_file():
            raise UserInputError(i18n("{what} model not found: {path}", what=what, path=str(path)))
    job = InferenceWebUIJob(ctx.path(gpt_v), ctx.path(sovits_v), ctx.path(ctx.settings.pretrained_dir),
                            ctx.settings.ports.inference, ctx.settings.host, (device_v or "cpu").strip(), bool(half_v),
                            ctx.i18n.language, ctx.weights_root)
    return job.spec()


def model_lists(ctx: AppContext, exp_v: str, version_v: str, gpt_v: str | None = None,
                sovits_v: str | None = None) -> tuple[dict, dict]:
    """Dropdown updates ``(gpt, sovits)``: fresh lists of every version's folders; the given values when they still
    exist, else the newest fine-tuned pair of the experiment (else the version's pretrained base)."""
    gpts, sovits = list_weights(ctx.weights_root, ctx.pretrained)
    word = ctx.i18n("pretrained")
    gpt_default, sovits_default = newest_pair(gpts, sovits, str(exp_v or "").strip(), version_v)
    gpt_paths, sovits_paths = {str(f.path) for f in gpts}, {str(f.path) for f in sovits}
    return (gr.update(choices=choices(gpts, word), value=gpt_v if gpt_v in gpt_paths else gpt_default),
            gr.update(choices=choices(sovits, word), value=sovits_v if sovits_v in sovits_paths else sovits_default))


def build_tab(ctx: AppContext, exp_name: Any, version: Any, tab: Any = None) -> None:
    """The 1C content (called inside the launcher's "1C - Inference" tab)."""
    i18n = ctx.i18n
    gr.Markdown(i18n("Choose the models from the weight folders of every version (GPT_weights*, SoVITS_weights*). "
                     "The newest fine-tuned pair of the experiment is preselected; the pretrained base models at the "
                     "end of each list give zero-shot cloning from a 5-second reference."))
    gpt_update, sovits_update = model_lists(ctx, ctx.workflow.get("exp_name"), ctx.workflow.get("version"))
    with gr.Row():
        gpt = gr.Dropdown(gpt_update["choices"], value=gpt_update["value"], label=i18n("GPT model"),
                          allow_custom_value=True, elem_id="gpt-model",
                          info=i18n("The text-to-semantic model: your fine-tuned GPT_weights file, or the base model."))
        sovits_box = gr.Dropdown(sovits_update["choices"], value=sovits_update["value"], label=i18n("SoVITS model"),
                                 allow_custom_value=True, elem_id="sovits-model",
                                 info=i18n("The voice decoder: your fine-tuned SoVITS_weights file, or the base "
                                           "model."))
        refresh = gr.Button(i18n("Refresh model list"))
    picked = gr.State(False)  # the user chose a model in this page: keep it when the lists refresh
    with gr.Row():
        device = gr.Textbox("cpu", label=i18n("Device"), info=i18n("cpu, cuda or cuda:1 (one GPU)."))
        half = gr.Checkbox(False, label=i18n("Half precision (GPU only)"),
                           info=i18n("float16 on a GPU: faster and smaller; ignored on the CPU."))
    url = f"http://127.0.0.1:{ctx.settings.ports.inference}"

    JobPanel(ctx, JOB_NAME, functools.partial(inference_job_spec, ctx), [gpt, sovits_box, device, half],
             i18n("Open the inference WebUI"), log_lines=6)
    link = gr.Markdown("")
    shown = gr.State("")  # the link text this page shows

    def show_link(last: str) -> dict:
        text = ""
        if ctx.processes.status(JOB_NAME).running:
            text = i18n("The inference WebUI runs at [{url}]({url}) (it needs a few seconds to load the models).",
                        url=url)
        return {} if text == last else {link: text, shown: text}

    ctx.polls.append((show_link, [shown], [link, shown]))

    def keep_or_default(exp_v: str, version_v: str, gpt_v: str, sovits_v: str, picked_v: bool) -> dict:
        g, s = model_lists(ctx, exp_v, version_v, gpt_v if picked_v else None, sovits_v if picked_v else None)
        return {gpt: g, sovits_box: s}

    def newest(exp_v: str, version_v: str) -> dict:  # a training run finished: its files are the new default
        g, s = model_lists(ctx, exp_v, version_v)
        return {gpt: g, sovits_box: s, picked: False}

    lists_inputs = [exp_name, version, gpt, sovits_box, picked]
    refresh.click(keep_or_default, inputs=lists_inputs, outputs=[gpt, sovits_box])
    for component in (gpt, sovits_box):
        component.input(lambda: True, outputs=picked)
    if tab is not None:
        tab.select(keep_or_default, inputs=lists_inputs, outputs=[gpt, sovits_box])
    ctx.on_load.append((keep_or_default, lists_inputs, [gpt, sovits_box]))
    for trainer in ("train_sovits", "train_gpt"):
        for trainer_panel in (p for p in ctx.panels if p.name == trainer):
            trainer_panel.finished.change(newest, inputs=[exp_name, version], outputs=[gpt, sovits_box, picked])
