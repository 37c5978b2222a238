"""Every model-file format in one place: reading upstream's files safely, writing release and resume files.

The rest of the code sees only :class:`LoadedWeights` (a plain state dict, a plain config dict, the version)
and :class:`TrainState`.

Formats read
------------
* GPT release/pretrained ``*.ckpt``: ``{"weight": fp16 state dict with "model." keys, "config": dict,
  "info": "GPT-e<epoch>"}``.
* Lightning resume ``epoch=E-step=S.ckpt``: ``state_dict`` (``model.`` keys), ``hyper_parameters`` (holds a
  pickled ``pathlib`` path), optimizer/scheduler states, ``epoch``/``global_step``.
* SoVITS release ``*.pth``: ``{"weight": fp16 (no enc_q), "config": pickled utils.HParams, "info"}``; v2Pro and
  LoRA files replace the zip's leading ``PK`` with a 2-byte version tag (``GPT_SoVITS.versions.HEADER_TAGS``),
  which is put back in memory. We write the same tag, so upstream recognises our Pro files.
* SoVITS pretrained ``s2G*``/``s2D*`` (``{"weight": ...}``) and upstream resume ``G_*.pth``/``D_*.pth``
  (``{"model", "iteration" (= epoch), "optimizer", "learning_rate"}``).
* Our own resume files (:func:`save_train_state`).
* The v2Pro speaker-verification network ``sv/pretrained_eres2netv2w24s4ep4.ckpt``: a plain state dict (read
  by :func:`GPT_SoVITS.features.sv.load_sv`). Files in ``torch.save``'s legacy (non-zip) format load too.

Safety
------
Everything is read with ``torch.load(weights_only=True)``. The two non-tensor classes upstream pickles are
mapped, by name and only for the duration of one load (``torch.serialization.safe_globals``), to inert
stand-ins: ``utils.HParams`` → :class:`_HParamsStandIn` (a plain class: unpickling only fills its
``__dict__``) and ``pathlib.PosixPath``/``WindowsPath`` → the pure path classes. Nothing is imported or
registered in ``sys.modules``; any other global in a file (``os.system``, ``builtins.eval``, ...) is refused
by torch before it can run. Stand-ins are converted to plain dicts/strings before the data leaves this module.

Versions are decided from the content, never from the file size: the header tag; else the speaker-embedding
layers (``sv_emb.*``: v2Pro, or v2ProPlus when the decoder is the wider one) or the flow-matching decoder
(``cfm.*``: v3/v4); else the row count of ``enc_p.text_embedding.weight`` (322 → v1, otherwise v2).
"""

from __future__ import annotations

import io
import logging
import pathlib
import pickle
import re
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from GPT_SoVITS.fileio import atomic_path, atomic_write_bytes
from GPT_SoVITS.versions import HEADER_TAGS, VERSIONS, supported_versions, version_spec

log = logging.getLogger(__name__)

GPT_KEY_PREFIX = "model."  # upstream's Lightning wrapper prefix on GPT weight keys
FORMAT_VERSION = 1  # of the files we write
PRETRAINED_SOURCE = "https://huggingface.co/lj1995/GPT-SoVITS"
#: Output channels of v2ProPlus's first decoder layer (v2Pro: 512); tells the two apart in a file without a tag
PRO_PLUS_DECODER_WIDTH = 768
_PRO_VERSIONS = tuple(name for name, spec in VERSIONS.items() if spec.uses_sv_embedding)
_CFM_VERSIONS = tuple(name for name, spec in VERSIONS.items() if spec.sovits_family == "cfm")
LEGACY_PICKLE = b"\x80"  # torch.save before PyTorch 1.6 (or _use_new_zipfile_serialization=False): a bare pickle

