"""Typed job specs: UI values → validated dataclass → argv for ``python -m <module>``.

Each spec knows its module, its argv (``to_argv``) and the outputs it promises (``check_outputs``). Bad input
is refused with :func:`app.i18n.refusal` (a translation key and its values: the panel shows it in the UI
language).
``tests/unit/test_jobs.py`` checks that every spec's argv parses back to the same values with the tool's own
argparse parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app.i18n import refusal
from app.processes import JobSpec, OutputCheck, expect_files, expect_glob
from GPT_SoVITS.versions import version_spec
from tools.slice_audio import LoudnessMix
from tools.slicer import SlicerParams


@dataclass(frozen=True)
class SliceJob:
    input: Path
    output_dir: Path
    params: SlicerParams = SlicerParams()
    mix: LoudnessMix = LoudnessMix()
    processes: int = 4

    module = "tools.slice_audio"

    def validate(self) -> None:
        self.params.validate()
        self.mix.validate()
        if not self.input.exists():
            raise refusal("Input not found: {path} (give an audio file or a folder of audio files).", path=self.input)
        if self.processes < 1:
            raise refusal("processes must be at least 1 (got {n}).", n=self.processes)

    def to_argv(self) -> list[str]:
        p, m = self.params, self.mix
        return [str(self.input), str(self.output_dir), "--threshold", str(p.threshold),
                "--min-length", str(p.min_length), "--min-interval", str(p.min_interval),
                "--hop-size", str(p.hop_size), "--max-sil-kept", str(p.max_sil_kept),
                "--max", str(m.max_peak), "--alpha", str(m.alpha),
                "--processes", str(1 if self.input.is_file() else self.processes)]

    def check_outputs(self) -> OutputCheck:
        return expect_glob(self.output_dir, "*.wav")

    def spec(self, log_file: Path | None = None, on_finished=None, flows: Mapping[str, str] | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file,
                       check_outputs=self.check_outputs(), on_finished=on_finished, flows=flows)


@dataclass(frozen=True)
class PrepareJob:
    """Dataset formatting (1A): some of the version's steps, or the one-click chain of all of them."""

    exp_dir: Path
    list_path: Path
    audio_dir: Path | None
    steps: tuple[str, ...]
    pretrained_dir: Path
    bert_dir: Path
    hubert_dir: Path
    sovits_g: Path
    gpus: str = ""  # upstream's "0-0" style GPU list; empty = CPU workers
    workers: int = 1
    half: bool = False
    version: str = "v2"
    sv_model: Path | None = None  # speaker-verification model of the versions whose steps include "sv"

    module = "GPT_SoVITS.prepare"

    #: The step outputs of the experiment folder (upstream's numbered contract).
    OUTPUTS = {"text": "2-name2text.txt", "hubert": "4-cnhubert", "sv": "7-sv_cn", "semantic": "6-name2semantic.tsv"}

    def models(self) -> dict[str, Path | None]:
        """The pretrained model each step needs."""
        return {"text": self.bert_dir, "hubert": self.hubert_dir, "sv": self.sv_model, "semantic": self.sovits_g}

    def validate(self) -> None:
        known = version_spec(self.version).prepare_steps
        unknown = [step for step in self.steps if step not in known]
        if unknown:
            raise refusal("Version {version} has no formatting step {steps}.", version=self.version,
                          steps=", ".join(unknown))
        if self.list_path.is_dir():
            raise refusal("{path} is a folder: choose the .list label file inside it.", path=self.list_path)
        if not self.list_path.is_file():
            raise refusal("Label file not found: {path}", path=self.list_path)
        if self.audio_dir is not None and not self.audio_dir.is_dir():
            raise refusal("Audio folder not found: {path} (leave it empty to use the .list paths)",
                          path=self.audio_dir)
        for step in self.steps:
            model = self.models()[step]
            if model is None or not model.exists():
                raise refusal("Pretrained model for step {step} not found: {path}; see pretrained_models/README.md.",
                              step=step, path=model or "-")

    def to_argv(self) -> list[str]:
        argv = ["--exp-dir", str(self.exp_dir), "--list", str(self.list_path), "--steps", ",".join(self.steps),
                "--pretrained-dir", str(self.pretrained_dir), "--bert-dir", str(self.bert_dir),
                "--hubert-dir", str(self.hubert_dir), "--sovits-g", str(self.sovits_g),
                "--version", self.version, "--half" if self.half else "--no-half"]
        if "sv" in self.steps and self.sv_model is not None:
            argv += ["--sv-model", str(self.sv_model)]
        if self.audio_dir is not None:
            argv += ["--audio-dir", str(self.audio_dir)]
        argv += ["--gpus", self.gpus] if self.gpus else ["--workers", str(self.workers)]
        return argv

    def check_outputs(self) -> OutputCheck:
        return expect_files(*(self.exp_dir / self.OUTPUTS[step] for step in self.steps))

    def spec(self, log_file: Path | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file, check_outputs=self.check_outputs())


