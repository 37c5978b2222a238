"""Japanese front end: Open JTalk (``pyopenjtalk`` 0.4.1 + the naist-jdic 1.11 dictionary) with prosody marks.

Upstream reads Japanese with pyopenjtalk and the naist-jdic 1.11 dictionary; the models were trained on those
phones and marks, so we use the same engine and dictionary data. The dictionary is Debian's
``open-jtalk-mecab-naist-jdic`` (``install.sh`` installs it), or the copy pyopenjtalk downloads into its package
folder on other systems. pyopenjtalk would download its dictionary at first use (and reads the environment
variable ``OPEN_JTALK_DICT_DIR`` at import); we never use its module-level functions: :func:`_openjtalk` builds
the ``OpenJTalk`` object itself with an explicit dictionary folder, so nothing is downloaded and no environment
variable is read or set. ``pyopenjtalk-plus`` (same import name) is used only where pyopenjtalk cannot be
installed (the Windows package: pyopenjtalk has no Windows wheel), with a warning: its engine groups accent phrases
differently, so its marks can differ from upstream's.

Per run of Japanese characters the full-context labels are turned into phones plus the espnet-style prosody marks
``[`` (pitch rises), ``]`` (pitch falls), ``#`` (accent-phrase boundary; not in the symbol table, so the cleaner
turns it into ``UNK`` exactly as upstream does) and ``_`` (pause). Unvoiced vowels are lower-cased. Everything
between Japanese runs (punctuation, symbols) is kept as its own token, mapped to ASCII punctuation; spaces are
dropped. No word2ph: Japanese segments get zero BERT features.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
import threading
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

# Characters Open JTalk reads: ASCII letters and digits, 々, kana, CJK ideographs, full-width digits and letters,
# half-width katakana. Anything else separates runs and is kept as a mark.
_JAPANESE_CHARS = r"A-Za-z\d\u3005\u3040-\u30ff\u4e00-\u9fff\uff11-\uff19\uff21-\uff3a\uff41-\uff5a\uff66-\uff9d"
_RUN = re.compile(f"[{_JAPANESE_CHARS}]+")
_MARKS = {"：": ",", "；": ",", "，": ",", "。": ".", "！": "!", "？": "?", "\n": ".", "·": ",", "、": ",", "...": "…"}
_SYMBOL_WORDS = (("％", "パーセント"),)
_REPEATED_PUNCTUATION = re.compile(r"([!?…,.\-])[!?…,.\-]+")

_PHONE = re.compile(r"-(.*?)\+")
_A1 = re.compile(r"/A:([0-9\-]+)\+")
_A2 = re.compile(r"\+(\d+)\+")
_A3 = re.compile(r"\+(\d+)/")
_F1 = re.compile(r"/F:(\d+)_")
_E3 = re.compile(r"!(\d+)_")
_MISSING = -50  # value of an "xx" (undefined) label field


#: Where the naist-jdic 1.11 dictionary is looked for, in order: Debian's package, then the folder pyopenjtalk
#: downloads into (on other systems pyopenjtalk puts it there the first time its own module functions run
#: online, e.g. ``python -c "import pyopenjtalk; pyopenjtalk.g2p('あ')"``).
DEBIAN_DICTIONARY = Path("/var/lib/mecab/dic/open-jtalk/naist-jdic")
_PYOPENJTALK_DICTIONARY_NAME = "open_jtalk_dic_utf_8-1.11"
PYOPENJTALK_VERSION = "0.4.1"
_lock = threading.Lock()  # an OpenJTalk instance is not thread-safe; the API serves requests from threads


def _unavailable(message: str) -> Exception:
    from GPT_SoVITS.text.cleaner import LanguageUnavailableError

    return LanguageUnavailableError(message)


def dictionary_candidates() -> list[Path]:
    """Folders that may hold the Open JTalk dictionary, in the order they are tried."""
    candidates = [DEBIAN_DICTIONARY]
    spec = importlib.util.find_spec("pyopenjtalk")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        candidates.append(package / _PYOPENJTALK_DICTIONARY_NAME)
        candidates.append(package / "dictionary")  # the copy pyopenjtalk-plus wheels carry
    return candidates


def find_dictionary() -> Path:
    """The first candidate folder that holds a compiled dictionary (``sys.dic``)."""
    for folder in dictionary_candidates():
        if (folder / "sys.dic").is_file():
            return folder
    raise _unavailable(
        "Japanese needs the Open JTalk dictionary naist-jdic 1.11, found in none of: "
        + ", ".join(str(c) for c in dictionary_candidates())
        + ". On Debian/Ubuntu: sudo apt-get install open-jtalk-mecab-naist-jdic (bash install.sh does this)."
    )


@lru_cache(maxsize=1)
def _openjtalk():
    """One Open JTalk engine per process, built on first use with an explicit dictionary folder."""
    try:
        version = importlib.metadata.version("pyopenjtalk")
    except importlib.metadata.PackageNotFoundError:
        version = None
    try:
        from pyopenjtalk.openjtalk import OpenJTalk
    except ImportError as e:
        raise _unavailable(
            f"Japanese needs the package pyopenjtalk: pip install pyopenjtalk=={PYOPENJTALK_VERSION}"
        ) from e
    if version is None:  # pyopenjtalk-plus (same import name): the Windows package's engine (pyopenjtalk has no
        # Windows wheel); same phones, other accent rules
        log.warning("Japanese is read with pyopenjtalk-plus: the phones are upstream's but accent marks can differ "
                    "from what the models were trained on. For upstream's marks: pip uninstall -y pyopenjtalk-plus "
                    "&& pip install pyopenjtalk==%s (needs a C/C++ compiler)", PYOPENJTALK_VERSION)
    elif version != PYOPENJTALK_VERSION:
        log.warning("pyopenjtalk %s installed; the studio is tested with %s", version, PYOPENJTALK_VERSION)
    dictionary = find_dictionary()
    log.info("Open JTalk dictionary: %s", dictionary)
    return OpenJTalk(dn_mecab=str(dictionary).encode("utf-8"))


def normalize(text: str) -> str:
    """Japanese text is read as written; only runs of repeated ASCII punctuation collapse to the first mark."""
    return _REPEATED_PUNCTUATION.sub(r"\1", text)


def _field(pattern: re.Pattern[str], label: str) -> int:
    m = pattern.search(label)
    return int(m.group(1)) if m else _MISSING


def labels_to_prosody_phones(labels: list[str], drop_unvoiced_vowels: bool = True) -> list[str]:
    """Phones with prosody marks from Open JTalk full-context labels (``^``/``$``/``?`` mark the ends)."""
    phones: list[str] = []
    last = len(labels) - 1
    for n, label in enumerate(labels):
        phone = _PHONE.search(label).group(1)
        if drop_unvoiced_vowels and phone in ("A", "E", "I", "O", "U"):
            phone = phone.lower()
        if phone == "sil":
            if n == 0:
                phones.append("^")
            elif n == last:
                question = _field(_E3, label)
                phones.append("?" if question == 1 else "$")
            continue
        if phone == "pau":
            phones.append("_")
            continue
        phones.append(phone)
        a1, a2, a3, f1 = _field(_A1, label), _field(_A2, label), _field(_A3, label), _field(_F1, label)
        a2_next = _field(_A2, labels[n + 1]) if n < last else _MISSING
        if a3 == 1 and a2_next == 1 and phone in "aeiouAEIOUNcl":
            phones.append("#")  # accent phrase ends here
        elif a1 == 0 and a2_next == a2 + 1 and a2 != f1:
            phones.append("]")  # accent nucleus: pitch falls after this mora
        elif a2 == 1 and a2_next == 2:
            phones.append("[")  # pitch rises after the first mora
    return phones


@lru_cache(maxsize=4096)
def _run_phones(run: str) -> tuple[str, ...]:
    jtalk = _openjtalk()
    with _lock:
        labels = jtalk.make_label(jtalk.run_frontend(run))
    return tuple(labels_to_prosody_phones(labels)[1:-1])  # drop the start/end markers


def g2p(norm_text: str) -> tuple[list[str], None]:
    """Phones with prosody marks for Japanese text (word2ph is None for Japanese)."""
    text = norm_text
    for symbol, words in _SYMBOL_WORDS:
        text = text.replace(symbol, words)
    phones: list[str] = []
    pos = 0
    for m in _RUN.finditer(text):
        phones.extend(_marks(text[pos : m.start()]))
        phones.extend(_run_phones(m.group(0)))
        pos = m.end()
    phones.extend(_marks(text[pos:]))
    return phones, None


def _marks(between: str) -> list[str]:
    return [_MARKS.get(c, c) for c in between if not c.isspace()]