_PRETRAINED_FILES = {
    "s1bert25hz-2kh-longer-epoch=68e-step=50232.ckpt": "the v1 pretrained GPT (text-to-semantic) model",
    "s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt": "the v2 pretrained GPT (text-to-semantic) model",
    "s2G488k.pth": "the v1 pretrained SoVITS generator",
    "s2D488k.pth": "the v1 pretrained SoVITS discriminator",
    "s2G2333k.pth": "the v2 pretrained SoVITS generator",
    "s2D2333k.pth": "the v2 pretrained SoVITS discriminator",
    "chinese-roberta-wwm-ext-large": "the Chinese BERT model folder (transformers format)",
    "chinese-hubert-base": "the Chinese HuBERT model folder (transformers format)",
    "s1v3.ckpt": "the v2Pro/v3/v4 pretrained GPT model",
    "s2Gv3.pth": "the v3 pretrained SoVITS generator",
    "s2Gv4.pth": "the v4 pretrained SoVITS generator",
    "s2Gv2Pro.pth": "the v2Pro pretrained SoVITS generator",
    "s2Dv2Pro.pth": "the v2Pro pretrained SoVITS discriminator",
    "s2Gv2ProPlus.pth": "the v2ProPlus pretrained SoVITS generator",
    "s2Dv2ProPlus.pth": "the v2ProPlus pretrained SoVITS discriminator",
    "pretrained_eres2netv2w24s4ep4.ckpt": "the speaker-verification model (ERes2NetV2) that v2Pro/v2ProPlus need",
}


class CheckpointError(ValueError):
    """A model file cannot be used: corrupt, unsafe, of the wrong kind or of an unsupported version."""


class UnsupportedVersionError(CheckpointError):
    """The file is a model version this project cannot run (yet)."""


@dataclass(frozen=True)
class LoadedWeights:
    """What any weight file boils down to.

    ``kind`` is the model the weights belong to: ``"gpt"``, ``"sovits"`` (generator) or
    ``"sovits_discriminator"``. GPT keys come *without* upstream's ``model.`` prefix. ``container`` says
    which file layout was read: ``"release"`` (release/pretrained weights), ``"lightning"``,
    ``"upstream_resume"`` (G_/D_ files) or ``"resume"`` (ours); resume containers also fill ``training``.
    """

    kind: str
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any]
    version: str
    info: str
    path: Path
    container: str = "release"
    training: dict[str, Any] | None = None
    lora_rank: int | None = None  # v3/v4 LoRA releases: the weights are an adapter over the version's base model


@dataclass(frozen=True)
class TrainState:
    """Everything needed to continue training (see :func:`save_train_state`)."""

    kind: str
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None
    scheduler: dict[str, Any] | None
    scaler: dict[str, Any] | None
    step: int
    epoch: int
    config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- safe loading
class _HParamsStandIn:
    """Inert stand-in for upstream's pickled ``utils.HParams`` (unpickling only sets ``__dict__``)."""


_SAFE_STAND_INS: list[tuple[Any, str]] = [
    (_HParamsStandIn, "utils.HParams"),
    (_HParamsStandIn, "GPT_SoVITS.utils.HParams"),
    (pathlib.PurePosixPath, "pathlib.PosixPath"),
    (pathlib.PureWindowsPath, "pathlib.WindowsPath"),
    (pathlib.PurePosixPath, "pathlib.PurePosixPath"),
    (pathlib.PureWindowsPath, "pathlib.PureWindowsPath"),
    (pathlib.PurePosixPath, "pathlib._local.PosixPath"),
    (pathlib.PureWindowsPath, "pathlib._local.WindowsPath"),
]


def _plain(value: Any) -> Any:
    """Stand-ins and paths → dicts and strings, recursively (tensors are left alone)."""
    if isinstance(value, _HParamsStandIn):
        return {k: _plain(v) for k, v in vars(value).items()}
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def describe_pretrained(path: Path) -> str:
    """A sentence naming a missing model file, what it is and where to get it."""
    path = Path(path)
    what = _PRETRAINED_FILES.get(path.name)
    if what is None:
        return f"Model file not found: {path}. Check the path, or pick another file."
    return (f"Missing {what}: expected at {path}. Download it from {PRETRAINED_SOURCE} (upstream's "
            f"pretrained_models folder) and put it at that path.")


