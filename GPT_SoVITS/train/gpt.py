"""GPT (text-to-semantic) fine-tuning: ``python -m GPT_SoVITS.train.gpt --config <exp>/gpt_train.yaml``.

Upstream behaviour kept: ScaledAdam at a constant LR of 0.002 (upstream computes a warmup-cosine schedule and
then overrides it), one optimizer step per 4 batches, summed cross-entropy, optional DPO loss, batch size
halved with DPO and capped at a quarter of the dataset, small datasets repeated to ~100 items, release files
``GPT_weights_v2/<exp>-e<E>.ckpt``. Changed: refuses to start without pretrained weights (unless
``runtime.from_scratch``), saves after the last epoch too, resumes inside an epoch, reports data filters.
Several GPUs or machines: run it under ``torchrun`` (see docs/training.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
from functools import partial
from pathlib import Path

import torch
from torch import nn

from GPT_SoVITS.checkpoints import (
    CheckpointError,
    describe_pretrained,
    read_weights,
    save_gpt_weights,
    save_train_state,
    train_state_path,
)
from GPT_SoVITS.config import ConfigError, to_dict
from GPT_SoVITS.models.t2s import T2SConfig, T2SLoss, Text2SemanticDecoder
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.text.symbols import symbol_version, symbols
from GPT_SoVITS.train import distributed as dist_utils
from GPT_SoVITS.train.config import GPTOptimizerConfig, GPTRunConfig
from GPT_SoVITS.train.data import GPTBatch, GPTDataset, collate_gpt
from GPT_SoVITS.train.distributed import DistInfo
from GPT_SoVITS.train.loop import (
    RELEASE_KEY,
    EpochTrainer,
    Position,
    PretrainedWeightsError,
    ShieldedLoader,
    StopRequest,
    TrainResult,
    check_not_done,
    find_resume_state,
    hint_upstream_states,
    load_matching,
    load_state_strict,
    log_resume,
    position_of,
    require_good_fit,
    rotate,
    start_training,
    tensorboard_writer,
    trainer_main,
    trainer_parser,
    write_promised_release,
)
from GPT_SoVITS.train.optim import ScaledAdam
from GPT_SoVITS.train.samplers import BucketBatchSampler, uniform_boundaries

log = logging.getLogger(__name__)

STATE_KIND = "t2s"


def lr_at(step: int, opt: GPTOptimizerConfig) -> float:
    """Learning rate after ``step`` optimizer steps."""
    if opt.schedule == "constant":
        return opt.constant_lr
    if opt.schedule != "warmup_cosine":
        raise ConfigError(f"optimizer.schedule must be constant or warmup_cosine, got {opt.schedule!r}")
    if step < opt.warmup_steps:
        return opt.lr_init + (opt.lr - opt.lr_init) * step / max(1, opt.warmup_steps)
    if step > opt.warmup_steps + opt.decay_steps:
        return opt.lr_end
    ratio = (step - opt.warmup_steps) / max(1, opt.decay_steps)
    return opt.lr_end + 0.5 * (opt.lr - opt.lr_end) * (1 + math.cos(math.pi * ratio))


def build_optimizer(model: nn.Module, opt: GPTOptimizerConfig) -> tuple[torch.optim.Optimizer,
                                                                           torch.optim.lr_scheduler.LambdaLR]:
    base = lr_at(0, opt) if opt.schedule == "constant" else opt.lr
    if opt.name == "scaled_adam":
        optimizer: torch.optim.Optimizer = ScaledAdam(model.parameters(), lr=base, betas=opt.betas,
                                                      clipping_scale=opt.clipping_scale,
                                                      clipping_update_period=opt.clipping_update_period)
    elif opt.name == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=base, betas=opt.betas, weight_decay=opt.weight_decay)
    else:
        raise ConfigError(f"optimizer.name must be scaled_adam or adamw, got {opt.name!r}")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_at(step, opt) / base)
    return optimizer, scheduler


def _state_config(cfg: GPTRunConfig, model_cfg: T2SConfig) -> dict:
    return {"run": to_dict(cfg), "model": to_dict(model_cfg), "version": cfg.version}


def write_release(cfg: GPTRunConfig, model_cfg: T2SConfig, state_dict: dict[str, torch.Tensor], epoch: int,
                  target: Path | None = None) -> Path:
    """The ``GPT_weights*/<name>-e<epoch>.ckpt`` release file of these weights."""
    target = target or Path(cfg.weights_dir) / cfg.release_name(epoch)
    return save_gpt_weights(target, state_dict, cfg.upstream_config(model_cfg), epoch)


def init_model(cfg: GPTRunConfig, is_main: bool = True) -> tuple[Text2SemanticDecoder, T2SConfig, object | None]:
    """Resume state if any, else pretrained (or release) weights; refuses random weights unless asked.

    Returns the model, its config and the training state to continue (or None). On rank 0 (``is_main``) a release
    file the newest state promised but a kill prevented is written first, even when no epoch is left to train.
    """
    found = find_resume_state(cfg.state_dir, STATE_KIND)
    if found is not None:
        path, state = found
        model_cfg = T2SConfig(**state.config["model"])
        if is_main:
            write_promised_release(state, path, cfg,
                                   lambda target: write_release(cfg, model_cfg, state.model, state.epoch, target))
        check_not_done(position_of(state), cfg.train.epochs, "GPT training", path)
        model = Text2SemanticDecoder(model_cfg)
        load_state_strict(model, state.model, path)
        log_resume(path, position_of(state))
        return model, model_cfg, state
    if cfg.init_weights is None:
        hint_upstream_states(cfg.state_dir / "ckpt", "epoch=*.ckpt")
    source = cfg.init_weights or cfg.pretrained
    try:
        if source is None:
            raise FileNotFoundError("no pretrained GPT file is configured (pretrained: <path to s1bert25hz-*.ckpt>)")
        if not Path(source).exists():
            raise FileNotFoundError(describe_pretrained(Path(source)))
        loaded = read_weights(Path(source), expect="gpt")
    except (FileNotFoundError, CheckpointError) as exc:
        if not cfg.runtime.from_scratch:
            raise PretrainedWeightsError(f"GPT training refused to start: {exc} Training from random weights "
                                         "produces noise; set runtime.from_scratch: true only if that is what "
                                         "you want.") from None
        model_cfg = cfg.model or T2SConfig()
        log.warning("training the GPT FROM SCRATCH (random weights), as requested: %s", exc)
        return Text2SemanticDecoder(model_cfg), model_cfg, None
    model_cfg = cfg.model or T2SConfig.from_upstream(loaded.config)
    model = Text2SemanticDecoder(model_cfg)
    report = load_matching(model, loaded.state_dict)
    require_good_fit(report, "GPT weights", Path(source))
    log.info("loaded GPT weights %s (%s): %s", source, loaded.info or loaded.container, report.summary())
    return model, model_cfg, None


def _batch_size(cfg: GPTRunConfig, n_items: int) -> int:
    bs = max(1, cfg.train.batch_size // 2) if cfg.train.dpo else cfg.train.batch_size
    return max(min(bs, n_items // 4), 1)  # as upstream: at most a quarter of the dataset


class GPTTrainer(EpochTrainer):
    """One rank's training run; :func:`train` drives it (epoch loop: :meth:`EpochTrainer.fit`)."""

    cfg: GPTRunConfig

    def __init__(self, cfg: GPTRunConfig, info: DistInfo, device: torch.device, stop: StopRequest) -> None:
        self._start(cfg, info, device, stop)
        model, self.model_cfg, state = init_model(cfg, info.is_main)
        self.raw_model = model.to(device)
        self.model: nn.Module = T2STrainWrapper(self.raw_model, cfg.train.dpo, cfg.train.dpo_beta)
        if info.distributed:
            self.model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer, self.scheduler = build_optimizer(self.raw_model, cfg.optimizer)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision.uses_scaler)
        self.pos = Position()
        if state is not None:
            self.optimizer.load_state_dict(state.optimizer)
            self.scheduler.load_state_dict(state.scheduler)
            if state.scaler:
                self.scaler.load_state_dict(state.scaler)
            if "rng" in state.extra:
                torch.set_rng_state(state.extra["rng"])
            self.pos = position_of(state)
        exp = ExperimentPaths(Path(cfg.exp_dir))
        # the phone table follows the model: a v1 GPT (512 phone ids) reads the v1 table whatever cfg.version says
        version = "v1" if self.model_cfg.phoneme_vocab_size < len(symbols("v2")) else "v2"
        if version != symbol_version(cfg.version):
            log.warning("the GPT model has a %s phone table but the config says version %s; using %s phone ids",
                        version, cfg.version, version)
        self.dataset = GPTDataset(exp, version, cfg.data.max_sec, cfg.data.min_phones_per_sec,
                                  cfg.data.max_phones_per_sec, cfg.data.min_items)
        log.info("GPT dataset: %s", self.dataset.report.summary())
        bs = _batch_size(cfg, len(self.dataset))
        width = int(cfg.data.bucket_seconds * 25)
        self.sampler = BucketBatchSampler(self.dataset.lengths, uniform_boundaries(max(self.dataset.lengths), width),
                                          bs, info.rank, info.world_size, cfg.train.seed)
        log.info("batch size %d per process × %d process(es), optimizer step every %d batch(es); %d batches per "
                 "epoch", bs, info.world_size, cfg.train.grad_accum, self.sampler.batches_per_epoch())
        self.tb = tensorboard_writer(Path(cfg.exp_dir) / "tb" / "gpt", info.is_main)
        self.result = TrainResult(self.pos)

    def loader(self, epoch: int, skip: int) -> ShieldedLoader:
        return self._epoch_loader(epoch, skip, partial(collate_gpt, pad_code=self.model_cfg.eos))

    def loss(self, batch: GPTBatch) -> tuple[torch.Tensor, float]:
        with self.precision.autocast(self.device.type):
            result = self.model(batch)
        return result.loss, result.top3_acc

    def optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def run_epoch(self, epoch: int) -> bool:
        """Train epoch ``epoch`` (1-based) from ``pos.batches_done``; False if a stop cut it short."""
        cfg, accum = self.cfg, self.cfg.train.grad_accum
        per_epoch = self.sampler.batches_per_epoch()
        start = self.pos.batches_done
        pending: list[tuple[float, float]] = []
        self.model.train()
        for i, batch in enumerate(self.loader(epoch, start), start=start):
            batch = batch.to(self.device)
            step_now = (i + 1) % accum == 0 or i + 1 == per_epoch
            sync = self.model.no_sync() if self.info.distributed and not step_now else contextlib.nullcontext()
            with sync:
                loss, acc = self.loss(batch)
                self.scaler.scale(loss).backward()
            pending.append((float(loss.detach()), acc))
            if not step_now:
                continue
            self.optimizer_step()
            step = self.pos.step + 1
            self.pos = Position(step, self.pos.epochs_done, i + 1)
            mean_loss = sum(p[0] for p in pending) / len(pending)
            self.result.losses.append(mean_loss)
            if step % cfg.runtime.log_every_n_steps == 0 or i + 1 == per_epoch:
                self._log(epoch, step, mean_loss, sum(p[1] for p in pending) / len(pending), i + 1, per_epoch)
            pending = []
            if self._stop_agreed(step) and i + 1 < per_epoch:
                return False
        self.pos = Position(self.pos.step, epoch, 0)
        return True

    def _log(self, epoch: int, step: int, loss: float, acc: float, done_in_epoch: int, per_epoch: int) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self._log_step(epoch, step, {"loss": loss, "top3_acc": acc, "lr": lr}, done_in_epoch, per_epoch)
        if self.tb is not None:
            self.tb.add_scalar("gpt/total_loss", loss, step)
            self.tb.add_scalar("gpt/top_3_acc", acc, step)
            self.tb.add_scalar("gpt/lr", lr, step)

    def save(self, release: bool) -> None:
        """Training state (always) and, if asked, a release file; rank 0 writes, every rank waits."""
        cfg, pos = self.cfg, self.pos
        if self.info.is_main:
            # the state names its release file, so a start after a kill between the two writes the missing release
            path = save_train_state(
                train_state_path(cfg.state_dir, STATE_KIND, pos.step), kind=STATE_KIND,
                model=self.raw_model.state_dict(), step=pos.step, epoch=pos.epochs_done,
                config=_state_config(cfg, self.model_cfg), optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(), scaler=self.scaler.state_dict(),
                extra={"batches_done": pos.batches_done, "rng": torch.get_rng_state(),
                       RELEASE_KEY: cfg.release_name(pos.epochs_done) if release else None})
            self.result.state_files.append(path)
            rotate(cfg.state_dir, [STATE_KIND], cfg.save.latest_only, cfg.save.keep_last_n)
            if release:
                self.result.release_files.append(
                    write_release(cfg, self.model_cfg, self.raw_model.state_dict(), pos.epochs_done))
        dist_utils.barrier()


