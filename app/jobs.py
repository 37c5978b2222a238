"""Typed job specs: UI values → validated dataclass → argv for ``python -m <module>``.

Each spec knows its module, its argv (``to_argv``) and the outputs it promises (``check_outputs``).
``tests/unit/test_jobs.py`` checks that every spec's argv parses back to the same values with the tool's own
argparse parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.processes import JobSpec, OutputCheck, expect_glob
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
