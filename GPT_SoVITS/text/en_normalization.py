"""English text normalisation: numbers, money, times, ordinals, units, abbreviations, acronyms.

The output keeps only ``A-Z a-z ' . , ? ! -`` and spaces, which is what the English g2p reads.
Numbers are spelled as upstream's normaliser spells them (with ``inflect``; we reproduce its output, tested
against it), because the GPT was trained on those words and pauses: commas between groups of thousands ("one
million, two hundred thirty-four thousand, ..."; each comma is a pause phone), no "and" in cardinals but "and" in
ordinals and fraction numerators ("one hundred and third"), numbers between 1000 and 3000 read as years
("twenty twenty-four", "twenty-five hundred"), clock times without am/pm read on the 12-hour clock ("one
forty-five p.m."). Where upstream is plainly wrong the studio reads better; docs/text_frontend.md lists each case.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_MILLS = ["", " thousand", " million", " billion", " trillion", " quadrillion", " quintillion", " sextillion",
          " septillion", " octillion", " nonillion", " decillion"]
_IRREGULAR_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                       "nine": "ninth", "twelve": "twelfth"}
_LAST_WORD = re.compile(r"(\w+)$")

# The spelling below reproduces what ``inflect.engine().number_to_words`` writes (upstream's speller) — tests
# compare the two on every number below 20,000 and on large ones — without inflect's import time (seconds) and
# per-call cost (0.2 ms).


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]}-{_ONES[ones]}"


def _below_thousand(n: int, andword: str) -> str:
    hundreds, rest = divmod(n, 100)
    if not hundreds:
        return _below_hundred(rest)
    head = f"{_ONES[hundreds]} hundred"
    if not rest:
        return head
    return f"{head} {andword} {_below_hundred(rest)}" if andword else f"{head} {_below_hundred(rest)}"


def _spell(n: int, andword: str) -> str:
    """inflect's cardinal: groups of thousands separated by ", "; a last group of one word joins with ``andword``."""
    if n == 0:
        return "zero"
    if n >= 1000 ** len(_MILLS):
        return " ".join(_ONES[int(d)] for d in str(n))
    chunks = []
    mill = 0
    while n:
        n, group = divmod(n, 1000)
        if group:
            chunks.append(_below_thousand(group, andword) + _MILLS[mill])
        mill += 1
    chunks.reverse()
    if len(chunks) > 1 and " " not in chunks[-1]:
        joiner = f" {andword} " if andword else " "
        return ", ".join(chunks[:-1]) + joiner + chunks[-1]
    return ", ".join(chunks)


def _ordinal_words(words: str) -> str:
    def last(m: re.Match[str]) -> str:
        word = m.group(1)
        if word in _IRREGULAR_ORDINALS:
            return _IRREGULAR_ORDINALS[word]
        return word[:-1] + "ieth" if word.endswith("y") else word + "th"

    return _LAST_WORD.sub(last, words)


@lru_cache(maxsize=4096)
def cardinal(n: int) -> str:
    """Spell a whole number as upstream does: 12345 -> "twelve thousand, three hundred forty-five"."""
    if n < 0:
        return "minus " + cardinal(-n)
    return _spell(n, "")


def cardinal_with_and(n: int) -> str:
    """inflect's default spelling, with "and" after hundred: 101 -> "one hundred and one" (fraction numerators)."""
    return _spell(n, "and")


@lru_cache(maxsize=4096)
def ordinal(n: int) -> str:
    """Spell an ordinal as upstream does: 21 -> "twenty-first", 103 -> "one hundred and third"."""
    return _ordinal_words(_spell(n, "and"))


@lru_cache(maxsize=4096)
def year(n: int) -> str:
    """Upstream's reading of a written number: years style when 1000 < n < 3000, else :func:`cardinal`.

    2000 -> "two thousand", 2007 -> "two thousand seven", 1900 -> "nineteen hundred", 1905 -> "nineteen oh five",
    2500 -> "twenty-five hundred", 3500 -> "three thousand, five hundred".
    """
    if not 1000 < n < 3000:
        return cardinal(n)
    if n == 2000:
        return "two thousand"
    if 2000 < n < 2010:
        return "two thousand " + cardinal(n - 2000)
    high, low = divmod(n, 100)
    if low == 0:
        return cardinal(high) + " hundred"
    return f"{_below_hundred(high)} {'oh ' + _ONES[low] if low < 10 else _below_hundred(low)}"


def decade(n: int) -> str:
    """A decade written with an s: 1990 -> "nineteen nineties", 80 -> "eighties", 2000 -> "two thousands"."""
    words = year(n)
    head, sep, last = words.rpartition(" ")
    stem_head, dash, stem = last.rpartition("-")
    stem = stem[:-1] + "ies" if stem.endswith("y") else stem + "s"
    return f"{head}{sep}{stem_head}{dash}{stem}"


def _digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


