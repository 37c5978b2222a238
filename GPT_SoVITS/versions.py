"""What a model version means, in one place.

Upstream spreads the meaning of ``"v2Pro"`` over twenty string tests; here every difference between versions is a
field of :class:`VersionSpec` and code asks the spec (``spec.uses_sv_embedding``, ``spec.prepare_steps``), never
the name. The versions and what distinguishes them (spec §5.9, §13, §14):

=========  =======  ===========================================  ==================================  =========
version    phones   SoVITS                                       pretrained files                    audio
=========  =======  ===========================================  ==================================  =========
v1         322      VITS, full-band reference encoder             ``s2G488k.pth``, ``s1bert…2kh…``    32 kHz
v2         732      VITS, reference encoder on 704 bins           ``gsv-v2final-pretrained/``         32 kHz
v2Pro      732      v2 + speaker-verification embedding, gin 1024  ``v2Pro/s2Gv2Pro.pth``, ``s1v3``    32 kHz
v2ProPlus  732      v2Pro + 1.5× wider decoder                     ``v2Pro/s2Gv2ProPlus.pth``          32 kHz
v3         732      CFM mel generator + BigVGAN (24 kHz)           ``s2Gv3.pth``                       24 kHz
v4         732      CFM mel generator + 48 kHz vocoder             ``gsv-v4-pretrained/s2Gv4.pth``     48 kHz
=========  =======  ===========================================  ==================================  =========

The GPT of every version after v1 is the v2 GPT; only its pretrained file differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Versions in the order upstream released them (v2Pro and v2ProPlus came after v4).
RELEASE_ORDER = ("v1", "v2", "v3", "v4", "v2Pro", "v2ProPlus")
#: Upstream's default version (its webui starts in v2Pro).
DEFAULT_VERSION = "v2Pro"
#: ``s2.json`` values the Pro versions change (spec §13.2, compat kit v2pro §1.1).
_PRO_MODEL = {"gin_channels": 1024, "p_dropout": 0.0}
_PRO_PLUS_MODEL = {**_PRO_MODEL, "upsample_initial_channel": 768, "upsample_kernel_sizes": (20, 16, 8, 2, 2)}
SV_MODEL_FILE = "sv/pretrained_eres2netv2w24s4ep4.ckpt"


class UnknownVersionError(ValueError):
    """A version name no spec exists for."""


@dataclass(frozen=True)
class VersionSpec:
    """Everything that differs between model versions."""

    name: str
    symbols: str  # phone table: "v1" (322 phones) or "v2" (732)
    sovits_family: str  # "vits": flow + HiFi-GAN at 32 kHz; "cfm": flow-matching mel generator + vocoder
    sample_rate: int  # of the synthesised audio
    # --- SoVITS architecture: s2.json "model" values that differ from upstream's s2.json (v2)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    uses_sv_embedding: bool = False  # the style vector adds a speaker-verification embedding (sv_emb, ge_to512)
    full_band_reference: bool = False  # v1's reference encoder reads every spectrogram bin (later ones 704)
    discriminator_periods: tuple[int, ...] = (2, 3, 5, 7, 11)  # () = trained without a discriminator (v3/v4)
    # --- files
    release_tag: bytes | None = None  # upstream's 2-byte header of release files (None: a plain zip, "PK")
    pretrained_sovits_g: str = ""  # paths inside upstream's pretrained_models folder (the D: "s2G" → "s2D")
    pretrained_gpt: str = ""
    pretrained_vocoder: str = ""  # the separate mel vocoder of the flow-matching versions
    weights_suffix: str = ""  # GPT_weights<suffix>/, SoVITS_weights<suffix>/
    # --- pipeline
    prepare_steps: tuple[str, ...] = ("text", "hubert", "semantic")  # 1A steps, in order
    sovits_trainer: str = "GPT_SoVITS.train.sovits"  # module of the SoVITS fine-tuning job (v3/v4: LoRA)
    trainable: bool = True  # offered in the launcher's training version choice
    supported: bool = True  # this project can load and run it

    @property
    def n_symbols(self) -> int:
        return 322 if self.symbols == "v1" else 732

    @property
    def fine_tunes_with_lora(self) -> bool:
        """SoVITS fine-tuning is LoRA on the frozen flow-matching model (v3/v4), not GAN training of the whole
        generator: no discriminator, no text-module learning rate, a LoRA rank to choose."""
        return self.sovits_family == "cfm"

    def weights_dirs(self, root: Path) -> tuple[Path, Path]:
        """Release folders ``(GPT_weights*, SoVITS_weights*)`` of this version under ``root``."""
        return Path(root) / f"GPT_weights{self.weights_suffix}", Path(root) / f"SoVITS_weights{self.weights_suffix}"


_PRO_STEPS = ("text", "hubert", "sv", "semantic")
_PRO_PERIODS = (2, 3, 5, 7, 11, 17, 23)
VERSIONS: dict[str, VersionSpec] = {spec.name: spec for spec in (
    VersionSpec("v1", "v1", "vits", 32000, full_band_reference=True, pretrained_sovits_g="s2G488k.pth",
                pretrained_gpt="s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt"),
    VersionSpec("v2", "v2", "vits", 32000, weights_suffix="_v2",
                pretrained_sovits_g="gsv-v2final-pretrained/s2G2333k.pth",
                pretrained_gpt="gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt"),
    VersionSpec("v2Pro", "v2", "vits", 32000, model_overrides=_PRO_MODEL, uses_sv_embedding=True,
                discriminator_periods=_PRO_PERIODS, release_tag=b"05", weights_suffix="_v2Pro",
                pretrained_sovits_g="v2Pro/s2Gv2Pro.pth", pretrained_gpt="s1v3.ckpt", prepare_steps=_PRO_STEPS),
    VersionSpec("v2ProPlus", "v2", "vits", 32000, model_overrides=_PRO_PLUS_MODEL, uses_sv_embedding=True,
                discriminator_periods=_PRO_PERIODS, release_tag=b"06", weights_suffix="_v2ProPlus",
                pretrained_sovits_g="v2Pro/s2Gv2ProPlus.pth", pretrained_gpt="s1v3.ckpt", prepare_steps=_PRO_STEPS),
    VersionSpec("v3", "v2", "cfm", 24000, discriminator_periods=(), release_tag=b"03", weights_suffix="_v3",
                pretrained_sovits_g="s2Gv3.pth", pretrained_gpt="s1v3.ckpt", trainable=False, supported=False,
                sovits_trainer="GPT_SoVITS.train.sovits_lora"),
    VersionSpec("v4", "v2", "cfm", 48000, discriminator_periods=(), release_tag=b"04", weights_suffix="_v4",
                pretrained_sovits_g="gsv-v4-pretrained/s2Gv4.pth", pretrained_gpt="s1v3.ckpt",
                pretrained_vocoder="gsv-v4-pretrained/vocoder.pth", sovits_trainer="GPT_SoVITS.train.sovits_lora"),
)}


def version_spec(name: str) -> VersionSpec:
    """The spec of a version name (``"v2Pro"``…); :class:`UnknownVersionError` names the known ones."""
    try:
        return VERSIONS[name]
    except KeyError:
        raise UnknownVersionError(f"unknown model version {name!r}; known versions: {', '.join(VERSIONS)}") from None


def supported_versions() -> tuple[str, ...]:
    """Versions this project runs, in release order."""
    return tuple(v for v in RELEASE_ORDER if VERSIONS[v].supported)


def trainable_versions() -> tuple[str, ...]:
    """Versions the launcher offers for fine-tuning, in release order."""
    return tuple(v for v in RELEASE_ORDER if VERSIONS[v].supported and VERSIONS[v].trainable)


#: Every 2-byte header upstream's readers accept in place of a zip's ``PK``: tag → (version, holds LoRA weights).
#: Upstream writes only 03–06 today; 00–02 come from older releases.
HEADER_TAGS: dict[bytes, tuple[str, bool]] = {
    b"00": ("v1", False), b"01": ("v2", False), b"02": ("v3", False), b"03": ("v3", True), b"04": ("v4", True),
    b"05": ("v2Pro", False), b"06": ("v2ProPlus", False),
}
