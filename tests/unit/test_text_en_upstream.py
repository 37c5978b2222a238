"""English readings that users hear, on new sentences (not the kit's): upstream's number words, pauses and "and"s,
its dictionaries' pronunciations, and the deliberate deviations where upstream is plainly wrong.

Each expected text was worked out by hand from upstream's normaliser (``en_normalization/expend.py``: list
ordinals, spaced arithmetic, negative numbers, thousands commas, 12-hour times, units written after a number,
pounds and dollars, decimals, fractions, ordinals, then every other number, spelled by ``inflect``) and checked
word by word against ``inflect``, the library upstream spells with.
"""

from __future__ import annotations

import pytest

from GPT_SoVITS.text import clean_text, en
from GPT_SoVITS.text import en_normalization as en_norm

# (kind, text, upstream's norm_text)
UPSTREAM = [
    ("number", "The city has 1234567 people.",
     "The city has one million, two hundred thirty-four thousand, five hundred sixty-seven people."),
    ("number", "We sold 45,300 copies.", "We sold forty-five thousand, three hundred copies."),
    ("number", "It costs 3500 dollars.", "It costs three thousand, five hundred dollars."),
    ("number", "Room 101 is empty.", "Room one hundred one is empty."),
    ("number", "In 1905, 2010 and 2000.", "In nineteen oh five, twenty ten and two thousand."),
    ("number", "Over 10000 fans came.", "Over ten thousand fans came."),
    ("ordinal", "It was the 103rd day.", "It was the one hundred and third day."),
    ("ordinal", "Our 21st birthday and 1000th visit.", "Our twenty-first birthday and one thousandth visit."),
    ("ordinal", "The 2nd and 1234th entries.",
     "The second and one thousand, two hundred and thirty-fourth entries."),
    ("ordinal", "1. Preheat the oven.", "first, Preheat the oven."),
    ("fraction", "Add 3/4 cup and 1/2 spoon.", "Add three fourths cup and one half spoon."),
    ("fraction", "About 2/3 of them and 5/1.", "About two thirds of them and five."),
    ("fraction", "Only 1/101 passed.", "Only one one hundred and first passed."),
    ("time", "The train leaves at 13:45.", "The train leaves at one forty-five p.m."),
    ("time", "Wake up at 6:00.", "Wake up at six o'clock a.m."),
    ("time", "Lunch at 12:30.", "Lunch at twelve thirty p.m."),
    ("unit", "Run 5km and swim 200m.", "Run five kilometers and swim two hundred meters."),
    ("unit", "Wait 1h or 30min.", "Wait one hour or thirty minutes."),
    ("unit", "Bake at 180°C for 25min.", "Bake at one hundred eighty degrees celsius for twenty-five minutes."),
    ("unit", "A 2L bottle and a 6ft pole.", "A two liters bottle and a six feet pole."),
    ("arithmetic", "3 + 4 = 7", "three plus four Equals seven"),
    ("arithmetic", "10 - 3 is 7.", "ten minus three is seven."),
    ("arithmetic", "-5 is cold.", "negative five is cold."),
    ("currency", "A budget of $2,500 was approved.", "A budget of twenty-five hundred dollars was approved."),
    ("currency", "It costs $1,999.", "It costs nineteen ninety-nine dollars."),
    ("currency", "Pay £3.50 now.", "Pay three pounds and fifty pence now."),
]  # fmt: skip

# (text, studio's norm_text, upstream's norm_text, why upstream's is wrong)
DEVIATIONS = [
    ("Meet at 7:05 pm.", "Meet at seven oh five P M.", "Meet at seven five a.m. pm.",
     "the written pm is ignored for a 24-hour guess and read again; minutes 1-9 lack 'oh'"),
    ("In the 1990s.", "In the nineteen nineties.", "In the nineteen ninety seconds.", "the s read as seconds"),
    ("It costs €5.", "It costs five euros.", "It costs five.", "the euro sign is dropped"),
    ("A $2 million deal.", "A two million dollars deal.", "A two dollars million deal.", "word order"),
    ("Wait until 9:05.", "Wait until nine oh five a.m.", "Wait until nine five a.m.", "minutes 1-9 lack 'oh'"),
    ("Leave at 0:15.", "Leave at twelve fifteen a.m.", "Leave at zero fifteen a.m.", "hour 0 is twelve"),
    ("Agent 007 is here.", "Agent zero zero seven is here.", "Agent seven is here.", "leading zeros dropped"),
    ("Pick 1,2,3.", "Pick one,two,three.", "Pick one hundred twenty-three.", "list commas taken as thousands"),
    ("I am 25. Then I left.", "I am twenty-five. Then I left.", "I am twenty-fifth, Then I left.",
     "a sentence-final number read as a list ordinal"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "text", "expected"), UPSTREAM, ids=[f"{k}-{t}" for k, t, _ in UPSTREAM])
