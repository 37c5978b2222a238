"""Write a tiny random pretrained set in upstream's formats and folder layout, for tests and demos.

``python -m GPT_SoVITS.dev.make_tiny_pretrained DIR`` creates, inside DIR (upstream's pretrained_models layout):

- ``chinese-roberta-wwm-ext-large/``: a 2-layer BERT (hidden 1024, as the GPT's ``bert_proj`` expects) with a
  real Chinese character vocabulary (the 3755 level-1 GB2312 characters, ASCII, punctuation);
- ``chinese-hubert-base/``: a 1-layer HuBERT (hidden 768, 320× downsampling, so 50 Hz at 16 kHz);
- ``gsv-v2final-pretrained/s2G2333k.pth`` and ``s2D2333k.pth``: a small SoVITS v2 generator (with ``enc_q``,
  as upstream's pretrained files) and discriminator;
- ``gsv-v2final-pretrained/s1bert25hz-5kh-longer-epoch=12-step=369668.ckpt``: a 2-layer GPT;
- ``v2Pro/s2Gv2Pro.pth``, ``s2Dv2Pro.pth``, ``s2Gv2ProPlus.pth``, ``s2Dv2ProPlus.pth``, ``s1v3.ckpt`` and
  ``sv/pretrained_eres2netv2w24s4ep4.ckpt``: the same for v2Pro and v2ProPlus, with a small speaker-verification
  network whose embedding width the Pro generators take;
- ``gsv-v4-pretrained/s2Gv4.pth`` and ``vocoder.pth`` (:func:`write_v4`): a SoVITS v4 model with a 2-block DiT and
  a narrow 48 kHz vocoder.

Discriminators have upstream's keys and periods at an eighth of upstream's widths (:data:`TINY_D_BASE_CHANNELS`);
the trainer builds the width its pretrained D file has.

The weights are random, so the audio is noise, but every file goes through the real loading code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import torch

from GPT_SoVITS.checkpoints import save_gpt_weights
from GPT_SoVITS.fileio import atomic_path
from GPT_SoVITS.logs import setup_logging
from GPT_SoVITS.models.cfm import DiTConfig
from GPT_SoVITS.models.commons import fold_weight_norm
from GPT_SoVITS.models.discriminator import MultiPeriodDiscriminator
from GPT_SoVITS.models.eres2net import ERes2NetV2, ERes2NetV2Config
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.models.sovits_v4 import SoVITSV3Config, SynthesizerTrnV3
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.models.vocoder import VocoderConfig, build_vocoder
from GPT_SoVITS.paths import PretrainedPaths

log = logging.getLogger(__name__)

#: A SoVITS v2 generator small enough for CPU tests (hop 640 is kept: 25 Hz codes ↔ 32 kHz audio). Training slices
#: 4 frames (2560 samples) per item for the discriminators.
TINY_SOVITS = SoVITSConfig(inter_channels=16, hidden_channels=16, filter_channels=32, n_heads=2, n_layers=2,
                           resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),),
                           upsample_rates=(10, 8, 8), upsample_initial_channel=32,
                           upsample_kernel_sizes=(20, 16, 16), gin_channels=32, mrte_hidden_channels=32,
                           style_hidden_channels=16, posterior_layers=2, flow_layers=1, n_flows=2,
                           segment_size=640 * 4)
#: A speaker-verification network small enough to embed many clips on CPU: every block kind (plain and AFF,
#: strided and identity shortcuts) at m_channels 8; 80 fbank bins as upstream, so the embedding is
#: 8·8·2 channels × 10 rows = 1280 wide (the full network's is 20480).
TINY_SV = ERes2NetV2Config(m_channels=8, expansion=2, num_blocks=(2, 1, 1, 1), embedding_size=16)
#: Tiny Pro generators: a style vector wider than MRTE's (as 1024 vs 512 upstream), the tiny SV's embedding;
#: v2ProPlus's decoder is 1.5× wider, as upstream's.
TINY_SOVITS_PRO = {
    "v2Pro": dataclasses.replace(TINY_SOVITS, version="v2Pro", p_dropout=0.0, gin_channels=48,
                                 sv_dim=TINY_SV.embedding_dim),
    "v2ProPlus": dataclasses.replace(TINY_SOVITS, version="v2ProPlus", p_dropout=0.0, gin_channels=48,
                                     upsample_initial_channel=48, sv_dim=TINY_SV.embedding_dim),
}
#: Versions :func:`make_tiny_pretrained` writes by default.
TINY_VERSIONS = ("v2", "v2Pro", "v2ProPlus", "v4")
#: A SoVITS v4 model for CPU tests: the tiny v2 encoder, a 2-block DiT of width 32 and a 2-layer wns1. The mel
#: (100 bands), the semantic codebook (1024 × 768) and the v4 frame rates stay real.
TINY_SOVITS_V4 = SoVITSV3Config(version="v4", encoder=TINY_SOVITS, fea_channels=32, wns1_layers=2,
                                dit=DiTConfig(dim=32, depth=2, heads=2, dim_head=16, cond_dim=32, text_blocks=1))
#: A 480× vocoder with narrow channels (32 → 1) and one residual block per stage.
TINY_VOCODER_V4 = VocoderConfig(upsample_initial_channel=32, resblock_kernel_sizes=(3,),
                                resblock_dilation_sizes=((1, 3),))
#: The tiny discriminators' width (upstream's is 32): a full-width v2Pro discriminator took ~1.2 s of a ~5 s tiny
#: training step on two CPU cores (forward and backward, batch 4), a base-4 one 0.09 s.
TINY_D_BASE_CHANNELS = 4
TINY_GPT = T2SConfig(embedding_dim=64, hidden_dim=64, head=4, linear_units=128, n_layer=2)


def gb2312_level1() -> list[str]:
    """The 3755 most common simplified characters (GB2312 level 1, rows 16–55)."""
    chars = []
    for row in range(0xB0, 0xD8):
        for col in range(0xA1, 0xFF):
            try:
                chars.append(bytes([row, col]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def bert_vocabulary() -> list[str]:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    ascii_chars = [chr(c) for c in range(33, 127)]
    punctuation = list("，。！？；：、…—“”‘’（）《》")
    return specials + ascii_chars + punctuation + gb2312_level1()


def write_bert(folder: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertForMaskedLM, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(bert_vocabulary()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(vocab), do_lower_case=False, tokenize_chinese_chars=True)
    tokenizer.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=1024, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=64, max_position_embeddings=512)
    BertForMaskedLM(config).save_pretrained(str(folder))
    return folder


def write_hubert(folder: Path, seed: int = 0) -> Path:
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    config = HubertConfig(hidden_size=768, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
                          conv_dim=(32,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    HubertModel(config).save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "do_normalize": False, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
        "padding_side": "right", "padding_value": 0, "return_attention_mask": False, "sampling_rate": 16000}),
        encoding="utf-8")
    return folder


def sovits_upstream_config(cfg: SoVITSConfig) -> dict:
    """The ``s2.json``-style sections a SoVITS file carries (what :meth:`SoVITSConfig.from_upstream` reads)."""
    model = {k: v for k, v in vars(cfg).items() if k not in ("filter_length", "hop_length", "segment_size")}
    return {"model": model, "data": {"filter_length": cfg.filter_length, "hop_length": cfg.hop_length,
                                     "sampling_rate": 32000, "n_mel_channels": 128, "win_length": 2048},
            "train": {"segment_size": cfg.segment_size}, "version": cfg.version}


def write_sovits(g_path: Path, d_path: Path, cfg: SoVITSConfig = TINY_SOVITS, seed: int = 0) -> None:
    """A generator (with ``enc_q``) and the discriminator of ``cfg``'s version, in upstream's s2G/s2D format."""
    torch.manual_seed(seed)
    generator = SynthesizerTrn(cfg, with_posterior=True)
    config = json.loads(json.dumps(sovits_upstream_config(cfg)))  # tuples → lists, as a JSON config has
    # pretrained generators keep enc_q (training starts from them), so they are written whole
    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in generator.state_dict().items()}
    g_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(g_path) as tmp:
        torch.save({"weight": state, "config": config, "info": "tiny random pretrained"}, tmp)
    discriminator = MultiPeriodDiscriminator(periods=cfg.spec.discriminator_periods, base_channels=TINY_D_BASE_CHANNELS)
    with atomic_path(d_path) as tmp:
        torch.save({"weight": {k: v.detach().half() for k, v in discriminator.state_dict().items()}}, tmp)


def write_sv(path: Path, seed: int = 0, cfg: ERes2NetV2Config = TINY_SV) -> Path:
    """A random SV network in upstream's format (``sv/pretrained_eres2netv2w24s4ep4.ckpt``: a plain state dict).

    BatchNorm scales and statistics are random too (variances stay positive), so they are not the identity
    and the inference path's BatchNorm folding does real work.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ERes2NetV2(cfg)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                    module.bias.copy_(0.1 * torch.randn_like(module.bias))
                    module.running_mean.copy_(0.1 * torch.randn_like(module.running_mean))
                    module.running_var.copy_(1.0 + 0.2 * torch.rand_like(module.running_var))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(model.state_dict(), tmp)
    return path


