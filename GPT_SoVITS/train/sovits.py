"""SoVITS fine-tuning (GAN): ``python -m GPT_SoVITS.train.sovits --config <exp>/sovits_train.yaml``.

Upstream behaviour kept (spec §7.2): generator + multi-period discriminator, LSGAN + feature matching + mel L1
× 45 + KL × 1 + quantizer commitment loss; AdamW (0.8, 0.99, eps 1e-9) with the text modules
(``enc_p.text_embedding``, ``enc_p.encoder_text``, ``enc_p.mrte``) at ``text_low_lr_rate`` × LR; ExponentialLR
(γ 0.999875) once per epoch; frozen quantizer; bucketed batches (0.64–38 s); release files
``SoVITS_weights_<version>/<exp>_e<E>_s<S>.pth``. v2Pro/v2ProPlus add each item's speaker embedding
(``7-sv_cn``) to the style vector and train against eight discriminators (periods 17 and 23 added). Changed:
refuses to start without pretrained G/D (upstream trains from random weights silently) or with pretrained files of
another version, counts the filtered items (including those without a speaker embedding), resumes inside an epoch,
saves after the last epoch, optional gradient accumulation. Several GPUs or machines: run it under ``torchrun``
(docs/training.md).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from GPT_SoVITS.checkpoints import (
    CheckpointError,
    TrainState,
    describe_pretrained,
    list_train_states,
    load_train_state,
    read_weights,
    save_sovits_weights,
    save_train_state,
    train_state_path,
)
from GPT_SoVITS.config import from_dict, to_dict
from GPT_SoVITS.features.spectrogram import linear_to_mel, mel_spectrogram
from GPT_SoVITS.models.commons import slice_segments
from GPT_SoVITS.models.discriminator import BASE_CHANNELS, MultiPeriodDiscriminator
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.train import distributed as dist_utils
from GPT_SoVITS.train.config import SoVITSRunConfig
from GPT_SoVITS.train.data import SoVITSBatch, SoVITSDataset, collate_sovits
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
from GPT_SoVITS.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, kl_loss
from GPT_SoVITS.train.samplers import BucketBatchSampler

log = logging.getLogger(__name__)

G_KIND, D_KIND = "sovits_G", "sovits_D"
#: parameters trained at ``text_low_lr_rate`` × LR (upstream's second to fourth parameter groups)
TEXT_MODULES = ("enc_p.text_embedding.", "enc_p.encoder_text.", "enc_p.mrte.")


@dataclass
class Models:
    g: SynthesizerTrn
    d: MultiPeriodDiscriminator
    cfg: SoVITSConfig
    state_g: TrainState | None = None
    state_d: TrainState | None = None


def find_resume_pair(folder: Path) -> tuple[TrainState, TrainState, Path] | None:
    """The newest step with both a G and a D state (D is written first, so a G state implies its D)."""
    for g_path in reversed(list_train_states(folder, G_KIND)):
        d_path = folder / g_path.name.replace(G_KIND, D_KIND, 1)
        if d_path.exists():
            return load_train_state(g_path), load_train_state(d_path), g_path
        log.warning("training state %s has no matching %s; trying an older one", g_path.name, d_path.name)
    return None


def _read_pretrained(path: Path | None, kind: str, what: str):
    if path is None:
        raise FileNotFoundError(f"no pretrained {what} is configured")
    if not Path(path).exists():
        raise FileNotFoundError(describe_pretrained(Path(path)))
    return read_weights(Path(path), expect=kind)


def write_release(cfg: SoVITSRunConfig, model_cfg: SoVITSConfig, state_dict: dict[str, torch.Tensor], epoch: int,
                  step: int, target: Path | None = None) -> Path:
    """The ``SoVITS_weights*/<name>_e<epoch>_s<step>.pth`` release file of these generator weights."""
    target = target or Path(cfg.weights_dir) / cfg.release_name(epoch, step)
    return save_sovits_weights(target, state_dict, cfg.upstream_config(model_cfg), epoch, step, model_cfg.version)


def init_models(cfg: SoVITSRunConfig, is_main: bool = True) -> Models:
    """Resume state if any, else pretrained G/D (+ optional release weights); refuses random weights unless asked.

    On rank 0 (``is_main``) a release file the newest state promised but a kill prevented is written first, even
    when no epoch is left to train.
    """
    found = find_resume_pair(cfg.state_dir)
    if found is not None:
        state_g, state_d, path = found
        model_cfg = from_dict(SoVITSConfig, state_g.config["model"])
        if is_main:
            write_promised_release(state_g, path, cfg, lambda target: write_release(
                cfg, model_cfg, state_g.model, state_g.epoch, state_g.step, target))
        check_not_done(position_of(state_g), cfg.train.epochs, "SoVITS training", path)
        g, d = SynthesizerTrn(model_cfg, with_posterior=True), _discriminator(cfg, model_cfg, state_d.model)
        load_state_strict(g, state_g.model, path)
        load_state_strict(d, state_d.model, path.with_name(path.name.replace(G_KIND, D_KIND, 1)))
        log_resume(path, position_of(state_g))
        return Models(g, d, model_cfg, state_g, state_d)
    if cfg.init_weights is None:
        hint_upstream_states(cfg.state_dir, "G_*.pth")
    try:
        loaded_g = _read_pretrained(cfg.pretrained_g, "sovits", "SoVITS generator (pretrained_g: s2G*.pth)")
        loaded_d = _read_pretrained(cfg.pretrained_d, "sovits_discriminator",
                                    "SoVITS discriminator (pretrained_d: s2D*.pth)")
    except (FileNotFoundError, CheckpointError) as exc:
        if not cfg.runtime.from_scratch:
            raise PretrainedWeightsError(f"SoVITS training refused to start: {exc} Training from random weights "
                                         "produces noise; set runtime.from_scratch: true only if that is what "
                                         "you want.") from None
        model_cfg = cfg.model or SoVITSConfig.for_version(cfg.version)
        log.warning("training SoVITS FROM SCRATCH (random weights), as requested: %s", exc)
        return Models(SynthesizerTrn(model_cfg, with_posterior=True),
                      _discriminator(cfg, model_cfg), model_cfg)
    if loaded_g.version != cfg.version:
        raise PretrainedWeightsError(f"SoVITS training refused to start: the pretrained generator {cfg.pretrained_g} "
                                     f"is a {loaded_g.version} model but this run trains {cfg.version}. Pick the "
                                     f"{cfg.version} pretrained files (or the {loaded_g.version} version).")
    model_cfg = cfg.model or _config_from_file(loaded_g.config, loaded_g.version)
    g, d = SynthesizerTrn(model_cfg, with_posterior=True), _discriminator(cfg, model_cfg, loaded_d.state_dict)
    for model, loaded, what, path in ((g, loaded_g, "SoVITS generator", cfg.pretrained_g),
                                      (d, loaded_d, "SoVITS discriminator", cfg.pretrained_d)):
        report = load_matching(model, loaded.state_dict)
        require_good_fit(report, what, Path(path))
        log.info("loaded %s %s: %s", what, path, report.summary())
    if cfg.init_weights is not None:
        release = read_weights(Path(cfg.init_weights), expect="sovits")
        report = load_matching(g, release.state_dict, ignore_missing=("enc_q.",))
        require_good_fit(report, "SoVITS release weights", Path(cfg.init_weights))
        log.info("continued from release weights %s (%s): %s (enc_q from the pretrained G)", cfg.init_weights,
                 release.info, report.summary())
    return Models(g, d, model_cfg)


def _discriminator(cfg: SoVITSRunConfig, model_cfg: SoVITSConfig,
                   weights: Mapping[str, torch.Tensor] | None = None) -> MultiPeriodDiscriminator:
    """The run's discriminator: the configured (else the version's) periods, the width of ``weights`` (the
    pretrained or resumed D it is about to load; upstream's width without them)."""
    periods = cfg.discriminator_periods or model_cfg.spec.discriminator_periods
    base = MultiPeriodDiscriminator.base_channels_of(weights) if weights is not None else BASE_CHANNELS
    if base != BASE_CHANNELS:
        log.info("discriminator width from its weights: base %d channels (upstream's: %d)", base, BASE_CHANNELS)
    return MultiPeriodDiscriminator(model_cfg.use_spectral_norm, tuple(periods), base)


def _config_from_file(config: dict, version: str) -> SoVITSConfig:
    if not config.get("model"):
        return SoVITSConfig.for_version(version)
    merged = dict(config)
    merged["model"] = {**dict(config["model"]), "version": version}
    return SoVITSConfig.from_upstream(merged)


def build_optimizers(g: nn.Module, d: nn.Module, cfg: SoVITSRunConfig
                     ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    t = cfg.train
    text_params = [p for n, p in g.named_parameters() if n.startswith(TEXT_MODULES) and p.requires_grad]
    base_params = [p for n, p in g.named_parameters() if not n.startswith(TEXT_MODULES) and p.requires_grad]
    groups = [{"params": base_params, "lr": t.learning_rate},
              {"params": text_params, "lr": t.learning_rate * t.text_low_lr_rate}]
    opt_g = torch.optim.AdamW(groups, lr=t.learning_rate, betas=t.betas, eps=t.eps)
    opt_d = torch.optim.AdamW(d.parameters(), lr=t.learning_rate, betas=t.betas, eps=t.eps)
    return opt_g, opt_d


class SoVITSTrainer(EpochTrainer):
    """One rank's training run; :func:`train` drives it (epoch loop: :meth:`EpochTrainer.fit`)."""

    cfg: SoVITSRunConfig

    def __init__(self, cfg: SoVITSRunConfig, info: DistInfo, device: torch.device, stop: StopRequest) -> None:
        self._start(cfg, info, device, stop)
        models = init_models(cfg, info.is_main)
        self.model_cfg = models.cfg
        self.raw_g, self.raw_d = models.g.to(device), models.d.to(device)
        self.g: nn.Module = self.raw_g
        self.d: nn.Module = self.raw_d
        if info.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.g = nn.parallel.DistributedDataParallel(self.raw_g, device_ids=ids, find_unused_parameters=True)
            self.d = nn.parallel.DistributedDataParallel(self.raw_d, device_ids=ids)
        self.opt_g, self.opt_d = build_optimizers(self.raw_g, self.raw_d, cfg)
        self.sched_g = torch.optim.lr_scheduler.ExponentialLR(self.opt_g, cfg.train.lr_decay)
        self.sched_d = torch.optim.lr_scheduler.ExponentialLR(self.opt_d, cfg.train.lr_decay)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision.uses_scaler)
        self.pos = Position()
        if models.state_g is not None and models.state_d is not None:
            self._restore(models.state_g, models.state_d)
        self._build_data()
        self.tb = tensorboard_writer(Path(cfg.exp_dir) / "tb" / "sovits", info.is_main)
        self.result = TrainResult(self.pos)

    def _restore(self, state_g: TrainState, state_d: TrainState) -> None:
        self.opt_g.load_state_dict(state_g.optimizer)
        self.opt_d.load_state_dict(state_d.optimizer)
        self.sched_g.load_state_dict(state_g.scheduler)
        self.sched_d.load_state_dict(state_d.scheduler)
        if state_g.scaler:
            self.scaler.load_state_dict(state_g.scaler)
        if "rng" in state_g.extra:
            torch.set_rng_state(state_g.extra["rng"])
        self.pos = position_of(state_g)

    def _build_data(self) -> None:
        cfg, m = self.cfg, self.model_cfg
        exp = ExperimentPaths(Path(cfg.exp_dir))
        self.dataset = SoVITSDataset(exp, m.version, m.hop_length, m.filter_length, cfg.data.win_length,
                                     cfg.data.sampling_rate, cfg.data.min_seconds, cfg.data.max_seconds,
                                     cfg.data.min_items, with_sv=m.uses_sv_embedding)
        self.sampler = BucketBatchSampler(self.dataset.lengths, cfg.data.boundaries, cfg.train.batch_size,
                                          self.info.rank, self.info.world_size, cfg.train.seed)
        dropped = self.sampler.plan.dropped
        log.info("SoVITS dataset: %s; %d of %d (repeated) item(s) outside the length buckets (%.2f–%.0f s) left out",
                 self.dataset.report.summary(), dropped, len(self.dataset), cfg.data.boundaries[0] * m.hop_length
                 / cfg.data.sampling_rate, cfg.data.boundaries[-1] * m.hop_length / cfg.data.sampling_rate)
        log.info("batch size %d per process × %d process(es), optimizer step every %d batch(es); %d batches per "
                 "epoch", cfg.train.batch_size, self.info.world_size, cfg.train.grad_accum,
                 self.sampler.batches_per_epoch())

    def loader(self, epoch: int, skip: int) -> ShieldedLoader:
        return self._epoch_loader(epoch, skip, collate_sovits)

    def _mel(self, spec: torch.Tensor) -> torch.Tensor:
        d = self.cfg.data
        return linear_to_mel(spec.float(), d.sampling_rate, d.n_mel_channels, d.mel_fmin, d.mel_fmax)

    def _sync(self, model: nn.Module, sync: bool) -> contextlib.AbstractContextManager:
        """DDP gradient all-reduce only when ``sync`` (a fresh context each time: no_sync() is single-use)."""
        if sync or not self.info.distributed:
            return contextlib.nullcontext()
        return model.no_sync()

    def train_batch(self, batch: SoVITSBatch, step_now: bool) -> dict[str, float]:
        """Discriminator then generator update on one batch (gradients accumulate until ``step_now``)."""
        cfg, m, accum = self.cfg, self.model_cfg, self.cfg.train.grad_accum
        dev = self.device.type
        with self._sync(self.g, step_now), self.precision.autocast(dev):
            out = self.g(batch.ssl, batch.spec, batch.spec_lengths, batch.phones, batch.phone_lengths, batch.sv_emb)
        frames = m.segment_frames
        # the mel losses run in fp32 outside autocast (cuFFT has no half kernels on old GPUs)
        y_mel = slice_segments(self._mel(batch.spec), out.slice_starts, frames)
        y_hat = out.audio.float()
        y_hat_mel = mel_spectrogram(y_hat.squeeze(1), m.filter_length, cfg.data.n_mel_channels,
                                    cfg.data.sampling_rate, m.hop_length, cfg.data.win_length, cfg.data.mel_fmin,
                                    cfg.data.mel_fmax)
        y = slice_segments(batch.wav, out.slice_starts * m.hop_length, m.segment_size)
        with self._sync(self.d, step_now), self.precision.autocast(dev):
            real, fake, _, _ = self.d(y, y_hat.detach())
        loss_d = discriminator_loss(real, fake)
        with self._sync(self.d, step_now):
            self.scaler.scale(loss_d / accum).backward()
        if step_now:
            self.scaler.step(self.opt_d)
        # the generator pass also leaves gradients on D; keep D's accumulated ones intact between its steps
        saved = None if step_now else [p.grad.clone() if p.grad is not None else None for p in self.raw_d.parameters()]
        with self._sync(self.d, False), self.precision.autocast(dev):
            _, fake, fmap_real, fmap_fake = self.d(y, y_hat)
        losses = {
            "loss_gen": generator_adversarial_loss(fake),
            "loss_fm": feature_matching_loss(fmap_real, fmap_fake),
            "loss_mel": F.l1_loss(y_mel, y_hat_mel) * cfg.train.c_mel,
            "loss_kl": kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.y_mask) * cfg.train.c_kl,
            "loss_commit": out.commit_loss.float(),
        }
        loss_g = sum(losses.values())
        with self._sync(self.g, step_now), self._sync(self.d, False):
            self.scaler.scale(loss_g / accum).backward()
        if saved is not None:
            for p, grad in zip(self.raw_d.parameters(), saved, strict=True):
                p.grad = grad
        if step_now:
            self.scaler.step(self.opt_g)
            self.scaler.update()
            self.opt_g.zero_grad(set_to_none=True)
            self.opt_d.zero_grad(set_to_none=True)
        return {"loss_g": float(loss_g.detach()), "loss_d": float(loss_d.detach()),
                **{k: float(v.detach()) for k, v in losses.items()}}

    def run_epoch(self, epoch: int) -> bool:
        """Train epoch ``epoch`` (1-based) from ``pos.batches_done``; False if a stop cut it short."""
        cfg, accum = self.cfg, self.cfg.train.grad_accum
        per_epoch = self.sampler.batches_per_epoch()
        start = self.pos.batches_done
        pending: list[dict[str, float]] = []
        self.g.train()
        self.d.train()
        self.opt_g.zero_grad(set_to_none=True)
        self.opt_d.zero_grad(set_to_none=True)
        for i, batch in enumerate(self.loader(epoch, start), start=start):
            step_now = (i + 1 - start) % accum == 0 or i + 1 == per_epoch
            pending.append(self.train_batch(batch.to(self.device), step_now))
            if not step_now:
                continue
            step = self.pos.step + 1
            self.pos = Position(step, self.pos.epochs_done, i + 1)
            mean = {k: sum(p[k] for p in pending) / len(pending) for k in pending[0]}
            pending = []
            self.result.losses.append(mean)
            if step % cfg.runtime.log_every_n_steps == 0 or i + 1 == per_epoch:
                self._log(epoch, step, mean, i + 1, per_epoch)
            if self._stop_agreed(step) and i + 1 < per_epoch:
                return False
        self.sched_g.step()
        self.sched_d.step()
        self.pos = Position(self.pos.step, epoch, 0)
        return True

    def _log(self, epoch: int, step: int, values: dict[str, float], done_in_epoch: int, per_epoch: int) -> None:
        lr = self.opt_g.param_groups[0]["lr"]
        self._log_step(epoch, step, {"loss": values["loss_g"], **values, "lr": lr}, done_in_epoch, per_epoch)
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(f"sovits/{key}", value, step)
            self.tb.add_scalar("sovits/lr", lr, step)

    def save(self, release: bool) -> None:
        """D state, then G state (so a G file implies its D), then the release file; rank 0 writes."""
        cfg, pos = self.cfg, self.pos
        if self.info.is_main:
            common = dict(step=pos.step, epoch=pos.epochs_done, scaler=self.scaler.state_dict(),
                          config={"run": to_dict(cfg), "model": to_dict(self.model_cfg), "version": cfg.version})
            save_train_state(train_state_path(cfg.state_dir, D_KIND, pos.step), kind=D_KIND,
                             model=self.raw_d.state_dict(), optimizer=self.opt_d.state_dict(),
                             scheduler=self.sched_d.state_dict(), **common)
            # the G state names its release file, so a start after a kill between the two writes the missing release
            release_name = cfg.release_name(pos.epochs_done, pos.step) if release else None
            path = save_train_state(train_state_path(cfg.state_dir, G_KIND, pos.step), kind=G_KIND,
                                    model=self.raw_g.state_dict(), optimizer=self.opt_g.state_dict(),
                                    scheduler=self.sched_g.state_dict(),
                                    extra={"batches_done": pos.batches_done, "rng": torch.get_rng_state(),
                                           RELEASE_KEY: release_name}, **common)
            self.result.state_files.append(path)
            rotate(cfg.state_dir, [G_KIND, D_KIND], cfg.save.latest_only, cfg.save.keep_last_n)
            if release:
                self.result.release_files.append(write_release(cfg, self.model_cfg, self.raw_g.state_dict(),
                                                               pos.epochs_done, pos.step))
        dist_utils.barrier()


def train(cfg: SoVITSRunConfig, info: DistInfo = DistInfo(), stop: StopRequest | None = None) -> TrainResult:
    """Run (or continue) SoVITS fine-tuning for ``cfg``; see the module docstring."""
    return start_training(SoVITSTrainer, cfg, info, stop)


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser("python -m GPT_SoVITS.train.sovits", __doc__.split("\n")[0], SoVITSRunConfig,
                          "train_sovits.log")


def main(argv: list[str] | None = None) -> int:
    return trainer_main(build_parser().parse_args(argv), config_cls=SoVITSRunConfig, trainer_cls=SoVITSTrainer,
                        what="SoVITS training", log_name="train_sovits.log")


if __name__ == "__main__":
    raise SystemExit(main())
