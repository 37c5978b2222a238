"""Batch ASR through the real faster-whisper code path, with a tiny random Whisper converted by CTranslate2.

A random model does not transcribe meaningfully, so the tests assert the pipeline: one line per clip, in
sorted order, in the .list format, and a per-file error report for a broken file. The FunASR backends are
tested with tiny FunASR models in tests/unit/test_asr_funasr.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from GPT_SoVITS import labels
from tests.conftest import espeak, tone_burst, write_audio
from tools import asr
from tools.asr import ModelNotFoundError, Transcript
from tools.asr import __main__ as asr_cli
from tools.asr import faster_whisper as fw_backend


def _byte_level_alphabet() -> list[str]:
    """GPT-2's byte → printable character table (the base vocabulary of Whisper's BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def build_tiny_whisper(folder: Path) -> Path:
    """A 1-layer random Whisper with a byte-level tokenizer, saved by transformers, converted by CTranslate2."""
    import tokenizers
    import torch
    from ctranslate2.converters import TransformersConverter
    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from tokenizers import decoders, models, pre_tokenizers
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    tok = tokenizers.Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(_byte_level_alphabet())}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    languages = [f"<|{code}|>" for code in _LANGUAGE_CODES]
    specials = ["<|endoftext|>", "<|startoftranscript|>", *languages, "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]
    tok.add_special_tokens([tokenizers.AddedToken(s, special=True) for s in specials])
    eot, sot = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftranscript|>")
    config = WhisperConfig(vocab_size=tok.get_vocab_size() + 1501, num_mel_bins=80, d_model=32,
                           encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=64, decoder_ffn_dim=64, decoder_start_token_id=sot,
                           eos_token_id=eot, pad_token_id=eot, bos_token_id=eot)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():
        # Peaked logits: a random model's flat distribution makes faster-whisper fall back to sampling with an
        # unseeded generator, so a clip's text changed run to run and was sometimes empty. A confident model
        # decodes the same tokens every time.
        model.model.decoder.layer_norm.weight.mul_(1000.0)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, suppress_tokens=[],
        begin_suppress_tokens=[eot], is_multilingual=True,
        lang_to_id={t: tok.token_to_id(t) for t in languages},
        no_timestamps_token_id=tok.token_to_id("<|notimestamps|>"))
    hf_dir, ct2_dir = folder / "hf", folder / "faster-whisper-tiny"
    model.save_pretrained(hf_dir)
    WhisperTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                         unk_token="<|endoftext|>", pad_token="<|endoftext|>").save_pretrained(hf_dir)
    TransformersConverter(str(hf_dir), copy_files=["tokenizer.json"]).convert(str(ct2_dir), force=True)
    return ct2_dir


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory) -> Path:
    pytest.importorskip("faster_whisper")
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"))


@pytest.fixture
def clips(tmp_path) -> Path:
    folder = tmp_path / "voice"
    sentences = {"b_second.wav": "The second clip is here.", "a_first.wav": "Hello, this is the first clip."}
    for name, text in sentences.items():
        if espeak(text, folder / name) is None:
            write_audio(folder / name, tone_burst(2.0, 16000), 16000)
    (folder / "c_broken.wav").write_bytes(b"RIFF not really a wave file")
    (folder / "notes.txt").write_text("not audio", encoding="utf-8")
    return folder


def test_cli_transcribes_each_clip_in_sorted_order_and_reports_broken_file(tiny_whisper, clips, tmp_path, capfd):
    out = tmp_path / "asr_opt"
    rc = asr_cli.main(["-i", str(clips), "-o", str(out), "--model-path", str(tiny_whisper), "-l", "en",
                       "-p", "int8", "--device", "cpu", "--no-download"])
    log_text = capfd.readouterr().err
    assert rc == 0
    list_path = out / "voice.list"
    assert list_path == asr.list_path_for(clips, out)
    result = labels.read_list(list_path)
    assert result.problems == []  # four fields, known language, audio exists, unique names, non-empty text
    assert [Path(e.wav_path).name for e in result.entries] == ["a_first.wav", "b_second.wav"]
    assert all(Path(e.wav_path).is_absolute() and e.speaker == "voice" and e.language == "EN"
               for e in result.entries)
    assert "1 clip(s) failed" in log_text and "c_broken.wav: cannot decode audio" in log_text
    assert "PROGRESS 3/3 transcribing" in log_text  # the broken clip counts towards progress too


