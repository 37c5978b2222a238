"""BERT phone-level features with a tiny random BERT saved in the real folder format, and the frontend on top."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from GPT_SoVITS.features.bert import BertAlignmentError, BertFeaturizer
from GPT_SoVITS.text import clean_text
from GPT_SoVITS.text.frontend import TextFrontend

SENTENCES = ("今天天气很好，我们去公园吧。", "我用ChatGPT写代码，效率提高了百分之五十。", "发布会将在九月举行。")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HIDDEN = 24


def _vocabulary() -> list[str]:
    chars = sorted({c for s in SENTENCES for c in s if "\u4e00" <= c <= "\u9fa5"} | set("一二三四五六七八九十"))
    return SPECIALS + list("!?…,.-") + chars + ["的", "是"]


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("tiny-chinese-bert")
    vocab = _vocabulary()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=40,
        max_position_embeddings=128,
    )
    BertForMaskedLM(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def featurizer(bert_dir: Path) -> BertFeaturizer:
    return BertFeaturizer(bert_dir)


def test_missing_folder_names_path_and_contents(tmp_path: Path) -> None:
    missing = tmp_path / "chinese-roberta-wwm-ext-large"
    with pytest.raises(FileNotFoundError, match="chinese-roberta-wwm-ext-large") as info:
        BertFeaturizer(missing)
    assert str(missing) in str(info.value) and "vocab.txt" in str(info.value)


def test_one_token_per_chinese_character(featurizer: BertFeaturizer) -> None:
    text = "今天天气很好,我们去公园吧."
    ids = featurizer.tokenizer(text, add_special_tokens=False)["input_ids"]
    vocab = featurizer.tokenizer.get_vocab()
    assert ids == [vocab[c] for c in text]
    assert vocab["[UNK]"] not in ids


def test_phone_level_alignment_matches_the_model(featurizer: BertFeaturizer, bert_dir: Path) -> None:
    from transformers import AutoModel

    phones, word2ph, norm = clean_text(SENTENCES[0], "zh")
    feats = featurizer.phone_level(norm, word2ph)
    assert feats.shape == (HIDDEN, len(phones)) and feats.dtype == torch.float32

    # Independent reference: run the saved model directly and expand character vectors by hand.
    model = AutoModel.from_pretrained(str(bert_dir), local_files_only=True).eval()
    ids = torch.tensor([[2] + featurizer.tokenizer(norm, add_special_tokens=False)["input_ids"] + [3]])
    with torch.no_grad():
        layers = model(input_ids=ids, output_hidden_states=True).hidden_states
    assert len(layers) == 5  # embeddings + 4 layers: "third from last" is layer 2
    chars = layers[2][0, 1:-1]
    column = 0
    for i, count in enumerate(word2ph):
        for _ in range(count):
            torch.testing.assert_close(feats[:, column], chars[i], rtol=1e-5, atol=1e-5)
            column += 1
    assert column == feats.shape[1]
    assert not torch.allclose(feats[:, 0], feats[:, 2])  # different characters, different vectors


def test_alignment_errors(featurizer: BertFeaturizer) -> None:
    with pytest.raises(BertAlignmentError, match="word2ph"):
        featurizer.phone_level("你好", [2])
    with pytest.raises(BertAlignmentError, match="one token per character"):
        featurizer.phone_level("ab", [1, 1])  # Latin letters are one word piece, not two tokens


def test_frontend_mixed_sentence_features(featurizer: BertFeaturizer) -> None:
    frontend = TextFrontend(featurizer, "v2", han_detector=None)
    result = frontend("我用ChatGPT写代码，效率提高了50%。", "zh")
    langs = [s.language for s in result.segments]
    assert langs == ["zh", "en", "zh"]
    assert result.bert.shape == (HIDDEN, len(result.phone_ids))

    pieces = [clean_text(s.text, s.language) for s in result.segments]
    sizes = [len(p.phones) for p in pieces]
    first, middle, last = torch.split(result.bert, sizes, dim=1)
    torch.testing.assert_close(first, featurizer.phone_level(pieces[0].norm_text, pieces[0].word2ph))
    torch.testing.assert_close(last, featurizer.phone_level(pieces[2].norm_text, pieces[2].word2ph))
    assert torch.count_nonzero(middle) == 0  # English gets zeros
    assert result.norm_text == "".join(p.norm_text for p in pieces)


def test_frontend_without_bert_gives_zeros_of_default_size() -> None:
    result = TextFrontend(None)("今天天气很好。", "all_zh")
    assert result.bert.shape == (1024, len(result.phone_ids))
    assert torch.count_nonzero(result.bert) == 0


def test_cantonese_and_japanese_get_zeros(featurizer: BertFeaturizer) -> None:
    frontend = TextFrontend(featurizer)
    for text, code in (("今天天气很好。", "all_yue"), ("こんにちは。", "all_ja")):
        result = frontend(text, code)
        assert result.bert.shape[1] == len(result.phone_ids)
        assert torch.count_nonzero(result.bert) == 0


def test_broken_saved_tokenizer_is_detected(bert_dir: Path, tmp_path: Path) -> None:
    import shutil

    from transformers import BertTokenizer

    broken = tmp_path / "broken"
    shutil.copytree(bert_dir, broken)
    # The transformers 5 pitfall: this constructor ignores vocab_file and saves a tokenizer.json of specials only.
    BertTokenizer(vocab_file=str(broken / "vocab.txt")).save_pretrained(broken)
    with pytest.raises(ValueError, match="vocab.txt"):
        BertFeaturizer(broken)


def test_half_is_ignored_on_cpu(bert_dir: Path) -> None:
    featurizer = BertFeaturizer(bert_dir, device="cpu", half=True)
    assert next(featurizer.model.parameters()).dtype == torch.float32
    phones, word2ph, norm = clean_text("今天天气很好。", "zh")
    assert featurizer.phone_level(norm, word2ph).shape == (HIDDEN, len(phones))
