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


@cache
def schema(name: str) -> dict[str, Any]:
    """``name`` is one of t2s_v2, sovits_v2_train, sovits_v2_infer, mpd_v2, or ``<kit subfolder>/<name>``
    (e.g. ``v4/sovits_v4_infer`` for ``v4/schema_sovits_v4_infer.json``)."""
    folder, _, leaf = name.rpartition("/")
    return load_schema(COMPAT_DIR / folder / f"schema_{leaf}.json")


@cache
def recipe_weights(name: str) -> dict[str, torch.Tensor]:
    """The kit's deterministic weights for a schema (cached per test session; do not mutate)."""
    return make_state_dict(schema(name))


@cache
def reference(name: str) -> dict[str, np.ndarray]:
    """A reference ``.npz`` (ref_t2s_v2, ref_sovits_v2, ref_spectrogram) as a dict of arrays."""
    with np.load(COMPAT_DIR / f"{name}.npz") as data:
        return {key: data[key] for key in data.files}


@cache
def json_file(name: str) -> Any:
    return json.loads((COMPAT_DIR / name).read_text(encoding="utf-8"))
