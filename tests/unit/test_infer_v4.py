"""The engine with tiny v4 models: 48 kHz audio through the flow-matching decoder and the vocoder, sample steps,
LoRA releases merged into the pretrained base, and switching between v2 and v4 in one engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from GPT_SoVITS.checkpoints import save_sovits_weights
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_SOVITS, TINY_SOVITS_V4, sovits_upstream_config, write_v4
from GPT_SoVITS.infer import TTS, InvalidOptionError, Reference, ReferenceAudioError, SynthesisOptions
from GPT_SoVITS.infer.components import LazySlot, load_model_pair, load_vocoder_model
from GPT_SoVITS.models import SynthesizerTrn, SynthesizerTrnV3, load_sovits
from GPT_SoVITS.models.lora import add_lora, lora_release_checkpoint, save_lora_release
from GPT_SoVITS.paths import PretrainedPaths
from tests.infer_helpers import CharFeaturizer, ToySSL, reference_wav, save_tiny_weights

SAMPLES_PER_TOKEN = 48000 // 25
OPTS = SynthesisOptions(seed=3, text_split="cut0", sample_steps=2, pause=0.25)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("infer_v4")
    g_path, vocoder = write_v4(root / "pretrained", seed=1)
    gpt, sovits_v2 = save_tiny_weights(root, "v2", seed=2, name="t")
    torch.manual_seed(0)  # a v2 model that reads the same HuBERT width as the tiny v4 one (768)
    wide = SynthesizerTrn(TINY_SOVITS, with_posterior=False)
    wide_v2 = save_sovits_weights(root / "wide_e1_s1.pth", wide.state_dict(), sovits_upstream_config(TINY_SOVITS), 1, 1)
    return {"pretrained": root / "pretrained", "s2Gv4": g_path, "vocoder": vocoder, "gpt": gpt,
            "sovits_v2": sovits_v2, "wide_v2": wide_v2, "ref": reference_wav(root / "ref.wav")}


def v4_tts(files: dict[str, Path], sovits: Path | None = None) -> TTS:
    pretrained = PretrainedPaths(files["pretrained"])
    pair = load_model_pair(files["gpt"], sovits or files["s2Gv4"], pretrained=pretrained)
    vocoder = LazySlot(loader=lambda: load_vocoder_model(files["vocoder"]), what="vocoder")
    return TTS(pair, ToySSL(dim=768), CharFeaturizer(), max_new_tokens=12, vocoder=vocoder, pretrained=pretrained)


def ref_of(files: dict[str, Path]) -> Reference:
    return Reference(files["ref"], "这是参考文本。", "all_zh")


def test_v4_synthesizes_48k_audio_whose_length_follows_the_tokens(files) -> None:
    tts = v4_tts(files)
    assert tts.version == "v4" and tts.sample_rate == 48000
    result = tts.synthesize_detailed("今天天气很好。", "zh", ref_of(files), OPTS)
    assert result.sample_rate == 48000 and np.isfinite(result.audio).all()
    tokens = result.sentences[0].n_tokens
    pause = int(round(0.25 * 48000))  # the pause is sized at the output rate (upstream: at 32 kHz)
    assert len(result.audio) == tokens * SAMPLES_PER_TOKEN + pause
    assert np.abs(result.audio).max() <= 1.0


def test_sample_steps_and_seed(files) -> None:
    tts = v4_tts(files)
    a = tts.synthesize("你好。", "zh", ref_of(files), OPTS)[1]
    b = tts.synthesize("你好。", "zh", ref_of(files), OPTS)[1]
    c = tts.synthesize("你好。", "zh", ref_of(files), OPTS.replace(sample_steps=4))[1]
    np.testing.assert_array_equal(a, b)  # the same seed gives the same flow-matching noise
    assert a.shape == c.shape and not np.allclose(a, c)
    default = tts.synthesize("你好。", "zh", ref_of(files), OPTS.replace(sample_steps=None))[1]
    assert default.shape == a.shape  # None: the WebUI's 8 steps


def test_v4_needs_the_reference_text_and_v2_refuses_sample_steps(files) -> None:
    tts = v4_tts(files)
    with pytest.raises(ReferenceAudioError, match="v4 models need the reference audio's transcript"):
        tts.synthesize("你好。", "zh", Reference(files["ref"]), OPTS)
    v2 = TTS(load_model_pair(files["gpt"], files["sovits_v2"]), ToySSL(), CharFeaturizer(), max_new_tokens=8)
    with pytest.raises(InvalidOptionError, match="sample_steps: v2 models have no sampling steps"):
        v2.synthesize("你好。", "zh", ref_of(files), OPTS)


def test_token_streaming_of_v4_streams_whole_sentences_at_48k(files) -> None:
    tts = v4_tts(files)
    whole = tts.synthesize("你好。我们走。", "zh", ref_of(files), OPTS.replace(text_split="cut5"))[1]
    streamed = np.concatenate(list(tts.stream("你好。我们走。", "zh", ref_of(files), OPTS.replace(text_split="cut5"),
                                              chunk_tokens=4)))
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_switching_between_v2_and_v4_without_restart(files) -> None:
    loads = []
    vocoder = LazySlot(loader=lambda: loads.append(1) or load_vocoder_model(files["vocoder"]), what="vocoder")
    tts = TTS(load_model_pair(files["gpt"], files["wide_v2"]), ToySSL(dim=768), CharFeaturizer(),
              max_new_tokens=8, vocoder=vocoder, pretrained=PretrainedPaths(files["pretrained"]))
    ref = ref_of(files)
    opts = OPTS.replace(sample_steps=None)
    assert tts.synthesize_detailed("你好。", "zh", ref, opts).sample_rate == 32000 and not loads
    tts.set_sovits(files["s2Gv4"])
    assert tts.synthesize_detailed("你好。", "zh", ref, opts).sample_rate == 48000 and loads == [1]
    tts.set_sovits(files["wide_v2"])
    assert tts.synthesize_detailed("你好。", "zh", ref, opts).sample_rate == 32000


def test_a_lora_release_is_merged_into_the_pretrained_base(files, tmp_path: Path) -> None:
    trained, _ = load_sovits(files["s2Gv4"], for_inference=False, pretrained=PretrainedPaths(files["pretrained"]))
    trained.eval()
    trained.bridge[0].bias.data += 0.3  # trained in full, travels in the release
    wrapped = add_lora(trained, rank=4)
    with torch.no_grad():
        for layer in wrapped.lora_layers().values():
            layer.lora_B["default"].weight.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
    mu, prompt, noise = torch.randn(1, 30, 32), torch.randn(1, 100, 8), torch.randn(1, 100, 30)
    with torch.no_grad():
        want = trained.cfm.inference(mu, torch.tensor([30]), prompt, 3, noise=noise)
    release = save_lora_release(tmp_path / "voice_e1_s4_l4.pth",
                                lora_release_checkpoint(trained, TINY_SOVITS_V4.to_upstream(), 1, 4), b"04")
    merged, cfg = load_sovits(release, pretrained=PretrainedPaths(files["pretrained"]))
    assert isinstance(merged, SynthesizerTrnV3) and cfg.version == "v4"
    got = merged.cfm.inference(mu, torch.tensor([30]), prompt, 3, noise=noise)
    torch.testing.assert_close(got, want, atol=3e-3, rtol=0)  # the release holds float16 tensors
    torch.testing.assert_close(merged.bridge[0].bias, trained.bridge[0].bias.half().float())
    audio = v4_tts(files, release).synthesize("你好。", "zh", ref_of(files), OPTS)[1]
    assert np.isfinite(audio).all() and audio.size
    with pytest.raises(FileNotFoundError, match="LoRA release.*base model.*s2Gv4.pth"):
        load_sovits(release, pretrained=PretrainedPaths(tmp_path / "empty"))


def test_public_api_on_a_v4_file(files) -> None:
    model, _ = load_sovits(files["s2Gv4"])
    codes, phones = torch.randint(0, 1024, (1, 1, 10)), torch.tensor([[5, 6, 7, 8]])
    fea, ge = model.decode_encp(codes, phones, torch.rand(1, 1025, 60), speed=1.0)
    assert fea.shape[:2] == (1, TINY_SOVITS_V4.fea_channels) and ge.shape[-1] == 1
    noise = torch.randn(1, 100, fea.shape[-1] + 5, generator=torch.Generator().manual_seed(0))
    mel = model.cfm.inference(torch.cat([fea[:, :, :5], fea], 2).transpose(1, 2),
                              torch.tensor([fea.shape[-1] + 5]), torch.zeros(1, 100, 5), 4, noise=noise)
    again = model.cfm.inference(torch.cat([fea[:, :, :5], fea], 2).transpose(1, 2),
                                torch.tensor([fea.shape[-1] + 5]), torch.zeros(1, 100, 5), 4, noise=noise)
    assert mel.shape == (1, 100, fea.shape[-1] + 5) and torch.equal(mel, again)
