"""Pieces both trainers share: stop requests, resume bookkeeping, weight loading reports, progress lines.

Progress lines
--------------
Each logged step writes ``TRAIN epoch=E step=S loss=L key=value ...`` (parsed by :func:`parse_train_line` for
the launcher's loss plot) and a ``PROGRESS done/total epoch E/N`` line (parsed by the job runner for its bar).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from GPT_SoVITS import oscompat
from GPT_SoVITS.checkpoints import TrainState, latest_train_state, load_train_state, rotate_train_states
from GPT_SoVITS.fileio import remove_leftover_temps
from GPT_SoVITS.logs import format_progress
from GPT_SoVITS.train.precision import PrecisionChoice, precision_for_device

log = logging.getLogger(__name__)

_TRAIN_RE = re.compile(r"TRAIN epoch=(\d+) step=(\d+) ((?:\w+=[-+0-9.eE]+(?:nan|inf)? ?)+)")


class PretrainedWeightsError(RuntimeError):
    """Pretrained weights are missing or do not fit, and training from scratch was not asked for."""


class AlreadyDoneError(RuntimeError):
    """The requested number of epochs is already trained."""


class StopRequest:
    """A request to stop: the loop saves its state and leaves after the current optimizer step.

    It comes as a signal (:data:`STOP_SIGNALS`: the launcher's stop button on POSIX, Ctrl+C) or, where the
    launcher cannot send a catchable signal (Windows, see :mod:`GPT_SoVITS.oscompat`), as a stop file that appears.
    """

    def __init__(self, stop_file: Path | None = None) -> None:
        self._event = threading.Event()
        self.stop_file = stop_file

    def install(self) -> None:
        """Route the stop signals here (call from the entry point's main thread)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: Any) -> None:
        log.warning("received signal %d: stopping after the current batch and saving the training state", signum)
        self._event.set()

    def set(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        if not self._event.is_set() and self.stop_file is not None and self.stop_file.exists():
            log.warning("stop requested (%s exists): stopping after the current batch and saving the training state",
                        self.stop_file)
            self._event.set()
        return self._event.is_set()


STOP_SIGNALS = oscompat.STOP_SIGNALS


def ignore_stop_signals(_worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: workers ignore the stop signals.

    The launcher's stop button signals the whole process tree on POSIX; if the workers died with it, the main
    process would crash on its next batch instead of saving its state. Workers exit by themselves when the main
    process has gone. A worker is born with these signals blocked (:class:`ShieldedLoader`); one that arrived
    before this point is discarded here, when the signal becomes ignored, instead of killing the worker. On
    Windows this covers Ctrl+C / Ctrl+Break typed in the console; the launcher's stop file never reaches workers.
    """
    oscompat.ignore_signals(STOP_SIGNALS)


class ShieldedLoader:
    """A DataLoader whose worker processes start with the stop signals blocked (POSIX).

    Without this, a stop that lands while an epoch's workers are being forked (before their ``worker_init_fn``
    runs) kills a worker, and the trainer dies with "DataLoader worker is killed by signal" instead of saving
    its state. The main process handles a signal that arrived meanwhile as soon as the workers exist. Windows has
    no signal masks (:func:`GPT_SoVITS.oscompat.signals_blocked` does nothing there) and needs none: the launcher
    stops trainers through a stop file, which workers never see.
    """

    def __init__(self, loader: torch.utils.data.DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        with oscompat.signals_blocked(STOP_SIGNALS):
            return iter(self.loader)


@dataclass(frozen=True)
class Position:
    """How far training got: optimizer steps, completed epochs, and batches done inside the next epoch."""

    step: int = 0
    epochs_done: int = 0
    batches_done: int = 0


def position_of(state: TrainState) -> Position:
    return Position(state.step, state.epoch, int(state.extra.get("batches_done", 0)))


#: key in a training state's ``extra``: the release file name written right after that state (None: no release)
RELEASE_KEY = "release"


def promised_release(state: TrainState, cfg: Any) -> str | None:
    """The release file name ``state`` was saved with, or None if no release belongs to it.

    States record it (:data:`RELEASE_KEY`); for states written before they did, a state at the end of an epoch
    that is a save point of ``cfg`` (with ``release_weights`` on) is taken to have one.
    """
    if RELEASE_KEY in state.extra:
        return state.extra[RELEASE_KEY] or None
    pos = position_of(state)
    if pos.batches_done == 0 and pos.epochs_done > 0 and cfg.save.release_weights and \
            save_points(pos.epochs_done, cfg.train.epochs, cfg.save.every_n_epochs):
        return cfg.release_name(pos.epochs_done, pos.step)
    return None


def write_promised_release(state: TrainState, path: Path, cfg: Any, write: Callable[[Path], Path]) -> Path | None:
    """Write the release file the newest training state promised if it is missing, and say so.

    A run killed between its state save and its release write resumes past that save point; without this the
    release of that epoch would never appear (or, after the last epoch, "already trained" would be all it says).
    ``write(target)`` writes the release from the state's weights.
    """
    name = promised_release(state, cfg)
    if name is None:
        return None
    target = Path(cfg.weights_dir) / name
    if target.exists():
        return None
    log.warning("training state %s was saved but its release file %s is missing (the run was stopped in "
                "between); writing it now from that state", path.name, target)
    return write(target)


def clean_leftovers(folders: Iterable[Path]) -> list[Path]:
    """Remove the temp files an earlier, killed run left in the folders this job writes; report each one."""
    removed = remove_leftover_temps(folders)
    for path in removed:
        log.warning("removed %s, an unfinished file from an earlier run that was killed while saving", path)
    return removed


def check_not_done(pos: Position, epochs: int, what: str, state_file: Path | None) -> None:
    """Raise :class:`AlreadyDoneError` with a plain message when nothing is left to train.

    A state a few batches into the epoch after the last one asked for (a stop landed just after an epoch ended)
    also has nothing left: the run would end at once without a release.
    """
    if pos.epochs_done >= epochs:
        raise AlreadyDoneError(
            f"{what}: nothing to do, {pos.epochs_done} of {epochs} epoch(s) are already trained (training state "
            f"{state_file}). Raise the number of epochs to continue training, or use a new experiment name to "
            "start over.")


def load_state_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path: Path) -> None:
    """Load a training state's weights; a mismatch (changed model or discriminator config) is a clear error."""
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        from GPT_SoVITS.checkpoints import CheckpointError

        raise CheckpointError(f"{path}: this training state does not fit the configured model "
                              f"({str(exc).splitlines()[0]}). Restore the run config it was trained with, or "
                              "move its folder away to start over.") from None


def find_resume_state(folder: Path, kind: str) -> tuple[Path, TrainState] | None:
    """The newest readable training state of ``kind`` in ``folder`` (or None)."""
    path = latest_train_state(folder, kind)
    if path is None:
        return None
    return path, load_train_state(path)


def hint_upstream_states(folder: Path, pattern: str) -> None:
    """Upstream's own resume files are not resumed from (another format); say how to use their weights."""
    found = sorted(Path(folder).glob(pattern)) if Path(folder).is_dir() else []
    if found:
        log.warning("found upstream training files (%s, ...) in %s; they are not resumed automatically. To continue "
                    "from their weights (without optimizer state) set init_weights to one of them.", found[-1].name,
                    folder)


@dataclass(frozen=True)
class LoadReport:
    """How well a state dict fitted a model."""

    matched: int
    total: int
    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    mismatched: tuple[str, ...]

    def summary(self) -> str:
        text = f"{self.matched}/{self.total} keys matched"
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                            ("shape mismatch", self.mismatched)):
            if keys:
                text += f", {len(keys)} {label} (e.g. {keys[0]})"
        return text


def load_matching(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                  ignore_missing: Iterable[str] = ()) -> LoadReport:
    """Copy every key whose name and shape match; report the rest (upstream's lenient load, made visible)."""
    own = model.state_dict()
    prefixes = tuple(ignore_missing)
    usable = {k: v for k, v in state_dict.items() if k in own and own[k].shape == v.shape}
    mismatched = tuple(k for k, v in state_dict.items() if k in own and own[k].shape != v.shape)
    unexpected = tuple(k for k in state_dict if k not in own)
    missing = tuple(k for k in own if k not in state_dict and not (prefixes and k.startswith(prefixes)))
    model.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in usable.items()}}, strict=True)
    return LoadReport(len(usable), len(own), missing, unexpected, mismatched)


