"""English text normalisation: numbers, money, times, ordinals, abbreviations, acronyms.

The output keeps only ``A-Z a-z ' . , ? ! -`` and spaces, which is what the English g2p reads.
Numbers are spelled the way upstream's normaliser spells them (American style, no "and" inside hundreds,
four-digit numbers between 1000 and 3000 read as years: 2024 -> "twenty twenty-four").
"""

from __future__ import annotations

import re
import unicodedata

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] if ones == 0 else f"{_TENS[tens]}-{_ONES[ones]}"


def _below_thousand(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    if hundreds == 0:
        return _below_hundred(rest)
    head = f"{_ONES[hundreds]} hundred"
    return head if rest == 0 else f"{head} {_below_hundred(rest)}"


def cardinal(n: int) -> str:
    """Spell a whole number: 799 -> "seven hundred ninety-nine", -3 -> "minus three"."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 1000:
        return _below_thousand(n)
    if n >= 10**15:  # too long to read as a quantity: read digit by digit
        return " ".join(_ONES[int(d)] for d in str(n))
    parts = []
    for scale, name in _SCALES:
        count, n = divmod(n, scale)
        if count:
            parts.append(f"{cardinal(count)} {name}")
    if n:
        parts.append(_below_thousand(n))
    return " ".join(parts)


def ordinal(n: int) -> str:
    """Spell an ordinal: 5 -> "fifth", 21 -> "twenty-first", 100 -> "one hundredth"."""
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    stem_head, dash, stem = last.rpartition("-")
    if stem in _IRREGULAR_ORDINALS:
        stem = _IRREGULAR_ORDINALS[stem]
    elif stem.endswith("y"):
        stem = stem[:-1] + "ieth"
    else:
        stem += "th"
    return f"{head}{sep}{stem_head}{dash}{stem}"


def year(n: int) -> str:
    """Read a number the way years are read when 1000 < n < 3000, else as a cardinal."""
    if not 1000 < n < 3000 or n == 2000:
        return cardinal(n)
    if 2000 < n < 2010:
        return "two thousand " + _ONES[n - 2000]
    high, low = divmod(n, 100)
    if low == 0:
        return f"{_below_hundred(high)} hundred"
    low_words = f"oh {_ONES[low]}" if low < 10 else _below_hundred(low)
    return f"{_below_hundred(high)} {low_words}"


def _digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


# --- patterns -----------------------------------------------------------------------------------------
_COMMA_NUMBER = re.compile(r"(?<=\d),(?=\d{3}\b)")
_TIME = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(\s*([AaPp])\.?\s?[Mm]\b)?")
_MONEY = re.compile(r"([$£€])\s?(\d+)(?:\.(\d{1,2}))?\b(?:\s?(thousand|million|billion|trillion)\b)?")
_DECIMAL = re.compile(r"(\d+)\.(\d+)")
_FRACTION = re.compile(r"\b(\d+)/(\d+)\b")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_PERCENT = re.compile(r"(\d)\s?%")
_UNITS = {
    "km": ("kilometer", "kilometers"), "cm": ("centimeter", "centimeters"), "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"), "mg": ("milligram", "milligrams"), "ml": ("milliliter", "milliliters"),
    "mph": ("mile per hour", "miles per hour"), "km/h": ("kilometer per hour", "kilometers per hour"),
    "KB": ("kilobyte", "kilobytes"), "MB": ("megabyte", "megabytes"), "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"), "Hz": ("hertz", "hertz"), "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"), "GHz": ("gigahertz", "gigahertz"),
    "°C": ("degree Celsius", "degrees Celsius"), "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
}  # fmt: skip
_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?("
    + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?!\w)"
)
# Full-width ASCII (Ａ-Ｚ, ０-９, ！, ...) as typed with CJK input methods.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_NEGATIVE = re.compile(r"(?<![\w-])-(?=\d)")
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
    if scale:
        amount = f"{cardinal(whole)}" + (f" point {_digits(frac)}" if frac else "")
        return f"{amount} {scale} {many}"
    cents = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if whole or not cents:
        parts.append(f"{cardinal(whole)} {one if whole == 1 else many}")
    if cents:
        parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def _time(m: re.Match[str]) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    words = cardinal(hours)
    if minutes:
        words += " oh " + _ONES[minutes] if minutes < 10 else " " + _below_hundred(minutes)
    elif not m.group(4):
        words += " o'clock"
    if m.group(3):
        words += " " + cardinal(int(m.group(3))) + " seconds"
    if m.group(4):
        # Upstream appends "a.m." and keeps the written "AM" as well ("ten thirty a.m. A M"); we read the
        # marker once, as letters.
        words += " A M" if m.group(5).lower() == "a" else " P M"
    return words


def _fraction(m: re.Match[str]) -> str:
    num, den = int(m.group(1)), int(m.group(2))
    if den == 0:
        return f"{cardinal(num)} slash zero"
    if den == 1:
        return f"{cardinal(num)} over one"
    if den == 2:
        name = "half" if num == 1 else "halves"
    elif den == 4:
        name = "quarter" if num == 1 else "quarters"
    else:
        name = ordinal(den) + ("" if num == 1 else "s")
    return f"{cardinal(num)} {name}"


def _plain_number(number: str) -> str:
    whole, _, frac = number.partition(".")
    return cardinal(int(whole)) + (f" point {_digits(frac)}" if frac else "")


def _unit(m: re.Match[str]) -> str:
    one, many = _UNITS[m.group(2)]
    return f"{_plain_number(m.group(1))} {one if m.group(1) == '1' else many}"


def _number(m: re.Match[str]) -> str:
    s = m.group(0)
    if len(s) > 1 and s.startswith("0"):  # codes, zip codes, "007": digit by digit
        return _digits(s)
    return year(int(s))


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


def normalize_numbers(text: str) -> str:
    """Spell out every number-like expression in ``text`` (money, times, units, decimals, ordinals, %)."""
    text = _COMMA_NUMBER.sub("", text)
    text = _TIME.sub(_time, text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = _UNIT.sub(_unit, text)
    text = _DECIMAL.sub(lambda m: _plain_number(m.group(0)), text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(lambda m: ordinal(int(m.group(1))), text)
    text = _NEGATIVE.sub("minus ", text)
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
