"""Mandarin normaliser rules of upstream that users hear, on new sentences (not the kit's).

Each expected text was worked out by hand from upstream's normaliser rules (spec §4.3 and upstream's rule order:
dates, times, ~ ranges with units, temperatures, units, arithmetic, fractions, percent, phone numbers, ranges,
negative numbers, versions, decimals, numbers before measure words, digit strings, plain numbers), then
``replace_punctuation``. ``DEVIATIONS`` lists where upstream is plainly wrong and the studio reads better; each
row keeps upstream's reading for the record (docs/text_frontend.md has the table).
"""

from __future__ import annotations

import pytest

from GPT_SoVITS.text import clean_text

# (kind, text, upstream's norm_text)
UPSTREAM = [
    # a count before a measure word is read 两 when the number reads exactly 二
    ("liang", "桌上有2张纸。", "桌上有两张纸."),
    ("liang", "我买了2个苹果，12个梨。", "我买了两个苹果,十二个梨."),
    ("liang", "他养了2只猫和2条狗。", "他养了两只猫和两条狗."),
    ("liang", "这瓶水2元。", "这瓶水两元."),
    ("liang", "我们休息2天吧。", "我们休息两天吧."),
    ("liang", "他等了2小时。", "他等了两小时."),
    ("liang", "公司有2万名员工。", "公司有两万名员工."),
    ("liang", "这2位老师来自北京。", "这两位老师来自北京."),
    ("liang", "买了2kg大米。", "买了两千克大米."),
    ("liang", "已经过去2年了。", "已经过去两年了."),
    # … but only then: other words after the number, other numbers, ranges and decimals keep 二
    ("er", "请翻到第2章。", "请翻到第二章."),
    ("er", "他住在2号楼。", "他住在二号楼."),
    ("er", "他跑了2公里。", "他跑了二公里."),
    ("er", "价格涨了2倍。", "价格涨了二倍."),
    ("er", "下午2点见。", "下午二点见."),
    ("er", "一共22个，还有200个。", "一共二十二个,还有二百个."),
    ("er", "每人2~3个。", "每人二到三个."),
    ("er", "平均2.5个。", "平均二点五个."),
    # digit strings of three or more digits are read digit by digit, 1 as 幺
    ("digits", "房间号是1103。", "房间号是幺幺零三."),
    ("digits", "我的工号是10086。", "我的工号是幺零零八六."),
    ("digits", "请到312室。", "请到三幺二室."),
    ("digits", "编号001的包裹。", "编号零零幺的包裹."),
    ("digits", "他考了100分。", "他考了一百分."),
    # decimals: a run of trailing zeros is read as one 零
    ("decimal", "一共花了3.500元。", "一共花了三点五零元."),
    ("decimal", "重量是2.000千克。", "重量是二点零千克."),
    ("decimal", "增长了12.50%。", "增长了百分之十二点五零."),
    ("decimal", "版本1.0发布了。", "版本一点零发布了."),
    # clock ranges: the second time reads 半 only when the first one does too
    ("time_range", "会议时间8:15-9:30。", "会议时间八点十五分至九点三十分."),
    ("time_range", "营业时间9:30-18:30。", "营业时间九点半至十八点半."),
    ("time_range", "上课时间8:00-12:00。", "上课时间八点至十二点."),
    ("time_range", "值班10:05-11:30。", "值班十点零五分至十一点三十分."),
    # dates keep 二 (the date rules run before the measure words)
    ("date", "2024年2月2日是星期五。", "二零二四年二月二日是星期五."),
    ("date", "截止日期2023-02-02。", "截止日期二零二三年二月二日."),
    ("date", "2022年12月22号开会。", "二零二二年十二月二十二号开会."),
]

# (text, studio's norm_text, upstream's norm_text, why upstream is wrong)
DEVIATIONS = [
    ("他得了第2名。", "他得了第二名.", "他得了第两名.", "an ordinal after 第 is 二"),
    ("第2个路口左转。", "第二个路口左转.", "第两个路口左转.", "an ordinal after 第 is 二"),
    ("2月14日是情人节。", "二月十四日是情人节.", "两月十四日是情人节.", "February is 二月"),
    ("会议定在3月2日。", "会议定在三月二日.", "会议定在三月两日.", "a day of the month is 二日"),
    ("厚度5mm。", "厚度五毫米.", "厚度五米米.", "upstream replaces m before mm"),
    ("时间8:30-9:15。", "时间八点半至九点十五分.", "时间八点半至九点半.", "upstream reads the first minute twice"),
    ("需要3～5天。", "需要三到五天.", "需要三…五天.", "upstream's range rule misses the full-width tilde"),
]


@pytest.mark.parametrize(("kind", "text", "expected"), UPSTREAM, ids=[f"{k}-{t}" for k, t, _ in UPSTREAM])
def test_reads_as_upstream(kind: str, text: str, expected: str) -> None:
    assert clean_text(text, "zh").norm_text == expected


@pytest.mark.parametrize(("text", "studio", "upstream", "why"), DEVIATIONS, ids=[d[0] for d in DEVIATIONS])
def test_deliberate_deviation(text: str, studio: str, upstream: str, why: str) -> None:
    result = clean_text(text, "zh").norm_text
    assert result == studio and result != upstream, why


def test_liang_is_a_real_syllable_with_its_own_tone() -> None:
    # 两 is read liang3, not er4: the model hears a different syllable.
    phones = clean_text("2个", "zh").phones
    assert phones[:2] == ["l", "iang3"]