def require_good_fit(report: LoadReport, what: str, path: Path) -> None:
    """Refuse weights that leave the model partly random (missing/mismatched keys)."""
    if report.matched == 0 or report.missing or report.mismatched:
        raise PretrainedWeightsError(
            f"{what} {path} does not fit the model ({report.summary()}); pick the file of the same model "
            "version, or set runtime.from_scratch: true to train from random weights on purpose.")


def save_points(epoch: int, total_epochs: int, every: int) -> bool:
    """Save after every ``every``-th epoch and always after the last one (upstream skips the last otherwise)."""
    return epoch % every == 0 or epoch == total_epochs


def rotate(folder: Path, kinds: Iterable[str], latest_only: bool, keep_last_n: int) -> None:
    keep = 1 if latest_only else keep_last_n
    if keep >= 1:
        for kind in kinds:
            for old in rotate_train_states(folder, kind, keep):
                log.info("removed old training state %s", old.name)


def log_step(epoch: int, step: int, values: Mapping[str, float], done: int, total: int, epochs: int) -> None:
    """One loss line for the plot and one progress line for the bar."""
    fields = " ".join(f"{k}={v:.5g}" for k, v in values.items())
    log.info("TRAIN epoch=%d step=%d %s", epoch, step, fields)
    log.info(format_progress(done, total, f"epoch {epoch}/{epochs}"))