def test_reads_as_upstream(kind: str, text: str, expected: str) -> None:
    assert clean_text(text, "en").norm_text == expected


@pytest.mark.parametrize(("text", "studio", "upstream", "why"), DEVIATIONS, ids=[d[0] for d in DEVIATIONS])
def test_deliberate_deviation(text: str, studio: str, upstream: str, why: str) -> None:
    result = clean_text(text, "en").norm_text
    assert result == studio and result != upstream, why


def test_thousands_commas_become_pause_phones() -> None:
    result = clean_text("We have 1234567 users.", "en")
    assert result.phones.count(",") == 2  # "one million, two hundred thirty-four thousand, five hundred ..."
    assert " and " not in result.norm_text  # no "and" in a cardinal


def test_ordinal_and_is_spoken() -> None:
    phones = " ".join(clean_text("the 101st time", "en").phones)
    assert "AH0 N D F ER1 S T" in phones  # "... hundred and first"


# Words whose first pronunciation in upstream's CMU dictionary (cmudict 0.7b, GPT_SoVITS/text/cmudict.rep) differs
# from the current CMUdict release; upstream's wins. Checked against upstream's file.
UPSTREAM_DICTIONARY = [
    ("realism", "R IY1 AH0 L IH0 Z M"),
    ("t-shirt", "T IY1 S ER2 T"),
    ("chatgpt", "CH AE1 T JH IY1 P IY1 T IY1"),  # upstream's hot dictionary
]


@pytest.mark.parametrize(("word", "phones"), UPSTREAM_DICTIONARY)
def test_upstream_dictionary_entries_win(word: str, phones: str) -> None:
    assert " ".join(en.word_phones(word)) == phones


def test_hot_dictionary_overrides_cmu(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    hot = tmp_path / "hot.rep"
    hot.write_text("# comment\nHELLO HH EH1 L OW0\n", encoding="utf-8")
    monkeypatch.setattr(en, "HOT_DICT_PATH", hot)
    en.cmudict.cache_clear()
    en.word_phones.cache_clear()
    try:
        assert en.word_phones("hello") == ("HH", "EH1", "L", "OW0")
    finally:
        monkeypatch.undo()
        en.cmudict.cache_clear()
        en.word_phones.cache_clear()
    assert en.word_phones("hello") == ("HH", "AH0", "L", "OW1")  # the CMU entry when the hot file lacks the word


@pytest.fixture(scope="module")
def inflect_engine():
    return pytest.importorskip("inflect").engine()  # upstream's speller, installed with g2p-en


def _sample_numbers() -> list[int]:
    import random

    rng = random.Random(14)
    big = [rng.randrange(10**k, 10**(k + 1)) for k in range(4, 16) for _ in range(200)]
    round_ = [10**k + j for k in range(3, 16) for j in (0, 1, 20, 21, 100, 101, 1000)]
    return list(range(20000)) + big + round_


def test_number_words_equal_inflects(inflect_engine) -> None:
    numbers = _sample_numbers()
    for n in numbers:
        assert en_norm.cardinal(n) == inflect_engine.number_to_words(n, andword=""), n
        assert en_norm.cardinal_with_and(n) == inflect_engine.number_to_words(n), n
    for n in numbers[:20000:7] + numbers[20000::5]:
        assert en_norm.ordinal(n) == inflect_engine.number_to_words(inflect_engine.ordinal(str(n))), n


def test_year_reading_equals_upstreams_rule(inflect_engine) -> None:
    # upstream: 2000 and 2001-2009 and whole hundreds special, else inflect with group=2 and zero="oh"
    for n in range(1001, 3000):
        if n == 2000:
            expected = "two thousand"
        elif 2000 < n < 2010:
            expected = "two thousand " + inflect_engine.number_to_words(n % 100)
        elif n % 100 == 0:
            expected = inflect_engine.number_to_words(n // 100) + " hundred"
        else:
            expected = inflect_engine.number_to_words(n, andword="", zero="oh", group=2).replace(", ", " ")
        assert en_norm.year(n) == expected, n
