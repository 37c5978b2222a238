"""Reading Arabic numbers in Mandarin: digit strings, cardinals, decimals.

Conventions (upstream's, from PaddleSpeech): a cardinal uses the units 十 百 千 万 亿; an internal run of zeros is
read once as 零 (1005 → 一千零五); a leading 一十 is shortened to 十 (15 → 十五, but 115 → 一百一十五); decimal
places are read digit by digit and a run of trailing zeros is read once (12.50 → 十二点五零, 3.500 → 三点五零).
"""

from __future__ import annotations

DIGITS = {"0": "零", "1": "一", "2": "二", "3": "三", "4": "四", "5": "五", "6": "六", "7": "七", "8": "八", "9": "九"}
# Power of ten → unit character. Numbers beyond 10^8 are read recursively in front of 亿.
UNITS = {1: "十", 2: "百", 3: "千", 4: "万", 8: "亿"}
_UNIT_POWERS = sorted(UNITS, reverse=True)


def read_digits(digits: str, alt_one: bool = False) -> str:
    """Read each digit on its own (years, phone numbers): ``"2024"`` → 二零二四. ``alt_one`` reads 1 as 幺."""
    text = "".join(DIGITS[d] for d in digits)
    return text.replace("一", "幺") if alt_one else text


def _cardinal_parts(digits: str) -> list[str]:
    stripped = digits.lstrip("0")
    if not stripped:
        return []
    if len(stripped) == 1:
        # A single significant digit after dropped zeros is preceded by 零 (the "05" in 105).
        return [DIGITS["0"], DIGITS[stripped]] if len(stripped) < len(digits) else [DIGITS[stripped]]
    power = next(p for p in _UNIT_POWERS if p < len(stripped))
    high, low = digits[:-power], digits[-power:]
    return _cardinal_parts(high) + [UNITS[power]] + _cardinal_parts(low)


def read_cardinal(digits: str) -> str:
    """Read a non-negative integer string as a cardinal: ``"105"`` → 一百零五, ``"0"`` → 零."""
    if not digits:
        return ""
    digits = digits.lstrip("0")
    if not digits:
        return DIGITS["0"]
    parts = _cardinal_parts(digits)
    if len(parts) >= 2 and parts[0] == DIGITS["1"] and parts[1] == UNITS[1]:
        parts = parts[1:]
    return "".join(parts)


def read_number(number: str) -> str:
    """Read an unsigned decimal string: ``"25.5"`` → 二十五点五, ``".5"`` → 零点五, ``"12.50"`` → 十二点五零.

    A run of trailing zeros is read as one 零 (``"3.500"`` → 三点五零, ``"2.000"`` → 二点零), as upstream does.
    """
    integer, _, decimal = number.partition(".")
    if decimal.endswith("0"):
        decimal = decimal.rstrip("0") + "0"
    text = read_cardinal(integer)
    if decimal:
        text = (text or DIGITS["0"]) + "点" + read_digits(decimal)
    return text


def read_signed(sign: str, number: str, negative_word: str = "负") -> str:
    """Read a number with an optional leading ``-``."""
    return (negative_word if sign == "-" else "") + read_number(number)


def read_clock_part(digits: str) -> str:
    """Minutes and seconds: a leading zero is spoken (``"05"`` → 零五)."""
    text = read_number(digits.lstrip("0") or "0")
    return DIGITS["0"] + text if digits.startswith("0") and len(digits) > 1 else text