def parse_train_line(line: str) -> tuple[int, int, dict[str, float]] | None:
    """``(epoch, step, {name: value})`` from a ``TRAIN`` log line, else None."""
    m = _TRAIN_RE.search(line)
    if not m:
        return None
    values = {}
    for pair in m.group(3).split():
        key, _, value = pair.partition("=")
        try:
            values[key] = float(value)
        except ValueError:
            continue
    return int(m.group(1)), int(m.group(2)), values


def tensorboard_writer(folder: Path, enabled: bool) -> Any:
    """A SummaryWriter on rank 0 (None elsewhere or if tensorboard is missing)."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional at run time
        log.warning("tensorboard is not installed: no TensorBoard logs")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return SummaryWriter(log_dir=str(folder))


def run_cli(what: str, train_fn: Callable[[], Any]) -> int:
    """Run a trainer from its entry point: plain messages and exit code 1 for errors a user can fix.

    Unexpected exceptions propagate with their traceback (a bug report needs it).
    """
    from GPT_SoVITS.checkpoints import CheckpointError
    from GPT_SoVITS.config import ConfigError
    from GPT_SoVITS.train import distributed
    from GPT_SoVITS.train.data import DatasetError
    from GPT_SoVITS.train.precision import PrecisionError

    try:
        result = train_fn()
    except AlreadyDoneError as exc:
        log.info("%s", exc)
        return 0
    except (PretrainedWeightsError, ConfigError, CheckpointError, FileNotFoundError, DatasetError,
            PrecisionError) as exc:
        log.error("%s", exc)
        return 1
    except torch.OutOfMemoryError:
        log.error("%s ran out of memory: lower the batch size per GPU (and raise gradient accumulation to keep "
                  "the effective batch), or slice long clips shorter.", what)
        return 1
    finally:
        distributed.shutdown()
    pos = result.position
    log.info("%s %s at step %d (%d epoch(s) done)%s", what, "stopped" if result.stopped else "finished",
             pos.step, pos.epochs_done,
             "; release files: " + ", ".join(map(str, result.release_files)) if result.release_files else "")
    return 0


def start_training(trainer_cls: Callable[..., Any], cfg: Any, info: Any = None, stop: StopRequest | None = None
                   ) -> Any:
    """Pick the device, set up torch.distributed when launched by torchrun, and run ``trainer_cls(...).fit()``."""
    from GPT_SoVITS.train import distributed
    from GPT_SoVITS.train.precision import allow_tf32

    info = info or distributed.DistInfo()
    device = distributed.select_device(cfg.runtime.device, info)
    allow_tf32(device)
    distributed.init(info, device)
    return trainer_cls(cfg, info, device, stop or StopRequest()).fit()


def trainer_parser(prog: str, description: str, config_cls: type, log_name: str) -> argparse.ArgumentParser:
    """The trainers' shared command line: ``--config run.yaml [--log-file F]``."""
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", type=Path, required=True, help=f"run config YAML ({config_cls.__name__})")
    parser.add_argument("--log-file", type=Path, default=None,
                        help=f"also log here (default: <exp_dir>/logs/{log_name})")
    parser.add_argument("--stop-file", type=Path, default=None,
                        help="save the training state and stop when this file appears (the launcher's stop button "
                             "on Windows, where a running process cannot catch a signal sent to it)")
    return parser


def trainer_main(args: argparse.Namespace, *, config_cls: type, trainer_cls: type, what: str, log_name: str) -> int:
    """Load the run config, set up logging (rank 0 only), install the stop handler and train."""
    from GPT_SoVITS.config import ConfigError, load_config
    from GPT_SoVITS.logs import setup_logging
    from GPT_SoVITS.train.distributed import DistInfo

    info = DistInfo.from_env(os.environ)
    try:
        cfg = load_config(config_cls, args.config)
    except ConfigError as exc:
        setup_logging(None)
        log.error("%s", exc)
        return 2
    log_file = (args.log_file or Path(cfg.exp_dir) / "logs" / log_name) if info.is_main else None
    setup_logging(log_file, logging.INFO if info.is_main else logging.WARNING)
    stop = StopRequest(getattr(args, "stop_file", None))
    stop.install()
    return run_cli(what, lambda: start_training(trainer_cls, cfg, info, stop))


