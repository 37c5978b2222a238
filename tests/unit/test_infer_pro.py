"""The engine with tiny v2Pro/v2ProPlus models: speaker embeddings per reference, cached, averaged; switching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from GPT_SoVITS.audio import load_audio
from GPT_SoVITS.features.spectrogram import reference_spectrogram
from GPT_SoVITS.infer import TTS, ModelMismatchError, Reference, SynthesisOptions
from GPT_SoVITS.infer.components import LazySlot, load_model_pair
from tests.infer_helpers import CharFeaturizer, ToySpeaker, ToySSL, reference_wav, save_tiny_weights

OPTS = SynthesisOptions(seed=5, text_split="cut0")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("infer_pro")
    out: dict[str, Path] = {"ref": reference_wav(root / "ref.wav"),
                            "ref2": reference_wav(root / "ref2.wav", seconds=5.0, freq=240.0)}
    for version in ("v2", "v2Pro", "v2ProPlus"):
        out[f"gpt_{version}"], out[f"sovits_{version}"] = save_tiny_weights(root, version, seed=3, name="t")
    return out


def pro_tts(files: dict[str, Path], version: str = "v2Pro", speaker=None) -> TTS:
    pair = load_model_pair(files[f"gpt_{version}"], files[f"sovits_{version}"])
    return TTS(pair, ToySSL(), CharFeaturizer(), max_new_tokens=20, speaker=speaker or ToySpeaker())


@pytest.mark.parametrize("version", ["v2Pro", "v2ProPlus"])
def test_pro_models_synthesize_and_embed_each_reference_once(files, version) -> None:
    speaker = ToySpeaker()
    tts = pro_tts(files, version, speaker)
    assert tts.version == version
    ref = Reference(files["ref"], "这是参考文本。", "all_zh")
    result = tts.synthesize_detailed("今天天气很好。", "zh", ref, OPTS)
    assert result.sample_rate == 32000 and np.isfinite(result.audio).all() and result.audio.size > 0
    tts.synthesize_detailed("我们去公园吧。", "zh", ref, OPTS)
    assert speaker.calls == 1  # cached with the rest of the reference


def test_the_style_vector_is_upstreams_average_of_post_prelu_vectors(files) -> None:
    speaker = ToySpeaker()
    tts = pro_tts(files, speaker=speaker)
    ref = Reference(files["ref"], "参考。", "all_zh", extra_audios=(files["ref2"],))
    prepared = tts.references.get(ref, tts.models)
    assert speaker.calls == 2  # one embedding per reference, each computed alone
    sovits = tts.models.sovits
    waves = [load_audio(p, sr=32000)[0] for p in (files["ref"], files["ref2"])]
    with torch.no_grad():
        specs = [reference_spectrogram(w, 1024, 640, 1024) for w in waves]
        embs = [ToySpeaker()(w) for w in waves]
        each = [sovits.reference_embedding(s, e) for s, e in zip(specs, embs, strict=True)]
    torch.testing.assert_close(prepared.ge, (each[0] + each[1]) / 2)
    assert not torch.allclose(each[0], each[1])


def test_the_embedding_changes_the_voice(files) -> None:
    ref = Reference(files["ref"], "这是参考文本。", "all_zh")
    a = pro_tts(files).synthesize("今天天气很好。", "zh", ref, OPTS)[1]

    class Shifted(ToySpeaker):
        def __call__(self, wav32k):
            return super().__call__(wav32k) + 3.0

    b = pro_tts(files, speaker=Shifted()).synthesize("今天天气很好。", "zh", ref, OPTS)[1]
    assert a.shape == b.shape and not np.allclose(a, b)


def test_switching_between_v2_and_pro_without_restart(files) -> None:
    speaker = ToySpeaker()
    tts = TTS(load_model_pair(files["gpt_v2"], files["sovits_v2"]), ToySSL(), CharFeaturizer(), max_new_tokens=20,
              speaker=LazySlot(loader=lambda: speaker))
    ref = Reference(files["ref"], "这是参考文本。", "all_zh")
    assert tts.synthesize("你好。", "zh", ref, OPTS)[1].size and speaker.calls == 0  # v2 never loads it
    tts.set_sovits(files["sovits_v2Pro"])
    assert tts.version == "v2Pro" and tts.synthesize("你好。", "zh", ref, OPTS)[1].size and speaker.calls == 1
    tts.set_sovits(files["sovits_v2ProPlus"])
    assert tts.version == "v2ProPlus" and tts.synthesize("你好。", "zh", ref, OPTS)[1].size and speaker.calls == 2
    tts.set_sovits(files["sovits_v2"])
    assert tts.version == "v2" and tts.synthesize("你好。", "zh", ref, OPTS)[1].size


def test_a_missing_speaker_model_keeps_the_current_models_and_says_why(files, tmp_path: Path) -> None:
    missing = tmp_path / "sv" / "pretrained_eres2netv2w24s4ep4.ckpt"

    def load():
        from GPT_SoVITS.infer.components import load_speaker_encoder

        return load_speaker_encoder(missing)

    tts = TTS(load_model_pair(files["gpt_v2"], files["sovits_v2"]), ToySSL(), CharFeaturizer(),
              speaker=LazySlot(loader=load))
    with pytest.raises(FileNotFoundError, match="speaker-verification model.*pretrained_eres2netv2w24s4ep4"):
        tts.set_sovits(files["sovits_v2Pro"])
    assert tts.version == "v2"
    with pytest.raises(ModelMismatchError, match="speaker-verification model"):
        TTS(load_model_pair(files["gpt_v2Pro"], files["sovits_v2Pro"]), ToySSL(), CharFeaturizer())