# --- patterns -----------------------------------------------------------------------------------------
# "1. First step" at the start of a line is a list item: upstream reads it "first, ..." (it does so anywhere;
# mid-sentence "I am 25. Then" is not a list, so the studio applies it only at a line start).
_LIST_ITEM = re.compile(r"(?m)^(\s*)(\d+)\. ")
_OPERAND = r"((-?)((\d+)(\.\d+)?[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*)|(\.\d+[⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*)|([A-Za-z][⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ]*))"
# Arithmetic written with spaces around the operator, as upstream reads it: "3 + 4 = 7" -> "3 plus 4 Equals 7".
_ARITHMETIC = re.compile(_OPERAND + r"\s+([+\-×÷=])\s+" + _OPERAND)
_OPERATORS = {"+": " plus ", "-": " minus ", "×": " times ", "÷": " divided by ", "=": " Equals "}
_COMMA_NUMBER = re.compile(r"(?<=\d),(?=\d{3}\b)")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(\s*([AaPp])\.?\s?[Mm]\b)?")
_MONEY = re.compile(r"([$£€])\s?(\d+)(?:\.(\d{1,2}))?\b(?:\s?(thousand|million|billion|trillion)\b)?")
# Decades: "1990s", "'80s" (upstream reads the s as the unit "seconds": "nineteen ninety seconds").
_DECADE = re.compile(r"(?<![\w.])(?:'(\d0)|(1\d\d0|20\d0))s\b")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")
_FRACTION = re.compile(r"\b(\d+)/(\d+)\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_PERCENT = re.compile(r"(\d)\s?%")
# Units read after a number, with or without a space (the studio's list; upstream has none of these but km).
_UNITS = {
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "ml": ("milliliter", "milliliters"),
    "mph": ("mile per hour", "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "KB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"), "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
    "°C": ("degree celsius", "degrees celsius"), "°F": ("degree fahrenheit", "degrees fahrenheit"),
}  # fmt: skip
# Upstream's own short units, read only when written right after the number ("5m", "30min"), as upstream does.
_ATTACHED_UNITS = {
    "m": ("meter", "meters"), "ft": ("feet", "feet"), "L": ("liter", "liters"), "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"), "h": ("hour", "hours"), "min": ("minute", "minutes"), "s": ("second", "seconds"),
}  # fmt: skip
_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?!\w)"
)
_ATTACHED_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)(" + "|".join(sorted(_ATTACHED_UNITS, key=len, reverse=True)) + r")\b"
)
# Full-width ASCII (Ａ-Ｚ, ０-９, ！, ...) as typed with CJK input methods.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
# A minus sign at the start or after a space: upstream reads "negative".
_NEGATIVE = re.compile(r"(?:^|(?<=\s))-(?=\d)")
_NUMBER = re.compile(r"\d+")
_CURRENCY = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
}

# Abbreviations followed by a period. "Dr." before a capitalised name is "Doctor" (upstream reads it as the
# CMUdict entry "drive"); the other entries are read as the dictionary reads them already or are unambiguous.
_TITLE_BEFORE_NAME = re.compile(r"\b(Dr|Prof|Gen|Capt|Lt|Sgt|Col|Gov|Rev|Sen|Rep)\.\s+(?=[A-Z])")
_TITLES = {
    "Dr": "Doctor",
    "Prof": "Professor",
    "Gen": "General",
    "Capt": "Captain",
    "Lt": "Lieutenant",
    "Sgt": "Sergeant",
    "Col": "Colonel",
    "Gov": "Governor",
    "Rev": "Reverend",
    "Sen": "Senator",
    "Rep": "Representative",
}
_LATIN_ABBREVIATIONS = (
    (re.compile(r"(?i)\bi\.e\."), "that is"),
    (re.compile(r"(?i)\be\.g\."), "for example"),
    (re.compile(r"(?i)\betc\."), "et cetera"),
    (re.compile(r"(?i)\bvs\."), "versus"),
)
_PUNCTUATION_MAP = str.maketrans(
    {
        ";": ",",
        ":": ",",
        "：": ",",
        "，": ",",
        "；": ",",
        '"': "'",
        "’": "'",
        "‘": "'",
        "“": "'",
        "”": "'",
        "。": ".",
        "！": "!",
        "？": "?",
        "…": ".",
    }
)
_NOT_KEPT = re.compile(r"[^ A-Za-z'.,?!\-]")
# Every capital that does not start a word begins a new one: "NASA" -> "N A S A", "iPhone" -> "i Phone".
_INNER_CAPITAL = re.compile(r"(?<!^)(?<!\s)([A-Z])")
_REPEATED_PUNCTUATION = re.compile(r"([!?.,\-])[!?.,\-]+")
_SPACES = re.compile(r"\s+")


