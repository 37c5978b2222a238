"""The project's implementation of the kit's weight recipe reproduces the kit's fingerprints exactly."""

import hashlib

import pytest

from GPT_SoVITS.dev.weight_recipe import compare_fingerprints, fingerprint
from tests.compat import COMPAT_DIR, json_file, recipe_weights, schema


@pytest.mark.parametrize("name", ["t2s_v2", "sovits_v2_train", "mpd_v2"])
def test_recipe_matches_fingerprints(name):
    state = recipe_weights(name)
    assert list(state) == [entry[0] for entry in schema(name)["entries"]]
    assert compare_fingerprints(state, json_file("weights_fingerprints.json")[name]) == []


def test_inference_schema_is_training_schema_without_enc_q():
    infer_keys = [e[0] for e in schema("sovits_v2_infer")["entries"]]
    train_keys = [e[0] for e in schema("sovits_v2_train")["entries"]]
    assert infer_keys == [k for k in train_keys if not k.startswith("enc_q.")]


def test_fingerprint_detects_a_changed_value():
    state = dict(recipe_weights("mpd_v2"))
    key = next(iter(state))
    changed = state[key].clone()
    changed.view(-1)[0] += 0.5
    expected = {key: fingerprint(state[key])}
    assert compare_fingerprints({key: changed}, expected)


def test_kit_copy_is_intact():
    for line in (COMPAT_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        name = name.lstrip("*")
        if name == "make_weights.py":
            continue  # deliberately not copied: the recipe is implemented from its description
        assert hashlib.sha256((COMPAT_DIR / name).read_bytes()).hexdigest() == digest, name
