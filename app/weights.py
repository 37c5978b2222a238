"""The model files the inference pages offer: release files of every version's folders plus the pretrained bases.

Release files are named by the trainers ``<experiment>-e<epoch>.ckpt`` (GPT) and ``<experiment>_e<epoch>_s<step>.pth``
(SoVITS) inside ``GPT_weights_<version>/`` and ``SoVITS_weights_<version>/`` (v1: no suffix), as upstream names them.
The dropdowns show a label a person can tell apart (experiment · epoch · step · version) and keep the path as value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from GPT_SoVITS.paths import PretrainedPaths
from GPT_SoVITS.versions import DEFAULT_VERSION, RELEASE_ORDER, supported_versions, version_spec

_GPT_NAME = re.compile(r"^(?P<exp>.+)-e(?P<epoch>\d+)$")
_SOVITS_NAME = re.compile(r"^(?P<exp>.+)_e(?P<epoch>\d+)_s(?P<step>\d+)(?:_l(?P<rank>\d+))?$")  # _l<R>: v4 LoRA


@dataclass(frozen=True)
class WeightFile:
    """One model file the user can pick."""

    path: Path
    kind: str  # "gpt" or "sovits"
    version: str  # the version whose folder holds it (the pretrained base: its version)
    experiment: str | None = None  # None: a pretrained base model
    epoch: int | None = None
    step: int | None = None
    mtime: float = 0.0
    lora_rank: int | None = None  # v4 LoRA releases (``_l<rank>`` in the name)

    def label(self, pretrained_word: str = "pretrained") -> str:
        if self.experiment is None:
            return f"{pretrained_word} · {self.version} · {self.path.name}"
        parts = [self.experiment, f"e{self.epoch}" if self.epoch is not None else self.path.stem]
        if self.step is not None:
            parts.append(f"s{self.step}")
        if self.lora_rank is not None:
            parts.append(f"LoRA {self.lora_rank}")
        return " · ".join([*parts, self.version])


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _release(path: Path, kind: str, version: str) -> WeightFile:
    match = (_GPT_NAME if kind == "gpt" else _SOVITS_NAME).match(path.stem)
    groups = match.groupdict() if match else {}
    return WeightFile(path, kind, version, groups.get("exp", path.stem),
                      int(groups["epoch"]) if "epoch" in groups else None,
                      int(groups["step"]) if groups.get("step") else None, path.stat().st_mtime,
                      int(groups["rank"]) if groups.get("rank") else None)


def list_weights(weights_root: Path, pretrained: PretrainedPaths) -> tuple[list[WeightFile], list[WeightFile]]:
    """(GPT files, SoVITS files): the release folders of every supported version (newest version first, files in
    natural order), then the pretrained base models that exist."""
    gpts: list[WeightFile] = []
    sovits: list[WeightFile] = []
    versions = sorted(supported_versions(), key=RELEASE_ORDER.index, reverse=True)
    for version in versions:
        gpt_dir, sovits_dir = version_spec(version).weights_dirs(weights_root)
        gpts += [_release(p, "gpt", version) for p in sorted(gpt_dir.glob("*.ckpt"), key=_natural_key)]
        sovits += [_release(p, "sovits", version) for p in sorted(sovits_dir.glob("*.pth"), key=_natural_key)]
    seen: set[Path] = set()
    for version in versions:
        for path, kind, target in ((pretrained.gpt(version), "gpt", gpts),
                                   (pretrained.sovits_g(version), "sovits", sovits)):
            if path.is_file() and path not in seen:  # versions after v2 share the s1v3 GPT
                seen.add(path)
                target.append(WeightFile(path, kind, version))
    return gpts, sovits


def choices(files: list[WeightFile], pretrained_word: str = "pretrained") -> list[tuple[str, str]]:
    """Dropdown choices ``(label, path)``."""
    return [(f.label(pretrained_word), str(f.path)) for f in files]


def newest_pair(gpts: list[WeightFile], sovits: list[WeightFile], experiment: str,
                version: str) -> tuple[str | None, str | None]:
    """The default models of the inference pages: the newest fine-tuned SoVITS of the experiment (the selected
    version's folder first, else any) with the newest GPT of the experiment from the same version's folder when
    there is one; otherwise the selected version's pretrained base (then upstream's default version's)."""

    def newest(files: list[WeightFile], versions: list[str]) -> WeightFile | None:
        mine = [f for f in files if f.experiment == experiment and (not versions or f.version in versions)]
        return max(mine, key=lambda f: (f.mtime, f.epoch or 0, f.step or 0), default=None)

    def base(files: list[WeightFile]) -> WeightFile | None:
        bases = [f for f in files if f.experiment is None]
        return next((f for v in (version, DEFAULT_VERSION) for f in bases if f.version == v),
                    bases[0] if bases else None)

    sovits_file = newest(sovits, [version]) or newest(sovits, [])
    gpt_file = None
    if sovits_file is not None:
        gpt_file = newest(gpts, [sovits_file.version])
    gpt_file = gpt_file or newest(gpts, [version]) or newest(gpts, []) or base(gpts)
    sovits_file = sovits_file or base(sovits)
    return (str(gpt_file.path) if gpt_file else None), (str(sovits_file.path) if sovits_file else None)
