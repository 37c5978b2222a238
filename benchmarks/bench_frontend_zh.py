"""Mandarin front-end speed: sentences/second through clean_text (by hand: python -m benchmarks.bench_frontend_zh).

Times the first call (dictionary loading: jieba, pypinyin, OpenCC, sandhi lists) separately, then the steady state
on a set of Chinese sentences covering numbers, dates, sandhi and erhua, split into normalisation and G2P. The
sentences repeat, so per-word reading caches are warm; the "cold" row empties them before every sentence.
"""

from __future__ import annotations

import argparse
import time

from GPT_SoVITS.text import clean_text, tone_sandhi, zh
from GPT_SoVITS.text.zh import g2p, normalize


def g2p_cold(text: str) -> None:
    """G2P with the per-word reading caches emptied first (as for text whose words were never seen)."""
    zh._cached_finals.cache_clear()
    zh._cached_initials.cache_clear()
    tone_sandhi._split_in_two.cache_clear()
    g2p(text)

SENTENCES = [
    "今天是2024年3月15日，气温25.5摄氏度。",
    "这个产品的合格率达到了98.6%，比去年提高了3个百分点。",
    "他的电话号码是13812345678，请在下午3:30之前打给他。",
    "一个人，一天，一心一意，第一名，一九九八年。",
    "不要，不对，不是，不好意思，差不多。",
    "我们去银行取钱，然后去长城看看，他长得很高。",
    "重庆的重量很重要，我们重新开始吧。",
    "这孩子特别喜欢在小院儿里玩儿，一会儿就回来。",
    "老王买了三斤苹果，花了12.50元。",
    "2023-10-01是国庆节，气温-5℃到10℃。",
    "我也很想买好几把雨伞。",
    "在很久很久以前，有一座美丽的城堡，城堡里住着一位善良的公主和她年迈的父亲。",
]


def rate(fn, sentences: list[str], seconds: float) -> float:
    """Sentences per second, looping over ``sentences`` for at least ``seconds``."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for sentence in sentences:
            fn(sentence)
        done += len(sentences)
    return done / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time spent per measurement")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    clean_text(SENTENCES[0], "zh")
    first = time.perf_counter() - start
    for sentence in SENTENCES:  # warm-up: every cache path once
        clean_text(sentence, "zh")

    normalised = [normalize(sentence) for sentence in SENTENCES]
    rows = [
        ("clean_text (zh, v2)", rate(lambda s: clean_text(s, "zh"), SENTENCES, args.seconds)),
        ("  normalize only", rate(normalize, SENTENCES, args.seconds)),
        ("  g2p only", rate(g2p, normalised, args.seconds)),
        ("  g2p, word caches cold", rate(g2p_cold, normalised, args.seconds)),
    ]
    chars = sum(len(s) for s in normalised) / len(normalised)
    print(f"first call (loads dictionaries): {first:.2f} s; mean sentence length {chars:.0f} characters")
    print(f"{'stage':<24}{'sentences/s':>14}{'ms/sentence':>14}")
    for name, value in rows:
        print(f"{name:<24}{value:>14.0f}{1000 / value:>14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