def require_file(path: Path) -> Path:
    """``path`` if it exists, else :class:`FileNotFoundError` with :func:`describe_pretrained`'s text."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(describe_pretrained(path))
    return path


def safe_load(path: Path) -> tuple[Any, bytes | None]:
    """``torch.load(weights_only=True)`` with upstream's header tag handled; returns (object, tag or None).

    The tag is a non-``PK`` header (``b"05"``…, see :data:`GPT_SoVITS.versions.HEADER_TAGS`), else ``None``.
    """
    path = require_file(path)
    with open(path, "rb") as fh:
        head = fh.read(2)
    tag = None
    source: Path | io.BytesIO = path
    if head != b"PK" and not head.startswith(LEGACY_PICKLE):
        if head not in HEADER_TAGS:
            raise CheckpointError(f"{path}: not a PyTorch model file (it starts with {head!r}, expected a zip "
                                  f"archive or one of upstream's version tags). Pick a .ckpt/.pth weight file.")
        tag = head
        data = bytearray(path.read_bytes())
        data[:2] = b"PK"  # upstream overwrote the zip signature with a version tag; restore it in memory
        source = io.BytesIO(bytes(data))
    try:
        with torch.serialization.safe_globals(_SAFE_STAND_INS):
            obj = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first_line = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: refused to load: the file contains Python objects that a weight file should not "
            f"contain ({first_line[:200]}). Only load model files from sources you trust.") from None
    except (TypeError, AttributeError, KeyError, IndexError) as exc:
        # an allow-listed stand-in used in a way upstream's files never do (e.g. called with arguments)
        raise CheckpointError(f"{path}: refused to load: unexpected content for a weight file "
                              f"({type(exc).__name__}: {str(exc)[:200]}). Only load model files from sources "
                              f"you trust.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({type(exc).__name__}: "
                              f"{str(exc).strip()[:200]}). Copy or download it again.") from None
    return _plain(obj), tag


# ------------------------------------------------------------------------------------------- key helpers
def gpt_state_dict_from_upstream(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip the Lightning wrapper's ``model.`` prefix (upstream file layout → our model)."""
    missing = [k for k in state_dict if not k.startswith(GPT_KEY_PREFIX)]
    if missing:
        raise CheckpointError(f"GPT weights: key {missing[0]!r} lacks upstream's {GPT_KEY_PREFIX!r} prefix")
    return {k[len(GPT_KEY_PREFIX):]: v for k, v in state_dict.items()}


