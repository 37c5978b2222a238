"""Dataset formatting (1A) end to end on generated audio with the tiny pretrained set, through the real loaders."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.prepare.cli import main, parse_workers
from GPT_SoVITS.prepare.common import Journal, Shard
from tests.conftest import espeak, silence, tone_burst, write_audio

LINES = [
    ("zh1.wav", "ZH", "你好，我们去银行取钱。"),
    ("en1.wav", "EN", "Hello world, this is a test."),
    ("zh2.wav", "zh", "今天天气很好。"),
    ("en2.wav", "en", "The quick brown fox jumps."),
]


def make_dataset(root: Path) -> tuple[Path, Path]:
    clips = root / "clips"
    for i, (name, _, text) in enumerate(LINES):
        spoken = espeak(text, clips / name, voice="cmn" if name.startswith("zh") else "en")
        if spoken is None:  # no espeak-ng: a synthetic voiced signal of similar length
            write_audio(clips / name, np.concatenate([tone_burst(1.5, seed=i), silence(0.2)]))
    listing = root / "data.list"
    listing.write_text("".join(f"{clips / name}|spk|{lang}|{text}\n" for name, lang, text in LINES),
                       encoding="utf-8")
    return listing, clips


def run(exp: Path, listing: Path, pretrained, *extra: str) -> int:
    return main(["--exp-dir", str(exp), "--list", str(listing), "--pretrained-dir", str(pretrained.root), *extra])


@pytest.fixture
def dataset(tmp_path):
    return make_dataset(tmp_path)


def test_all_five_outputs(tmp_path, dataset, tiny_pretrained):
    listing, clips = dataset
    exp = ExperimentPaths(tmp_path / "logs" / "voice")
    assert run(exp.root, listing, tiny_pretrained) == 0

    text_lines = exp.name2text.read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[0] for line in text_lines] == [name for name, _, _ in LINES]
    for line in text_lines:
        name, phones, word2ph, norm_text = line.split("\t")
        n_phones = len(phones.split(" "))
        if name.startswith("zh"):
            counts = ast.literal_eval(word2ph)
            assert sum(counts) == n_phones and len(counts) == len(norm_text)
            bert = torch.load(exp.bert_dir / f"{name}.pt", weights_only=True)
            assert bert.shape == (1024, n_phones)
        else:
            assert word2ph == "None" and not (exp.bert_dir / f"{name}.pt").exists()

    semantic = exp.name2semantic.read_text(encoding="utf-8").splitlines()
    assert semantic[0] == "item_name\tsemantic_audio"
    codes = {line.split("\t")[0]: [int(c) for c in line.split("\t")[1].split()] for line in semantic[1:]}
    assert list(codes) == [name for name, _, _ in LINES]
    for name, _, _ in LINES:
        ssl = torch.load(exp.hubert_dir / f"{name}.pt", weights_only=True)
        assert ssl.shape[:2] == (1, 768)
        wav, sr = sf.read(str(exp.wav32k_dir / name), dtype="int16")
        assert sr == 32000 and sf.info(str(exp.wav32k_dir / name)).subtype == "PCM_16"
        seconds = len(wav) / sr
        assert abs(ssl.shape[-1] - 50 * seconds) <= 2  # HuBERT frames at 50 Hz
        assert abs(len(codes[name]) - 25 * seconds) <= 2  # semantic tokens at 25 Hz
        assert all(0 <= c < 1024 for c in codes[name])
        peak = np.abs(wav).max() / 32768
        assert 0.5 < peak <= 1.0  # upstream's loudness mix normalises towards 0.95·0.5 + 0.5·x

    report = json.loads((exp.root / ".prepare" / "report.json").read_text())
    assert report["semantic"]["done"] == len(LINES) and report["semantic"]["issues"] == []


def test_rerun_reuses_and_list_change_redoes_only_what_changed(tmp_path, dataset, tiny_pretrained, caplog):
    listing, clips = dataset
    exp = tmp_path / "exp"
    assert run(exp, listing, tiny_pretrained) == 0
    first = json.loads((exp / ".prepare" / "report.json").read_text())
    assert first["text"]["done"] == 4
    bert_mtime = (exp / "3-bert" / "zh2.wav.pt").stat().st_mtime_ns

    assert run(exp, listing, tiny_pretrained) == 0
    again = json.loads((exp / ".prepare" / "report.json").read_text())
    assert [again[s]["reused"] for s in ("text", "hubert", "semantic")] == [4, 4, 4]
    assert [again[s]["done"] for s in ("text", "hubert", "semantic")] == [0, 0, 0]

    # edit one text and drop one line: only that item is redone, the dropped one disappears from the outputs
    lines = listing.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace("我们去银行取钱", "我们去长城")
    listing.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    caplog.clear()
    assert run(exp, listing, tiny_pretrained) == 0
    assert "the label list changed" in caplog.text
    changed = json.loads((exp / ".prepare" / "report.json").read_text())
    assert (changed["text"]["done"], changed["text"]["reused"]) == (1, 2)
    assert (changed["hubert"]["done"], changed["hubert"]["reused"]) == (0, 3)
    assert "长城" in (exp / "2-name2text.txt").read_text(encoding="utf-8")
    names = [line.split("\t")[0] for line in (exp / "6-name2semantic.tsv").read_text().splitlines()[1:]]
    assert names == ["zh1.wav", "en1.wav", "zh2.wav"]
    assert (exp / "3-bert" / "zh2.wav.pt").stat().st_mtime_ns == bert_mtime  # untouched item not rewritten


def test_stopped_run_resumes_from_the_journal(tmp_path, dataset, tiny_pretrained):
    listing, _ = dataset
    exp = ExperimentPaths(tmp_path / "exp")
    assert run(exp.root, listing, tiny_pretrained, "--steps", "text,hubert") == 0
    # simulate a run stopped during 1Ab: the journal loses its last record and gets a torn line
    journal = next((exp.root / ".prepare").glob("hubert-*.jsonl"))
    records = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(records[:2]) + records[2][:10])
    assert len(Journal(journal).read()) == 2
    assert run(exp.root, listing, tiny_pretrained, "--steps", "hubert,semantic") == 0
    report = json.loads((exp.root / ".prepare" / "report.json").read_text())
    assert (report["hubert"]["reused"], report["hubert"]["done"]) == (2, 2)
    assert len(exp.name2semantic.read_text().splitlines()) == 1 + len(LINES)


def test_filtered_items_are_reported(tmp_path, tiny_pretrained, caplog):
    clips = tmp_path / "clips"
    write_audio(clips / "ok.wav", tone_burst(1.5))
    write_audio(clips / "loud.wav", tone_burst(1.5, amp=3.0), subtype="FLOAT")  # peak > 2.2
    (clips / "broken.wav").write_bytes(b"RIFF nonsense")
    listing = tmp_path / "x.list"
    listing.write_text("\n".join([
        f"{clips / 'ok.wav'}|s|en|Fine clip here.",
        f"{clips / 'loud.wav'}|s|en|Too loud clip.",
        f"{clips / 'broken.wav'}|s|en|Broken clip.",
        f"{clips / 'missing.wav'}|s|en|No such file.",
        f"{clips / 'ok.wav'}|s|xx|Bad language.",
        f"{clips / 'ok.wav'}|s|en|Duplicate name.",
    ]) + "\n", encoding="utf-8")
    assert run(tmp_path / "exp", listing, tiny_pretrained) == 0
    report = json.loads((tmp_path / "exp" / ".prepare" / "report.json").read_text())
    issues = " | ".join(report["hubert"]["issues"])
    assert "too loud" in issues and "unreadable audio" in issues
    text_issues = " | ".join(report["text"]["issues"])
    for reason in ("missing", "language", "duplicate"):
        assert reason in text_issues.lower()
    names = [line.split("\t")[0] for line in (tmp_path / "exp" / "6-name2semantic.tsv").read_text().splitlines()[1:]]
    assert names == ["ok.wav"]


def test_empty_result_fails_with_a_message(tmp_path, tiny_pretrained, caplog):
    listing = tmp_path / "x.list"
    listing.write_text(f"{tmp_path / 'nothing.wav'}|s|en|No audio.\n", encoding="utf-8")
    assert run(tmp_path / "exp", listing, tiny_pretrained) == 1
    assert "no usable item" in caplog.text


def test_missing_pretrained_is_refused(tmp_path, dataset):
    listing, _ = dataset
    assert run(tmp_path / "exp", listing, type("P", (), {"root": tmp_path / "none"})()) == 1


def test_two_workers_give_the_same_outputs(tmp_path, dataset, tiny_pretrained):
    listing, _ = dataset
    assert run(tmp_path / "one", listing, tiny_pretrained) == 0
    assert run(tmp_path / "two", listing, tiny_pretrained, "--workers", "2") == 0
    for name in ("2-name2text.txt", "6-name2semantic.tsv"):
        assert (tmp_path / "one" / name).read_text() == (tmp_path / "two" / name).read_text()
    assert len(list((tmp_path / "two" / ".prepare").glob("text-*of2.jsonl"))) == 2


def test_worker_and_shard_parsing():
    assert [w.device for w in parse_workers("0-0-1", 1, "cpu", True)] == ["cuda:0", "cuda:0", "cuda:1"]
    assert len(parse_workers(None, 3, "cpu", True)) == 3 and not parse_workers(None, 1, "cpu", True)[0].half
    with pytest.raises(ValueError):
        parse_workers("a-b", 1, "cpu", False)
    assert Shard.parse("1/3").select(list(range(7))) == [1, 4]
    with pytest.raises(ValueError):
        Shard.parse("3/3")


def test_pro_version_adds_the_speaker_embedding_step(tmp_path, dataset, tiny_pretrained):
    from GPT_SoVITS.features.sv import embed_wave, load_sv

    listing, _ = dataset
    exp = ExperimentPaths(tmp_path / "pro")
    assert run(exp.root, listing, tiny_pretrained, "--version", "v2Pro") == 0
    report = json.loads((exp.root / ".prepare" / "report.json").read_text())
    assert list(report) == ["text", "hubert", "sv", "semantic"] and report["sv"]["done"] == len(LINES)
    model = load_sv(tiny_pretrained.sv)
    for name, _, _ in LINES:
        saved = torch.load(exp.sv_dir / f"{name}.pt", weights_only=True)  # upstream's name keeps the extension
        wav, _ = sf.read(str(exp.wav32k_dir / name), dtype="int16")
        assert saved.shape == (1, model.embedding_dim) and saved.dtype == torch.float32
        torch.testing.assert_close(saved, embed_wave(model, torch.from_numpy(wav)))  # from the 5-wav32k file
    # a re-run reuses the embeddings; a changed clip redoes its hubert and sv results only
    assert run(exp.root, listing, tiny_pretrained, "--version", "v2Pro") == 0
    again = json.loads((exp.root / ".prepare" / "report.json").read_text())
    assert (again["sv"]["reused"], again["sv"]["done"]) == (len(LINES), 0)
    clip = Path(listing.read_text(encoding="utf-8").splitlines()[1].split("|")[0])
    write_audio(clip, tone_burst(1.8, seed=9))
    assert run(exp.root, listing, tiny_pretrained, "--version", "v2Pro") == 0
    changed = json.loads((exp.root / ".prepare" / "report.json").read_text())
    assert (changed["hubert"]["done"], changed["sv"]["done"], changed["sv"]["reused"]) == (1, 1, len(LINES) - 1)


def test_sv_step_belongs_to_pro_versions_and_needs_its_model(tmp_path, dataset, tiny_pretrained, caplog):
    listing, _ = dataset
    assert run(tmp_path / "v2", listing, tiny_pretrained, "--steps", "text,sv") == 2
    assert "sv do not belong to v2" in caplog.text
    assert not (tmp_path / "v2" / "7-sv_cn").exists()
    caplog.clear()
    assert run(tmp_path / "pro", listing, tiny_pretrained, "--version", "v2ProPlus", "--sv-model",
               str(tmp_path / "nowhere.ckpt")) == 1
    assert "speaker-verification model" in caplog.text and "nowhere.ckpt" in caplog.text


def test_text_in_the_wrong_language_is_left_out_with_the_reason(tmp_path, tiny_pretrained):
    """Chinese text on EN lines used to become phones ", ," and go on into training; now 1Aa leaves it out."""
    clips = tmp_path / "clips"
    lines = [("good.wav", "EN", "The quick brown fox jumps."), ("wrong1.wav", "EN", "今天天气很好，我们去公园吧。"),
             ("wrong2.wav", "ZH", "Hello world, this is a test.")]
    for i, (name, _, _) in enumerate(lines):
        write_audio(clips / name, tone_burst(1.5, seed=i))
    listing = tmp_path / "x.list"
    listing.write_text("".join(f"{clips / n}|s|{lang}|{text}\n" for n, lang, text in lines), encoding="utf-8")
    assert run(tmp_path / "exp", listing, tiny_pretrained, "--steps", "text") == 0
    report = json.loads((tmp_path / "exp" / ".prepare" / "report.json").read_text())
    issues = report["text"]["issues"]
    assert report["text"]["done"] == 1 and len(issues) == 2
    assert issues[0].startswith("wrong1.wav: wrong language:") and "Chinese characters" in issues[0]
    assert issues[1].startswith("wrong2.wav: wrong language:") and "Latin letters" in issues[1]
    names = [line.split("\t")[0] for line in (tmp_path / "exp" / "2-name2text.txt").read_text().splitlines()]
    assert names == ["good.wav"]


def test_v4_formats_as_v2_with_the_v4_codebook(tmp_path, dataset, tiny_pretrained):
    listing, _ = dataset
    exp = ExperimentPaths(tmp_path / "v4")
    assert run(exp.root, listing, tiny_pretrained, "--version", "v4") == 0
    report = json.loads((exp.root / ".prepare" / "report.json").read_text())
    assert list(report) == ["text", "hubert", "semantic"] and not exp.sv_dir.exists()
    manifest = json.loads((exp.root / ".prepare" / "manifest.json").read_text())
    assert manifest["version"] == "v4"
    codes = [line.split("\t")[1].split() for line in exp.name2semantic.read_text().splitlines()[1:]]
    assert len(codes) == len(LINES) and all(codes)