@dataclass(frozen=True)
class AsrJob:
    """Batch ASR (0c): a folder of clips → ``<output_dir>/<input folder name>.list``."""

    input_dir: Path
    output_dir: Path
    backend: str = "faster-whisper"
    size: str = "large-v3"
    language: str = "auto"
    precision: str = "int8"
    device: str = "auto"
    model_path: Path | None = None

    module = "tools.asr"

    @property
    def list_path(self) -> Path:
        from tools.asr import list_path_for

        return list_path_for(self.input_dir, self.output_dir)

    def validate(self) -> None:
        from tools.asr import BACKENDS

        info = BACKENDS.get(self.backend)
        if info is None:
            raise refusal("Unknown ASR backend {name!r}; choose one of {names}.", name=self.backend,
                          names=", ".join(BACKENDS))
        if self.language not in info.languages:
            raise refusal("{backend} does not offer language {language!r} (choose one of {languages}).",
                          backend=self.backend, language=self.language, languages=", ".join(info.languages))
        if not self.input_dir.is_dir():
            raise refusal("Input folder not found: {path} (give the folder of sliced clips).", path=self.input_dir)

    def to_argv(self) -> list[str]:
        argv = ["-i", str(self.input_dir), "-o", str(self.output_dir), "--backend", self.backend,
                "-s", self.size, "-l", self.language, "-p", self.precision, "--device", self.device]
        return argv + (["--model-path", str(self.model_path)] if self.model_path else [])

    def check_outputs(self) -> OutputCheck:
        return expect_files(self.list_path)

    def spec(self, log_file: Path | None = None, on_finished=None, flows: Mapping[str, str] | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file,
                       check_outputs=self.check_outputs(), on_finished=on_finished, flows=flows)


@dataclass(frozen=True)
class DenoiseJob:
    """Denoise (0bb): every clip of a folder → the same names in the output folder."""

    input_dir: Path
    output_dir: Path
    method: str = "spectral"
    prop_decrease: float = 0.9
    stationary: bool = True

    module = "tools.denoise"

    def validate(self) -> None:
        if not self.input_dir.is_dir():
            raise refusal("Input folder not found: {path} (give the folder of clips).", path=self.input_dir)
        if self.input_dir.resolve() == self.output_dir.resolve():
            raise refusal("The output folder must differ from the input folder (the originals are kept).")
        if not 0.0 <= self.prop_decrease <= 1.0:
            raise refusal("Noise reduction strength must be between 0 and 1 (got {value}).", value=self.prop_decrease)

    def to_argv(self) -> list[str]:
        return ["-i", str(self.input_dir), "-o", str(self.output_dir), "--method", self.method,
                "--prop-decrease", str(self.prop_decrease), "--stationary" if self.stationary else "--no-stationary"]

    def check_outputs(self) -> OutputCheck:
        return expect_files(self.output_dir)

    def spec(self, log_file: Path | None = None, on_finished=None, flows: Mapping[str, str] | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file,
                       check_outputs=self.check_outputs(), on_finished=on_finished, flows=flows)


@dataclass(frozen=True)
class VocalSeparationJob:
    """Vocal separation (0a): songs → vocal and accompaniment files, with a UVR5 model."""

    input: Path
    model: str
    model_dir: Path
    vocals_dir: Path
    others_dir: Path
    output_format: str = "flac"
    aggressiveness: int = 10

    module = "tools.vocal_separation"

    def options(self):
        from tools.vocal_separation import SeparationOptions

        return SeparationOptions(self.model, self.model_dir, self.vocals_dir, self.others_dir, self.output_format,
                                 self.aggressiveness)

    def validate(self) -> None:
        from tools.vocal_separation import check_model

        self.options().validate()
        if not self.input.exists():
            raise refusal("Input not found: {path} (give a song or a folder of songs).", path=self.input)
        check_model(self.model_dir, self.model)

    def to_argv(self) -> list[str]:
        return ["-i", str(self.input), "--model", self.model, "--model-dir", str(self.model_dir),
                "--vocals-dir", str(self.vocals_dir), "--others-dir", str(self.others_dir),
                "--format", self.output_format, "--aggressiveness", str(self.aggressiveness)]

    def check_outputs(self) -> OutputCheck:
        return expect_glob(self.vocals_dir, f"vocal_*.{self.output_format}")

    def spec(self, log_file: Path | None = None, on_finished=None, flows: Mapping[str, str] | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file,
                       check_outputs=self.check_outputs(), on_finished=on_finished, flows=flows)


