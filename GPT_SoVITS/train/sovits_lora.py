"""SoVITS v4 LoRA fine-tuning: ``python -m GPT_SoVITS.train.sovits_lora --config <exp>/sovits_lora.yaml``.

Upstream behaviour kept (spec §14.4, compat kit v4 §6): the pretrained v4 model (``gsv-v4-pretrained/s2Gv4.pth``)
is the frozen base; LoRA (rank 16/32/64/128, alpha = rank) on ``to_q``/``to_k``/``to_v``/``to_out.0`` of every
DiT attention; ``ref_enc``, ``bridge``, ``wns1`` and ``linear_mel`` trained in full; ``ssl_proj``, the quantizer
and ``enc_p`` frozen; the flow-matching loss only (no discriminator); AdamW (lr 1e-4, betas 0.8/0.99, eps 1e-9),
ExponentialLR 0.999875 per epoch with upstream's one extra step before training; length buckets as v2; release
files ``SoVITS_weights_v4/<exp>_e<E>_s<S>_l<R>.pth`` with header ``04``, ``lora_rank`` and only the trained
tensors, which upstream loads. Training states: ``<exp>/logs_s2_v4_lora_<R>/sovits_lora_<step>.pt``.

Changed: refuses to start without the base file or with a base of another version; items that cannot be read are
left out and counted (upstream trains on zeros); training states hold only the trained tensors (the base is
re-read and checked by fingerprint on resume) and resume inside an epoch without compounding the LR decay; the
last epoch is always saved; optional gradient accumulation; several GPUs through ``torchrun``. v3 shares the code
but is not offered yet (its 24 kHz mel needs resampled clips).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from GPT_SoVITS.checkpoints import (
    CheckpointError,
    LoadedWeights,
    TrainState,
    describe_pretrained,
    read_weights,
    safe_load,
    save_train_state,
    train_state_path,
)
from GPT_SoVITS.config import ConfigError, from_dict, to_dict
from GPT_SoVITS.models.lora import (
    lora_release_checkpoint,
    lora_release_from_tensors,
    lora_release_keys,
    prepare_lora_training,
    save_lora_release,
)
from GPT_SoVITS.models.sovits_v4 import INV_FREQ_KEY, SoVITSV3Config, SynthesizerTrnV3
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.train import distributed as dist_utils
from GPT_SoVITS.train.config import SoVITSLoRARunConfig
from GPT_SoVITS.train.data import CFMBatch, CFMDataset, collate_cfm
from GPT_SoVITS.train.distributed import DistInfo
from GPT_SoVITS.train.loop import (
    RELEASE_KEY,
    EpochTrainer,
    LoadReport,
    Position,
    PretrainedWeightsError,
    ShieldedLoader,
    StopRequest,
    TrainResult,
    check_not_done,
    find_resume_state,
    hint_upstream_states,
    log_resume,
    position_of,
    rotate,
    start_training,
    tensorboard_writer,
    trainer_main,
    trainer_parser,
    write_promised_release,
)
from GPT_SoVITS.train.samplers import BucketBatchSampler

log = logging.getLogger(__name__)

KIND = SoVITSLoRARunConfig.state_kind
_FINGERPRINT_SAMPLES = 1024  # values per tensor that go into the base fingerprint


@dataclass
class Start:
    """The model a run starts from: the base with LoRA added, and what it was made of."""

    model: SynthesizerTrnV3
    cfg: SoVITSV3Config
    base_fingerprint: str
    state: TrainState | None = None


def base_fingerprint(model: nn.Module) -> str:
    """A cheap content hash of a (plain, un-wrapped) model: names, shapes and an even sample of each tensor's
    values in float16. Training states hold only the trained tensors; this tells on resume whether the base
    loaded now is the one the state was trained on."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        flat = value.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // _FINGERPRINT_SAMPLES)][:_FINGERPRINT_SAMPLES]
        if sample.is_floating_point():
            sample = sample.to(torch.float16)
        digest.update(f"{key}{tuple(value.shape)}".encode())
        digest.update(sample.cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def trained_state(model: SynthesizerTrnV3) -> dict[str, Tensor]:
    """The tensors a training state keeps (full precision): what a release file holds, i.e. the LoRA tensors,
    ``ref_enc``/``bridge``/``wns1``/``linear_mel`` and the buffers. The frozen base comes from its file."""
    state = model.state_dict()
    return {key: state[key].detach().clone() for key in lora_release_keys(model)}


def write_release(cfg: SoVITSLoRARunConfig, model_cfg: SoVITSV3Config, checkpoint: dict, epoch: int, step: int,
                  target: Path | None = None) -> Path:
    """Write a release object (:func:`lora_release_checkpoint`) as ``<weights_dir>/<name>_e<E>_s<S>_l<R>.pth``
    with the version's header tag."""
    target = save_lora_release(target or Path(cfg.weights_dir) / cfg.release_name(epoch, step), checkpoint,
                               model_cfg.variant.release_tag)
    log.info("saved %s (%s LoRA rank %d, header %s)", target, cfg.version, checkpoint["lora_rank"],
             model_cfg.variant.release_tag.decode())
    return target


def _write_promised_release(cfg: SoVITSLoRARunConfig, state: TrainState, path: Path) -> None:
    """The release a kill between the state save and the release write left out, from the state's tensors."""
    def write(target: Path) -> Path:
        model_cfg = from_dict(SoVITSV3Config, state.config["model"], "training state model")
        checkpoint = lora_release_from_tensors(state.model, cfg.upstream_config(model_cfg), state.epoch, state.step,
                                               cfg.train.lora_rank)
        return write_release(cfg, model_cfg, checkpoint, state.epoch, state.step, target)

    write_promised_release(state, path, cfg, write)


def _read_base(cfg: SoVITSLoRARunConfig) -> LoadedWeights | None:
    """The pretrained base file, checked; None when it is missing and ``runtime.from_scratch`` allows that."""
    path = cfg.pretrained_g
    try:
        if path is None:
            raise FileNotFoundError(f"no pretrained SoVITS {cfg.version} model is configured (pretrained_g)")
        if not Path(path).exists():
            raise FileNotFoundError(describe_pretrained(Path(path)))
        loaded = read_weights(Path(path), expect="sovits")
    except (FileNotFoundError, CheckpointError) as exc:
        if not cfg.runtime.from_scratch:
            raise PretrainedWeightsError(f"SoVITS LoRA training refused to start: {exc} LoRA fine-tunes the "
                                         f"pretrained {cfg.version} model and cannot do without it; set "
                                         "runtime.from_scratch: true only to train adapters on a random base "
                                         "(tests).") from None
        log.warning("SoVITS LoRA training on a RANDOM base, as requested (runtime.from_scratch): %s", exc)
        return None
    if loaded.version != cfg.version:
        raise PretrainedWeightsError(f"SoVITS LoRA training refused to start: the pretrained model {path} is a "
                                     f"{loaded.version} model but this run trains {cfg.version}. Pick the "
                                     f"{cfg.version} base file ({Path(path).name} of another version will not do).")
    if any(".lora_A." in key for key in loaded.state_dict):
        raise PretrainedWeightsError(f"SoVITS LoRA training refused to start: {path} is a LoRA release (fine-tuned "
                                     f"tensors only), not the base model. Set pretrained_g to the pretrained "
                                     f"{cfg.version} file; to continue from this release set init_weights to it.")
    return loaded


def _model_config(cfg: SoVITSLoRARunConfig, loaded: LoadedWeights | None, state: TrainState | None
                  ) -> SoVITSV3Config:
    """The architecture: the training state's, else the run config's ``model``, else the base file's."""
    try:
        if state is not None:
            return from_dict(SoVITSV3Config, state.config["model"], "training state model")
        if cfg.model is not None:
            return cfg.model
        config = dict(loaded.config) if loaded is not None else {}
        config["model"] = {**dict(config.get("model") or {}), "version": cfg.version}
        return SoVITSV3Config.from_upstream(config)
    except (ConfigError, TypeError, ValueError, KeyError) as exc:
        where = "the training state" if state is not None else cfg.pretrained_g
        raise PretrainedWeightsError(f"{where}: its SoVITS {cfg.version} model config cannot be used ({exc})"
                                     ) from None


def _fit_report(model_cfg: SoVITSV3Config, weights: dict[str, Tensor]) -> LoadReport:
    with torch.device("meta"):
        own = SynthesizerTrnV3(model_cfg).state_dict()
    mismatched = tuple(k for k, v in weights.items() if k in own and own[k].shape != v.shape)
    missing = tuple(k for k in own if k not in weights and k != INV_FREQ_KEY)
    unexpected = tuple(k for k in weights if k not in own)
    return LoadReport(sum(k in own and own[k].shape == v.shape for k, v in weights.items()), len(own), missing,
                      unexpected, mismatched)


def build_base(cfg: SoVITSLoRARunConfig, state: TrainState | None = None) -> tuple[SynthesizerTrnV3, SoVITSV3Config]:
    """The plain base model on CPU in float32: the pretrained file's weights (every key must fit; extra keys
    are ignored and reported), or random weights with ``runtime.from_scratch``."""
    loaded = _read_base(cfg)
    model_cfg = _model_config(cfg, loaded, state)
    if loaded is None:
        return SynthesizerTrnV3(model_cfg), model_cfg
    report = _fit_report(model_cfg, loaded.state_dict)
    if report.missing or report.mismatched:
        raise PretrainedWeightsError(f"SoVITS LoRA training refused to start: the pretrained model {cfg.pretrained_g} "
                                     f"does not fit the {cfg.version} model ({report.summary()}); pick the official "
                                     f"{cfg.version} base file.")
    weights = {k: v for k, v in loaded.state_dict.items() if k not in report.unexpected}
    model = SynthesizerTrnV3.from_state_dict(model_cfg, weights)
    log.info("loaded the %s base %s: %s", cfg.version, cfg.pretrained_g, report.summary())
    return model, model_cfg


def _load_trained(model: SynthesizerTrnV3, weights: dict[str, Tensor], where: Path, strict: bool) -> None:
    """Put trained tensors (a training state's, or a release's) into the LoRA-wrapped model."""
    keys = set(lora_release_keys(model))
    own = model.state_dict()
    unexpected = [k for k in weights if k not in keys]
    missing = [k for k in keys if k not in weights]
    mismatched = [k for k in keys & set(weights) if weights[k].shape != own[k].shape]
    if unexpected or mismatched or (strict and missing):
        bad = (unexpected or mismatched or missing)[0]
        raise CheckpointError(f"{where}: its trained tensors do not fit this model and LoRA rank ({len(unexpected)} "
                              f"unexpected, {len(mismatched)} of another shape, {len(missing)} missing, e.g. {bad}). "
                              "Restore the run config it was trained with, or move it away to start over.")
    with torch.no_grad():
        for key, value in weights.items():
            own[key].copy_(value)
    if missing:
        log.info("%s: %d trained tensor(s) absent, kept from the base (e.g. %s)", where, len(missing), missing[0])


def _init_from_release(model: SynthesizerTrnV3, path: Path, rank: int) -> None:
    """Continue from the trained tensors of an earlier LoRA run: a release file (``*_l<R>.pth``, ours or
    upstream's) or upstream's resume file ``G_*.pth`` (its frozen base tensors are ignored). Same rank only."""
    obj, tag = safe_load(Path(path))
    weights = (obj.get("weight") or obj.get("model")) if isinstance(obj, dict) else None
    lora_a = [v for k, v in weights.items() if ".lora_A." in k] if isinstance(weights, dict) else []
    if not lora_a:
        raise CheckpointError(f"{path}: holds no LoRA tensors; init_weights of a LoRA run must be a *_l{rank}.pth "
                              "release (or upstream's G_*.pth) written by LoRA training")
    file_rank = int(obj.get("lora_rank") or lora_a[0].shape[0])
    if file_rank != rank:
        raise CheckpointError(f"{path}: a rank-{file_rank} LoRA file cannot continue a rank-{rank} run; choose LoRA "
                              f"rank {file_rank}")
    keys = set(lora_release_keys(model))
    trained = {k: v.float() if v.is_floating_point() else v for k, v in weights.items() if k in keys}
    _load_trained(model, trained, path, strict=False)
    log.info("continued from %s (header %s, %s): %d trained tensors, optimizer state not taken", path,
             tag.decode() if tag else "PK", obj.get("info", ""), len(trained))


def init_model(cfg: SoVITSLoRARunConfig, is_main: bool = True) -> Start:
    """Resume state if any (its base checked by fingerprint), else the pretrained base (+ optional release).

    On rank 0 (``is_main``) a release file the newest state promised but a kill prevented is written first, even
    when no epoch is left to train.
    """
    found = find_resume_state(cfg.state_dir, KIND)
    state = None
    if found is not None:
        path, state = found
        if is_main:
            _write_promised_release(cfg, state, path)
        check_not_done(position_of(state), cfg.train.epochs, "SoVITS LoRA training", path)
    elif cfg.init_weights is None:
        hint_upstream_states(cfg.state_dir, "G_*.pth")
    model, model_cfg = build_base(cfg, state)
    fingerprint = base_fingerprint(model)
    trainable = prepare_lora_training(model, cfg.train.lora_rank)
    log.info("LoRA rank %d: %d trainable tensors, %.2f M values", cfg.train.lora_rank, len(trainable),
             sum(p.numel() for p in trainable) / 1e6)
    if state is not None:
        if state.extra.get("base_fingerprint") != fingerprint:
            raise CheckpointError(f"{path}: this training state was trained on another base model than "
                                  f"{cfg.pretrained_g or 'the random base'} holds now (the pretrained file changed). "
                                  "Restore the base file it was trained on, or move the state folder "
                                  f"{cfg.state_dir} away to start over.")
        _load_trained(model, state.model, path, strict=True)
        log_resume(path, position_of(state))
    elif cfg.init_weights is not None:
        _init_from_release(model, Path(cfg.init_weights), cfg.train.lora_rank)
    return Start(model, model_cfg, fingerprint, state)


class SoVITSLoRATrainer(EpochTrainer):
    """One rank's LoRA run; :func:`train` drives it (epoch loop: :meth:`EpochTrainer.fit`)."""

    cfg: SoVITSLoRARunConfig

    def __init__(self, cfg: SoVITSLoRARunConfig, info: DistInfo, device: torch.device, stop: StopRequest) -> None:
        self._start(cfg, info, device, stop)
        start = init_model(cfg, info.is_main)
        self.model_cfg, self.base_fingerprint = start.cfg, start.base_fingerprint
        self.raw_model = start.model.to(device)
        self.model: nn.Module = self.raw_model
        if info.distributed:  # linear_mel gets no gradient (no forward pass uses it), as upstream
            ids = [device.index] if device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.raw_model, device_ids=ids,
                                                             find_unused_parameters=True)
        t = cfg.train
        params = [p for p in self.raw_model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=t.learning_rate, betas=t.betas, eps=t.eps)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, t.lr_decay)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision.uses_scaler)
        self.pos = Position()
        if start.state is not None:
            self._restore(start.state)
        else:  # upstream steps its scheduler once before the first epoch: a fresh run starts at lr · lr_decay
            for group in self.optimizer.param_groups:
                group["lr"] = group["initial_lr"] * t.lr_decay
        self._build_data()
        self.tb = tensorboard_writer(Path(cfg.exp_dir) / "tb" / "sovits_lora", info.is_main)
        self.result = TrainResult(self.pos)

    def _restore(self, state: TrainState) -> None:
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        if state.scaler:
            self.scaler.load_state_dict(state.scaler)
        if self.info.is_main:  # the other ranks keep their own seeds: identical draws on every rank would waste them
            if "rng" in state.extra:
                torch.set_rng_state(state.extra["rng"])
            if self.device.type == "cuda" and state.extra.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state.extra["cuda_rng"], self.device)
        else:
            torch.manual_seed(self.cfg.train.seed + self.info.rank + 1000 * state.step)
        self.pos = position_of(state)

    def _build_data(self) -> None:
        cfg, enc = self.cfg, self.model_cfg.encoder
        self.dataset = CFMDataset(ExperimentPaths(Path(cfg.exp_dir)), self.model_cfg.variant.mel, cfg.version,
                                  enc.hop_length, enc.filter_length, cfg.data.win_length, cfg.data.sampling_rate,
                                  cfg.data.min_seconds, cfg.data.max_seconds, cfg.data.min_items)
        self.sampler = BucketBatchSampler(self.dataset.lengths, cfg.data.boundaries, cfg.train.batch_size,
                                          self.info.rank, self.info.world_size, cfg.train.seed)
        seconds = [b * enc.hop_length / cfg.data.sampling_rate for b in (cfg.data.boundaries[0],
                                                                          cfg.data.boundaries[-1])]
        log.info("SoVITS LoRA dataset: %s; %d of %d (repeated) item(s) outside the length buckets (%.2f–%.0f s) "
                 "left out", self.dataset.report.summary(), self.sampler.plan.dropped, len(self.dataset), *seconds)
        log.info("batch size %d per process × %d process(es), optimizer step every %d batch(es); %d batches per "
                 "epoch", cfg.train.batch_size, self.info.world_size, cfg.train.grad_accum,
                 self.sampler.batches_per_epoch())

    def loader(self, epoch: int, skip: int) -> ShieldedLoader:
        return self._epoch_loader(epoch, skip, collate_cfm)

    def _sync(self, sync: bool) -> contextlib.AbstractContextManager:
        """DDP gradient all-reduce only when ``sync`` (a fresh context each time: no_sync() is single-use)."""
        if sync or not self.info.distributed:
            return contextlib.nullcontext()
        return self.model.no_sync()

    def train_batch(self, batch: CFMBatch, step_now: bool) -> float:
        """Flow-matching loss and backward on one batch; the optimizer steps when ``step_now``."""
        with self._sync(step_now):
            with self.precision.autocast(self.device.type):
                loss = self.model(batch.ssl, batch.spec, batch.spec_lengths, batch.mel, batch.mel_lengths,
                                  batch.phones, batch.phone_lengths, use_grad_ckpt=self.cfg.train.grad_ckpt)
            self.scaler.scale(loss.float() / self.cfg.train.grad_accum).backward()
        if step_now:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    def run_epoch(self, epoch: int) -> bool:
        """Train epoch ``epoch`` (1-based) from ``pos.batches_done``; False if a stop cut it short."""
        cfg, accum = self.cfg, self.cfg.train.grad_accum
        per_epoch = self.sampler.batches_per_epoch()
        start = self.pos.batches_done
        pending: list[float] = []
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        for i, batch in enumerate(self.loader(epoch, start), start=start):
            step_now = (i + 1 - start) % accum == 0 or i + 1 == per_epoch
            pending.append(self.train_batch(batch.to(self.device), step_now))
            if not step_now:
                continue
            step = self.pos.step + 1
            self.pos = Position(step, self.pos.epochs_done, i + 1)
            loss = sum(pending) / len(pending)
            pending = []
            self.result.losses.append(loss)
            if step % cfg.runtime.log_every_n_steps == 0 or i + 1 == per_epoch:
                self._log(epoch, step, loss, i + 1, per_epoch)
            if self._stop_agreed(step) and i + 1 < per_epoch:
                return False
        self.scheduler.step()
        self.pos = Position(self.pos.step, epoch, 0)
        return True

    def _log(self, epoch: int, step: int, loss: float, done_in_epoch: int, per_epoch: int) -> None:
        lr = self.optimizer.param_groups[0]["lr"]
        self._log_step(epoch, step, {"loss": loss, "lr": lr}, done_in_epoch, per_epoch)
        if self.tb is not None:
            self.tb.add_scalar("sovits_lora/loss_cfm", loss, step)
            self.tb.add_scalar("sovits_lora/lr", lr, step)

    def save(self, release: bool) -> None:
        """The training state (trained tensors, optimizer, RNG), then the release file; rank 0 writes."""
        cfg, pos = self.cfg, self.pos
        if self.info.is_main:
            # the state names its release file, so a start after a kill between the two writes the missing release
            extra = {"batches_done": pos.batches_done, "rng": torch.get_rng_state(),
                     "base_fingerprint": self.base_fingerprint,
                     RELEASE_KEY: cfg.release_name(pos.epochs_done, pos.step) if release else None}
            if self.device.type == "cuda":
                extra["cuda_rng"] = torch.cuda.get_rng_state(self.device)
            path = save_train_state(
                train_state_path(cfg.state_dir, KIND, pos.step), kind=KIND, model=trained_state(self.raw_model),
                optimizer=self.optimizer.state_dict(), scheduler=self.scheduler.state_dict(),
                scaler=self.scaler.state_dict(), step=pos.step, epoch=pos.epochs_done, extra=extra,
                config={"run": to_dict(cfg), "model": to_dict(self.model_cfg), "version": cfg.version,
                        "lora_rank": cfg.train.lora_rank})
            self.result.state_files.append(path)
            rotate(cfg.state_dir, [KIND], cfg.save.latest_only, cfg.save.keep_last_n)
            if release:
                checkpoint = lora_release_checkpoint(self.raw_model, cfg.upstream_config(self.model_cfg),
                                                     pos.epochs_done, pos.step)
                self.result.release_files.append(write_release(cfg, self.model_cfg, checkpoint, pos.epochs_done,
                                                               pos.step))
        dist_utils.barrier()


def train(cfg: SoVITSLoRARunConfig, info: DistInfo = DistInfo(), stop: StopRequest | None = None) -> TrainResult:
    """Run (or continue) LoRA fine-tuning for ``cfg``; see the module docstring."""
    return start_training(SoVITSLoRATrainer, cfg, info, stop)


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser("python -m GPT_SoVITS.train.sovits_lora", __doc__.split("\n")[0], SoVITSLoRARunConfig,
                          "train_sovits_lora.log")


def main(argv: list[str] | None = None) -> int:
    return trainer_main(build_parser().parse_args(argv), config_cls=SoVITSLoRARunConfig,
                        trainer_cls=SoVITSLoRATrainer, what="SoVITS LoRA training", log_name="train_sovits_lora.log")


if __name__ == "__main__":
    raise SystemExit(main())