def _money(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole, frac, scale = int(m.group(2)), m.group(3), m.group(4)
    if scale:  # "$2 million" -> "two million dollars" (upstream: "two dollars million")
        amount = f"{cardinal(whole)}" + (f" point {_digits(frac)}" if frac else "")
        return f"{amount} {scale} {many}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if whole or not cents:  # amounts are read like any written number: $2,500 -> "twenty-five hundred dollars"
        parts.append(f"{year(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def _time(m: re.Match[str]) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    marker = m.group(4)
    if marker:
        # Written am/pm: the hour as written, read once as letters (upstream adds its own "a.m." from a 24-hour
        # reading and keeps the written marker: "7:05 pm" became "seven five a.m. pm").
        period = " A M" if m.group(5).lower() == "a" else " P M"
        words = cardinal(hours)
    else:
        # No marker: upstream's 12-hour reading with "a.m."/"p.m." (13:45 -> "one forty-five p.m."); hour 0 is
        # twelve (upstream: "zero").
        period = " a.m." if hours < 12 else " p.m."
        words = cardinal(hours - 12 if hours > 12 else hours or 12)
    if minutes:
        # "oh" before a single-digit minute (upstream: "seven five").
        words += " oh " + _ONES[minutes] if minutes < 10 else " " + cardinal(minutes)
    elif not marker:
        words += " o'clock"
    if m.group(3):
        words += " " + cardinal(int(m.group(3))) + " seconds"
    return words + period


def _fraction(m: re.Match[str]) -> str:
    num, den = int(m.group(1)), int(m.group(2))
    if den == 0:
        return f"{cardinal(num)} slash zero"
    numerator = cardinal_with_and(num)  # upstream's numerator keeps inflect's "and"
    if den == 1:
        return numerator
    if den == 2:
        return f"{numerator} {'half' if num == 1 else 'halves'}"
    name = ordinal(den)
    return f"{numerator} {name}{'s' if num > 1 else ''}"


def _plain_number(number: str) -> str:
    whole, _, frac = number.partition(".")
    return year(int(whole)) + (f" point {_digits(frac)}" if frac else "")


def _unit(m: re.Match[str], table: dict[str, tuple[str, str]]) -> str:
    one, many = table[m.group(2)]
    return f"{_plain_number(m.group(1))} {one if m.group(1) == '1' else many}"


def _number(m: re.Match[str]) -> str:
    s = m.group(0)
    if len(s) > 1 and s.startswith("0"):  # codes, zip codes, "007": digit by digit (upstream: "seven")
        return _digits(s)
    return year(int(s))


def _arithmetic(m: re.Match[str]) -> str:
    return m.group(1) + _OPERATORS[m.group(8)] + m.group(9)


def _replace_arithmetic(text: str) -> str:
    while True:  # "1 + 2 + 3": each match consumes its right operand
        replaced = _ARITHMETIC.sub(_arithmetic, text)
        if replaced == text:
            return text
        text = replaced


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def normalize_numbers(text: str) -> str:
    """Spell out every number-like expression in ``text`` (money, times, units, decimals, ordinals, %)."""
    text = _LIST_ITEM.sub(lambda m: f"{m.group(1)}{ordinal(int(m.group(2)))}, ", text)
    text = _replace_arithmetic(text)
    text = _NEGATIVE.sub("negative ", text)
    text = _COMMA_NUMBER.sub("", text)
    text = _TIME.sub(_time, text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = _DECADE.sub(lambda m: decade(int(m.group(1) or m.group(2))), text)
    text = _UNIT.sub(lambda m: _unit(m, _UNITS), text)
    text = _ATTACHED_UNIT.sub(lambda m: _unit(m, _ATTACHED_UNITS), text)
    text = _DECIMAL.sub(lambda m: _plain_number(m.group(0)), text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(lambda m: ordinal(int(m.group(1))), text)
    return _NUMBER.sub(_number, text)


def normalize(text: str) -> str:
    """Full English normalisation: punctuation mapping, abbreviations, numbers, character filter, acronyms."""
    text = text.translate(_FULL_WIDTH)
    text = text.translate(_PUNCTUATION_MAP) if ":" not in text else _translate_keeping_times(text)
    text = _TITLE_BEFORE_NAME.sub(lambda m: _TITLES[m.group(1)] + " ", text)
    for pattern, words in _LATIN_ABBREVIATIONS:
        text = pattern.sub(words, text)
    text = normalize_numbers(text)
    text = _strip_accents(text)
    text = text.replace("%", " percent")
    text = _NOT_KEPT.sub("", text)
    text = _INNER_CAPITAL.sub(r" \1", text)
    text = _REPEATED_PUNCTUATION.sub(r"\1", text)
    return _SPACES.sub(" ", text).strip()


def _translate_keeping_times(text: str) -> str:
    # Clock times need their colon until the number step has read them.
    pieces = []
    last = 0
    for m in _TIME.finditer(text):
        pieces.append(text[last : m.start()].translate(_PUNCTUATION_MAP))
        pieces.append(m.group(0))
        last = m.end()
    pieces.append(text[last:].translate(_PUNCTUATION_MAP))
    return "".join(pieces)