def test_cli_fails_when_no_clip_can_be_transcribed(tiny_whisper, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x.wav").write_bytes(b"garbage")
    out = tmp_path / "out"
    rc = asr_cli.main(["-i", str(folder), "-o", str(out), "--model-path", str(tiny_whisper), "--device", "cpu"])
    assert rc == 1
    assert not (out / "bad.list").exists()


def test_missing_model_offline_names_model_and_folder(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(fw_backend, "MODELS_DIR", tmp_path / "models")
    with pytest.raises(ModelNotFoundError) as err:
        fw_backend.resolve_model("large", allow_download=False)
    message = str(err.value)
    assert "faster-whisper large-v3" in message and str(tmp_path / "models" / "faster-whisper-large-v3") in message
    assert "Systran/faster-whisper-large-v3" in message
    clips = tmp_path / "clips"
    write_audio(clips / "a.wav", tone_burst(1.0, 16000), 16000)
    rc = asr_cli.main(["-i", str(clips), "-o", str(tmp_path / "o"), "--model-path", str(tmp_path / "nowhere"),
                       "--device", "cpu"])
    err = capfd.readouterr().err
    assert rc == 2 and str(tmp_path / "nowhere" / "faster-whisper-large-v3") in err and "offline" in err


def test_backend_choices_are_validated():
    with pytest.raises(ValueError, match="no model size 'tiny'"):
        asr.load_backend("faster-whisper", size="tiny", allow_download=False)
    with pytest.raises(ValueError, match="Unknown ASR backend"):
        asr.load_backend("nemo")
    info = asr.BACKENDS["faster-whisper"]
    assert info.default_size == "large-v3" and info.default_precision(cuda=False) == "int8"
    assert info.default_precision(cuda=True) == "float16"
    assert asr.BACKENDS["funasr"].default_language == "zh"


class _ScriptedBackend:
    """Returns prepared transcripts: exercises the batch loop's text cleaning and error handling."""

    def __init__(self, texts: list[str]):
        self.texts = texts

    def transcribe(self, audio: np.ndarray, language: str) -> Transcript:
        assert audio.dtype == np.float32 and audio.ndim == 1
        return Transcript(self.texts.pop(0), "ja")


def test_batch_loop_cleans_separators_and_reports_empty_text(tmp_path):
    folder = tmp_path / "clips"
    files = [write_audio(folder / f"{i}.wav", tone_burst(0.5, 22050), 22050) for i in range(2)]
    report = asr.transcribe_files(files, _ScriptedBackend(["a|b\nc ", "   "]), "auto", "spk", tmp_path / "x.list")
    assert report.written == 1 and report.failed[0][0] == files[1] and "no speech" in report.failed[0][1]
    assert (tmp_path / "x.list").read_text(encoding="utf-8") == f"{files[0].resolve()}|spk|JA|a b c\n"


def test_model_path_may_be_the_folder_holding_the_model(tiny_whisper, tmp_path):
    """Like tools/asr/models: the panel's model folder holds faster-whisper-<size> folders."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "faster-whisper-medium").symlink_to(tiny_whisper, target_is_directory=True)
    assert fw_backend.resolve_model("medium", models, allow_download=False) == models / "faster-whisper-medium"
    with pytest.raises(ModelNotFoundError, match=str(models / "faster-whisper-large-v3")):
        fw_backend.resolve_model("large-v3", models, allow_download=False)


def test_asr_job_argv_round_trip(tmp_path):
    from app.jobs import AsrJob

    (tmp_path / "clips").mkdir()
    job = AsrJob(tmp_path / "clips", tmp_path / "out", "faster-whisper", "medium", "ja", "float32", "cpu",
                 tmp_path / "model")
    args = asr_cli.build_parser().parse_args(job.spec().argv)
    assert (args.input_folder, args.output_folder, args.backend, args.model_size, args.language, args.precision,
            args.device, args.model_path) == (job.input_dir, job.output_dir, job.backend, job.size, job.language,
                                              job.precision, job.device, job.model_path)
    assert job.list_path == tmp_path / "out" / "clips.list"
    with pytest.raises(ValueError, match="does not offer language 'ja'"):
        AsrJob(tmp_path / "clips", tmp_path / "out", "funasr", "large", "ja").spec()


@pytest.mark.slow
def test_asr_job_runs_under_the_job_runner(tiny_whisper, clips, tmp_path):
    from app.jobs import AsrJob
    from app.processes import JobState, ProcessManager

    (clips / "c_broken.wav").unlink()
    job = AsrJob(clips, tmp_path / "asr_opt", "faster-whisper", "large-v3", "en", "int8", "cpu", tiny_whisper)
    pushed = []
    processes = ProcessManager(tmp_path / "jobs")
    processes.start("asr", job.spec(on_finished=lambda: pushed.append(str(job.list_path))))
    status = processes.wait("asr", timeout=120)
    assert status.state is JobState.FINISHED, processes.tail("asr")
    assert (status.progress.done, status.progress.total) == (2, 2)
    assert pushed == [str(tmp_path / "asr_opt" / "voice.list")]
    assert len(labels.read_list(job.list_path).valid_entries()) == 2
