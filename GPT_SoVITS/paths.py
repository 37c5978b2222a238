"""Where things live: the repository root, the pretrained-model layout and the experiment folder contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Upstream keeps its pretrained folder inside the package (GPT_SoVITS/pretrained_models); we keep ours at the
# top level. The layout *inside* the folder is upstream's, so a user can copy upstream's folder as it is.
DEFAULT_PRETRAINED_DIR = REPO_ROOT / "pretrained_models"


@dataclass(frozen=True)
class PretrainedPaths:
    """The files of upstream's ``pretrained_models/`` folder that a v1/v2 pipeline uses."""

    root: Path = DEFAULT_PRETRAINED_DIR

    @property
    def bert(self) -> Path:
        """``chinese-roberta-wwm-ext-large`` folder (transformers format): tokenizer + masked LM."""
        return self.root / "chinese-roberta-wwm-ext-large"

    @property
    def hubert(self) -> Path:
        """``chinese-hubert-base`` folder (transformers HubertModel format)."""
        return self.root / "chinese-hubert-base"

    def sovits_g(self, version: str = "v2") -> Path:
        return self.root / ("s2G488k.pth" if version == "v1" else "gsv-v2final-pretrained/s2G2333k.pth")

    def sovits_d(self, version: str = "v2") -> Path:
        return self.root / ("s2D488k.pth" if version == "v1" else "gsv-v2final-pretrained/s2D2333k.pth")

    def gpt(self, version: str = "v2") -> Path:
        if version == "v1":
            return self.root / "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt"
        return self.root / "gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"


def sovits_d_path_for(g_path: Path) -> Path:
    """Upstream convention: the discriminator sits next to the generator with ``s2G`` replaced by ``s2D``."""
    return g_path.with_name(g_path.name.replace("s2G", "s2D"))


#: Characters and names a Windows folder name cannot have (checked everywhere, so experiments can move between systems).
_NOT_IN_WINDOWS_NAMES = frozenset('<>:"|?*') | {chr(i) for i in range(32)}
_WINDOWS_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                                   *(f"LPT{i}" for i in range(1, 10))})


@dataclass(frozen=True)
class ExperimentPaths:
    """The numbered artefact contract of an experiment folder (``logs/<exp>/``), kept from upstream."""

    root: Path

    @classmethod
    def for_experiment(cls, exp_root: Path, name: str) -> ExperimentPaths:
        name = name.strip()
        if not name or name in {".", ".."} or any(sep in name for sep in ("/", "\\")):
            raise ValueError(f"Invalid experiment name {name!r}: use a plain folder name without slashes.")
        if any(c in _NOT_IN_WINDOWS_NAMES for c in name) or name.endswith(".") \
                or name.split(".")[0].upper() in _WINDOWS_DEVICE_NAMES:
            raise ValueError(f"Invalid experiment name {name!r}: Windows cannot make such a folder (no < > : \" | ? "
                             "*, no trailing dot, not a device name such as CON or NUL); experiments stay portable.")
        return cls(Path(exp_root) / name)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def name2text(self) -> Path:
        return self.root / "2-name2text.txt"

    @property
    def bert_dir(self) -> Path:
        return self.root / "3-bert"

    @property
    def hubert_dir(self) -> Path:
        return self.root / "4-cnhubert"

    @property
    def wav32k_dir(self) -> Path:
        return self.root / "5-wav32k"

    @property
    def name2semantic(self) -> Path:
        return self.root / "6-name2semantic.tsv"

    @property
    def logs_dir(self) -> Path:
        """Log files of every job run for this experiment."""
        return self.root / "logs"

    def sovits_dir(self, version: str = "v2") -> Path:
        return self.root / f"logs_s2_{version}"

    def gpt_dir(self, version: str = "v2") -> Path:
        return self.root / f"logs_s1_{version}"


def weights_dirs(root: Path = REPO_ROOT, version: str = "v2") -> tuple[Path, Path]:
    """Release-weight folders ``(GPT_weights*, SoVITS_weights*)`` for a version (v1 uses the unsuffixed ones)."""
    suffix = "" if version == "v1" else f"_{version}"
    return root / f"GPT_weights{suffix}", root / f"SoVITS_weights{suffix}"
