from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.i18n import LOCALE_DIR, I18n
from GPT_SoVITS import labels
from GPT_SoVITS.labels import LabelEntry, LabelFileError
from tests.conftest import tone_burst, write_audio
from tests.ui import undocumented_controls
from tools import label_fixer
from tools.label_fixer import MESSAGES, LabelEditError, LabelSession, run_action

SR = 16000
LENGTHS = [1.0, 0.5, 0.75, 1.25, 0.6]


@pytest.fixture
def dataset(tmp_path) -> Path:
    clips = tmp_path / "clips"
    entries = []
    for i, seconds in enumerate(LENGTHS):
        path = write_audio(clips / f"clip{i}.wav", tone_burst(seconds, SR, freq=200 + 50 * i), SR)
        entries.append(LabelEntry(str(path), "spk", "EN", f"line {i}"))
    return labels.write_list(tmp_path / "lists" / "voice.list", entries)


def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.wav"))}


def test_folder_instead_of_file_opens_the_list_inside(dataset):
    assert LabelSession(dataset.parent).path == dataset
    with pytest.raises(LabelFileError, match="no .list file"):
        LabelSession(dataset.parent.parent / "clips")


def test_cli_reports_missing_file_without_traceback(tmp_path, capfd):
    rc = label_fixer.main(["--list", str(tmp_path / "nope.list"), "--port", "9999"])
    err = capfd.readouterr().err
    assert rc == 2 and "Label file not found" in err and "Traceback" not in err


def test_paging_clamps_to_the_list(dataset):
    session = LabelSession(dataset)
    assert session.page(0, 2) == [0, 1]
    assert session.page(4, 2) == [4]
    assert session.page(99, 3) == [4]
    changes, start = run_action(session, "next", [], 0, 2)
    assert start == 2 and changes[-1].kind == "saved_backup"
    assert run_action(session, "prev", [], 2, 3)[1] == 0
    assert run_action(session, "next", [], 4, 3)[1] == 4


def test_first_save_keeps_a_backup_of_the_original(dataset):
    original = dataset.read_bytes()
    session = LabelSession(dataset)
    assert session.set_texts([0, 1], ["Fixed  text ", "line 1"]) == 1  # whitespace normalised; 2nd unchanged
    change = session.save()
    assert change.kind == "saved_backup"
    assert change.text() == (f"Saved 5 line(s) to voice.list; 1 line(s) edited since it was opened (original kept "
                             f"as {session.backup.name}).")
    assert session.backup.read_bytes() == original
    session.set_texts([2], ["again"])
    assert "; 2 line(s) edited since it was opened" in session.save().text()
    assert session.backup.read_bytes() == original  # later saves never touch the backup
    assert [e.text for e in labels.read_list(dataset).entries][:3] == ["Fixed text", "line 1", "again"]
    second = LabelSession(dataset)  # a new session must not overwrite the first backup
    second.save()
    assert second.backup != session.backup and session.backup.read_bytes() == original


def test_delete_removes_lines_but_keeps_audio(dataset):
    clips = dataset.parent.parent / "clips"
    before = _bytes(clips)
    session = LabelSession(dataset)
    change = session.delete([3, 1])
    assert change.text() == "Deleted 2 line(s) from the list: clip1.wav, clip3.wav (audio files kept on disk)."
    assert [e.name for e in session.entries] == ["clip0.wav", "clip2.wav", "clip4.wav"]
    assert _bytes(clips) == before
    with pytest.raises(LabelEditError, match="Select the clips"):
        session.delete([])