class T2STrainWrapper(nn.Module):
    """Puts the plain or DPO loss behind ``forward`` (what DDP wraps), under upstream's ``model.`` key prefix."""

    def __init__(self, model: Text2SemanticDecoder, dpo: bool, dpo_beta: float) -> None:
        super().__init__()
        self.model, self.dpo, self.dpo_beta = model, dpo, dpo_beta

    def forward(self, batch: GPTBatch) -> T2SLoss:
        args = (batch.phones, batch.phone_lengths, batch.bert, batch.codes, batch.code_lengths)
        if self.dpo:
            return self.model.forward_dpo(*args, beta=self.dpo_beta)
        return self.model(*args)


def train(cfg: GPTRunConfig, info: DistInfo = DistInfo(), stop: StopRequest | None = None) -> TrainResult:
    """Run (or continue) GPT fine-tuning for ``cfg``; see the module docstring."""
    return start_training(GPTTrainer, cfg, info, stop)


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser("python -m GPT_SoVITS.train.gpt", __doc__.split("\n")[0], GPTRunConfig, "train_gpt.log")


def main(argv: list[str] | None = None) -> int:
    return trainer_main(build_parser().parse_args(argv), config_cls=GPTRunConfig, trainer_cls=GPTTrainer,
                        what="GPT training", log_name="train_gpt.log")


if __name__ == "__main__":
    raise SystemExit(main())
