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


@pytest.mark.parametrize("language", available_languages())
def test_translations_keep_every_placeholder(language):
    """A translation that drops ``{path}`` shows the user 'writes /.list' instead of the path."""
    import re

    field = re.compile(r"{(\w*)[^{}]*}")
    broken = {key: value for key, value in load_table(language).items()
              if sorted(field.findall(key)) != sorted(field.findall(value))}
    assert not broken, f"{language}: placeholders differ in {list(broken.items())[:3]}"


#: UI modules whose user-facing messages must all come from the translation table.
MESSAGE_SOURCES = [REPO_ROOT / "app", REPO_ROOT / "tools" / "label_fixer.py"]
TOASTS = ("Warning", "Info", "Error")


def _untranslated_messages(paths: list[Path]) -> list[str]:
    """Toasts (gr.Warning/Info/Error) and ``UserInputError(...)`` messages that are a literal, an f-string, a
    literal joined to something or ``str(...)``: messages built outside the translation table."""
    import ast

    def built_outside(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant | ast.JoinedStr) or (isinstance(node, ast.BinOp) and any(
                isinstance(side, ast.Constant | ast.JoinedStr) for side in (node.left, node.right))):
            return True
        return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("str", "repr")

    found = []
    files = [p for root in paths for p in ([root] if root.is_file() else sorted(root.rglob("*.py")))]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func, arg = node.func, node.args[0]
            toast = isinstance(func, ast.Attribute) and func.attr in TOASTS and isinstance(func.value, ast.Name) \
                and func.value.id == "gr"
            if toast and built_outside(arg):
                found.append(f"{path.name}:{node.lineno} gr.{func.attr}")
            if isinstance(func, ast.Name) and func.id == "UserInputError" and built_outside(arg):
                found.append(f"{path.name}:{node.lineno} UserInputError")
    return found


def test_every_message_shown_to_the_user_comes_from_the_translation_table():
    assert _untranslated_messages(MESSAGE_SOURCES) == []


def test_the_message_scan_finds_messages_built_outside_the_table(tmp_path: Path):
    (tmp_path / "m.py").write_text(
        "gr.Warning(str(exc))\ngr.Info(f'Saved {n}')\nraise gr.Error('Broken')\ngr.Warning('x' + name)\n"
        "raise UserInputError(str(exc))\n"
        "gr.Warning(i18n('Fine'))\ngr.Warning(text)\nraise UserInputError(ctx.i18n('Fine {x}', x=1))\n")
    assert [line.split()[0] for line in _untranslated_messages([tmp_path])] == [f"m.py:{n}" for n in range(1, 6)]
