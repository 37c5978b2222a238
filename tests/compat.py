"""Access to the compatibility kit copied into ``tests/data/compat`` (reference data computed by upstream)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from GPT_SoVITS.dev.weight_recipe import load_schema, make_state_dict

COMPAT_DIR = Path(__file__).resolve().parent / "data" / "compat"


def kit_file(name: str, prefix: str = "", suffix: str = "") -> Path:
    """``"v2pro/sovits_v2pro_train"`` → ``COMPAT_DIR/v2pro/<prefix>sovits_v2pro_train<suffix>`` (kits in subfolders)."""
    folder, _, base = name.rpartition("/")
    return COMPAT_DIR / folder / f"{prefix}{base}{suffix}"


@cache
def schema(name: str) -> dict[str, Any]:
    """``name`` is e.g. t2s_v2, sovits_v2_train, sovits_v2_infer, mpd_v2, v2pro/sovits_v2pro_train."""
    return load_schema(kit_file(name, "schema_", ".json"))


@cache
def recipe_weights(name: str) -> dict[str, torch.Tensor]:
    """The kit's deterministic weights for a schema (cached per test session; do not mutate).

    The v2 kit's weight-norm gains were computed in float64, the later kits' (subfolders) in float32.
    """
    return make_state_dict(schema(name), torch.float32 if "/" in name else torch.float64)


@cache
def reference(name: str) -> dict[str, np.ndarray]:
    """A reference ``.npz`` (ref_t2s_v2, ref_sovits_v2, ref_spectrogram, v2pro/ref_sv…) as a dict of arrays."""
    with np.load(kit_file(name, suffix=".npz")) as data:
        return {key: data[key] for key in data.files}


@cache
def json_file(name: str) -> Any:
    return json.loads(kit_file(name).read_text(encoding="utf-8"))
