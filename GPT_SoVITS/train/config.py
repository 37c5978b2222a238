"""Typed run configs of the trainers (frozen dataclasses; ``configs/*.yaml`` only override).

Defaults are upstream's ``s2.json`` (SoVITS, and the v3/v4 LoRA trainer) and ``s1longer-v2.yaml`` (GPT); the
launcher's own defaults (epochs, save frequency, batch size from memory) live in the YAML files and in the 1B tab.
A run config is written into the experiment folder by the launcher and is the permanent record of the run; it is
also stored inside every training-state file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from GPT_SoVITS.config import ConfigError, to_dict
from GPT_SoVITS.models.sovits import SoVITSConfig
from GPT_SoVITS.models.sovits_v4 import SoVITSV3Config
from GPT_SoVITS.models.t2s import T2SConfig
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.versions import UnknownVersionError, version_spec

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: LoRA ranks of v3/v4 fine-tuning (upstream's radio choices; default 32).
LORA_RANKS = (16, 32, 64, 128)


@dataclass(frozen=True)
class SaveConfig:
    """When and what to save (shared by both trainers)."""

    every_n_epochs: int = 4  # save a training state (and release weights) every N epochs, and at the last one
    latest_only: bool = True  # keep only the newest training state (upstream's if_save_latest)
    release_weights: bool = True  # also write small inference weights at each save point (if_save_every_weights)
    keep_last_n: int = 3  # training states kept when latest_only is off (0 = keep all)


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how to run (shared by both trainers)."""

    device: str = "auto"  # "auto" (CUDA if present), "cpu", "cuda"; under torchrun each rank takes cuda:LOCAL_RANK
    precision: str = "auto"  # auto | fp32 | fp16 | bf16; auto = fp16 mixed on CUDA ≥ 5.3, else fp32
    num_workers: int = 2  # DataLoader worker processes per rank
    log_every_n_steps: int = 10  # loss lines and TensorBoard scalars
    max_steps: int = 0  # stop after this many optimizer steps (0 = no limit); for tests and benchmarks
    from_scratch: bool = False  # explicitly allow training without pretrained weights (gives noise at first!)


class _RunFolders:
    """``run_name`` and ``state_dir`` of a run config (a dataclass with ``exp_dir``, ``name`` and ``version``)."""

    exp_dir: Path
    name: str
    version: str
    _stage = ""  # upstream's training-state folder is <exp_dir>/logs_<stage>_<version> (not a dataclass field)

    @property
    def run_name(self) -> str:
        return self.name or Path(self.exp_dir).name

    @property
    def state_dir(self) -> Path:
        return Path(self.exp_dir) / f"logs_{self._stage}_{self.version}"


@dataclass(frozen=True)
class SoVITSTrainConfig:
    """Upstream ``s2.json`` ``train`` section (the keys it uses)."""

    seed: int = 1234
    epochs: int = 100
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    batch_size: int = 32  # per GPU (per process)
    grad_accum: int = 1  # optimizer step every N batches (for small GPUs); upstream has none
    lr_decay: float = 0.999875  # ExponentialLR gamma, stepped once per epoch
    c_mel: float = 45.0
    c_kl: float = 1.0
    text_low_lr_rate: float = 0.4  # LR ratio of enc_p.text_embedding / encoder_text / mrte


@dataclass(frozen=True)
class SoVITSDataConfig:
    """Upstream ``s2.json`` ``data`` section plus the dataset filters of spec §11."""

    sampling_rate: int = 32000
    win_length: int = 2048
    n_mel_channels: int = 128
    mel_fmin: float = 0.0
    mel_fmax: float | None = None
    min_seconds: float = 0.6  # clips outside [min_seconds, max_seconds] are left out (counted in the log)
    max_seconds: float = 54.0
    # bucket boundaries in spectrogram frames (50 per second); items outside (first, last] are left out
    boundaries: tuple[int, ...] = (32, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500,
                                   1600, 1700, 1800, 1900)
    min_items: int = 100  # smaller datasets are repeated max(2, min_items // n) times, as upstream