def gpt_state_dict_to_upstream(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Add the ``model.`` prefix (our model → upstream file layout)."""
    return OrderedDict((GPT_KEY_PREFIX + k, v) for k, v in state_dict.items())


def _kind_of(state_dict: Mapping[str, Any]) -> str | None:
    keys = list(state_dict)
    if any(k.startswith("model.ar_") or k.startswith("model.h.layers.") for k in keys):
        return "gpt"
    if any(k.startswith("discriminators.") for k in keys):
        return "sovits_discriminator"
    if any(k.startswith(("enc_p.", "dec.", "flow.", "quantizer.", "ref_enc.")) for k in keys):
        return "sovits"
    return None


_KIND_WORDS = {"gpt": "a GPT (text-to-semantic, .ckpt) weight file", "sovits": "a SoVITS generator (.pth) weight "
               "file", "sovits_discriminator": "a SoVITS discriminator (s2D*/D_*.pth) file"}


def _sovits_version(path: Path, state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any],
                    tag: bytes | None, kind: str) -> str:
    """The model version of a SoVITS generator or discriminator file, from its content (module docstring)."""
    model_cfg = config.get("model") if isinstance(config.get("model"), Mapping) else {}
    declared = str(model_cfg.get("version") or config.get("version") or "")
    tagged = HEADER_TAGS[tag][0] if tag is not None else None
    if tagged is not None and tagged not in ("v1", "v2"):  # 00/01 tags are old and the content decides, as upstream
        version = tagged
    elif any(k.startswith("cfm.") for k in state_dict):
        # v3 and v4 files have the same layout: only a declaration (or upstream's tag, above) tells them apart
        version = declared if declared in _CFM_VERSIONS else ("v3" if "v3" in path.name.lower() else "v4")
        if declared not in _CFM_VERSIONS:
            log.warning("%s names no version; its flow-matching layout is taken as %s", path, version)
    elif any(k.startswith("sv_emb.") for k in state_dict):
        conv_pre = state_dict.get("dec.conv_pre.weight")
        wide = conv_pre is not None and conv_pre.shape[0] == PRO_PLUS_DECODER_WIDTH
        version = declared if declared in _PRO_VERSIONS else ("v2ProPlus" if wide else "v2Pro")
    elif kind == "sovits_discriminator":  # a discriminator says only whether it has Pro's extra periods
        periods = {k.split(".")[1] for k in state_dict if k.startswith("discriminators.")}
        if len(periods) > len(version_spec("v2").discriminator_periods) + 1:
            version = declared if declared in _PRO_VERSIONS else "v2Pro"
        else:
            version = declared if declared in ("v1", "v2") else "v2"
    else:
        emb = state_dict.get("enc_p.text_embedding.weight")
        version = "v1" if emb is not None and emb.shape[0] == version_spec("v1").n_symbols else "v2"
    if version not in supported_versions():
        raise UnsupportedVersionError(f"{path}: this is a SoVITS {version} model, which is not supported yet "
                                      f"(supported: {', '.join(supported_versions())}).")
    if tagged == version and kind == "sovits":
        _check_tag_matches_content(path, version, state_dict)
    return version


def _check_tag_matches_content(path: Path, version: str, state_dict: Mapping[str, torch.Tensor]) -> None:
    """A header tag names the version; the weights must have that version's distinctive layers."""
    spec = version_spec(version)
    needed = "cfm." if spec.sovits_family == "cfm" else "sv_emb." if spec.uses_sv_embedding else None
    if needed is not None and not any(k.startswith(needed) for k in state_dict):
        raise CheckpointError(f"{path}: its header says SoVITS {version}, but it has no {needed[:-1]} weights, "
                              f"which every {version} model has; the file is damaged or was re-tagged by hand.")


def _gpt_version(state_dict: Mapping[str, torch.Tensor]) -> str:
    emb = state_dict.get("ar_text_embedding.word_embeddings.weight")
    return "v1" if emb is not None and emb.shape[0] == 512 else "v2"


# -------------------------------------------------------------------------------------------------- reading
def read_weights(path: Path, expect: str | None = None) -> LoadedWeights:
    """Read any supported model file; ``expect`` (``"gpt"``, ``"sovits"``, ...) checks its kind.

    Raises :class:`FileNotFoundError` (missing), :class:`CheckpointError` (corrupt, unsafe, wrong kind) or
    :class:`UnsupportedVersionError`.
    """
    path = Path(path)
    obj, tag = safe_load(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not a model file (it holds a {type(obj).__name__}, expected a dict)")
    loaded = _interpret(path, obj, tag)
    if expect is not None and loaded.kind != expect:
        raise CheckpointError(f"{path}: this is {_KIND_WORDS.get(loaded.kind, loaded.kind)}, but "
                              f"{_KIND_WORDS.get(expect, expect)} is expected here. Pick the other file.")
    return loaded


def _interpret(path: Path, obj: Mapping[str, Any], tag: str | None) -> LoadedWeights:
    if obj.get("format") == FORMAT_VERSION and "model" in obj and "kind" in obj and "step" in obj:
        state = _train_state_from(obj)
        return LoadedWeights(kind=_model_kind(state.kind), state_dict=state.model, config=state.config,
                             version=str(state.config.get("version", "v2")), info=f"step {state.step}", path=path,
                             container="resume", training=_training_dict(state))
    if "state_dict" in obj and "pytorch-lightning_version" in obj:
        hyper = obj.get("hyper_parameters") or {}
        sd = gpt_state_dict_from_upstream(obj["state_dict"])
        training = {k: obj.get(k) for k in ("epoch", "global_step", "optimizer_states", "lr_schedulers", "loops")}
        return LoadedWeights(kind="gpt", state_dict=sd, config=dict(hyper.get("config") or {}),
                             version=_gpt_version(sd), info=f"epoch={obj.get('epoch')}-step={obj.get('global_step')}",
                             path=path, container="lightning", training=training)
    if "weight" in obj or "model" in obj:
        container = "release" if "weight" in obj else "upstream_resume"
        raw = obj["weight"] if "weight" in obj else obj["model"]
        if not isinstance(raw, Mapping):
            raise CheckpointError(f"{path}: the weights entry is a {type(raw).__name__}, expected a state dict")
        kind = _kind_of(raw)
        if kind is None:
            raise CheckpointError(f"{path}: the weights match neither a GPT nor a SoVITS model "
                                  f"(first key: {next(iter(raw), None)!r})")
        config = dict(obj.get("config") or {})
        training = None
        if container == "upstream_resume":
            training = {"optimizer": obj.get("optimizer"), "epoch": obj.get("iteration"),
                        "learning_rate": obj.get("learning_rate")}
        if kind == "gpt":
            sd = gpt_state_dict_from_upstream(raw)
            version = _gpt_version(sd)
        else:
            sd = dict(raw)
            version = _sovits_version(path, sd, config, tag, kind)
        lora_rank = obj.get("lora_rank")
        if lora_rank is None and any(".lora_A." in k for k in sd):
            lora_rank = next(int(v.shape[0]) for k, v in sd.items() if ".lora_A." in k)
        return LoadedWeights(kind=kind, state_dict=sd, config=config, version=version,
                             info=str(obj.get("info", "")), path=path, container=container, training=training,
                             lora_rank=None if lora_rank is None else int(lora_rank))
    raise CheckpointError(f"{path}: unrecognised model file (top-level keys: {', '.join(map(str, list(obj)[:8]))})")


def load_gpt_weights(path: Path) -> LoadedWeights:
    """A GPT weight file (release, pretrained or Lightning resume); GPT keys without ``model.``."""
    return read_weights(path, expect="gpt")


def load_sovits_weights(path: Path) -> LoadedWeights:
    """A SoVITS generator file (release, pretrained ``s2G*`` or resume ``G_*``), v1 or v2."""
    return read_weights(path, expect="sovits")


# -------------------------------------------------------------------------------------------------- writing
def _fp16(state_dict: Mapping[str, torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    return OrderedDict((k, v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu())
                       for k, v in state_dict.items())


def _save(obj: Any, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    log.info("saved %s", path)
    return path


def save_gpt_weights(path: Path, state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any],
                     epoch: int) -> Path:
    """Write a ``GPT_weights*/<exp>-e<epoch>.ckpt`` release file that upstream can load too.

    ``state_dict`` is our model's (no prefix); ``config`` is upstream's full config dict (at least the
    ``model`` and ``data`` sections, e.g. from ``T2SConfig.to_upstream()`` merged into the training config).
    """
    return _save({"weight": _fp16(gpt_state_dict_to_upstream(state_dict)), "config": _plain(dict(config)),
                  "info": f"GPT-e{epoch}", "format": FORMAT_VERSION}, path)


def save_sovits_weights(path: Path, state_dict: Mapping[str, torch.Tensor], config: Mapping[str, Any],
                        epoch: int, step: int, version: str = "v2") -> Path:
    """Write a ``SoVITS_weights*/<exp>_e<epoch>_s<step>.pth`` release file (fp16, without ``enc_q``).

    The config is stored as a plain dict, not upstream's pickled ``HParams``; upstream's loaders wrap it in
    their attribute dict, which accepts a plain dict. A v1/v2 file starts with ``PK``; versions that upstream
    tags (v2Pro ``05``, v2ProPlus ``06``) get their tag in place of ``PK``, as upstream writes them, because
    upstream recognises those versions only by that tag.
    """
    weights = _fp16({k: v for k, v in state_dict.items() if "enc_q" not in k})
    obj = {"weight": weights, "config": _plain(dict(config)), "info": f"{epoch}epoch_{step}iteration",
           "format": FORMAT_VERSION}
    tag = version_spec(version).release_tag
    if tag is None:
        return _save(obj, path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = bytearray(buffer.getvalue())
    data[:2] = tag
    atomic_write_bytes(Path(path), bytes(data))
    log.info("saved %s (%s, header %s)", path, version, tag.decode())
    return Path(path)


def save_train_state(path: Path, *, kind: str, model: Mapping[str, torch.Tensor], step: int, epoch: int,
                     config: Mapping[str, Any], optimizer: Mapping[str, Any] | None = None,
                     scheduler: Mapping[str, Any] | None = None, scaler: Mapping[str, Any] | None = None,
                     extra: Mapping[str, Any] | None = None) -> Path:
    """Write a resume file (full precision) atomically; ``kind`` e.g. ``"t2s"``, ``"sovits_G"``, ``"sovits_D"``."""
    obj = {"format": FORMAT_VERSION, "kind": kind, "model": OrderedDict((k, v.detach().cpu()) for k, v in
                                                                        model.items()),
           "optimizer": optimizer, "scheduler": scheduler, "scaler": scaler, "step": int(step), "epoch": int(epoch),
           "config": _plain(dict(config)), "extra": _plain(dict(extra or {}))}
    return _save(obj, path)


def _train_state_from(obj: Mapping[str, Any]) -> TrainState:
    return TrainState(kind=str(obj["kind"]), model=dict(obj["model"]), optimizer=obj.get("optimizer"),
                      scheduler=obj.get("scheduler"), scaler=obj.get("scaler"), step=int(obj["step"]),
                      epoch=int(obj["epoch"]), config=dict(obj.get("config") or {}), extra=dict(obj.get("extra") or {}))


def _training_dict(state: TrainState) -> dict[str, Any]:
    return {"optimizer": state.optimizer, "scheduler": state.scheduler, "scaler": state.scaler,
            "step": state.step, "epoch": state.epoch, "extra": state.extra}


def _model_kind(train_kind: str) -> str:
    if train_kind.startswith("sovits_D"):
        return "sovits_discriminator"
    return "sovits" if train_kind.startswith("sovits") else "gpt"


def load_train_state(path: Path) -> TrainState:
    """Read a file written by :func:`save_train_state`."""
    obj, _ = safe_load(path)
    if not (isinstance(obj, Mapping) and obj.get("format") == FORMAT_VERSION and "step" in obj and "kind" in obj):
        raise CheckpointError(f"{path}: not a training resume file of this project (expected keys format, kind, "
                              f"model, step, ...). Upstream G_/D_/Lightning files are read with read_weights().")
    return _train_state_from(obj)


_STEP_RE = re.compile(r"_(\d+)\.pt$")


def train_state_path(folder: Path, kind: str, step: int) -> Path:
    """``<folder>/<kind>_<step:08d>.pt``."""
    return Path(folder) / f"{kind}_{step:08d}.pt"


def list_train_states(folder: Path, kind: str) -> list[Path]:
    """Resume files of ``kind`` in ``folder``, oldest step first."""
    found = []
    for p in Path(folder).glob(f"{kind}_*.pt"):
        m = _STEP_RE.search(p.name)
        if m and p.name == f"{kind}_{m.group(1)}.pt":
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_train_state(folder: Path, kind: str) -> Path | None:
    """The newest resume file of ``kind`` (by the step in its name), or ``None``."""
    states = list_train_states(folder, kind)
    return states[-1] if states else None


def rotate_train_states(folder: Path, kind: str, keep_last_n: int) -> list[Path]:
    """Delete all but the newest ``keep_last_n`` resume files of ``kind``; returns the deleted paths."""
    if keep_last_n < 1:
        raise ValueError(f"keep_last_n must be >= 1, got {keep_last_n}")
    old = list_train_states(folder, kind)[:-keep_last_n]
    for p in old:
        p.unlink()
    return old
