"""Command line of the formatting steps, shared by ``python -m GPT_SoVITS.prepare[.text|.hubert|.semantic]``."""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

from GPT_SoVITS.fileio import atomic_write_text
from GPT_SoVITS.logs import format_progress, setup_logging
from GPT_SoVITS.paths import DEFAULT_PRETRAINED_DIR, ExperimentPaths, PretrainedPaths
from GPT_SoVITS.prepare.common import (
    STEPS,
    EmptyDatasetError,
    Manifest,
    StepReport,
    file_fingerprint,
    load_items,
    sha256_file,
)
from GPT_SoVITS.prepare.runner import Worker, require_items, run_step
from GPT_SoVITS.prepare.steps import ModelPaths
from GPT_SoVITS.versions import supported_versions, version_spec

log = logging.getLogger(__name__)

STEP_LABELS = {"text": "1Aa", "hubert": "1Ab", "sv": "1Ab-SV", "semantic": "1Ac"}
STEP_MODELS = {"text": "bert", "hubert": "hubert", "sv": "sv", "semantic": "sovits_g"}


def parse_workers(gpus: str | None, workers: int, device: str, half: bool) -> list[Worker]:
    """``--gpus 0-0-1`` → one worker per id (upstream's "0-0": two workers on GPU 0); else ``workers`` × device."""
    if gpus:
        ids = [part.strip() for part in gpus.split("-") if part.strip()]
        if not ids or not all(part.isdigit() for part in ids):
            raise ValueError(f"--gpus must be GPU ids joined by '-', e.g. 0-0 or 0-1, got {gpus!r}")
        return [Worker(f"cuda:{gpu}", half) for gpu in ids]
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    return [Worker(device, half and device != "cpu")] * workers


def build_parser(steps: tuple[str, ...] | None = None) -> argparse.ArgumentParser:
    prog = "python -m GPT_SoVITS.prepare" + (f".{steps[0]}" if steps and len(steps) == 1 else "")
    parser = argparse.ArgumentParser(prog=prog, description="Format a labelled dataset for fine-tuning (tab 1A).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--exp-dir", type=Path, required=True, help="experiment folder, e.g. logs/<name>")
    parser.add_argument("--list", type=Path, required=True, dest="list_path", help="the .list label file")
    parser.add_argument("--audio-dir", type=Path, default=None,
                        help="folder of the clips (default: the paths written in the .list)")
    if steps is None:
        parser.add_argument("--steps", default=None,
                            help=f"comma-separated steps to run, in order, from {', '.join(STEPS)} (default: all "
                                 "the steps of --version; sv exists only for versions with speaker embeddings)")
    parser.add_argument("--pretrained-dir", type=Path, default=DEFAULT_PRETRAINED_DIR,
                        help="upstream's pretrained_models folder layout; locates the models below by default")
    parser.add_argument("--bert-dir", type=Path, default=None, help="BERT folder (default: <pretrained-dir>/...)")
    parser.add_argument("--hubert-dir", type=Path, default=None, help="HuBERT folder (default: <pretrained-dir>/...)")
    parser.add_argument("--sovits-g", type=Path, default=None,
                        help="pretrained SoVITS generator (default: the --version's s2G file in <pretrained-dir>)")
    parser.add_argument("--sv-model", type=Path, default=None,
                        help="speaker-verification model of the Pro versions (default: <pretrained-dir>/sv/...)")
    parser.add_argument("--version", choices=supported_versions(), default="v2",
                        help="model version the data is formatted for (phone table; v2Pro/v2ProPlus add the sv step)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on --device")
    parser.add_argument("--device", default="cpu", help="torch device of the workers (cpu, cuda:0, ...)")
    parser.add_argument("--gpus", default=None, help="upstream style GPU list, e.g. 0-0 = two workers on GPU 0")
    parser.add_argument("--half", action=argparse.BooleanOptionalAction, default=False,
                        help="float16 on GPUs (ignored on CPU)")
    parser.add_argument("--log-file", type=Path, default=None, help="also write the log here")
    return parser


def model_paths(args: argparse.Namespace) -> ModelPaths:
    pretrained = PretrainedPaths(args.pretrained_dir)
    return ModelPaths(bert=args.bert_dir or pretrained.bert, hubert=args.hubert_dir or pretrained.hubert,
                      sovits_g=args.sovits_g or pretrained.sovits_g(args.version),
                      sv=args.sv_model or pretrained.sv, version=args.version)


def check_steps(steps: list[str], version: str) -> None:
    """Every step must exist and belong to ``version`` (the sv step only to versions with speaker embeddings)."""
    allowed = version_spec(version).prepare_steps
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise ValueError(f"unknown step(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(allowed)}")
    foreign = [s for s in steps if s not in allowed]
    if foreign:
        raise ValueError(f"step(s) {', '.join(foreign)} do not belong to {version} (its steps: {', '.join(allowed)})")


def run(exp: ExperimentPaths, list_path: Path, audio_dir: Path | None, steps: list[str], models: ModelPaths,
        workers: list[Worker]) -> dict[str, StepReport]:
    """Run ``steps`` in order; returns their reports. Raises ``EmptyDatasetError``/``FileNotFoundError``."""
    items, list_issues = load_items(list_path, audio_dir)
    for issue in list_issues:
        log.warning("left out %s", issue)
    needs_bert = "text" in steps and any(item.lang == "zh" for item in items)
    for step in steps:
        if step != "text" or needs_bert:
            models.require(STEP_MODELS[step])
    exp.root.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(str(Path(list_path).resolve()), sha256_file(list_path),
                        {STEP_MODELS[s]: file_fingerprint(models.require(STEP_MODELS[s]))
                         for s in steps if s != "text" or needs_bert}, models.version)
    for change in manifest.changes_since(Manifest.read(exp)):
        log.warning("since the last run %s: items whose inputs changed are recomputed", change)
    reports: dict[str, StepReport] = {}
    for position, step in enumerate(steps):
        label = ", ".join([f"{STEP_LABELS[s]} done" for s in steps[:position]] + [f"{STEP_LABELS[step]} running"])

        def progress(done: int, total: int, _label: str = label) -> None:
            log.info(format_progress(done, total, _label))

        log.info("%s: %d item(s)", STEP_LABELS[step], len(items))
        report = run_step(step, exp, items, models, workers, progress)
        report.issues[:0] = list_issues
        reports[step] = report
        log.info("%s %s", STEP_LABELS[step], report.summary())
        require_items(STEP_LABELS[step], report)
    manifest.write(exp)
    write_report(exp, reports)
    return reports


def write_report(exp: ExperimentPaths, reports: dict[str, StepReport]) -> None:
    data = {step: {**asdict(report), "issues": [str(i) for i in report.issues]} for step, report in reports.items()}
    atomic_write_text(exp.root / ".prepare" / "report.json", json.dumps(data, ensure_ascii=False, indent=1))


def main(argv: list[str] | None = None, steps: tuple[str, ...] | None = None) -> int:
    args = build_parser(steps).parse_args(argv)
    setup_logging(args.log_file)
    if steps:
        chosen = list(steps)
    elif args.steps is None:
        chosen = list(version_spec(args.version).prepare_steps)
    else:
        chosen = [s.strip() for s in args.steps.split(",") if s.strip()]
    try:
        check_steps(chosen, args.version)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    try:
        workers = parse_workers(args.gpus, args.workers, args.device, args.half)
        run(ExperimentPaths(args.exp_dir), args.list_path, args.audio_dir, chosen, model_paths(args), workers)
    except (EmptyDatasetError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    log.info("formatting finished: %s", args.exp_dir)
    return 0
