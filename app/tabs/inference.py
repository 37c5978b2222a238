"""Sub-tab 1C: choose a GPT and a SoVITS file and open the inference WebUI as a job (port 9872 by default)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from app.context import AppContext
from app.inference_webui import weight_choices
from app.processes import JobSpec
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

    module = "app.inference_webui"

    def to_argv(self) -> list[str]:
        argv = ["--gpt", str(self.gpt), "--sovits", str(self.sovits), "--pretrained-dir", str(self.pretrained_dir),
                "--port", str(self.port), "--host", self.host, "--device", self.device,
                "--half" if self.half else "--no-half"]
        return argv + (["--lang", self.lang] if self.lang else [])

    def validate(self) -> None:
        for path, what in ((self.gpt, "GPT"), (self.sovits, "SoVITS")):
            if not path.is_file():
                raise FileNotFoundError(f"{what} model not found: {path}")

    def spec(self, gpu: str | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), gpu=gpu)


def inference_job_spec(ctx: AppContext, gpt_v: str | None, sovits_v: str | None, device_v: str = "cpu",
                       half_v: bool = False) -> JobSpec:
    """The job the "Open the inference WebUI" button starts, from the tab's values."""
    i18n = ctx.i18n
    if not gpt_v or not sovits_v:
        if not any(weight_choices(ctx.root, ctx.pretrained)):
            raise UserInputError(i18n(
                "No model files were found. Put the pretrained base models into {folder} (its README lists "
                "the files) or fine-tune a voice in 1B, then press Refresh model list.",
                folder=str(ctx.path(ctx.settings.pretrained_dir))))
        raise UserInputError(i18n("Choose a GPT model and a SoVITS model first."))
    job = InferenceWebUIJob(ctx.path(gpt_v), ctx.path(sovits_v), ctx.path(ctx.settings.pretrained_dir),
                            ctx.settings.ports.inference, ctx.settings.host, (device_v or "cpu").strip(), bool(half_v),
                            ctx.i18n.language)
    return job.spec()


def build_tab(ctx: AppContext) -> None:
    """The 1C content (called inside the launcher's "1C - Inference" tab)."""
    i18n = ctx.i18n
    gr.Markdown(i18n("Choose the models from the weight folders (GPT_weights*, SoVITS_weights*). The pretrained "
                     "base models at the end of each list give zero-shot cloning from a 5-second reference."))
    gpts, sovits = weight_choices(ctx.root, ctx.pretrained)
    with gr.Row():
        gpt = gr.Dropdown(gpts, value=gpts[-1] if gpts else None, label=i18n("GPT model"), allow_custom_value=True,
                          info=i18n("The text-to-semantic model: your fine-tuned GPT_weights file, or the base model."))
        sovits_box = gr.Dropdown(sovits, value=sovits[0] if sovits else None, label=i18n("SoVITS model"),
                                 allow_custom_value=True, info=i18n("The voice decoder: your fine-tuned SoVITS_weights "
                                                                    "file, or the base model."))
        refresh = gr.Button(i18n("Refresh model list"))
    with gr.Row():
        device = gr.Textbox("cpu", label=i18n("Device"), info=i18n("cpu, cuda or cuda:1 (one GPU)."))
        half = gr.Checkbox(False, label=i18n("Half precision (GPU only)"),
                           info=i18n("float16 on a GPU: faster and smaller; ignored on the CPU."))
    port = ctx.settings.ports.inference
    url = f"http://127.0.0.1:{port}"

    panel = JobPanel(ctx, JOB_NAME, functools.partial(inference_job_spec, ctx), [gpt, sovits_box, device, half],
                     i18n("Open the inference WebUI"),
                     log_lines=6)
    link = gr.Markdown("")

    def show_link() -> str:
        if ctx.processes.status(JOB_NAME).running:
            return i18n("The inference WebUI runs at [{url}]({url}) (it needs a few seconds to load the models).",
                        url=url)
        return ""

    panel.timer.tick(show_link, outputs=link)

    def refresh_lists(gpt_v: str, sovits_v: str) -> dict:
        g, s = weight_choices(ctx.root, ctx.pretrained)
        return {gpt: gr.update(choices=g, value=gpt_v if gpt_v in g else (g[-1] if g else None)),
                sovits_box: gr.update(choices=s, value=sovits_v if sovits_v in s else (s[0] if s else None))}

    refresh.click(refresh_lists, inputs=[gpt, sovits_box], outputs=[gpt, sovits_box])
