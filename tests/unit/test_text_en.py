"""English front end: compat-kit cases (exact phones and ids), normalisation table, OOV paths, offline use."""

from __future__ import annotations

import importlib
import sys

import pytest

from GPT_SoVITS.text import clean_text, cleaned_text_to_sequence, en
from GPT_SoVITS.text.en_normalization import cardinal, normalize, ordinal, year
from tests.compat import json_file

# Cases where we deliberately read better than upstream:
# id -> (our norm_text, (start, stop) of upstream's phones that change, our phones there, reason).
DEVIATIONS = {
    "en_title_money_date": (
        "Doctor Smith paid three dollars and fifty cents for two coffees on Jan. fifth, twenty twenty-four.",
        (0, 5),
        ["D", "AA1", "K", "T", "ER0"],
        "upstream reads the title 'Dr.' before a name as the CMUdict entry 'drive' followed by a pause",
    ),
    "en_acronyms_time": (
        "N A S A and the F B I met at ten thirty A M.",
        (28, 33),
        [],
        "upstream appends 'a.m.' (read 'uh. em.') and keeps the written 'AM': the marker was read twice",
    ),
}


def _english_cases() -> list[dict]:
    return [c for c in json_file("text_frontend_cases.json")["cases"] if c["language"] == "en"]


@pytest.mark.parametrize("case", _english_cases(), ids=lambda c: c["id"])
def test_compat_case(case: dict) -> None:
    phones, word2ph, norm_text = clean_text(case["text"], "en", version="v2")
    assert word2ph is None
    if case["id"] in DEVIATIONS:
        expected_norm, (start, stop), ours, _reason = DEVIATIONS[case["id"]]
        assert norm_text == expected_norm
        # Everything outside the deliberately changed words still matches upstream.
        assert phones == case["phones"][:start] + ours + case["phones"][stop:]
        return
    assert norm_text == case["norm_text"]
    assert phones == case["phones"]
    assert cleaned_text_to_sequence(phones, "v2") == case["phone_ids_v2"]


def test_deviation_title_reads_doctor() -> None:
    phones, _, _ = clean_text("Dr. Smith paid.", "en")
    assert phones[:5] == ["D", "AA1", "K", "T", "ER0"]  # "Doctor", no pause before the name


def test_deviation_time_marker_read_once() -> None:
    phones, _, norm = clean_text("We met at 10:30 AM.", "en")
    assert norm == "We met at ten thirty A M."
    assert phones[-4:] == ["EY1", "EH1", "M", "."]


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety-nine"),
        (100, "one hundred"),
        (101, "one hundred one"),
        (1_000_001, "one million one"),
        (-7, "minus seven"),
        (12_345, "twelve thousand, three hundred forty-five"),
    ],
)
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "first"),
        (2, "second"),
        (3, "third"),
        (12, "twelfth"),
        (20, "twentieth"),
        (21, "twenty-first"),
        (100, "one hundredth"),
    ],
)
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1905, "nineteen oh five"),
        (2000, "two thousand"),
        (2007, "two thousand seven"),
        (1900, "nineteen hundred"),
        (2024, "twenty twenty-four"),
        (3000, "three thousand"),
    ],
)
def test_year(n: int, words: str) -> None:
    assert year(n) == words


@pytest.mark.parametrize(
    ("text", "norm"),
    [
        ("It costs $1.01.", "It costs one dollar and one cent."),
        ("Only $0.50 left", "Only fifty cents left"),
        ("£20 please", "twenty pounds please"),
        ("$2 million", "two million dollars"),
        ("1,234,567 people", "one million, two hundred thirty-four thousand, five hundred sixty-seven people"),
        ("Add 3/4 cup and 1/3 spoon", "Add three fourths cup and one third spoon"),
        ("Meet at 9:05 pm; or 17:00.", "Meet at nine oh five P M, or five o'clock p.m."),
        ("Agent 007", "Agent zero zero seven"),
        ("It was -5 degrees", "It was negative five degrees"),
        ("I.e. this, e.g. that", "that is this, for example that"),
        ("Café “déjà vu”…", "Cafe 'deja vu'."),
        ("Wait!!! What??", "Wait! What?"),
        ("The 21st century", "The twenty-first century"),
        (
            "5km at 60 mph, 1 kg, 2.5kg",
            "five kilometers at sixty miles per hour, one kilogram, two point five kilograms",
        ),
        ("16GB and 37°C", "sixteen gigabytes and thirty-seven degrees celsius"),
        ("ＯＫ，２０２４！", "O K,twenty twenty-four!"),
    ],
)
def test_normalize_table(text: str, norm: str) -> None:
    assert normalize(text) == norm


