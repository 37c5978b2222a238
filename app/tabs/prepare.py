"""Tab 1A: dataset formatting (the selected version's steps one by one, or the one-click chain)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import gradio as gr

from app.context import AppContext
from app.devices import default_worker_gpus, detect_gpus
from app.i18n import I18n
from app.jobs import PrepareJob
from app.processes import JobStatus
from app.widgets import JobPanel, UserInputError
from GPT_SoVITS.versions import version_spec

#: The step buttons: label → the steps it runs (those of the selected version, in the version's order).
STEP_BUTTONS = (("1Aa", ("text",)), ("1Ab", ("hubert", "sv")), ("1Ac", ("semantic",)))


def _read_report(exp_dir: Path) -> dict[str, Any] | None:
    report_path = exp_dir / ".prepare" / "report.json"
    if not report_path.exists():
        return None
    return json.loads(report_path.read_text(encoding="utf-8"))


def left_out(report: dict[str, Any]) -> list[str]:
    """Every item left out by any step, once (the label list's own problems are in every step's report)."""
    return list(dict.fromkeys(issue for data in report.values() for issue in data.get("issues", [])))


def left_out_note(i18n: I18n, exp_dir: Path) -> str:
    """The warning under a finished 1A run when items were left out (wrong language, unreadable audio ...)."""
    report = _read_report(exp_dir)
    issues = left_out(report) if report else []
    if not issues:
        return ""
    lines = [f"⚠️ **{i18n('{n} item(s) were left out of the training set:', n=len(issues))}**"]
    lines += [f"- {html.escape(issue)}" for issue in issues[:8]]
    if len(issues) > 8:
        lines.append(i18n("… and {n} more (see the log and the dataset summary).", n=len(issues) - 8))
    return "\n".join(lines)


def dataset_summary(i18n: I18n, exp_dir: Path) -> str:
    """Markdown summary of a formatted experiment folder: items, minutes, items left out per step."""
    report = _read_report(exp_dir)
    if report is None:
        return i18n("No formatting report yet for this experiment.")
    lines = []
    if exp_dir.joinpath("2-name2text.txt").exists():
        n_text = sum(1 for line in exp_dir.joinpath("2-name2text.txt").open(encoding="utf-8") if line.strip())
        lines.append(i18n("Text: {n} item(s)", n=n_text))
    seconds = 0.0
    journals = sorted((exp_dir / ".prepare").glob("hubert-*.jsonl"))
    for journal in journals:
        for line in journal.read_text(encoding="utf-8").splitlines():
            seconds += json.loads(line).get("seconds", 0.0) if line.strip().startswith("{") else 0.0
    if journals:
        lines.append(i18n("Audio: {minutes} minute(s)", minutes=round(seconds / 60, 1)))
    for step, data in report.items():
        left = len(data.get("issues", []))
        lines.append(i18n("{step}: {done} computed, {reused} reused, {left} left out",
                          step=step, done=data["done"], reused=data["reused"], left=left))
        lines += [f"  - {html.escape(issue)}" for issue in data.get("issues", [])[:10]]
    return "\n".join(f"- {line}" if not line.startswith("  ") else line for line in lines)


def _pretrained_widgets(ctx: AppContext, version: str) -> dict[str, Any]:
    i18n, pretrained = ctx.i18n, ctx.pretrained
    with gr.Accordion(i18n("Pretrained models"), open=False):
        return {
            "bert": gr.Textbox(str(pretrained.bert), label=i18n("BERT folder"),
                               info=i18n("chinese-roberta-wwm-ext-large, used for Chinese text features (1Aa).")),
            "hubert": gr.Textbox(str(pretrained.hubert), label=i18n("HuBERT folder"),
                                 info=i18n("chinese-hubert-base, used for the speech features (1Ab).")),
            "sv": gr.Textbox(str(pretrained.sv), label=i18n("Speaker-verification model"),
                             visible="sv" in version_spec(version).prepare_steps,
                             info=i18n("ERes2NetV2, the speaker embedding of the Pro versions (1Ab, folder 7-sv_cn).")),
            "sovits_g": gr.Textbox(str(pretrained.sovits_g(version)), label=i18n("Pretrained SoVITS-G"),
                                   info=i18n("Its quantizer turns the speech features into semantic tokens (1Ac).")),
        }


def build_tab(ctx: AppContext, exp_name: gr.Textbox, version: gr.Dropdown) -> None:
    i18n = ctx.i18n
    gpus = detect_gpus()
    gr.Markdown(i18n("Formatting writes 2-name2text.txt, 3-bert, 4-cnhubert, 5-wav32k, 6-name2semantic.tsv (and "
                     "7-sv_cn for the Pro versions) into `logs/<experiment>`. Items already done with the same "
                     "inputs are reused; items whose text does not fit their language are left out."))
    with gr.Row():
        list_path = ctx.bind("list_path", gr.Textbox(
            label=i18n("Text label file (.list)"),
            info=i18n("The proofread .list file: audio path|speaker|language|text per line.")))
        audio_dir = ctx.bind("audio_dir", gr.Textbox(
            label=i18n("Audio folder"),
            info=i18n("Optional: folder holding the clips; empty means the paths in the .list are used.")))
    models = _pretrained_widgets(ctx, ctx.workflow.get("version"))
    with gr.Row():
        gpu_ids = gr.Textbox(default_worker_gpus(gpus), label=i18n("GPU ids"),
                             info=i18n("One worker per id, joined by '-': 0-0 runs two workers on GPU 0. "
                                       "Empty: CPU workers."))
        workers = gr.Slider(1, 8, 1, step=1, label=i18n("CPU workers"),
                            info=i18n("Parallel workers when no GPU id is given (each loads its own models)."))
        half = gr.Checkbox(bool(gpus), label=i18n("Half precision on GPU"),
                           info=i18n("float16 features on GPUs; NaN results are redone in float32."))

    def on_version(version_v: str) -> dict:
        steps = version_spec(version_v).prepare_steps
        return {models["sovits_g"]: str(ctx.pretrained.sovits_g(version_v)),
                models["sv"]: gr.update(visible="sv" in steps)}

    version.change(on_version, inputs=version, outputs=[models["sovits_g"], models["sv"]])

    def make_spec(steps: tuple[str, ...] | None):
        def spec(exp_v, version_v, list_v, audio_v, bert_v, hubert_v, sv_v, sovits_v, gpu_v, workers_v, half_v):
            if not str(list_v).strip():
                raise UserInputError(i18n("Enter the .list label file (the ASR output or your own)."))
            exp = ctx.experiment(exp_v)
            order = version_spec(version_v).prepare_steps
            chosen = tuple(s for s in order if steps is None or s in steps)
            job = PrepareJob(exp.root, ctx.path(list_v), ctx.path(audio_v) if str(audio_v).strip() else None,
                             chosen, ctx.pretrained.root, ctx.path(bert_v), ctx.path(hubert_v), ctx.path(sovits_v),
                             gpus=str(gpu_v).strip(), workers=int(workers_v), half=bool(half_v), version=version_v,
                             sv_model=ctx.path(sv_v) if str(sv_v).strip() else None)
            return job.spec()
        return spec

    inputs = [exp_name, version, list_path, audio_dir, models["bert"], models["hubert"], models["sv"],
              models["sovits_g"], gpu_ids, workers, half]

    def finish_note(_status: JobStatus, values: tuple) -> str:
        return left_out_note(i18n, ctx.experiment(values[0]).root)

    extra = [(i18n("{step} only", step=label), make_spec(steps), inputs) for label, steps in STEP_BUTTONS]
    JobPanel(ctx, "prepare", make_spec(None), inputs, i18n("One click: 1Aa → 1Ab → 1Ac"), extra_starts=extra,
             finish_note=finish_note)
    summary = gr.Markdown()

    def show_summary(exp_v: str) -> str:
        try:
            return dataset_summary(i18n, ctx.experiment(exp_v).root)
        except UserInputError as exc:
            return f"⚠️ {exc.text(i18n)}"

    gr.Button(i18n("Show dataset summary")).click(show_summary, inputs=exp_name, outputs=summary)
