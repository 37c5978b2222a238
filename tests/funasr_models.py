"""Tiny random FunASR models in the real ModelScope folder layouts, for tests of the FunASR ASR backends.

Each builder writes what the published model folder holds — ``config.yaml`` (the model, encoder, frontend and
tokenizer sections FunASR reads), ``configuration.json`` (``file_path_metas``: which file is the weights, the
token list, the CMVN), ``model.pt`` (a plain state dict), ``am.mvn`` (Kaldi-nnet CMVN text) and the token list
(``tokens.json`` or a SentencePiece ``.bpe.model``) — at toy sizes, under the folder name upstream uses.

The weights are random except for a few layers set by hand so the output is fixed and never empty (the same
idea as the "peaked logits" of the tiny Whisper): a random model with flat logits would decode nothing, or
something different on every machine.

- Paraformer: the CIF predictor fires about every eight frames (a constant alpha), the decoder always picks
  the token ``好``: a clip of a few seconds reads ``好好好…``.
- CT-Transformer punctuation: always predicts ``，`` after a token; FunASR turns the last one into ``。``.
- FSMN-VAD: the network always says "speech"; the silence decision comes from the frame energy threshold in its
  ``config.yaml`` (``decibel_thres``), so silent stretches split a long recording into segments.
- SenseVoiceSmall: an identity encoder (attention and feed-forward outputs zeroed, so each layer passes its
  input on) whose CTC layer maps each of the four query frames to a tag — language, emotion, event, text
  normalisation — and every audio frame to ``好``. The language query for ``auto`` maps to ``<|en|>``, each
  explicit language to its own tag, so a test sees the language the model reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

#: Upstream's folder names under tools/asr/models/.
PARAFORMER_DIR = "speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
VAD_DIR = "speech_fsmn_vad_zh-cn-16k-common-pytorch"
PUNC_DIR = "punc_ct-transformer_zh-cn-common-vocab272727-pytorch"
SENSEVOICE_DIR = "SenseVoiceSmall"
SENSEVOICE_BPE = "chn_jpn_yue_eng_ko_spectok.bpe.model"

CHARS = list("好你是我的了在人有这个们中来上大为和国地到以说时要就出会可也")
TEXT_TOKEN = "好"


def _configuration_json(folder: Path, metas: dict, task: str = "auto-speech-recognition") -> None:
    (folder / "configuration.json").write_text(json.dumps({
        "framework": "pytorch", "task": task, "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"}, "model_name_in_hub": {"ms": "", "hf": ""},
        "file_path_metas": metas}, indent=2), encoding="utf-8")


def _write_config(folder: Path, config: dict) -> None:
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True),
                                        encoding="utf-8")


def _write_cmvn(path: Path, shift: list[float], scale: list[float]) -> None:
    """Kaldi nnet text: ``<AddShift>`` (minus the mean) and ``<Rescale>`` (one over the deviation) per dim."""
    dim = len(shift)
    path.write_text(
        "<Nnet>\n"
        f"<Splice> {dim} {dim}\n[ 0 ]\n"
        f"<AddShift> {dim} {dim}\n<LearnRateCoef> 0 [ {' '.join(f'{v:g}' for v in shift)} ]\n"
        f"<Rescale> {dim} {dim}\n<LearnRateCoef> 0 [ {' '.join(f'{v:g}' for v in scale)} ]\n"
        "</Nnet>\n", encoding="utf-8")


def _build(config: dict, vocab_size: int):
    """Instantiate the model class FunASR's registry names in ``config`` (the same call AutoModel makes)."""
    import funasr  # noqa: F401  (fills the registry)
    from funasr.register import tables

    conf = dict(config.get("model_conf", {}))
    for key in ("encoder", "encoder_conf", "decoder", "decoder_conf", "predictor", "predictor_conf", "ctc_conf"):
        if key in config:
            conf[key] = config[key]
    torch.manual_seed(0)
    return tables.model_classes.get(config["model"])(vocab_size=vocab_size, input_size=560, **conf)


def _frontend(lfr_m: int, lfr_n: int, online: bool = False) -> dict:
    return {"frontend": "WavFrontendOnline" if online else "WavFrontend",
            "frontend_conf": {"fs": 16000, "window": "hamming", "n_mels": 80, "frame_length": 25,
                              "frame_shift": 10, "dither": 0.0, "lfr_m": lfr_m, "lfr_n": lfr_n}}


