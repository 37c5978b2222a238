from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from GPT_SoVITS import labels
from GPT_SoVITS.labels import LabelEntry, LabelFileError
from tests.conftest import write_audio


def _clip(folder: Path, name: str) -> Path:
    return write_audio(folder / name, np.zeros(1600, dtype=np.float32), 16000)


def test_language_codes_are_normalised_like_upstream():
    table = {"ZH": "zh", "zh": "zh", "JA": "ja", "ja": "ja", "JP": "ja", "jp": "ja", "EN": "en", "En": "en",
             "KO": "ko", "Ko": "ko", "YUE": "yue", "Yue": "yue"}
    for code, expected in table.items():
        assert labels.normalize_language(code) == expected
    with pytest.raises(ValueError, match="unknown language code 'fr'"):
        labels.normalize_language("fr")


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    a, b = _clip(tmp_path, "a.wav"), _clip(tmp_path, "b.wav")
    other = _clip(tmp_path / "sub", "a.wav")  # same basename as a.wav, other folder
    content = "\n".join([
        f"{a}|spk|ZH|你好。",  # 1 ok
        "only|three|fields",  # 2 wrong field count
        f"{b}|spk|FR|bonjour",  # 3 unknown language
        f"{tmp_path / 'gone.wav'}|spk|en|missing",  # 4 missing audio
        "",  # 5 blank: ignored
        f"{other}|spk|JP|こんにちは",  # 6 duplicate basename
        f"{b}x|spk|en|too|many",  # 7 five fields
    ])
    path = tmp_path / "x.list"
    path.write_text(content, encoding="utf-8")
    result = labels.read_list(path)
    by_line = {(p.line_no, p.kind) for p in result.problems}
    assert by_line == {(2, labels.FIELD_COUNT), (3, labels.UNKNOWN_LANGUAGE), (4, labels.MISSING_AUDIO),
                       (6, labels.DUPLICATE_BASENAME), (7, labels.FIELD_COUNT)}
    assert "first on line 1" in next(p.reason for p in result.problems if p.line_no == 6)
    assert [e.text for e in result.valid_entries()] == ["你好。"]
    assert result.line_numbers == [1, 3, 4, 6]  # every 4-field line is kept for an editor
    assert "line 2" in result.report()


def test_audio_dir_rule_uses_basename_of_list_path(tmp_path):
    clips = tmp_path / "clips"
    _clip(clips, "a.wav")
    path = tmp_path / "x.list"
    path.write_text("D:\\old\\machine\\a.wav|spk|en|hello\n", encoding="utf-8")
    assert labels.read_list(path).problems[0].kind == labels.MISSING_AUDIO
    result = labels.read_list(path, audio_dir=clips)
    assert result.problems == []
    assert labels.resolve_audio_path(result.entries[0].wav_path, clips) == clips / "a.wav"
    assert result.entries[0].name == "a.wav"


def test_write_then_read_round_trip_keeps_codes_as_written(tmp_path):
    entries = [LabelEntry("/d/a.wav", "spk", "JP", "テスト"), LabelEntry("/d/b.wav", "spk", "en", "Hi there.")]
    path = labels.write_list(tmp_path / "out" / "x.list", entries)
    assert path.read_text(encoding="utf-8") == "/d/a.wav|spk|JP|テスト\n/d/b.wav|spk|en|Hi there.\n"
    back = labels.read_list(path, check_audio=False)
    assert back.entries == entries and back.problems == []
    assert [e.lang for e in back.entries] == ["ja", "en"]


def test_write_is_atomic_and_rejects_separator_in_text(tmp_path):
    path = tmp_path / "x.list"
    path.write_text("/d/a.wav|spk|en|old\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'\\|' is not allowed"):
        labels.write_list(path, [LabelEntry("/d/a.wav", "spk", "en", "a|b")])
    assert path.read_text(encoding="utf-8") == "/d/a.wav|spk|en|old\n"  # untouched
    assert sorted(os.listdir(tmp_path)) == ["x.list"]  # no temp file left behind


def test_bom_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "x.list"
    path.write_bytes("\ufeff/d/a.wav|spk|zh|一\r\n/d/b.wav|spk|zh|二\r\n".encode())
    result = labels.read_list(path, check_audio=False)
    assert [e.wav_path for e in result.entries] == ["/d/a.wav", "/d/b.wav"] and not result.problems


def test_unreadable_files_raise_clear_errors(tmp_path):
    with pytest.raises(LabelFileError, match="not found"):
        labels.read_list(tmp_path / "nope.list")
    with pytest.raises(LabelFileError, match="is a folder"):
        labels.read_list(tmp_path)
    bad = tmp_path / "gbk.list"
    bad.write_bytes("a.wav|s|zh|你好".encode("gbk"))
    with pytest.raises(LabelFileError, match="not UTF-8"):
        labels.read_list(bad)


def test_find_list_file_accepts_a_folder_with_one_list(tmp_path):
    with pytest.raises(LabelFileError, match="no .list file"):
        labels.find_list_file(tmp_path)
    only = tmp_path / "voice.list"
    only.write_text("", encoding="utf-8")
    assert labels.find_list_file(tmp_path) == only
    assert labels.find_list_file(f' "{only}" ') == only  # pasted with quotes and spaces
    (tmp_path / "other.list").write_text("", encoding="utf-8")
    with pytest.raises(LabelFileError, match="2 .list files"):
        labels.find_list_file(tmp_path)
    with pytest.raises(LabelFileError, match="not found"):
        labels.find_list_file(tmp_path / "missing.list")


def test_clean_path_strips_what_users_paste():
    assert labels.clean_path('\u202a"C:/data/voice/" ') == "C:/data/voice"
    assert labels.basename("C:\\data\\a.wav") == "a.wav"