@dataclass
class TrainResult:
    """What a run did (returned by ``train``; the CLI only logs it)."""

    position: Position
    stopped: bool = False  # left early (stop request or max_steps); state saved
    losses: list[Any] = field(default_factory=list)  # per optimizer step, this run only (GPT: float, SoVITS: dict)
    release_files: list[Path] = field(default_factory=list)
    state_files: list[Path] = field(default_factory=list)


def log_resume(path: Path, pos: Position) -> None:
    log.info("resuming from %s: step %d, %d epoch(s) done%s", path, pos.step, pos.epochs_done,
             f", {pos.batches_done} batch(es) into the next" if pos.batches_done else "")


class EpochTrainer:
    """The run set-up and epoch loop both trainers share.

    A subclass calls :meth:`_start` first in its ``__init__``, then sets ``pos``, ``dataset``, ``sampler``, ``tb``
    and ``result``, and provides ``run_epoch(epoch) -> bool`` (False: a stop cut the epoch short) and
    ``save(release)``.
    """

    cfg: Any
    info: Any  # distributed.DistInfo
    pos: Position
    result: TrainResult
    tb: Any

    def _start(self, cfg: Any, info: Any, device: torch.device, stop: StopRequest) -> None:
        """Validate the shared config sections, seed this rank and pick the precision."""
        from GPT_SoVITS.train.config import validate_common

        self.cfg, self.info, self.device, self.stop = cfg, info, device, stop
        validate_common(cfg.save, cfg.runtime, cfg.train.epochs, cfg.train.batch_size, cfg.train.grad_accum)
        if info.is_main:
            clean_leftovers([cfg.state_dir, cfg.weights_dir])
        seed_everything(cfg.train.seed + info.rank)
        self.precision: PrecisionChoice = precision_for_device(device, cfg.runtime.precision)
        log.info("precision: %s (%s)", self.precision.name, self.precision.reason)

    def run_epoch(self, epoch: int) -> bool:
        raise NotImplementedError

    def save(self, release: bool) -> None:
        raise NotImplementedError

    def _epoch_loader(self, epoch: int, skip: int, collate_fn: Callable[..., Any]) -> ShieldedLoader:
        self.sampler.set_epoch(epoch, skip)
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=self.sampler, collate_fn=collate_fn,
                                             num_workers=self.cfg.runtime.num_workers,
                                             pin_memory=self.device.type == "cuda",
                                             worker_init_fn=ignore_stop_signals,
                                             generator=torch.Generator())  # leaves the global RNG alone (resume)
        return ShieldedLoader(loader)

    def _log_step(self, epoch: int, step: int, values: Mapping[str, float], done_in_epoch: int,
                  per_epoch: int) -> None:
        """On rank 0: the loss line and the progress line over the whole run (:func:`log_step`)."""
        if self.info.is_main:
            epochs = self.cfg.train.epochs
            log_step(epoch, step, values, (epoch - 1) * per_epoch + done_in_epoch, epochs * per_epoch, epochs)

    def _stop_agreed(self, step: int) -> bool:
        """A stop request or ``max_steps`` reached on any rank (every rank must take the same decision)."""
        from GPT_SoVITS.train import distributed

        limit = bool(self.cfg.runtime.max_steps and step >= self.cfg.runtime.max_steps)
        return distributed.any_rank(self.stop.requested or limit, self.device)

    def fit(self) -> TrainResult:
        cfg = self.cfg
        for epoch in range(self.pos.epochs_done + 1, cfg.train.epochs + 1):
            if not self.run_epoch(epoch):
                self.save(release=False)
                log.info("stopped at step %d (epoch %d, batch %d); the training state is saved: start the same "
                         "run again to continue", self.pos.step, epoch, self.pos.batches_done)
                self.result.stopped = True
                break
            saved = save_points(epoch, cfg.train.epochs, cfg.save.every_n_epochs)
            if saved:
                self.save(release=cfg.save.release_weights)
            # every rank must take the same decision (a rank leaving alone would hang the others)
            if self._stop_agreed(self.pos.step) and epoch < cfg.train.epochs:
                if not saved:
                    self.save(release=False)
                self.result.stopped = True
                break
        self.result.position = self.pos
        if self.tb is not None:
            self.tb.close()
        return self.result


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
