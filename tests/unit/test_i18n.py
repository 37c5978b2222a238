"""Every UI string used in code exists in every locale file, and locale files carry no stale keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.i18n import I18n, available_languages, load_table, scan_keys
from GPT_SoVITS.paths import REPO_ROOT

UI_ROOTS = [REPO_ROOT / "app", REPO_ROOT / "tools"]


def test_required_languages_exist():
    assert {"zh_CN", "en_US"} <= set(available_languages())


@pytest.mark.parametrize("language", available_languages())
def test_every_key_used_in_code_is_translated(language):
    used = scan_keys(UI_ROOTS)
    table = load_table(language)
    missing = {key: places[0] for key, places in used.items() if key not in table}
    assert not missing, f"{language} lacks {len(missing)} key(s), e.g. {list(missing.items())[:5]}"
    empty = [key for key, value in table.items() if not value.strip()]
    assert not empty


@pytest.mark.parametrize("language", available_languages())
def test_no_stale_keys(language):
    used = scan_keys(UI_ROOTS)
    stale = sorted(set(load_table(language)) - set(used))
    assert not stale, f"{language} has keys no code uses: {stale[:5]}"


def test_lookup_formats_and_falls_back_to_key(caplog):
    i18n = I18n("zh_CN")
    assert i18n("Stop") == "终止"
    assert i18n("no such key {x}", x=1) == "no such key 1"
    assert "missing zh_CN translation" in caplog.text


def test_unknown_language_is_a_clear_error():
    with pytest.raises(ValueError, match="available"):
        I18n("xx_XX")


def test_scanner_finds_keys(tmp_path: Path):
    (tmp_path / "m.py").write_text('i18n("Hello")\nx = i18n(f"no")\nother("Skip")\n')
    assert list(scan_keys([tmp_path])) == ["Hello"]
