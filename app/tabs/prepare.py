"""Tab 1A: dataset formatting (text + BERT, HuBERT + 32 kHz audio, semantic tokens, and the one-click chain)."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr

from app.context import AppContext
from app.devices import default_worker_gpus, detect_gpus
from app.jobs import PrepareJob
from app.widgets import JobPanel, UserInputError

STEP_BUTTONS = (("1Aa", ("text",)), ("1Ab", ("hubert",)), ("1Ac", ("semantic",)))


def dataset_summary(i18n, exp_dir: Path) -> str:
    """Markdown summary of a formatted experiment folder: items, minutes, items left out per step."""
    report_path = exp_dir / ".prepare" / "report.json"
    if not report_path.exists():
        return i18n("No formatting report yet for this experiment.")
    report = json.loads(report_path.read_text(encoding="utf-8"))
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
        left_out = len(data.get("issues", []))
        lines.append(i18n("{step}: {done} computed, {reused} reused, {left} left out",
                          step=step, done=data["done"], reused=data["reused"], left=left_out))
        lines += [f"  - {issue}" for issue in data.get("issues", [])[:10]]
    return "\n".join(f"- {line}" if not line.startswith("  ") else line for line in lines)


def build_tab(ctx: AppContext) -> None:
    i18n = ctx.i18n
    pretrained = ctx.pretrained
    gpus = detect_gpus()
    gr.Markdown(i18n("Formatting writes 2-name2text.txt, 3-bert, 4-cnhubert, 5-wav32k and 6-name2semantic.tsv "
                     "into `logs/<experiment>`. Items already done with the same inputs are reused."))
    with gr.Row():
        list_path = ctx.bind("list_path", gr.Textbox(
            label=i18n("Text label file (.list)"),
            info=i18n("The proofread .list file: audio path|speaker|language|text per line.")))
        audio_dir = ctx.bind("audio_dir", gr.Textbox(
            label=i18n("Audio folder"),
            info=i18n("Optional: folder holding the clips; empty means the paths in the .list are used.")))
    with gr.Accordion(i18n("Pretrained models"), open=False):
        bert = gr.Textbox(str(pretrained.bert), label=i18n("BERT folder"),
                          info=i18n("chinese-roberta-wwm-ext-large, used for Chinese text features (1Aa)."))
        hubert = gr.Textbox(str(pretrained.hubert), label=i18n("HuBERT folder"),
                            info=i18n("chinese-hubert-base, used for the speech features (1Ab)."))
        sovits_g = gr.Textbox(str(pretrained.sovits_g()), label=i18n("Pretrained SoVITS-G"),
                              info=i18n("Its quantizer turns the speech features into semantic tokens (1Ac)."))
    with gr.Row():
        gpu_ids = gr.Textbox(default_worker_gpus(gpus), label=i18n("GPU ids"),
                             info=i18n("One worker per id, joined by '-': 0-0 runs two workers on GPU 0. "
                                       "Empty: CPU workers."))
        workers = gr.Slider(1, 8, 1, step=1, label=i18n("CPU workers"),
                            info=i18n("Parallel workers when no GPU id is given (each loads its own models)."))
        half = gr.Checkbox(bool(gpus), label=i18n("Half precision on GPU"),
                           info=i18n("float16 features on GPUs; NaN results are redone in float32."))

    def make_spec(steps: tuple[str, ...]):
        def spec(list_v, audio_v, bert_v, hubert_v, sovits_v, gpu_v, workers_v, half_v):
            if not str(list_v).strip():
                raise UserInputError(i18n("Enter the .list label file (the ASR output or your own)."))
            exp = ctx.experiment()
            job = PrepareJob(exp.root, ctx.path(list_v), ctx.path(audio_v) if str(audio_v).strip() else None,
                             steps, pretrained.root, ctx.path(bert_v), ctx.path(hubert_v), ctx.path(sovits_v),
                             gpus=str(gpu_v).strip(), workers=int(workers_v), half=bool(half_v))
            return job.spec()
        return spec

    inputs = [list_path, audio_dir, bert, hubert, sovits_g, gpu_ids, workers, half]
    extra = [(i18n("{step} only", step=label), make_spec(steps), inputs) for label, steps in STEP_BUTTONS]
    JobPanel(ctx, "prepare", make_spec(("text", "hubert", "semantic")), inputs,
             i18n("One click: 1Aa → 1Ab → 1Ac"), extra_starts=extra)
    summary = gr.Markdown()
    gr.Button(i18n("Show dataset summary")).click(lambda: dataset_summary(i18n, ctx.experiment().root),
                                                   outputs=summary)