@dataclass(frozen=True)
class LabelFixerJob:
    """The label fixer sub-WebUI (0d): a server that runs until it is closed."""

    list_path: Path
    port: int = 9871
    host: str = "127.0.0.1"
    batch_size: int = 10
    language: str = "en_US"
    audio_dir: Path | None = None

    module = "tools.label_fixer"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/"

    def validate(self) -> Path:
        """The .list file the fixer will open (a folder with one .list is accepted); raises ``LabelFileError``."""
        from GPT_SoVITS.labels import find_list_file

        found = find_list_file(self.list_path)
        if self.audio_dir is not None and not self.audio_dir.is_dir():
            raise refusal("Audio folder not found: {path} (leave it empty to use the .list paths)",
                          path=self.audio_dir)
        return found

    def to_argv(self) -> list[str]:
        argv = ["--list", str(self.list_path), "--port", str(self.port), "--host", self.host,
                "--batch-size", str(self.batch_size), "--lang", self.language]
        return argv + (["--audio-dir", str(self.audio_dir)] if self.audio_dir else [])

    def spec(self, log_file: Path | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file)


@dataclass(frozen=True)
class TrainJob:
    """1B fine-tuning: ``python -m <trainer module> --config <exp>/<run config>.yaml``.

    The SoVITS trainer is the version's (``VersionSpec.sovits_trainer``: GAN training, or LoRA for v4 with a
    ``SoVITSLoRARunConfig``); the GPT trainer is the same for every version. The run config is written into the
    experiment folder when the job starts; it is the permanent record of the run. Several GPU ids start one
    process per GPU through torchrun (``python -m torch.distributed.run --standalone``); the ids become
    ``CUDA_VISIBLE_DEVICES`` of the child.
    """

    trainer: str  # "sovits" or "gpt"
    config: object  # SoVITSRunConfig | SoVITSLoRARunConfig | GPTRunConfig
    config_path: Path
    gpus: str = ""  # upstream's "0-1" style list; empty = the device in the config (CPU without GPUs)

    @property
    def gpu_ids(self) -> list[str]:
        return [g for g in self.gpus.replace(",", "-").split("-") if g.strip()]

    @property
    def trainer_module(self) -> str:
        if self.trainer == "sovits":
            return version_spec(self.config.version).sovits_trainer
        return "GPT_SoVITS.train.gpt"

    @property
    def module(self) -> str:
        return "torch.distributed.run" if len(self.gpu_ids) > 1 else self.trainer_module

    def validate(self) -> None:
        from GPT_SoVITS.train.config import GPTRunConfig, sovits_run_config_class

        if self.trainer not in ("sovits", "gpt"):
            raise ValueError(f"unknown trainer {self.trainer!r}: use sovits or gpt")  # a programming error
        expected = sovits_run_config_class(self.config.version) if self.trainer == "sovits" else GPTRunConfig
        if not isinstance(self.config, expected):  # a programming error
            raise ValueError(f"{self.trainer_module} takes a {expected.__name__}, got {type(self.config).__name__}")
        bad = [g for g in self.gpu_ids if not g.strip().isdigit()]
        if bad:
            raise refusal("GPU ids must be numbers joined by '-' (e.g. 0-1), got {gpus!r}", gpus=self.gpus)
        exp = Path(self.config.exp_dir)
        needed = ("2-name2text.txt", "4-cnhubert", "5-wav32k") if self.trainer == "sovits" else (
            "2-name2text.txt", "6-name2semantic.tsv")
        missing = [name for name in needed if not (exp / name).exists()]
        if missing:
            raise refusal("The experiment {exp} is not formatted yet ({missing} missing): run 1A dataset formatting "
                          "first.", exp=exp, missing=", ".join(missing))

    def to_argv(self) -> list[str]:
        argv = ["--config", str(self.config_path)]
        if len(self.gpu_ids) > 1:
            return ["--standalone", f"--nproc_per_node={len(self.gpu_ids)}", "-m", self.trainer_module, *argv]
        return argv

    def check_outputs(self) -> OutputCheck:
        cfg = self.config
        if not cfg.save.release_weights:
            return expect_glob(Path(cfg.state_dir), f"{cfg.state_kind}_*.pt")
        # any release file of this run name: a run whose epochs were already done exits 0 without a new file
        return expect_glob(Path(cfg.weights_dir), cfg.release_glob)

    def spec(self, log_file: Path | None = None, on_finished=None) -> JobSpec:
        from GPT_SoVITS.config import save_config

        self.validate()
        save_config(self.config, self.config_path)
        gpu = ",".join(self.gpu_ids) if self.gpu_ids else None
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file, check_outputs=self.check_outputs(),
                       gpu=gpu, on_finished=on_finished, stop_flag="--stop-file",
                       stop_children_only=len(self.gpu_ids) > 1)
