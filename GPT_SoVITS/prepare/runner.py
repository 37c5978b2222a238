"""Run a formatting step over the dataset: reuse what is done, shard the rest over worker processes, merge.

Each worker builds its own processor (models load in the worker), handles ``items[index::count]`` of the
items still to do, and appends one journal record per item. The parent then writes the step's merged output
(upstream's file format) from the journals, in list order, atomically.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
from dataclasses import dataclass
from pathlib import Path

from GPT_SoVITS.fileio import atomic_write_text
from GPT_SoVITS.logs import ProgressCallback
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.prepare.common import (
    EmptyDatasetError,
    Issue,
    Item,
    Journal,
    Shard,
    StepReport,
    all_journal_records,
    journal_path,
)
from GPT_SoVITS.prepare.steps import ItemFailed, ModelPaths, Processor, build_processor

log = logging.getLogger(__name__)

SEMANTIC_HEADER = "item_name\tsemantic_audio"


@dataclass(frozen=True)
class Worker:
    """Where one worker runs: a torch device (``cpu``, ``cuda:0``...) and whether it may use float16."""

    device: str = "cpu"
    half: bool = False


def process_items(processor: Processor, items: list[Item], journal: Journal,
                  progress: ProgressCallback | None = None) -> StepReport:
    """Process ``items`` one by one, journaling each result or failure; a failing item never stops the rest."""
    report = StepReport(processor.step)
    for done, item in enumerate(items, start=1):
        key = processor.key(item)
        try:
            record = {"name": item.name, "key": key, **processor.process(item)}
            report.done += 1
        except ItemFailed as exc:
            record = {"name": item.name, "key": key, "issue": str(exc)}
            report.issues.append(Issue(item.name, str(exc)))
            log.warning("%s left out of %s: %s", item.name, processor.step, exc)
        journal.append([record])
        if progress:
            progress(done, len(items))
    return report


def _worker_main(step: str, exp_root: str, models: ModelPaths, worker: Worker, items: list[Item], shard: Shard,
                 updates: mp.Queue) -> None:
    exp = ExperimentPaths(Path(exp_root))
    processor = build_processor(step, exp, models, worker.device, worker.half)
    journal = Journal(journal_path(exp, step, shard))
    report = process_items(processor, shard.select(items), journal,
                           progress=lambda done, total: updates.put(("progress", shard.index, done)))
    updates.put(("done", shard.index, report))


def _run_workers(step: str, exp: ExperimentPaths, models: ModelPaths, workers: list[Worker], todo: list[Item],
                 progress: ProgressCallback | None) -> StepReport:
    report = StepReport(step)
    context = mp.get_context("spawn")  # CUDA and many BLAS builds are not fork-safe
    updates: mp.Queue = context.Queue()
    count = len(workers)
    procs = [context.Process(target=_worker_main, name=f"{step}-worker-{i}",
                             args=(step, str(exp.root), models, worker, todo, Shard(i, count), updates))
             for i, worker in enumerate(workers)]
    for proc in procs:
        proc.start()
    done_per_shard = [0] * count
    finished: set[int] = set()
    try:
        while len(finished) < count:
            try:
                kind, index, payload = updates.get(timeout=1.0)
            except queue.Empty:
                dead = [i for i, p in enumerate(procs) if i not in finished and not p.is_alive()]
                if dead:
                    raise RuntimeError(f"{step} worker(s) {dead} died (exit codes "
                                       f"{[procs[i].exitcode for i in dead]}); see the log above.") from None
                continue
            if kind == "progress":
                done_per_shard[index] = payload
                if progress:
                    progress(sum(done_per_shard), len(todo))
            else:
                finished.add(index)
                report.merge(payload)
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
    return report


def run_step(step: str, exp: ExperimentPaths, items: list[Item], models: ModelPaths,
             workers: list[Worker] | None = None, progress: ProgressCallback | None = None) -> StepReport:
    """Bring ``step`` up to date for ``items``; returns what was computed, reused and left out."""
    workers = workers or [Worker()]
    # processors load their models lazily, so building one here only to compute item keys is cheap
    processor = build_processor(step, exp, models, workers[0].device, workers[0].half)
    previous = all_journal_records(exp, step)
    todo, report = [], StepReport(step)
    for item in items:
        record = previous.get(item.name)
        if record and record.get("key") == processor.key(item) and "issue" not in record \
                and processor.outputs_exist(item):
            report.reused += 1
        else:
            todo.append(item)
    if report.reused:
        log.info("%s: %d item(s) already done with the same inputs, %d to do", step, report.reused, len(todo))
    if todo:
        if len(workers) == 1 or len(todo) == 1:
            journal = Journal(journal_path(exp, step, Shard()))
            report.merge(process_items(processor, todo, journal, progress))
        else:
            report.merge(_run_workers(step, exp, models, workers[: len(todo)], todo, progress))
    write_merged_output(step, exp, items)
    return report


def write_merged_output(step: str, exp: ExperimentPaths, items: list[Item]) -> Path | None:
    """Write the step's upstream-format output from the journals, for the current items in list order."""
    records = all_journal_records(exp, step)
    good = [records[item.name] for item in items if item.name in records and "issue" not in records[item.name]]
    if step == "text":
        lines = [f"{r['name']}\t{' '.join(r['phones'])}\t{r['word2ph']}\t{r['norm_text']}\n" for r in good]
        target = exp.name2text
    elif step == "semantic":
        lines = [SEMANTIC_HEADER + "\n"] + [f"{r['name']}\t{' '.join(map(str, r['codes']))}\n" for r in good]
        target = exp.name2semantic
    else:
        return None
    atomic_write_text(target, "".join(lines))
    return target


def require_items(step: str, report: StepReport) -> None:
    """An empty result is a failure that says what to fix (upstream crashes much later in training)."""
    if report.usable == 0:
        reasons = "; ".join(str(issue) for issue in report.issues[:5]) or "the label list has no usable line"
        raise EmptyDatasetError(f"{step}: no usable item. First problems: {reasons}. Fix the label list or the "
                                f"audio files and run the step again.")
