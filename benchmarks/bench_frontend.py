"""Text front-end speed per language: sentences/second (run by hand: python -m benchmarks.bench_frontend).

For each language: the one-time initialisation (first 10 calls: dictionaries, MeCab, models), then warm throughput on
sentences that are all different (numbers vary), so per-sentence caches do not flatter the result. The last rows run
the whole :class:`TextFrontend` (segmentation + cleaners, no BERT) on mixed-language text with ``auto``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from GPT_SoVITS.text import clean_text
from GPT_SoVITS.text.frontend import TextFrontend

TEMPLATES: dict[str, Callable[[int], str]] = {
    "en": lambda i: f"On day {i}, the remote team shipped {i * 7 + 3} features and wrote about them at 9:{i % 60:02d}.",
    "ja": lambda i: f"{i}人の学生が東京駅で電車を待っています。今日は{i % 28 + 1}日です。",
    "ko": lambda i: f"오늘 {i}명의 학생이 학교에 갔습니다. 날씨가 아주 좋네요.",
    "yue": lambda i: f"我哋今日有{i}個人去咗街市買餸，好開心呀。",
    "zh": lambda i: f"今天有{i}个学生去了公园，天气非常好，大家都很开心。",
}
MIXED = lambda i: f"我今天用了ChatGPT写了{i}行代码，then I pushed it to GitHub。"  # noqa: E731


WARMUP = 10


def _time(fn: Callable[[int], object], n: int, offset: int) -> float:
    start = time.perf_counter()
    for i in range(offset, offset + n):
        fn(i)
    return time.perf_counter() - start


def run(n: int, languages: list[str]) -> list[tuple[str, float, float]]:
    rows = []
    for lang in languages:
        make = TEMPLATES[lang]
        try:
            cold = _time(lambda i, make=make, lang=lang: clean_text(make(i), lang), WARMUP, 0)
        except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
            print(f"{lang}: skipped ({type(e).__name__}: {e})")
            continue
        warm = _time(lambda i, make=make, lang=lang: clean_text(make(i), lang), n, 1000)
        rows.append((f"clean_text {lang}", cold, n / warm))
    frontend = TextFrontend(None)
    cold = _time(lambda i: frontend(MIXED(i), "auto"), WARMUP, 0)
    warm = _time(lambda i: frontend(MIXED(i), "auto"), n, 1000)
    rows.append(("TextFrontend auto (zh+en)", cold, n / warm))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("-n", type=int, default=200, help="warm sentences per language")
    parser.add_argument(
        "--languages", nargs="+", default=list(TEMPLATES), choices=list(TEMPLATES), help="languages to time"
    )
    args = parser.parse_args(argv)
    rows = run(args.n, args.languages)
    print(f"{'what':<28} {'init+10 (s)':>15} {'sentences/s':>12}")
    for name, cold, rate in rows:
        print(f"{name:<28} {cold:>15.2f} {rate:>12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
