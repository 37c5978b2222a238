"""Batch ASR through the real FunASR ``AutoModel`` with tiny random models in upstream's folder layouts.

The models (tests/funasr_models.py) are built so their output is fixed: Paraformer reads ``好`` about every half
second, CT-Punc puts ``，`` after each token and ``。`` at the end, SenseVoice emits its four tags (``auto`` →
``<|en|>``) and then ``好``. What is checked is the pipeline around them: folders found under upstream's names,
the .list lines (path, speaker, language, text), punctuation, tag stripping, batching, the VAD for long
recordings, one failing clip not stopping the job, and the missing-model message before funasr is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from GPT_SoVITS import labels
from GPT_SoVITS.audio import load_audio
from GPT_SoVITS.paths import REPO_ROOT
from tests import funasr_models
from tests.conftest import espeak, tone_burst, write_audio
from tools import asr
from tools.asr import ModelNotFoundError
from tools.asr import __main__ as asr_cli
from tools.asr import funasr as funasr_backend

pytest.importorskip("funasr")

SENTENCES = {"a_first.wav": "你好，这是第一句。", "b_second.wav": "我们去公园吧。", "c_third.wav": "今天天气很好。"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return funasr_models.build_all(tmp_path_factory.mktemp("asr_models"))


def _speech(text: str, path: Path) -> Path:
    if espeak(text, path, voice="cmn") is None:
        write_audio(path, tone_burst(1.5, 16000), 16000)
    return path


@pytest.fixture
def clips(tmp_path) -> Path:
    """Three spoken clips, a 40 ms click (too short for the models), an undecodable file, a text file."""
    folder = tmp_path / "voice"
    for name, text in SENTENCES.items():
        _speech(text, folder / name)
    write_audio(folder / "d_click.wav", tone_burst(0.04, 16000), 16000)
    (folder / "e_broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "notes.txt").write_text("not audio", encoding="utf-8")
    return folder


def _long_recording(path: Path, seconds: float = 36.0) -> Path:
    """Speech, 1.5 s of silence, speech ... for ``seconds``: long enough to go through the VAD."""
    speech, sr = load_audio(_speech("你好", path.with_name("_one.wav")), sr=16000)
    path.with_name("_one.wav").unlink()
    piece = np.concatenate([speech, np.zeros(int(1.5 * sr), np.float32)])
    write_audio(path, np.tile(piece, int(np.ceil(seconds * sr / len(piece)))), sr)
    return path


def test_damo_asr_cli_writes_punctuated_list_and_reports_failures(models, clips, tmp_path, capfd):
    _long_recording(clips / "f_long.wav")
    out = tmp_path / "asr_opt"
    rc = asr_cli.main(["-i", str(clips), "-o", str(out), "--backend", "funasr", "-l", "zh",
                       "--model-path", str(models), "--device", "cpu", "-b", "2"])
    log_text = capfd.readouterr().err
    assert rc == 0, log_text
    result = labels.read_list(out / "voice.list")
    assert result.problems == []
    names = [Path(e.wav_path).name for e in result.entries]
    assert names == ["a_first.wav", "b_second.wav", "c_third.wav", "f_long.wav"]  # sorted, failures left out
    for entry in result.entries:
        assert Path(entry.wav_path).is_absolute() and entry.speaker == "voice" and entry.language == "ZH"
        assert entry.text.startswith("好") and entry.text.endswith("。")  # CT-Punc ends the sentence
        assert set(entry.text) <= {"好", "，", "。"}
    assert "，" in result.entries[-1].text  # punctuation between the tokens of a longer text
    assert "e_broken.wav: cannot decode audio" in log_text
    assert "d_click.wav: ValueError: clip too short" in log_text  # failed inside a batch, retried alone
    assert "a batch of 2 clips failed" in log_text
    assert "2 clip(s) failed" in log_text and "PROGRESS 6/6 transcribing" in log_text


def test_long_recording_goes_through_the_vad(models, tmp_path):
    long = _long_recording(tmp_path / "long.wav")
    audio, _ = load_audio(long, sr=16000)
    backend = asr.load_backend("funasr", model_path=models, language="zh")
    vad = backend.model.inference([audio], model=backend.model.vad_model, kwargs=backend.model.vad_kwargs)
    segments = vad[0]["value"]
    assert len(segments) >= 10  # one per spoken phrase: the pauses cut it
    through_vad = backend.transcribe(audio, "zh").text
    whole = backend._recognise_short([audio], "zh")[0]  # the same audio recognised in one piece
    assert through_vad.count("好") < whole.count("好")  # the silences are no longer transcribed


def test_batches_feed_several_clips_to_one_model_call(models, clips):
    backend = asr.load_backend("funasr", model_path=models, language="zh", batch_size=2)
    assert backend.batch_size == 2
    calls: list[int] = []
    inference = backend.model.inference

    def counting(data, *args, **kwargs):
        if kwargs.get("model") is None:  # recognition, not the punctuation model
            calls.append(len(data))
        return inference(data, *args, **kwargs)

    backend.model.inference = counting
    files = sorted(clips.glob("[abc]_*.wav"))
    report = asr.transcribe_files(files, backend, "zh", "voice", clips / "out.list")
    assert report.written == 3 and calls == [2, 1]
    one_by_one = [backend.transcribe(load_audio(f, sr=16000)[0], "zh").text for f in files]
    batched = [e.text for e in labels.read_list(clips / "out.list").entries]
    assert batched == one_by_one  # padding in a batch does not change a clip's text


def test_sensevoice_language_comes_from_the_model_and_tags_are_stripped(models, clips, tmp_path, capfd):
    for name in ("d_click.wav", "e_broken.wav"):
        (clips / name).unlink()
    out = tmp_path / "out"
    # --model-path may also be the SenseVoiceSmall folder itself: the VAD is found beside it
    rc = asr_cli.main(["-i", str(clips), "-o", str(out), "--backend", "sensevoice", "-l", "auto",
                       "--model-path", str(models / funasr_models.SENSEVOICE_DIR), "--device", "cpu"])
    assert rc == 0, capfd.readouterr().err
    entries = labels.read_list(out / "voice.list").entries
    assert [(e.language, e.text) for e in entries] == [("EN", "好")] * 3  # <|en|> as the tiny model detects
    rc = asr_cli.main(["-i", str(clips), "-o", str(out), "--backend", "sensevoice", "-l", "ja",
                       "--model-path", str(models), "--device", "cpu"])
    assert rc == 0
    assert {e.language for e in labels.read_list(out / "voice.list").entries} == {"JA"}


def test_sensevoice_long_recording_is_cut_by_the_vad_and_joined(models, tmp_path):
    audio, _ = load_audio(_long_recording(tmp_path / "long.wav"), sr=16000)
    backend = asr.load_backend("sensevoice", model_path=models, language="auto")
    result = backend.transcribe(audio, "auto")
    assert result.language == "en" and "<|" not in result.text
    assert len(result.text) >= 10 and set(result.text) == {"好"}  # one 好 per segment, no spaces between


def test_missing_models_are_named_before_funasr_is_imported(tmp_path):
    clips = tmp_path / "clips"
    write_audio(clips / "a.wav", tone_burst(1.0, 16000), 16000)
    (tmp_path / "models" / funasr_backend.VAD_ZH.name).mkdir(parents=True)  # an empty folder is not a model
    code = ("import sys; from tools.asr.__main__ import main; "
            f"rc = main(['-i', {str(clips)!r}, '--backend', 'funasr', '--model-path', {str(tmp_path / 'models')!r},"
            " '--device', 'cpu']); print('funasr imported:', 'funasr' in sys.modules); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert proc.returncode == 2, proc.stderr
    assert "funasr imported: False" in proc.stdout
    for model in (funasr_backend.PARAFORMER_ZH, funasr_backend.VAD_ZH, funasr_backend.PUNC_ZH):
        assert str(tmp_path / "models" / model.name) in proc.stderr
        assert f"https://www.modelscope.cn/models/{model.repository}/files" in proc.stderr
    assert "lacks config.yaml, model.pt" in proc.stderr and "does not exist" in proc.stderr


def test_model_routing_and_folder_names(tmp_path):
    zh = funasr_backend.pipeline_for("funasr", "zh")
    assert [m.name for m in zh.models()] == [
        "speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
        "speech_fsmn_vad_zh-cn-16k-common-pytorch", "punc_ct-transformer_zh-cn-common-vocab272727-pytorch"]
    yue = funasr_backend.pipeline_for("funasr", "yue")
    assert [m.name for m in yue.models()] == [
        "speech_UniASR_asr_2pass-cantonese-CHS-16k-common-vocab1468-tensorflow1-online"]
    assert zh.batched and not yue.batched  # FunASR's UniASR decodes the first clip of a batch only
    sense = funasr_backend.pipeline_for("sensevoice", "ja")
    assert [m.name for m in sense.models()] == ["SenseVoiceSmall", "speech_fsmn_vad_zh-cn-16k-common-pytorch"]
    with pytest.raises(ModelNotFoundError, match="UniASR"):
        funasr_backend.resolve_models("funasr", "yue", tmp_path)
    with pytest.raises(ValueError, match="funasr has no language 'auto'"):  # Damo ASR writes the language asked
        asr.load_backend("funasr", language="auto", model_path=tmp_path)


def test_tag_and_text_helpers():
    text, tags = funasr_backend.split_tags("<|yue|><|HAPPY|><|BGM|><|withitn|>你好 <|yue|><|NEUTRAL|>世界")
    assert tags == ["yue", "HAPPY", "BGM", "withitn", "yue", "NEUTRAL"]
    assert funasr_backend.tidy_text(text) == "你好世界"
    assert funasr_backend.tidy_text("hello   world 你好 好") == "hello world 你好好"
    assert funasr_backend.spoken_language(["NEUTRAL", "ko"], "auto") == "ko"
    assert funasr_backend.spoken_language(["nospeech"], "auto") == "zh"
    assert funasr_backend.spoken_language([], "ja") == "ja"


def test_funasr_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", None)
    with pytest.raises(asr.BackendUnavailableError, match="install.sh"):
        funasr_backend.import_funasr()


@pytest.mark.slow
def test_runs_offline_and_with_a_broken_torchaudio(models, tmp_path):
    """No network (a fresh network namespace where unshare can make one) and a torchaudio that fails to load
    with OSError, as a torchaudio built for another torch does: SenseVoice still transcribes."""
    fake = tmp_path / "fake_site" / "torchaudio"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise OSError('libtorchaudio.so: undefined symbol: _ZN3c10')\n")
    clips = tmp_path / "voice"
    _speech("你好", clips / "a.wav")
    argv = [sys.executable, "-m", "tools.asr", "-i", str(clips), "-o", str(tmp_path / "out"), "--backend",
            "sensevoice", "--model-path", str(models), "--device", "cpu"]
    unshare = ["unshare", "-n"] if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0 \
        else []
    proc = subprocess.run(unshare + argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(REPO_ROOT)])})
    assert proc.returncode == 0, proc.stderr
    assert labels.read_list(tmp_path / "out" / "voice.list").entries[0].text == "好"


def test_launcher_does_not_import_funasr():
    code = "import sys, app.tabs.dataset, app.jobs; print('funasr' in sys.modules, 'torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False"], proc.stderr
