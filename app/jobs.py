"""Typed job specs: UI values → validated dataclass → argv for ``python -m <module>``.

Each spec knows its module, its argv (``to_argv``) and the outputs it promises (``check_outputs``).
``tests/unit/test_jobs.py`` checks that every spec's argv parses back to the same values with the tool's own
argparse parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.processes import JobSpec, OutputCheck, expect_files, expect_glob
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
            raise FileNotFoundError(f"Input not found: {self.input} (give an audio file or a folder of audio files).")
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1 (got {self.processes}).")

    def to_argv(self) -> list[str]:
        p, m = self.params, self.mix
        return [str(self.input), str(self.output_dir), "--threshold", str(p.threshold),
                "--min-length", str(p.min_length), "--min-interval", str(p.min_interval),
                "--hop-size", str(p.hop_size), "--max-sil-kept", str(p.max_sil_kept),
                "--max", str(m.max_peak), "--alpha", str(m.alpha),
                "--processes", str(1 if self.input.is_file() else self.processes)]

    def check_outputs(self) -> OutputCheck:
        return expect_glob(self.output_dir, "*.wav")

    def spec(self, log_file: Path | None = None, on_finished=None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file,
                       check_outputs=self.check_outputs(), on_finished=on_finished)


@dataclass(frozen=True)
class PrepareJob:
    """Dataset formatting (1A): one step, or the one-click chain of all three."""

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

    module = "GPT_SoVITS.prepare"

    def validate(self) -> None:
        if self.list_path.is_dir():
            raise ValueError(f"{self.list_path} is a folder: choose the .list label file inside it.")
        if not self.list_path.is_file():
            raise FileNotFoundError(f"Label file not found: {self.list_path}")
        if self.audio_dir is not None and not self.audio_dir.is_dir():
            raise FileNotFoundError(f"Audio folder not found: {self.audio_dir} (leave it empty to use the .list paths)")
        needed = {"text": self.bert_dir, "hubert": self.hubert_dir, "semantic": self.sovits_g}
        for step in self.steps:
            if not needed[step].exists():
                raise FileNotFoundError(f"Pretrained model for step {step} not found: {needed[step]}; "
                                        f"see pretrained_models/README.md.")

    def to_argv(self) -> list[str]:
        argv = ["--exp-dir", str(self.exp_dir), "--list", str(self.list_path), "--steps", ",".join(self.steps),
                "--pretrained-dir", str(self.pretrained_dir), "--bert-dir", str(self.bert_dir),
                "--hubert-dir", str(self.hubert_dir), "--sovits-g", str(self.sovits_g),
                "--version", self.version, "--half" if self.half else "--no-half"]
        if self.audio_dir is not None:
            argv += ["--audio-dir", str(self.audio_dir)]
        argv += ["--gpus", self.gpus] if self.gpus else ["--workers", str(self.workers)]
        return argv

    def check_outputs(self) -> OutputCheck:
        outputs = {"text": self.exp_dir / "2-name2text.txt", "hubert": self.exp_dir / "4-cnhubert",
                   "semantic": self.exp_dir / "6-name2semantic.tsv"}
        return expect_files(*(outputs[step] for step in self.steps))

    def spec(self, log_file: Path | None = None) -> JobSpec:
        self.validate()
        return JobSpec(self.module, tuple(self.to_argv()), log_file=log_file, check_outputs=self.check_outputs())