def test_compound_split_and_possessive() -> None:
    d = en.cmudict()
    assert "dataloader" not in d
    assert en.word_phones("dataloader") == tuple(d["data"] + d["loader"])
    assert en.word_phones("smithers's")[-2:] == ("AH0", "Z")
    assert en.word_phones("kubrick's")[-1] == "S"  # voiceless final K
    assert en.word_phones("xyz") == tuple(d["x"] + d["y"] + d["z"])  # short OOV is spelled


def test_neural_fallback_reads_unknown_word() -> None:
    word = "blorptastic"
    assert word not in en.cmudict()
    phones = en.neural_g2p()(word)
    assert 6 <= len(phones) <= 14
    assert phones[0] == "B" and phones[1] == "L"
    assert all(p in en.cmudict()["abandon"] or p.rstrip("012").isalpha() for p in phones)


def test_homograph_uses_context() -> None:
    def read(text: str) -> list[str]:
        return clean_text(text, "en").phones

    assert read("I will read it.")[4:7] == ["R", "IY1", "D"]
    assert read("He has read it.")[5:8] == ["R", "EH1", "D"]
    assert read("We record the record.")[2:7] == ["R", "IH0", "K", "AO1", "R"]  # verb after a subject
    assert read("We record the record.")[-6:-1] == ["R", "EH1", "K", "ER0", "D"]  # noun after "the"
    assert read("Read the book.")[:3] == ["R", "IY1", "D"]  # imperative: clause start before an object
    assert read("Record it, then play the record.")[:5] == ["R", "IH0", "K", "AO1", "R"]


def test_removed_acronyms_are_spelled() -> None:
    assert "ai" not in en.cmudict()
    assert en.word_phones("ai") == ("EY1", "AY1")


def test_works_without_nltk_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing NLTK (or g2p_en's G2p) would look for downloaded corpora; the front end must not need it.
    monkeypatch.setitem(sys.modules, "nltk", None)
    module = importlib.reload(en)
    try:
        phones, _ = module.g2p(module.normalize("Offline tokenizers work."))
        assert phones[-1] == "."
    finally:
        importlib.reload(en)


def test_numpy_g2p_equals_g2p_en_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # g2p_en's own predict() on the same weights; its constructor needs NLTK data, so stub exactly that.
    nltk = pytest.importorskip("nltk")
    monkeypatch.setattr(nltk, "download", lambda *args, **kwargs: False)
    g2p_module = importlib.import_module("g2p_en.g2p")

    class NoCorpus:
        def dict(self) -> dict:
            return {}

    monkeypatch.setattr(g2p_module, "cmudict", NoCorpus())
    reference = g2p_module.G2p()
    words = ["blorptastic", "sovits", "kubernetes", "huggingface", "xylophonic", "fintech", "o'neil", "zq"]
    for word in words:
        assert en.neural_g2p()(word) == reference.predict(word), word


def test_tokenizer_agrees_with_tweet_tokenizer() -> None:
    tweet = pytest.importorskip("nltk.tokenize").TweetTokenizer().tokenize  # needs no downloaded data
    texts = [c["norm_text"] for c in _english_cases()] + [
        "Well - it's the 'best' thing, isn't it? Rock-n-roll!",
        "O' Neil's dog-friendly cafe's menu, a.m. A M.",
    ]
    for text in texts:
        assert en.tokenize(text) == tweet(text)