def write_gpt(path: Path, cfg: T2SConfig = TINY_GPT, seed: int = 0) -> None:
    torch.manual_seed(seed)
    model = Text2SemanticDecoder(cfg)
    config = cfg.to_upstream()
    config["train"] = {"seed": 1234, "epochs": 20, "batch_size": 8, "save_every_n_epoch": 1,
                       "precision": "32", "gradient_clip": 1.0}
    config["optimizer"] = {"lr": 0.01, "lr_init": 0.00001, "lr_end": 0.0001, "warmup_steps": 2000,
                           "decay_steps": 40000}
    save_gpt_weights(path, model.state_dict(), config, epoch=0)


def write_v4(root: Path, seed: int = 0, cfg: SoVITSV3Config = TINY_SOVITS_V4,
             vocoder_cfg: VocoderConfig = TINY_VOCODER_V4) -> tuple[Path, Path]:
    """Write a tiny random v4 set in upstream's layout under ``root``; returns (s2Gv4.pth, vocoder.pth) paths.

    ``gsv-v4-pretrained/s2Gv4.pth`` holds ``{"weight": fp16 state dict, "config": s2.json-style dict with
    model.version "v4", "info"}`` (the architecture in the config); ``gsv-v4-pretrained/vocoder.pth`` is a plain
    state dict with weight norm folded, as upstream's.
    """
    folder = Path(root) / "gsv-v4-pretrained"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = SynthesizerTrnV3(cfg)
    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    g_path = folder / "s2Gv4.pth"
    with atomic_path(g_path) as tmp:
        torch.save({"weight": state, "config": json.loads(json.dumps(cfg.to_upstream())),
                    "info": "tiny random pretrained v4"}, tmp)
    vocoder = build_vocoder(vocoder_cfg)
    fold_weight_norm(vocoder)
    with torch.no_grad():  # HiFi-GAN's 0.01-std init lets almost nothing through a random tiny vocoder: scale by
        for name, weight in vocoder.named_parameters():  # fan-in instead, so its audio follows its mel
            if name.endswith("weight") and weight.dim() == 3:
                fan_in = weight.shape[0] * weight.shape[2] if name.startswith("ups.") else weight[0].numel()
                weight.normal_(0.0, fan_in ** -0.5)
    vocoder_path = folder / "vocoder.pth"
    with atomic_path(vocoder_path) as tmp:
        torch.save({k: v.detach().clone() for k, v in vocoder.state_dict().items()}, tmp)
    return g_path, vocoder_path


