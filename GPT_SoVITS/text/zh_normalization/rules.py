"""Regex rules that verbalise non-standard words (dates, times, numbers with units, phone numbers…) in Mandarin.

The rules run in a fixed order (see ``RULES``); each takes a sentence and returns it with its matches spelled out
in Chinese characters. Order matters: dates before times before ranges before plain numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from GPT_SoVITS.text.zh_normalization.numbers import (
    DIGITS,
    read_cardinal,
    read_clock_part,
    read_digits,
    read_number,
    read_signed,
)

# ---------------------------------------------------------------------------------------------- dates and times
# 2024年3月15日 / 24年 / 2024年3月: year read digit by digit, month and day as cardinals.
RE_DATE = re.compile(r"(\d{4}|\d{2})年((0?[1-9]|1[0-2])月)?(((0?[1-9])|((1|2)[0-9])|30|31)([日号]))?")
# 2023-10-01, 2023/10/01, 2023.10.01 (same separator twice).
RE_DATE_NUMERIC = re.compile(r"(\d{4})([- /.])(0[1-9]|1[012])\2(0[1-9]|[12][0-9]|3[01])")
_CLOCK = r"([0-1]?[0-9]|2[0-3])[:：]([0-5][0-9])(?:[:：]([0-5][0-9]))?"
RE_TIME_RANGE = re.compile(_CLOCK + r"[~\-]" + _CLOCK)
RE_TIME = re.compile(_CLOCK)


def _date(match: re.Match) -> str:
    text = read_digits(match.group(1)) + "年"
    if match.group(3):
        text += read_cardinal(match.group(3)) + "月"
    if match.group(5):
        text += read_cardinal(match.group(5)) + match.group(9)
    return text


def _date_numeric(match: re.Match) -> str:
    year, _, month, day = match.groups()
    return f"{read_digits(year)}年{read_cardinal(month)}月{read_cardinal(day)}日"


def _clock(hour: str, minute: str, second: str | None, half: bool = True) -> str:
    text = read_number(hour) + "点"
    if minute.lstrip("0"):
        text += "半" if half and int(minute) == 30 else read_clock_part(minute) + "分"
    if second and second.lstrip("0"):
        text += read_clock_part(second) + "秒"
    return text


def _time(match: re.Match) -> str:
    return _clock(*match.groups())


def _time_range(match: re.Match) -> str:
    groups = match.groups()
    # Upstream decides the second time's 半 from the first time's minutes. Where both are :30 or neither is, that
    # reads well and we follow it (8:15-9:30 → 九点三十分); where only the first is, upstream says 半 for a minute
    # that is not 30 (8:30-9:15 → 九点半), which we do not copy.
    return _clock(*groups[:3]) + "至" + _clock(*groups[3:], half=int(groups[1]) == 30)


# ------------------------------------------------------------------------------------- units and measurements
_UNIT_WORDS = {
    "cm2": "平方厘米", "cm²": "平方厘米", "cm3": "立方厘米", "cm³": "立方厘米", "cm": "厘米", "db": "分贝",
    "ds": "毫秒", "kg": "千克", "km": "千米", "m2": "平方米", "m²": "平方米", "m³": "立方米", "m3": "立方米",
    "ml": "毫升", "m": "米", "mm": "毫米", "s": "秒",
}  # fmt: skip
_UNIT_ALTERNATION = "|".join(re.escape(unit) for unit in sorted(_UNIT_WORDS, key=len, reverse=True))
_NUMBER = r"(-?)((\d+)(\.\d+)?)|(\.(\d+))"
_RANGE_UNIT = r"(%|°C|℃|度|摄氏度|" + _UNIT_ALTERNATION + r")"
# 3%~5%, 10cm~20cm: the tilde between two numbers with units reads 至.
RE_TO_RANGE = re.compile(r"(?:" + _NUMBER + r")" + _RANGE_UNIT + r"[~～](?:" + _NUMBER + r")" + _RANGE_UNIT)
RE_TEMPERATURE = re.compile(r"(-?)(\d+(\.\d+)?)(°C|℃|度|摄氏度)")
# Upstream replaces unit abbreviations anywhere in the sentence (so "Windows" gained a 秒); we only replace them
# right after a number.
RE_MEASURE = re.compile(r"(\d)\s?(" + _UNIT_ALTERNATION + r")(?![A-Za-z])")


def _to_range(match: re.Match) -> str:
    return match.group(0).replace("~", "至").replace("～", "至")


def _temperature(match: re.Match) -> str:
    # Upstream reads ℃, °C, 度 and 摄氏度 all as 度, and a minus sign as 零下.
    sign = "零下" if match.group(1) else ""
    return sign + read_number(match.group(2)) + "度"


def _measure(match: re.Match) -> str:
    return match.group(1) + _UNIT_WORDS[match.group(2)]


# -------------------------------------------------------------------------------------------------- arithmetic
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹ˣʸⁿ"
_OPERAND = r"((-?)((\d+)(\.\d+)?[" + _SUPERSCRIPTS + r"]*)|(\.\d+[" + _SUPERSCRIPTS + r"]*)|([A-Za-z][" + \
    _SUPERSCRIPTS + r"]*))"  # fmt: skip
RE_ARITHMETIC = re.compile(_OPERAND + r"([+\-×÷=])" + _OPERAND)
_OPERATORS = {"+": "加", "-": "减", "×": "乘", "÷": "除", "=": "等于"}
RE_POWER = re.compile(r"[" + _SUPERSCRIPTS + r"]+")
_POWER_DIGITS = dict(zip(_SUPERSCRIPTS, "0123456789xyn", strict=True))


_EXPRESSION_NEIGHBOURS = set("+-×÷=") | set("加减乘除于")


def _arithmetic(match: re.Match) -> str:
    operator = match.group(8)
    numbers_only = match.group(7) is None and match.group(15) is None
    if operator == "-" and numbers_only:
        text = match.string
        before = text[match.start() - 1] if match.start() > 0 else ""
        after = text[match.end()] if match.end() < len(text) else ""
        if before not in _EXPRESSION_NEIGHBOURS and after not in _EXPRESSION_NEIGHBOURS:
            # Deviation: upstream reads every number-number dash as 减 (3-5天 → 三减五天). A dash that is not part
            # of a longer expression is left to the range, landline and negative-number rules (三到五天).
            return match.group(0)
    return match.group(1) + _OPERATORS[operator] + match.group(9)


def _power(match: re.Match) -> str:
    exponent = "".join(_POWER_DIGITS[c] for c in match.group(0))
    spoken = read_number(exponent) if exponent.isdigit() else exponent
    return "的" + spoken + "次方"


def _replace_arithmetic(sentence: str) -> str:
    # An expression like 1+2-3 needs several passes: each match consumes its right operand.
    while True:
        replaced = RE_ARITHMETIC.sub(_arithmetic, sentence)
        if replaced == sentence:
            return sentence
        sentence = replaced


# ---------------------------------------------------------------------------- fractions, percent, phone numbers
RE_FRACTION = re.compile(r"(-?)(\d+)/(\d+)")
RE_PERCENTAGE = re.compile(r"(-?)(\d+(\.\d+)?)%")
RE_MOBILE = re.compile(r"(?<!\d)((\+?86 ?)?1([38]\d|5[0-35-9]|7[678]|9[89])\d{8})(?!\d)")
RE_LANDLINE = re.compile(r"(?<!\d)((0(10|2[1-3]|[3-9]\d{2})-?)?[1-9]\d{6,7})(?!\d)")
RE_SERVICE_NUMBER = re.compile(r"(400)(-)?\d{3}(-)?\d{4}")


def _fraction(match: re.Match) -> str:
    sign = "负" if match.group(1) else ""
    return f"{sign}{read_number(match.group(3))}分之{read_number(match.group(2))}"


def _percentage(match: re.Match) -> str:
    sign = "负" if match.group(1) else ""
    return f"{sign}百分之{read_number(match.group(2))}"


def _phone_parts(parts: list[str]) -> str:
    # Phone numbers are read digit by digit with 1 as 幺; groups are separated by a pause.
    return ",".join(read_digits(part, alt_one=True) for part in parts if part)


def _mobile(match: re.Match) -> str:
    return _phone_parts(match.group(0).strip("+").split())


def _landline(match: re.Match) -> str:
    return _phone_parts(match.group(0).split("-"))


# ----------------------------------------------------------------------------------- ranges and plain numbers
RE_RANGE = re.compile(r"(?:" + _NUMBER + r")[-~～](?:" + _NUMBER + r")")
# Deviation: upstream's pattern also matches the integer part of a negative decimal, so -0.5 read 负零零点五; the
# look-ahead leaves negative decimals to RE_DECIMAL (负零点五).
RE_NEGATIVE_INTEGER = re.compile(r"(-)(\d+)(?!\.\d)")
RE_VERSION = re.compile(r"(\d+)((?:\.\d+){2,})")
RE_DECIMAL = re.compile(r"(-?)((\d+)(\.\d+))|(\.(\d+))")
RE_QUANTIFIER = re.compile(
    r"(\d+)([多余几+])?"
    r"(处|台|架|枚|趟|幅|平|方|堵|间|床|株|批|项|例|列|篇|栋|注|亩|封|艘|把|目|套|段|人|所|朵|匹|张|座|回|场|尾|条|个|首|阙|阵|"
    r"网|炮|顶|丘|棵|只|支|袭|辆|挑|担|颗|壳|窠|曲|墙|群|腔|砣|客|贯|扎|捆|刀|令|打|手|罗|坡|山|岭|江|溪|钟|队|单|双|对|出|口|"
    r"头|脚|板|跳|枝|件|贴|针|线|管|名|位|身|堂|课|本|页|家|户|层|丝|毫|厘|分|钱|两|斤|铢|石|钧|锱|忽|(千|毫|微)克|(公)分|寸|尺|"
    r"丈|里|寻|常|铺|程|(千|分|厘|毫|微)米|米|撮|勺|合|升|斗|盘|碗|碟|叠|桶|笼|盆|盒|杯|斛|锅|簋|篮|罐|瓶|壶|卮|盏|箩|箱|煲|"
    r"啖|袋|钵|年|月|日|季|刻|时|周|天|秒|小时|旬|纪|岁|世|更|夜|春|夏|秋|冬|代|伏|辈|丸|泡|粒|幢|堆|根|道|面|片|块|元|"
    r"(亿|千万|百万|万|千|百)|(亿|千万|百万|万|千|百|美|)元|(亿|千万|百万|万|千|百|十|)吨|(亿|千万|百万|万|千|百|)块|角|毛)"
)
RE_LONG_DIGITS = re.compile(r"\d{3}\d*")
RE_NUMBER = re.compile(_NUMBER)


def _read_match_number(match: re.Match, first: int) -> str:
    """Read a number matched by ``_NUMBER`` whose groups start at index ``first``."""
    sign, number, pure_decimal = match.group(first), match.group(first + 1), match.group(first + 4)
    if number is None:
        return read_number("." + match.group(first + 5)) if pure_decimal else ""
    return read_signed(sign, number)


def _range(match: re.Match) -> str:
    return _read_match_number(match, 1) + "到" + _read_match_number(match, 7)


def _negative_integer(match: re.Match) -> str:
    return "负" + read_cardinal(match.group(2))


def _version(match: re.Match) -> str:
    # Upstream reads every digit of a version number on its own: 1.10.2 → 一点一零点二.
    return "点".join(read_digits(part) for part in match.group(0).split("."))


def _decimal(match: re.Match) -> str:
    if match.group(2) is None:
        return read_number("." + match.group(6))
    return read_signed(match.group(1), match.group(2))


def _keeps_er(match: re.Match) -> bool:
    """Where a 二 before a measure word is not a count: 第2名 (ordinal), 2月 (February), 3月2日 (a date).

    Upstream reads all three with 两 (第两名, 两月, 三月两日); every speaker says 二, so these are deliberate
    deviations (docs/text_frontend.md).
    """
    before = match.string[match.start() - 1] if match.start() > 0 else ""
    unit = match.group(3)
    return before == "第" or unit == "月" or (unit == "日" and before == "月")


def _quantifier(match: re.Match) -> str:
    more = match.group(2) or ""
    if more == "+":
        more = "多"
    number = read_cardinal(match.group(1))
    # A count before a measure word is 两 (2张 → 两张, 2个 → 两个), as upstream reads it; only a number that reads
    # exactly 二 changes (12张 → 十二张, 200个 → 二百个 stay).
    if number == DIGITS["2"] and not _keeps_er(match):
        number = "两"
    return number + more + match.group(3)


def _long_digits(match: re.Match) -> str:
    # Digit strings (room numbers, codes) are read digit by digit with 1 as 幺, as upstream does.
    return read_digits(match.group(0), alt_one=True)


def _number(match: re.Match) -> str:
    return _read_match_number(match, 1)


def _sub(pattern: re.Pattern, replace: Callable[[re.Match], str]) -> Callable[[str], str]:
    return lambda sentence: pattern.sub(replace, sentence)


# Applied in this order to every sentence.
RULES: tuple[Callable[[str], str], ...] = (
    _sub(RE_DATE, _date),
    _sub(RE_DATE_NUMERIC, _date_numeric),
    _sub(RE_TIME_RANGE, _time_range),
    _sub(RE_TIME, _time),
    _sub(RE_TO_RANGE, _to_range),
    _sub(RE_TEMPERATURE, _temperature),
    _sub(RE_MEASURE, _measure),
    _replace_arithmetic,
    _sub(RE_POWER, _power),
    _sub(RE_FRACTION, _fraction),
    _sub(RE_PERCENTAGE, _percentage),
    _sub(RE_MOBILE, _mobile),
    _sub(RE_LANDLINE, _landline),
    _sub(RE_SERVICE_NUMBER, _landline),
    _sub(RE_RANGE, _range),
    _sub(RE_NEGATIVE_INTEGER, _negative_integer),
    _sub(RE_VERSION, _version),
    _sub(RE_DECIMAL, _decimal),
    _sub(RE_QUANTIFIER, _quantifier),
    _sub(RE_LONG_DIGITS, _long_digits),
    _sub(RE_NUMBER, _number),
)

__all__ = ["DIGITS", "RULES"]
