"""One typed configuration approach: frozen dataclasses, loaded from YAML/dicts, saved as YAML.

Defaults live in the dataclasses; ``configs/*.yaml`` files only override. Unknown keys are an error (a typo in
a config file must not be silently ignored). Change a config with ``dataclasses.replace``, never by mutation.
Model-architecture configs live next to their models (``GPT_SoVITS/models``) and use the same loader.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from GPT_SoVITS.fileio import atomic_write_text

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or dict does not match its dataclass."""


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(non_none[0], value, where)
        return value
    if origin in (tuple,) and args:
        items = list(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(items))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, items, strict=True)))
    if origin in (list,) and args:
        return [_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass ``cls`` from a (nested) mapping; unknown keys raise :class:`ConfigError`."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {cls.__name__}; "
                          f"valid keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    return cls(**kwargs)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data dict of a dataclass (paths as strings, tuples as lists), suitable for YAML/JSON/checkpoints."""

    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def load_config(cls: type[T], source: Path | str | Mapping[str, Any] | None = None,
                overrides: Mapping[str, Any] | None = None) -> T:
    """Load ``cls`` from a YAML file or mapping, applying nested ``overrides`` on top."""
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"Config file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = dict(loaded)
    if overrides:
        base = to_dict(from_dict(cls, data)) if data else {}
        data = _deep_merge(base, overrides)
    return from_dict(cls, data, where=str(source) if isinstance(source, (str, Path)) else cls.__name__)


def save_config(cfg: Any, path: Path) -> None:
    """Write ``cfg`` as YAML, atomically."""
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), allow_unicode=True, sort_keys=False))


@dataclass(frozen=True)
class Ports:
    """Upstream's default ports, kept so users' bookmarks and scripts keep working."""

    main: int = 9874  # the launcher
    uvr5: int = 9873  # vocal separation sub-WebUI
    inference: int = 9872  # inference WebUI
    label_fixer: int = 9871  # label proofreading sub-WebUI
    api: int = 9880  # HTTP API


@dataclass(frozen=True)
class WebUISettings:
    """Launcher settings (``configs/webui.yaml`` overrides these defaults)."""

    ports: Ports = Ports()
    host: str = "127.0.0.1"  # 0.0.0.0 exposes the UI to the network: an explicit choice only
    exp_root: Path = Path("logs")  # experiments live in <exp_root>/<name>, relative to the repository root
    output_root: Path = Path("output")  # default outputs of the dataset tools
    pretrained_dir: Path = Path("pretrained_models")  # upstream's pretrained folder layout inside
    weights_root: Path = Path(".")  # holds the release folders GPT_weights_<version>/ and SoVITS_weights_<version>/
    default_exp_name: str = "xxx"  # upstream's placeholder experiment name