def make_tiny_pretrained(root: Path, seed: int = 0, versions: tuple[str, ...] = TINY_VERSIONS) -> PretrainedPaths:
    """Write the tiny set of ``versions`` into ``root`` (upstream's layout); returns its :class:`PretrainedPaths`."""
    paths = PretrainedPaths(Path(root))
    write_bert(paths.bert, seed)
    write_hubert(paths.hubert, seed)
    for version in versions:
        if not paths.gpt(version).exists():  # v2Pro, v2ProPlus and v4 share s1v3.ckpt
            write_gpt(paths.gpt(version), seed=seed)
        if paths.vocoder(version) is not None:  # the flow-matching versions: model and vocoder
            write_v4(paths.root, seed)
            continue
        cfg = TINY_SOVITS_PRO.get(version, dataclasses.replace(TINY_SOVITS, version=version))
        write_sovits(paths.sovits_g(version), paths.sovits_d(version), cfg, seed=seed)
        if cfg.uses_sv_embedding and not paths.sv.exists():
            write_sv(paths.sv, seed)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m GPT_SoVITS.dev.make_tiny_pretrained",
                                     description="Write tiny random models in upstream's pretrained layout.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("root", type=Path, help="folder to create (upstream's pretrained_models layout)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the weights")
    parser.add_argument("--versions", default=",".join(TINY_VERSIONS), help="comma-separated model versions to write")
    args = parser.parse_args(argv)
    setup_logging()
    make_tiny_pretrained(args.root, args.seed, tuple(v.strip() for v in args.versions.split(",") if v.strip()))
    log.info("tiny pretrained set written to %s", args.root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