def build_paraformer(models_dir: Path) -> Path:
    folder = Path(models_dir) / PARAFORMER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<blank>", "<s>", "</s>", *CHARS, "<unk>"]
    (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    (folder / "seg_dict").write_text("hello he@@ llo\nworld wor@@ ld\n", encoding="utf-8")
    _write_cmvn(folder / "am.mvn", [0.0] * 560, [0.1] * 560)
    dim = 16
    config = {
        "model": "Paraformer",
        "model_conf": {"ctc_weight": 0.0, "lsm_weight": 0.1, "length_normalized_loss": True,
                       "predictor_weight": 1.0, "predictor_bias": 1, "sampling_ratio": 0.75},
        "encoder": "SANMEncoder",
        "encoder_conf": {"output_size": dim, "attention_heads": 2, "linear_units": 32, "num_blocks": 2,
                         "dropout_rate": 0.1, "positional_dropout_rate": 0.1, "attention_dropout_rate": 0.1,
                         "input_layer": "pe", "pos_enc_class": "SinusoidalPositionEncoder",
                         "normalize_before": True, "kernel_size": 11, "sanm_shfit": 0,
                         "selfattention_layer_type": "sanm"},
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {"attention_heads": 2, "linear_units": 32, "num_blocks": 2, "dropout_rate": 0.1,
                         "positional_dropout_rate": 0.1, "self_attention_dropout_rate": 0.1,
                         "src_attention_dropout_rate": 0.1, "att_layer_num": 2, "kernel_size": 11,
                         "sanm_shfit": 0},
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": dim, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        **_frontend(7, 6),
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": True},
        "normalize": None,
    }
    _write_config(folder, config)
    model = _build(config, len(tokens))
    with torch.no_grad():
        # CIF: alpha = sigmoid(-2) ≈ 0.12 per frame → one token about every eight 60 ms frames.
        model.predictor.cif_output.weight.zero_()
        model.predictor.cif_output.bias.fill_(-2.0)
        out = model.decoder.output_layer
        out.weight.zero_()
        out.bias.fill_(-10.0)
        out.bias[tokens.index(TEXT_TOKEN)] = 10.0
    torch.save(model.state_dict(), folder / "model.pt")
    _configuration_json(folder, {"init_param": "model.pt", "config": "config.yaml",
                                 "tokenizer_conf": {"token_list": "tokens.json", "seg_dict_file": "seg_dict"},
                                 "frontend_conf": {"cmvn_file": "am.mvn"}})
    return folder


def build_vad(models_dir: Path, decibel_thres: float = -40.0) -> Path:
    folder = Path(models_dir) / VAD_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _write_cmvn(folder / "am.mvn", [0.0] * 400, [0.1] * 400)
    config = {
        **_frontend(5, 1, online=True),
        "model": "FsmnVADStreaming",
        "model_conf": {"sample_rate": 16000, "detect_mode": 1, "snr_mode": 0, "max_end_silence_time": 800,
                       "max_start_silence_time": 3000, "do_start_point_detection": True,
                       "do_end_point_detection": True, "window_size_ms": 200, "sil_to_speech_time_thres": 150,
                       "speech_to_sil_time_thres": 150, "speech_2_noise_ratio": 1.0, "do_extend": 1,
                       "lookback_time_start_point": 200, "lookahead_time_end_point": 100,
                       "max_single_segment_time": 60000, "snr_thres": -100.0, "noise_frame_num_used_for_snr": 100,
                       "decibel_thres": decibel_thres, "speech_noise_thres": 0.6, "fe_prior_thres": 0.0001,
                       "silence_pdf_num": 1, "sil_pdf_ids": [0], "speech_noise_thresh_low": -0.1,
                       "speech_noise_thresh_high": 0.3, "output_frame_probs": False, "frame_in_ms": 10,
                       "frame_length_ms": 25},
        "encoder": "FSMN",
        "encoder_conf": {"input_dim": 400, "input_affine_dim": 16, "fsmn_layers": 2, "linear_dim": 16,
                         "proj_dim": 8, "lorder": 4, "rorder": 0, "lstride": 1, "rstride": 0,
                         "output_affine_dim": 16, "output_dim": 8},
    }
    _write_config(folder, config)
    model = _build(config, -1)
    with torch.no_grad():
        out = model.encoder.out_linear2.linear
        out.weight.zero_()
        out.bias.zero_()
        out.bias[0] = -8.0  # pdf 0 is silence: the network always says speech
    torch.save(model.state_dict(), folder / "model.pt")
    _configuration_json(folder, {"init_param": "model.pt", "config": "config.yaml",
                                 "frontend_conf": {"cmvn_file": "am.mvn"}}, task="voice-activity-detection")
    return folder


def build_punc(models_dir: Path) -> Path:
    folder = Path(models_dir) / PUNC_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<blank>", "<s>", "</s>", *CHARS, "hello", "world", "<unk>"]
    (folder / "tokens.json").write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    punc_list = ["<unk>", "_", "，", "。", "？", "、"]
    config = {
        "model": "CTTransformer",
        "model_conf": {"ignore_id": 0, "embed_unit": 16, "att_unit": 16, "dropout_rate": 0.1,
                       "punc_list": punc_list, "punc_weight": [1.0] * len(punc_list), "sentence_end_id": 3},
        "encoder": "SANMEncoder",
        "encoder_conf": {"input_size": 16, "output_size": 16, "attention_heads": 2, "linear_units": 32,
                         "num_blocks": 1, "dropout_rate": 0.1, "positional_dropout_rate": 0.1,
                         "attention_dropout_rate": 0.0, "input_layer": "pe",
                         "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True, "kernel_size": 11,
                         "sanm_shfit": 0, "selfattention_layer_type": "sanm", "padding_idx": 0},
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>"},
    }
    _write_config(folder, config)
    model = _build(config, len(tokens))
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.fill_(-5.0)
        model.decoder.bias[punc_list.index("，")] = 5.0
    torch.save(model.state_dict(), folder / "model.pt")
    _configuration_json(folder, {"init_param": "model.pt", "config": "config.yaml",
                                 "tokenizer_conf": {"token_list": "tokens.json"}}, task="punctuation")
    return folder


SENSEVOICE_LANGUAGE_TAGS = ["<|zh|>", "<|en|>", "<|yue|>", "<|ja|>", "<|ko|>", "<|nospeech|>"]
SENSEVOICE_OTHER_TAGS = ["<|HAPPY|>", "<|SAD|>", "<|ANGRY|>", "<|NEUTRAL|>", "<|EMO_UNKNOWN|>", "<|Speech|>",
                         "<|BGM|>", "<|Laughter|>", "<|Applause|>", "<|Event_UNK|>", "<|withitn|>", "<|woitn|>"]
#: Query embedding row → the tag the tiny model emits for it (rows as SenseVoiceSmall numbers them:
#: languages auto 0, zh 3, en 4, yue 7, ja 11, ko 12, nospeech 13; 1 and 2 the emotion and event queries;
#: 14 and 15 text normalisation with and without ITN).
SENSEVOICE_QUERY_TAGS = {0: "<|en|>", 3: "<|zh|>", 4: "<|en|>", 7: "<|yue|>", 11: "<|ja|>", 12: "<|ko|>",
                         13: "<|nospeech|>", 1: "<|NEUTRAL|>", 2: "<|Speech|>", 14: "<|withitn|>", 15: "<|woitn|>"}


def _train_sentencepiece(path: Path) -> None:
    import io

    import sentencepiece as spm

    corpus = ["".join(CHARS), "hello world", "the quick brown fox jumps over the lazy dog"] * 20
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=buffer, model_type="char",
                                   vocab_size=80, hard_vocab_limit=False, character_coverage=1.0,
                                   user_defined_symbols=SENSEVOICE_LANGUAGE_TAGS + SENSEVOICE_OTHER_TAGS,
                                   minloglevel=2)
    path.write_bytes(buffer.getvalue())