def test_merge_writes_a_new_file_and_keeps_originals(dataset):
    clips = dataset.parent.parent / "clips"
    before = _bytes(clips)
    session = LabelSession(dataset)
    changes, _ = run_action(session, "merge", [2, 0], 0, 5, gap=0.5)
    assert changes[0].kind == "merged"
    merged = Path(session.entries[0].wav_path)
    assert merged.name == "clip0_merged.wav"
    audio, sr = sf.read(merged)
    assert sr == SR and len(audio) == int(LENGTHS[0] * SR) + SR // 2 + int(LENGTHS[2] * SR)
    assert np.abs(audio[int(LENGTHS[0] * SR) + 100:int(LENGTHS[0] * SR) + SR // 2 - 100]).max() == 0  # the gap
    assert session.entries[0].text == "line 0 line 2"  # English texts are joined with a space
    assert len(session) == 4 and "clip2.wav" not in [e.name for e in session.entries]
    assert {k: v for k, v in _bytes(clips).items() if k in before} == before
    assert [e.name for e in labels.read_list(dataset).entries][0] == "clip0_merged.wav"  # saved
    with pytest.raises(LabelEditError, match="at least two"):
        session.merge([1])


def test_split_writes_two_new_files(dataset):
    clips = dataset.parent.parent / "clips"
    before = _bytes(clips)
    session = LabelSession(dataset)
    change = session.split([3], 0.5)
    assert change.kind == "split"
    first, second = (Path(session.entries[i].wav_path) for i in (3, 4))
    assert (first.name, second.name) == ("clip3_a.wav", "clip3_b.wav")
    assert sf.info(first).frames == SR // 2 and sf.info(second).frames == int(LENGTHS[3] * SR) - SR // 2
    assert session.entries[3].text == session.entries[4].text == "line 3" and len(session) == 6
    assert {k: v for k, v in _bytes(clips).items() if k in before} == before
    with pytest.raises(LabelEditError, match="outside the clip"):
        session.split([0], 5.0)
    with pytest.raises(LabelEditError, match="exactly one"):
        session.split([0, 1], 0.2)


def test_audio_dir_mode_keeps_lines_resolvable(tmp_path):
    clips = tmp_path / "clips"
    for name in ("a.wav", "b.wav"):
        write_audio(clips / name, tone_burst(0.5, SR), SR)
    path = tmp_path / "x.list"
    path.write_text("D:\\old\\a.wav|spk|ZH|你\nD:\\old\\b.wav|spk|ZH|好\n", encoding="utf-8")
    session = LabelSession(path, audio_dir=clips)
    assert not session.problems
    session.merge([0, 1], 0.0)
    entry = session.entries[0]
    assert entry.wav_path == "D:\\old\\a_merged.wav" and entry.text == "你好"  # Chinese: no space
    assert session.audio_path(0) == clips / "a_merged.wav" and session.audio_path(0).is_file()


def test_every_message_is_translated():
    english = json.loads((LOCALE_DIR / "en_US.json").read_text(encoding="utf-8"))
    assert set(MESSAGES.values()) <= set(english)
    assert label_fixer.translated_messages(I18n("en_US")) == MESSAGES
    chinese = label_fixer.translated_messages(I18n("zh_CN"))
    assert chinese.keys() == MESSAGES.keys() and chinese != MESSAGES


def test_ui_builds(dataset):
    demo = label_fixer.build_ui(LabelSession(dataset), I18n("en_US"), batch_size=3)
    assert undocumented_controls(demo) == []


def test_label_fixer_job_argv_round_trip(dataset):
    from app.jobs import LabelFixerJob

    job = LabelFixerJob(dataset.parent, 9999, "0.0.0.0", 7, "zh_CN", dataset.parent.parent / "clips")
    assert job.validate() == dataset  # the folder resolves to its .list
    args = label_fixer.build_parser().parse_args(job.spec().argv)
    assert (args.list_path, args.port, args.host, args.batch_size, args.lang, args.audio_dir) == \
           (job.list_path, 9999, "0.0.0.0", 7, "zh_CN", job.audio_dir)
    assert job.url == "http://127.0.0.1:9999/"
    with pytest.raises(LabelFileError):
        LabelFixerJob(dataset.parent.parent / "clips").spec()


@pytest.mark.slow
def test_launcher_opens_and_closes_the_label_fixer(dataset, tmp_path):
    import socket
    import time

    from app.jobs import LabelFixerJob
    from app.processes import ProcessManager
    from app.widgets import port_open

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    job = LabelFixerJob(dataset.parent, port, language="en_US")
    processes = ProcessManager(tmp_path / "jobs")
    processes.start("label_fixer", job.spec())
    try:
        deadline = time.monotonic() + 90
        while not port_open(job.url):
            assert processes.status("label_fixer").running, processes.tail("label_fixer")
            assert time.monotonic() < deadline, "label fixer did not start within 90 s"
            time.sleep(0.5)
        assert "voice.list" in processes.tail("label_fixer")
    finally:
        assert processes.stop("label_fixer")
        processes.wait("label_fixer", 30)
    assert not port_open(job.url)


def test_edits_are_counted_per_line_since_opening_and_languages_change(dataset):
    """The save used to say '1 text(s) changed' after 20 edits (it counted only the last page's changes)."""
    session = LabelSession(dataset)
    for round_ in range(4):  # the same lines edited again and again, page by page
        for start in range(0, 5, 2):
            shown = session.page(start, 2)
            session.set_texts(shown, [f"edit {round_} {i}" for i in shown])
    assert session.set_texts([3], ["edit 3 3"], ["ZH"]) == 1  # a language change alone is an edit
    change = session.save()
    assert "; 5 line(s) edited since it was opened" in change.text()
    saved = labels.read_list(dataset).entries
    assert saved[3].language == "ZH" and saved[3].text == "edit 3 3"
    assert session.set_texts([0, 1], [saved[0].text, saved[1].text], [None, saved[1].language]) == 0
