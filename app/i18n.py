"""UI text lookup. Every user-visible string in ``app/`` and the tool UIs goes through :class:`I18n`.

Keys are the English source strings (readable at the call site); ``app/locale/<lang>.json`` maps each key to
its translation. ``tests/unit/test_i18n.py`` fails when a key used in code is missing from a locale file.
The core library never sees translated strings.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from GPT_SoVITS import oscompat

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "en_US"


def available_languages() -> list[str]:
    return sorted(p.stem for p in LOCALE_DIR.glob("*.json"))


@cache
def load_table(language: str) -> dict[str, str]:
    path = LOCALE_DIR / f"{language}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def system_language() -> str:
    """The system locale if we have a translation for it (``zh_CN``, ``zh_TW`` → ``zh_CN``), else en_US.

    On Windows the locale is the display language of the user's Windows (:func:`GPT_SoVITS.oscompat.user_language`).
    """
    code = (oscompat.user_language() or "").replace("-", "_")
    languages = available_languages()
    if code in languages:
        return code
    if code.startswith("zh") and "zh_CN" in languages:
        return "zh_CN"
    return DEFAULT_LANGUAGE


class I18n:
    """``i18n("Text {n}", n=3)`` → the translation of ``"Text {n}"``, formatted."""

    def __init__(self, language: str | None = None):
        language = language or system_language()
        if language not in available_languages():
            raise ValueError(f"No UI translation for {language!r}; available: {', '.join(available_languages())}")
        self.language = language
        self._table = load_table(language)

    def __call__(self, key: str, **fmt: object) -> str:
        text = self._table.get(key)
        if text is None:
            log.warning("missing %s translation for %r", self.language, key)
            text = key
        return text.format(**fmt) if fmt else text


class UserInputError(ValueError):
    """Bad input from the UI, shown to the user in the panel's status (and as a warning toast).

    Tab code, which has ``i18n`` at hand, raises it with a translated message: ``UserInputError(i18n("…"))``.
    Code without a UI language (the job specs of ``app/jobs.py``) raises :func:`refusal` instead: an English
    template and its values that :meth:`text` translates when the message is shown.
    """

    def __init__(self, message: str, key: str | None = None, params: dict[str, object] | None = None):
        super().__init__(message)
        self.key, self.params = key, dict(params or {})

    def text(self, i18n: I18n) -> str:
        return i18n(self.key, **self.params) if self.key else str(self)


def refusal(key: str, **params: object) -> UserInputError:
    """A :class:`UserInputError` from a translation key (a literal, so the key scanner sees it) and its values."""
    return UserInputError(key.format(**params), key, params)


#: Callables whose first literal argument is a translation key (``refusal`` translates later, when shown).
KEY_CALLS = ("i18n", "refusal")


def scan_keys(roots: list[Path]) -> dict[str, list[str]]:
    """Every literal key passed to ``i18n(...)``, ``<obj>.i18n(...)`` or ``refusal(...)`` under ``roots``:
    key → ``file:line``."""
    import ast

    found: dict[str, list[str]] = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                func = node.func if isinstance(node, ast.Call) else None
                is_lookup = (isinstance(func, ast.Name) and func.id in KEY_CALLS) or (
                    isinstance(func, ast.Attribute) and func.attr == "i18n")  # i18n("…") or ctx.i18n("…")
                if (is_lookup and node.args and isinstance(node.args[0], ast.Constant)
                        and isinstance(node.args[0].value, str)):
                    found.setdefault(node.args[0].value, []).append(f"{path}:{node.lineno}")
    return found