def build_sensevoice(models_dir: Path) -> Path:
    import sentencepiece as spm

    folder = Path(models_dir) / SENSEVOICE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    _train_sentencepiece(folder / SENSEVOICE_BPE)
    sp = spm.SentencePieceProcessor(model_file=str(folder / SENSEVOICE_BPE))
    _write_cmvn(folder / "am.mvn", [0.0] * 560, [0.0] * 560)  # audio frames carry no signal past the CMVN
    dim = 560  # = 80 mels x 7 stacked frames, so the first encoder layer keeps its residual path
    config = {
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": {"output_size": dim, "attention_heads": 4, "linear_units": 8, "num_blocks": 1,
                         "tp_blocks": 1, "dropout_rate": 0.1, "positional_dropout_rate": 0.1,
                         "attention_dropout_rate": 0.1, "input_layer": "pe",
                         "pos_enc_class": "SinusoidalPositionEncoder", "normalize_before": True, "kernel_size": 11,
                         "sanm_shfit": 0, "selfattention_layer_type": "sanm"},
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        **_frontend(7, 6),
    }
    config["frontend_conf"]["cmvn_file"] = None
    _write_config(folder, config)
    model = _build(config, sp.get_piece_size())
    with torch.no_grad():
        for layer in [*model.encoder.encoders0, *model.encoder.encoders, *model.encoder.tp_encoders]:
            for linear in (layer.self_attn.linear_q_k_v, layer.self_attn.linear_out, layer.feed_forward.w_2):
                linear.weight.zero_()
                linear.bias.zero_()
            layer.self_attn.fsmn_block.weight.zero_()
        model.embed.weight.zero_()
        ctc = model.ctc.ctc_lo
        ctc.weight.zero_()
        ctc.bias.fill_(-5.0)
        ctc.bias[sp.piece_to_id(TEXT_TOKEN)] = 3.0
        for row, tag in SENSEVOICE_QUERY_TAGS.items():
            model.embed.weight[row, row] = 10.0
            ctc.weight[sp.piece_to_id(tag), row] = 1.0
    torch.save(model.state_dict(), folder / "model.pt")
    _configuration_json(folder, {"init_param": "model.pt", "config": "config.yaml",
                                 "tokenizer_conf": {"bpemodel": SENSEVOICE_BPE},
                                 "frontend_conf": {"cmvn_file": "am.mvn"}})
    return folder


def build_all(models_dir: Path) -> Path:
    """Every tiny FunASR model under ``models_dir`` (the layout of tools/asr/models/)."""
    for build in (build_paraformer, build_vad, build_punc, build_sensevoice):
        build(models_dir)
    return Path(models_dir)
