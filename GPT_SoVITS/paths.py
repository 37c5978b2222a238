"""Where things live: the repository root, the pretrained-model layout and the experiment folder contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from GPT_SoVITS.versions import SV_MODEL_FILE, version_spec

REPO_ROOT = Path(__file__).resolve().parents[1]

# Upstream keeps its pretrained folder inside the package (GPT_SoVITS/pretrained_models); we keep ours at the
# top level. The layout *inside* the folder is upstream's, so a user can copy upstream's folder as it is.
DEFAULT_PRETRAINED_DIR = REPO_ROOT / "pretrained_models"


@dataclass(frozen=True)
class PretrainedPaths:
    """The files of upstream's ``pretrained_models/`` folder; which ones a version uses comes from its spec."""

    root: Path = DEFAULT_PRETRAINED_DIR

    @property
    def bert(self) -> Path:
        """``chinese-roberta-wwm-ext-large`` folder (transformers format): tokenizer + masked LM."""
        return self.root / "chinese-roberta-wwm-ext-large"

    @property
    def hubert(self) -> Path:
        """``chinese-hubert-base`` folder (transformers HubertModel format)."""
        return self.root / "chinese-hubert-base"

    @property
    def sv(self) -> Path:
        """The speaker-verification model (ERes2NetV2) of v2Pro/v2ProPlus."""
        return self.root / SV_MODEL_FILE

    def sovits_g(self, version: str = "v2") -> Path:
        return self.root / version_spec(version).pretrained_sovits_g

    def sovits_d(self, version: str = "v2") -> Path:
        """The discriminator: next to the generator with ``s2G`` replaced by ``s2D``, as upstream names it."""
        return sovits_d_path_for(self.sovits_g(version))

    def gpt(self, version: str = "v2") -> Path:
        return self.root / version_spec(version).pretrained_gpt

    def vocoder(self, version: str) -> Path | None:
        """The mel vocoder of a flow-matching version (v4: ``gsv-v4-pretrained/vocoder.pth``), else None."""
        name = version_spec(version).pretrained_vocoder
        return self.root / name if name else None

    def required(self, version: str, training: bool = False) -> list[Path]:
        """The files (and folders) a version needs: to synthesise, or with ``training`` also to fine-tune."""
        spec = version_spec(version)
        needed = [self.bert, self.hubert, self.gpt(version), self.sovits_g(version)]
        if spec.uses_sv_embedding:
            needed.append(self.sv)
        if spec.pretrained_vocoder:
            needed.append(self.root / spec.pretrained_vocoder)
        if training and spec.discriminator_periods:
            needed.append(self.sovits_d(version))
        return needed

    def missing(self, version: str, training: bool = False) -> list[Path]:
        return [path for path in self.required(version, training) if not path.exists()]


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
    def sv_dir(self) -> Path:
        """Speaker-verification embeddings ``<wav name>.pt`` ([1, 20480]) of the Pro versions."""
        return self.root / "7-sv_cn"

    @property
    def name2semantic(self) -> Path:
        return self.root / "6-name2semantic.tsv"

    @property
    def logs_dir(self) -> Path:
        """Log files of every job run for this experiment."""
        return self.root / "logs"

    def sovits_dir(self, version: str = "v2") -> Path:
        return self.root / f"logs_s2_{version}"

    def sovits_lora_dir(self, version: str, rank: int) -> Path:
        """Training states of v3/v4 LoRA fine-tuning at ``rank`` (upstream's folder name)."""
        return self.root / f"logs_s2_{version}_lora_{rank}"

    def sovits_lora_dirs(self, version: str) -> dict[int, Path]:
        """The LoRA training-state folders that exist for ``version``, by rank (ascending)."""
        found = {}
        prefix = f"logs_s2_{version}_lora_"
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.is_dir() and path.name.startswith(prefix) and path.name[len(prefix):].isdigit():
                    found[int(path.name[len(prefix):])] = path
        return dict(sorted(found.items()))

    def gpt_dir(self, version: str = "v2") -> Path:
        return self.root / f"logs_s1_{version}"


def weights_dirs(root: Path = REPO_ROOT, version: str = "v2") -> tuple[Path, Path]:
    """Release-weight folders ``(GPT_weights*, SoVITS_weights*)`` of a version (v1 uses the unsuffixed ones)."""
    return version_spec(version).weights_dirs(root)