@dataclass(frozen=True)
class SoVITSRunConfig(_RunFolders):
    """Everything one SoVITS fine-tuning run needs (``python -m GPT_SoVITS.train.sovits --config``)."""

    _stage = "s2"
    state_kind = "sovits_G"  # training-state files <state_dir>/<state_kind>_<step>.pt (not a dataclass field)

    exp_dir: Path = Path("logs/xxx")  # the formatted experiment (2-name2text.txt, 4-cnhubert/, 5-wav32k/)
    name: str = ""  # release-file prefix; empty = the experiment folder's name
    version: str = "v2"
    pretrained_g: Path | None = None  # upstream s2G*.pth (or a compatible file)
    pretrained_d: Path | None = None  # upstream s2D*.pth
    init_weights: Path | None = None  # optional release .pth loaded over the pretrained G (incremental training)
    weights_dir: Path = Path("SoVITS_weights_v2")  # release files go to <weights_dir>/<name>_e<E>_s<S>.pth
    discriminator_periods: tuple[int, ...] | None = None  # None: the version's (v2: 2…11; v2Pro adds 17, 23)
    train: SoVITSTrainConfig = SoVITSTrainConfig()
    data: SoVITSDataConfig = SoVITSDataConfig()
    model: SoVITSConfig | None = None  # architecture; None = from the pretrained file (s2.json defaults without)
    save: SaveConfig = SaveConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    @property
    def release_glob(self) -> str:
        """Release files of this run in ``weights_dir`` (any epoch and step)."""
        return f"{self.run_name}_e*_s*.pth"

    def release_name(self, epoch: int, step: int) -> str:
        """Upstream's release file name: ``<name>_e<epoch>_s<step>.pth``."""
        return f"{self.run_name}_e{epoch}_s{step}.pth"

    def upstream_config(self, model_cfg: SoVITSConfig) -> dict[str, Any]:
        """The ``config`` stored in release files: upstream's s2.json sections (what inference reads).

        ``filter_length``/``hop_length``/``segment_size`` go to ``data``/``train`` only: upstream builds its model
        with ``SynthesizerTrn(spec_channels, segment_size, ..., **config["model"])``, so a ``segment_size`` in
        ``model`` would be passed twice. ``data.n_speakers`` is read by upstream's loader too.
        """
        model = {k: v for k, v in to_dict(model_cfg).items()
                 if k not in ("filter_length", "hop_length", "segment_size")}
        data = to_dict(self.data)
        return {
            "train": {**to_dict(self.train), "segment_size": model_cfg.segment_size},
            "data": {"max_wav_value": 32768.0, "sampling_rate": data["sampling_rate"],
                     "filter_length": model_cfg.filter_length, "hop_length": model_cfg.hop_length,
                     "win_length": data["win_length"], "n_mel_channels": data["n_mel_channels"],
                     "mel_fmin": data["mel_fmin"], "mel_fmax": data["mel_fmax"], "add_blank": True,
                     "n_speakers": 300, "cleaned_text": True, "exp_dir": str(self.exp_dir)},
            "model": model,
            "name": self.run_name,
            "version": self.version,
        }


@dataclass(frozen=True)
class SoVITSLoRATrainConfig:
    """The ``s2.json`` ``train`` keys upstream's v3/v4 LoRA trainer uses, plus its LoRA choices."""

    seed: int = 1234
    epochs: int = 100
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    batch_size: int = 32  # per GPU (per process)
    grad_accum: int = 1  # optimizer step every N batches (for small GPUs); upstream has none
    # ExponentialLR gamma, stepped once per epoch; as upstream, a fresh run starts one step in (LR × lr_decay)
    lr_decay: float = 0.999875
    lora_rank: int = 32  # one of LORA_RANKS; alpha = rank (scale 1), as upstream
    grad_ckpt: bool = False  # recompute the DiT blocks in the backward pass: less memory, slower

    def __post_init__(self) -> None:
        if isinstance(self.lora_rank, bool) or self.lora_rank not in LORA_RANKS:
            raise ConfigError(f"train.lora_rank must be one of {', '.join(map(str, LORA_RANKS))} "
                              f"(got {self.lora_rank!r})")


