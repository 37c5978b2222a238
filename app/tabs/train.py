"""Tab 1B: SoVITS and GPT fine-tuning, each a resumable training job with a live loss plot and a stop button.

The SoVITS panel follows the header's version: GAN training of the whole generator (v1/v2/Pro) or LoRA on the
frozen flow-matching model (v4, ``VersionSpec.fine_tunes_with_lora``) with its rank choice and upstream's
defaults for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import psutil

from app.context import AppContext
from app.devices import GpuInfo, default_batch_sizes, detect_gpus, sovits_panel_defaults
from app.i18n import I18n
from app.jobs import TrainJob
from app.widgets import JobPanel, UserInputError
from GPT_SoVITS.checkpoints import latest_train_state
from GPT_SoVITS.config import ConfigError, load_config
from GPT_SoVITS.paths import REPO_ROOT, ExperimentPaths, sovits_d_path_for
from GPT_SoVITS.train.config import LORA_RANKS, PRECISIONS, GPTRunConfig, SoVITSLoRARunConfig, SoVITSRunConfig
from GPT_SoVITS.train.loop import parse_train_line
from GPT_SoVITS.versions import version_spec

SOVITS_DEFAULTS = REPO_ROOT / "configs" / "sovits_v2.yaml"
SOVITS_LORA_DEFAULTS = REPO_ROOT / "configs" / "sovits_lora.yaml"
DEFAULT_LORA_RANK = 32
GPT_DEFAULTS = REPO_ROOT / "configs" / "gpt_v2.yaml"
MAX_LOG_BYTES = 8 * 2**20


def loss_frame(log_file: Path | None, start: int = 0) -> pd.DataFrame:
    """Step/loss points of the ``TRAIN`` lines in a job's log after byte ``start`` (the current run's lines; the
    log keeps earlier runs), at most the newest 8 MB."""
    rows: list[tuple[int, float]] = []
    if log_file is not None and Path(log_file).exists():
        with open(log_file, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(start, size - MAX_LOG_BYTES))
            text = fh.read().decode("utf-8", errors="replace")
        for line in text.splitlines():
            parsed = parse_train_line(line)
            if parsed and "loss" in parsed[2]:
                rows.append((parsed[1], parsed[2]["loss"]))
    return pd.DataFrame(rows, columns=["step", "loss"])


def _sovits_states(i18n: I18n, exp: ExperimentPaths, version: str) -> list[tuple[str, Path, str]]:
    """(label, folder, kind) of each SoVITS training-state folder to report: LoRA states per rank for v4."""
    if not version_spec(version).fine_tunes_with_lora:
        return [("SoVITS", exp.sovits_dir(version), SoVITSRunConfig.state_kind)]
    folders = exp.sovits_lora_dirs(version)
    if not folders:
        return [("SoVITS", exp.sovits_lora_dir(version, DEFAULT_LORA_RANK), SoVITSLoRARunConfig.state_kind)]
    return [(i18n("SoVITS (LoRA rank {rank})", rank=rank), folder, SoVITSLoRARunConfig.state_kind)
            for rank, folder in folders.items()]


def training_overview(i18n: I18n, exp_dir: Path, weights_root: Path, version: str = "v2") -> str:
    """Markdown: each trainer's newest training state (its step) and the release files of the experiment
    (v4: the LoRA states of every rank trained, and the ``_l<rank>`` releases)."""
    gpt_dir, sovits_dir = version_spec(version).weights_dirs(weights_root)
    exp, name = ExperimentPaths(exp_dir), exp_dir.name
    sovits_weights = sorted(sovits_dir.glob(f"{name}_e*_s*.pth"))
    entries = [(label, folder, kind, []) for label, folder, kind in _sovits_states(i18n, exp, version)]
    entries[-1] = (*entries[-1][:3], sovits_weights)
    entries.append(("GPT", exp.gpt_dir(version), GPTRunConfig.state_kind, sorted(gpt_dir.glob(f"{name}-e*.ckpt"))))
    lines = []
    for model, state_dir, kind, weights in entries:
        latest = latest_train_state(state_dir, kind)
        if latest is None:
            lines.append(i18n("{model}: no training state yet", model=model))
        else:
            lines.append(i18n("{model}: training state at step {step}", model=model,
                              step=int(latest.stem.rsplit("_", 1)[1])))
        if weights:
            lines.append("  - " + i18n("Weights: {files}", files=", ".join(p.name for p in weights)))
    return "\n".join(line if line.startswith("  ") else f"- {line}" for line in lines)


def _path_or_none(ctx: AppContext, value: str) -> str | None:
    return str(ctx.path(value)) if str(value).strip() else None


def _require_pretrained(ctx: AppContext, paths: list[str | None], from_scratch: bool) -> None:
    if from_scratch:
        return
    for value in paths:
        if value is None or not Path(value).exists():
            raise UserInputError(ctx.i18n(
                "Training refused: the starting weights {path} do not exist. Put upstream's pretrained files into "
                "{folder} (pretrained_models/README.md lists them) or give another file. Tick 'train from scratch' "
                "only if you really want random starting weights (the result is noise at first).",
                path=value or "-", folder=str(ctx.pretrained.root)))


def _load(i18n: I18n, cls, defaults: Path, overrides: dict):
    try:
        return load_config(cls, defaults, overrides)
    except ConfigError as exc:
        raise UserInputError(i18n("The training settings are not valid: {reason}", reason=str(exc))) from None


def _common_widgets(ctx: AppContext, gpu_default: str, accum_default: int) -> dict:
    i18n = ctx.i18n
    with gr.Row():
        widgets = {
            "latest_only": gr.Checkbox(True, label=i18n("Save only the latest training state"),
                                       info=i18n("Saves disk space; a stopped run still resumes from it.")),
            "release": gr.Checkbox(True, label=i18n("Save small weights at each save point"),
                                   info=i18n("Inference weights in the weights folder, at every save point.")),
            "gpus": gr.Textbox(gpu_default, label=i18n("GPU ids"),
                               info=i18n("Joined by '-': 0-1 trains on two GPUs (one process each). Empty: CPU.")),
        }
    with gr.Row():
        widgets["precision"] = gr.Dropdown(list(PRECISIONS), value="auto", label=i18n("Precision"),
                                           info=i18n("auto: fp16 mixed precision on GPUs that support it (compute "
                                                     "capability 5.3 or newer), fp32 elsewhere."))
        widgets["accum"] = gr.Slider(1, 16, accum_default, step=1, label=i18n("Gradient accumulation"),
                                     info=i18n("Batches per optimizer step: a small batch on a small GPU acts like "
                                               "a larger one (upstream: 1 for SoVITS, 4 for GPT)."))
        widgets["from_scratch"] = gr.Checkbox(False, label=i18n("Train from scratch"),
                                              info=i18n("Only without pretrained weights on purpose: the result is "
                                                        "noise until trained for very long."))
        widgets["init_weights"] = gr.Textbox("", label=i18n("Continue from weights (optional)"),
                                             info=i18n("A weights file of an earlier run, to keep training on new "
                                                       "data. Ignored when this experiment has a training state."))
    return widgets


def _loss_plot(ctx: AppContext, job_name: str) -> None:
    plot = gr.LinePlot(loss_frame(None), x="step", y="loss", label=ctx.i18n("Loss"), height=240)
    shown = gr.State(None)  # (run, log size) this page's plot shows: an unchanged log is neither parsed nor redrawn

    def points(last: tuple | None) -> dict:
        status = ctx.processes.status(job_name)
        log_file = status.log_file
        key = (status.run_id, log_file.stat().st_size if log_file is not None and log_file.exists() else 0)
        if key == last:  # the log has not grown: nothing to parse, nothing to redraw
            return {}
        return {plot: loss_frame(log_file, status.log_offset), shown: key}

    ctx.polls.append((points, [shown], [plot, shown]))


def _device_overrides(gpus: str) -> dict:
    return {"device": "auto" if str(gpus).strip() else "cpu"}


def sovits_train_job(ctx: AppContext, exp_v: str, version_v: str, bs: float, ep: float, lr_w: float, rank: Any,
                     every: float, g_path: str, d_path: str, latest: bool, release: bool, gpus: str, precision: str,
                     accum: float, scratch: bool, init: str) -> TrainJob:
    """The SoVITS job the panel's values describe: the version's trainer (GAN, or LoRA for v4) and its run config.

    Raises :class:`UserInputError` (shown in the panel) for a missing experiment or pretrained file.
    """
    i18n = ctx.i18n
    exp = ctx.experiment(exp_v)
    g_value = _path_or_none(ctx, g_path)
    common = {"exp_dir": str(exp.root), "name": exp.name, "version": version_v, "pretrained_g": g_value,
              "init_weights": _path_or_none(ctx, init),
              "weights_dir": str(version_spec(version_v).weights_dirs(ctx.weights_root)[1]),
              "save": {"every_n_epochs": int(every), "latest_only": bool(latest), "release_weights": bool(release)},
              "runtime": {"precision": precision, "from_scratch": bool(scratch), **_device_overrides(gpus)}}
    train = {"batch_size": int(bs), "epochs": int(ep), "grad_accum": int(accum)}
    if version_spec(version_v).fine_tunes_with_lora:
        _require_pretrained(ctx, [g_value], bool(scratch))
        cfg = _load(i18n, SoVITSLoRARunConfig, SOVITS_LORA_DEFAULTS,
                    {**common, "train": {**train, "lora_rank": int(rank)}})
        return TrainJob("sovits", cfg, exp.root / "sovits_lora.yaml", gpus=str(gpus).strip())
    d_value = _path_or_none(ctx, d_path) or (str(sovits_d_path_for(Path(g_value))) if g_value else None)
    _require_pretrained(ctx, [g_value, d_value], bool(scratch))
    cfg = _load(i18n, SoVITSRunConfig, SOVITS_DEFAULTS, {
        **common, "pretrained_d": d_value, "train": {**train, "text_low_lr_rate": float(lr_w)}})
    return TrainJob("sovits", cfg, exp.root / "sovits_train.yaml", gpus=str(gpus).strip())


def _build_sovits(ctx: AppContext, exp_name: Any, version: Any, gpus: list[GpuInfo], ram_gb: float,
                  gpu_default: str) -> None:
    i18n, pretrained, v0 = ctx.i18n, ctx.pretrained, ctx.workflow.get("version")
    d0 = sovits_panel_defaults(v0, gpus, ram_gb)
    with gr.Row():
        batch = gr.Slider(1, d0.max_batch, d0.batch, step=1, label=i18n("Batch size per GPU"), elem_id="sovits-batch",
                          info=i18n("Lower it if training runs out of memory."))
        epochs = gr.Slider(1, d0.max_epochs, d0.epochs, step=1, label=i18n("Total epochs"), elem_id="sovits-epochs",
                           info=i18n("Raising it later continues the same experiment."))
        text_lr = gr.Slider(0.2, 0.6, 0.4, step=0.05, label=i18n("Text-module learning-rate weight"),
                            visible=not d0.lora, elem_id="sovits-text-lr",
                            info=i18n("Learning rate of the text encoder relative to the rest."))
        rank = gr.Radio(list(LORA_RANKS), value=DEFAULT_LORA_RANK, label=i18n("LoRA rank"), visible=d0.lora,
                        elem_id="sovits-lora-rank",
                        info=i18n("Size of the adapters trained on the frozen v4 model: higher learns more detail but "
                                  "needs more memory and overfits sooner (upstream's default: 32)."))
        save_every = gr.Slider(1, d0.max_save_every, d0.save_every, step=1, label=i18n("Save every N epochs"),
                               elem_id="sovits-save-every", info=i18n("The last epoch is always saved."))
    with gr.Row():
        pre_g = gr.Textbox(str(pretrained.sovits_g(v0)), label=i18n("Pretrained SoVITS-G"), elem_id="sovits-pre-g",
                           info=i18n("Starting weights of the generator (s2G*.pth)."))
        pre_d = gr.Textbox(str(pretrained.sovits_d(v0)), label=i18n("Pretrained SoVITS-D"), visible=not d0.lora,
                           elem_id="sovits-pre-d", info=i18n("Starting weights of the discriminator (s2D*.pth)."))

    def switch_version(v: str) -> dict:
        d = sovits_panel_defaults(v, gpus, ram_gb)
        return {pre_g: str(ctx.pretrained.sovits_g(v)), pre_d: gr.update(value=str(ctx.pretrained.sovits_d(v)),
                                                                         visible=not d.lora),
                batch: gr.update(value=d.batch, maximum=d.max_batch),
                epochs: gr.update(value=d.epochs, maximum=d.max_epochs), text_lr: gr.update(visible=not d.lora),
                rank: gr.update(visible=d.lora), save_every: gr.update(value=d.save_every, maximum=d.max_save_every)}

    version.change(switch_version, inputs=version, outputs=[pre_g, pre_d, batch, epochs, text_lr, rank, save_every])
    common = _common_widgets(ctx, gpu_default, 1)

    def make_spec(*values: Any):
        return sovits_train_job(ctx, *values).spec()

    inputs = [exp_name, version, batch, epochs, text_lr, rank, save_every, pre_g, pre_d, common["latest_only"],
              common["release"], common["gpus"], common["precision"], common["accum"], common["from_scratch"],
              common["init_weights"]]
    JobPanel(ctx, "train_sovits", make_spec, inputs, i18n("Start SoVITS training"))
    _loss_plot(ctx, "train_sovits")


def _build_gpt(ctx: AppContext, exp_name: Any, version: Any, batch_default: int, gpu_default: str) -> None:
    i18n, pretrained = ctx.i18n, ctx.pretrained
    with gr.Row():
        batch = gr.Slider(1, 40, min(batch_default, 40), step=1, label=i18n("Batch size per GPU"),
                          elem_id="gpt-batch",
                          info=i18n("Lower it if training runs out of memory."))
        epochs = gr.Slider(2, 50, 15, step=1, label=i18n("Total epochs"), elem_id="gpt-epochs",
                           info=i18n("Raising it later continues the same experiment."))
        save_every = gr.Slider(1, 50, 5, step=1, label=i18n("Save every N epochs"),
                               elem_id="gpt-save-every",
                               info=i18n("The last epoch is always saved."))
        dpo = gr.Checkbox(False, label=i18n("DPO training (experimental)"),
                          info=i18n("Adds a preference loss against corrupted token sequences; halves the batch."))
    pre_gpt = gr.Textbox(str(pretrained.gpt(ctx.workflow.get("version"))), label=i18n("Pretrained GPT"),
                         info=i18n("Starting weights of the GPT model (s1bert25hz-*.ckpt, s1v3.ckpt)."))
    version.change(lambda v: str(ctx.pretrained.gpt(v)), inputs=version, outputs=pre_gpt)
    common = _common_widgets(ctx, gpu_default, 4)

    def make_spec(exp_v, version_v, bs, ep, every, dpo_v, gpt_path, latest, release, gpus, precision, accum, scratch,
                  init):
        exp = ctx.experiment(exp_v)
        gpt_value = _path_or_none(ctx, gpt_path)
        _require_pretrained(ctx, [gpt_value], bool(scratch))
        cfg = _load(i18n, GPTRunConfig, GPT_DEFAULTS, {
            "exp_dir": str(exp.root), "name": exp.name, "version": version_v, "pretrained": gpt_value,
            "init_weights": _path_or_none(ctx, init),
            "weights_dir": str(version_spec(version_v).weights_dirs(ctx.weights_root)[0]),
            "train": {"batch_size": int(bs), "epochs": int(ep), "dpo": bool(dpo_v), "grad_accum": int(accum)},
            "save": {"every_n_epochs": int(every), "latest_only": bool(latest), "release_weights": bool(release)},
            "runtime": {"precision": precision, "from_scratch": bool(scratch), **_device_overrides(gpus)}})
        return TrainJob("gpt", cfg, exp.root / "gpt_train.yaml", gpus=str(gpus).strip()).spec()

    inputs = [exp_name, version, batch, epochs, save_every, dpo, pre_gpt, common["latest_only"], common["release"],
              common["gpus"], common["precision"], common["accum"], common["from_scratch"], common["init_weights"]]
    JobPanel(ctx, "train_gpt", make_spec, inputs, i18n("Start GPT training"))
    _loss_plot(ctx, "train_gpt")


def build_tab(ctx: AppContext, exp_name: Any, version: Any) -> None:
    """The 1B sub-tab's content (called inside the launcher's "1B - Fine-tuning" tab)."""
    i18n = ctx.i18n
    gpus = detect_gpus()
    ram_gb = psutil.virtual_memory().total / 2**30
    _, gpt_batch = default_batch_sizes(gpus, ram_gb)
    gpu_default = "-".join(str(g.index) for g in gpus)
    gr.Markdown(i18n("Fine-tune both models on the formatted experiment. Starting again continues from the latest "
                     "training state; weights go to SoVITS_weights_<version> and GPT_weights_<version> (v1: "
                     "SoVITS_weights and GPT_weights). Stop saves the training state after the current step. "
                     "TensorBoard logs: `logs/<experiment>/tb`."))
    with gr.Accordion(i18n("1Ba - SoVITS training"), open=True):
        _build_sovits(ctx, exp_name, version, gpus, ram_gb, gpu_default)
    with gr.Accordion(i18n("1Bb - GPT training"), open=True):
        _build_gpt(ctx, exp_name, version, gpt_batch, gpu_default)
    overview = gr.Markdown()

    def show_overview(exp_v: str, version_v: str) -> str:
        try:
            return training_overview(i18n, ctx.experiment(exp_v).root, ctx.weights_root, version_v)
        except UserInputError as exc:
            return f"⚠️ {exc.text(i18n)}"

    gr.Button(i18n("Show training state")).click(show_overview, inputs=[exp_name, version], outputs=overview)