@dataclass(frozen=True)
class SoVITSLoRARunConfig(_RunFolders):
    """One LoRA fine-tuning run of a v3/v4 SoVITS model (``python -m GPT_SoVITS.train.sovits_lora --config``).

    The base model (``pretrained_g``) is loaded from the pretrained file every time, resumes included; only the
    trained tensors are saved. Training states go to ``logs_s2_<version>_lora_<rank>`` (upstream's folder), so
    runs of different ranks never mix.
    """

    _stage = "s2"
    state_kind = "sovits_lora"

    exp_dir: Path = Path("logs/xxx")  # the formatted experiment (2-name2text.txt, 4-cnhubert/, 5-wav32k/)
    name: str = ""  # release-file prefix; empty = the experiment folder's name
    version: str = "v4"  # a version whose SoVITS is the flow-matching (cfm) model
    pretrained_g: Path | None = None  # the base: upstream gsv-v4-pretrained/s2Gv4.pth
    init_weights: Path | None = None  # optional LoRA release (same rank) to continue from (incremental training)
    weights_dir: Path = Path("SoVITS_weights_v4")  # release files go to <weights_dir>/<name>_e<E>_s<S>_l<R>.pth
    train: SoVITSLoRATrainConfig = SoVITSLoRATrainConfig()
    data: SoVITSDataConfig = SoVITSDataConfig()  # the mel fields only go into the release file's config
    model: SoVITSV3Config | None = None  # architecture; None = from the pretrained file (full size without)
    save: SaveConfig = SaveConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def __post_init__(self) -> None:
        try:
            spec = version_spec(self.version)
        except UnknownVersionError as exc:
            raise ConfigError(str(exc)) from None
        if not spec.fine_tunes_with_lora:
            raise ConfigError(f"version {self.version} is not fine-tuned with LoRA; its trainer is "
                              f"{spec.sovits_trainer}")
        if not spec.supported:
            raise ConfigError(f"LoRA fine-tuning of {self.version} is not supported yet")

    @property
    def state_dir(self) -> Path:
        return ExperimentPaths(Path(self.exp_dir)).sovits_lora_dir(self.version, self.train.lora_rank)

    @property
    def release_glob(self) -> str:
        """Release files of this run and rank in ``weights_dir``."""
        return f"{self.run_name}_e*_s*_l{self.train.lora_rank}.pth"

    def release_name(self, epoch: int, step: int) -> str:
        """Upstream's LoRA release file name: ``<name>_e<epoch>_s<step>_l<rank>.pth``."""
        return f"{self.run_name}_e{epoch}_s{step}_l{self.train.lora_rank}.pth"

    def upstream_config(self, model_cfg: SoVITSV3Config) -> dict[str, Any]:
        """The ``config`` stored in release files: upstream's s2.json sections with ``model.version`` v3/v4 and
        ``train.lora_rank`` as the string upstream stores. The architecture is what inference rebuilds."""
        sections = model_cfg.to_upstream()
        data = to_dict(self.data)
        train = {k: v for k, v in to_dict(self.train).items() if k != "lora_rank"}
        return {
            "train": {**train, **sections["train"], "lora_rank": str(self.train.lora_rank)},
            "data": {"max_wav_value": 32768.0, "sampling_rate": data["sampling_rate"],
                     "filter_length": sections["data"]["filter_length"],
                     "hop_length": sections["data"]["hop_length"], "win_length": data["win_length"],
                     "n_mel_channels": data["n_mel_channels"], "mel_fmin": data["mel_fmin"],
                     "mel_fmax": data["mel_fmax"], "add_blank": True, "n_speakers": 300, "cleaned_text": True,
                     "exp_dir": str(self.exp_dir)},
            "model": sections["model"],
            "name": self.run_name,
            "version": self.version,
            "save_weight_dir": Path(self.weights_dir).name,
        }


def sovits_run_config_class(version: str) -> type:
    """The run config of a version's SoVITS trainer: :class:`SoVITSLoRARunConfig` for the flow-matching
    versions (LoRA), :class:`SoVITSRunConfig` for the others."""
    return SoVITSLoRARunConfig if version_spec(version).fine_tunes_with_lora else SoVITSRunConfig


@dataclass(frozen=True)
class GPTTrainConfig:
    """Upstream ``s1longer-v2.yaml`` ``train`` section plus the behaviour its trainer hard-codes."""

    seed: int = 1234
    epochs: int = 20
    batch_size: int = 8  # per GPU; halved when dpo is on (as upstream)
    grad_accum: int = 4  # upstream steps the optimizer every 4th batch (hard-coded in its Lightning module)
    gradient_clip: float = 1.0  # recorded; upstream's manual optimisation never applies it (ScaledAdam clips)
    dpo: bool = False  # add the (experimental) DPO loss (upstream's if_dpo)
    dpo_beta: float = 0.2


@dataclass(frozen=True)
class GPTOptimizerConfig:
    """Upstream ``optimizer`` section. Upstream computes a warmup-cosine LR and then overrides it with a
    constant 0.002; ``schedule: constant`` (the default) keeps that behaviour, ``warmup_cosine`` uses the
    values below as written."""

    name: str = "scaled_adam"  # scaled_adam (upstream's) or adamw
    schedule: str = "constant"  # constant | warmup_cosine
    constant_lr: float = 0.002
    lr: float = 0.01
    lr_init: float = 1e-5
    lr_end: float = 1e-4
    warmup_steps: int = 2000
    decay_steps: int = 40000
    betas: tuple[float, float] = (0.9, 0.95)
    clipping_scale: float = 2.0  # ScaledAdam: clip at 2 × the median recent gradient norm
    clipping_update_period: int = 1000
    weight_decay: float = 0.0  # adamw only


@dataclass(frozen=True)
class GPTDataConfig:
    """Upstream ``data`` section plus the dataset filters of spec §11."""

    max_sec: int = 54  # semantic length limit: max_sec · 25 tokens; phones ≤ max_sec · 25 / 2.5
    min_phones_per_sec: float = 3.0
    max_phones_per_sec: float = 25.0
    min_items: int = 100  # smaller datasets are repeated max(2, min_items // n) times, as upstream
    bucket_seconds: float = 2.0  # width of the duration buckets batches are drawn from


@dataclass(frozen=True)
class GPTRunConfig(_RunFolders):
    """Everything one GPT fine-tuning run needs (``python -m GPT_SoVITS.train.gpt --config``)."""

    _stage = "s1"
    state_kind = "t2s"

    exp_dir: Path = Path("logs/xxx")  # the formatted experiment (2-name2text.txt, 3-bert/, 6-name2semantic.tsv)
    name: str = ""  # release-file prefix; empty = the experiment folder's name
    version: str = "v2"
    pretrained: Path | None = None  # upstream s1bert25hz-*.ckpt (or a compatible GPT weights file)
    init_weights: Path | None = None  # optional release .ckpt to start from instead (incremental training)
    weights_dir: Path = Path("GPT_weights_v2")  # release files go to <weights_dir>/<name>-e<E>.ckpt
    train: GPTTrainConfig = GPTTrainConfig()
    optimizer: GPTOptimizerConfig = GPTOptimizerConfig()
    data: GPTDataConfig = GPTDataConfig()
    model: T2SConfig | None = None  # architecture; None = from the pretrained file (s1longer-v2 defaults without)
    save: SaveConfig = field(default_factory=lambda: SaveConfig(every_n_epochs=5))
    runtime: RuntimeConfig = RuntimeConfig()

    @property
    def release_glob(self) -> str:
        """Release files of this run in ``weights_dir`` (any epoch)."""
        return f"{self.run_name}-e*.ckpt"

    def release_name(self, epoch: int, step: int = 0) -> str:
        """Upstream's release file name: ``<name>-e<epoch>.ckpt`` (the step is not part of it)."""
        return f"{self.run_name}-e{epoch}.ckpt"

    def upstream_config(self, model_cfg: T2SConfig) -> dict[str, Any]:
        """The ``config`` stored in release files: upstream's s1longer-v2.yaml layout (what inference reads)."""
        sections = model_cfg.to_upstream()
        train = to_dict(self.train)
        return {
            "train": {"seed": train["seed"], "epochs": train["epochs"], "batch_size": train["batch_size"],
                      "save_every_n_epoch": self.save.every_n_epochs, "precision": self.runtime.precision,
                      "gradient_clip": train["gradient_clip"], "if_dpo": train["dpo"], "exp_name": self.run_name},
            "optimizer": {k: v for k, v in to_dict(self.optimizer).items()
                          if k in ("lr", "lr_init", "lr_end", "warmup_steps", "decay_steps")},
            "data": {**sections["data"], "max_eval_sample": 8, "num_workers": self.runtime.num_workers},
            "model": sections["model"],
            "inference": sections["inference"],
        }


def validate_common(save: SaveConfig, runtime: RuntimeConfig, epochs: int, batch_size: int, grad_accum: int) -> None:
    """Raise :class:`ConfigError` on values no trainer can run with."""
    if runtime.precision not in PRECISIONS:
        raise ConfigError(f"runtime.precision must be one of {', '.join(PRECISIONS)} (got {runtime.precision!r})")
    if epochs < 1 or batch_size < 1 or grad_accum < 1 or save.every_n_epochs < 1:
        raise ConfigError(f"epochs ({epochs}), batch_size ({batch_size}), grad_accum ({grad_accum}) and "
                          f"save.every_n_epochs ({save.every_n_epochs}) must all be at least 1")
