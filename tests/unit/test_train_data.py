"""Training datasets, filters and the bucket sampler; also the tiny formatted-experiment builder the other
trainer tests import (``make_experiment``, ``tiny_gpt_file``, ``tiny_sovits_files``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from GPT_SoVITS.checkpoints import save_gpt_weights
from GPT_SoVITS.dev.make_tiny_pretrained import TINY_D_BASE_CHANNELS
from GPT_SoVITS.models.discriminator import MultiPeriodDiscriminator
from GPT_SoVITS.models.sovits import SoVITSConfig, SynthesizerTrn
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.text.symbols import symbols
from GPT_SoVITS.train.data import (
    DatasetError,
    GPTDataset,
    SoVITSDataset,
    collate_gpt,
    collate_sovits,
    repeat_count,
)
from GPT_SoVITS.train.samplers import BucketBatchSampler, plan_buckets, uniform_boundaries

SR = 32000
HOP = 640

TINY_T2S = T2SConfig(embedding_dim=32, hidden_dim=32, head=2, linear_units=64, n_layer=2)
# small everywhere upstream lets us shrink; hop 640 and the 1025-bin spectrogram stay real (the data contract)
TINY_SOVITS = SoVITSConfig(inter_channels=16, hidden_channels=16, filter_channels=32, n_heads=2, n_layers=2,
                           resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),),
                           upsample_rates=(10, 8, 8), upsample_kernel_sizes=(20, 16, 16),
                           upsample_initial_channel=32, gin_channels=32, mrte_hidden_channels=32,
                           style_hidden_channels=16, posterior_layers=2, flow_layers=1, n_flows=2,
                           segment_size=HOP * 4, ssl_dim=768)
TINY_PERIODS = (2,)  # one period discriminator (plus the scale one), narrow: D dominates a CPU step


def make_experiment(root: Path, n_items: int = 6, seed: int = 0, seconds: tuple[float, float] = (1.0, 1.6),
                    extra: dict[str, float] | None = None) -> ExperimentPaths:
    """A formatted experiment as 1A writes it: 2-name2text, 3-bert, 4-cnhubert, 5-wav32k, 6-name2semantic.

    ``extra`` adds items of given durations (seconds) to exercise the filters.
    """
    rng = np.random.default_rng(seed)
    exp = ExperimentPaths(root)
    for d in (exp.bert_dir, exp.hubert_dir, exp.wav32k_dir):
        d.mkdir(parents=True, exist_ok=True)
    phone_table = [s for s in symbols("v2") if s.isalpha()][:60]
    durations = {f"clip{i}.wav": float(rng.uniform(*seconds)) for i in range(n_items)}
    durations.update(extra or {})
    text_lines, sem_lines = [], ["item_name\tsemantic_audio"]
    for i, (name, dur) in enumerate(durations.items()):
        samples = int(dur * SR)
        t = np.arange(samples) / SR
        wav = 0.3 * np.sin(2 * np.pi * (150 + 20 * i) * t) + 0.02 * rng.standard_normal(samples)
        sf.write(str(exp.wav32k_dir / name), (wav * 32767).astype(np.int16), SR, subtype="PCM_16")
        torch.save(torch.from_numpy(rng.standard_normal((1, 768, samples // 320)).astype(np.float32)),
                   exp.hubert_dir / f"{name}.pt")
        n_phones = max(3, int(dur * 10))
        phones = [phone_table[j] for j in rng.integers(0, len(phone_table), n_phones)]
        text_lines.append(f"{name}\t{' '.join(phones)}\t{[1] * n_phones}\tx")
        if i % 2 == 0:  # zh-like items carry BERT features, the others get zeros
            torch.save(torch.from_numpy(rng.standard_normal((1024, n_phones)).astype(np.float32)),
                       exp.bert_dir / f"{name}.pt")
        codes = rng.integers(0, 1024, int(dur * 25))
        sem_lines.append(f"{name}\t{' '.join(map(str, codes))}")
    exp.name2text.write_text("\n".join(text_lines) + "\n", encoding="utf-8")
    exp.name2semantic.write_text("\n".join(sem_lines) + "\n", encoding="utf-8")
    return exp


def tiny_gpt_file(path: Path, cfg: T2SConfig = TINY_T2S, seed: int = 0) -> Path:
    """A tiny random GPT in the release/pretrained format."""
    torch.manual_seed(seed)
    model = Text2SemanticDecoder(cfg)
    return save_gpt_weights(path, model.state_dict(), cfg.to_upstream(), epoch=0)


def tiny_sovits_files(folder: Path, cfg: SoVITSConfig = TINY_SOVITS, seed: int = 0,
                      periods: tuple[int, ...] = TINY_PERIODS) -> tuple[Path, Path]:
    """Tiny random pretrained SoVITS G (with enc_q, as upstream's s2G) and D files."""
    from GPT_SoVITS.config import to_dict

    torch.manual_seed(seed)
    g = SynthesizerTrn(cfg, with_posterior=True)
    d = MultiPeriodDiscriminator(periods=periods, base_channels=TINY_D_BASE_CHANNELS)
    config = {"model": to_dict(cfg), "data": {"filter_length": cfg.filter_length, "hop_length": cfg.hop_length},
              "train": {"segment_size": cfg.segment_size}}
    g_path, d_path = folder / "s2G_tiny.pth", folder / "s2D_tiny.pth"
    folder.mkdir(parents=True, exist_ok=True)  # upstream's s2G/s2D layout: {"weight": fp32 state dict, ...}
    torch.save({"weight": g.state_dict(), "config": config, "info": "pretrained"}, g_path)
    torch.save({"weight": d.state_dict(), "info": "pretrained"}, d_path)
    return g_path, d_path


# ------------------------------------------------------------------------------------------------- datasets
def test_sovits_dataset_items_and_filters(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", n_items=4, extra={"short.wav": 0.3, "long.wav": 55.0})
    (exp.hubert_dir / "clip3.wav.pt").unlink()
    ds = SoVITSDataset(exp, min_items=1)
    assert ds.report.found == 6
    assert ds.report.kept == 3
    assert sum(ds.report.removed.values()) == 3
    assert "left out" in ds.report.summary()
    ssl, spec, wav, phones, sv = ds[0]
    assert sv is None  # v2: no speaker embedding
    assert ssl.shape[0] == 768 and spec.shape[0] == 1025
    assert ssl.shape[-1] == spec.shape[-1]
    assert wav.shape[-1] == spec.shape[-1] * HOP
    batch = collate_sovits([ds[i] for i in range(3)])
    assert batch.spec.shape[-1] % 2 == 0
    assert batch.spec_lengths.tolist() == sorted(batch.spec_lengths.tolist(), reverse=True)
    assert batch.wav.shape[-1] == batch.spec.shape[-1] * HOP
    assert batch.sv_emb is None


def test_gpt_dataset_filters_and_collate(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", n_items=4)
    # one item with far too many phones for its duration, one without text
    with open(exp.name2semantic, "a", encoding="utf-8") as fh:
        fh.write("fast.wav\t1 2 3 4 5\nnotext.wav\t1 2 3 4 5 6 7 8 9 10\n")
    with open(exp.name2text, "a", encoding="utf-8") as fh:
        fh.write("fast.wav\t" + " ".join(["a"] * 40) + "\t[]\tx\n")
    ds = GPTDataset(exp, min_items=1)
    assert ds.report.found == 6 and ds.report.kept == 4
    assert len(ds.report.removed) == 2
    phones, bert, codes = ds[1]  # odd items have no BERT file: zeros
    assert bert.shape == (1024, phones.numel()) and float(bert.abs().sum()) == 0.0
    batch = collate_gpt([ds[i] for i in range(4)])
    assert batch.codes.shape[0] == 4
    assert int(batch.codes[batch.codes == 1024].numel()) == int((batch.code_lengths.max() - batch.code_lengths).sum())


def test_missing_dataset_says_which_step(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="1A"):
        GPTDataset(ExperimentPaths(tmp_path / "nothing"))


def test_small_datasets_are_repeated_as_upstream() -> None:
    assert repeat_count(5, 100) == 20
    assert repeat_count(60, 100) == 2
    assert repeat_count(100, 100) == 1


# -------------------------------------------------------------------------------------------------- sampler
def test_buckets_drop_outside_and_balance_ranks() -> None:
    lengths = [10, 40, 50, 120, 299, 301, 2000, 35, 33]
    plan = plan_buckets(lengths, [32, 300, 400])
    assert plan.dropped == 2  # 10 (≤ 32) and 2000 (> 400)
    per_rank = [BucketBatchSampler(lengths, [32, 300, 400], batch_size=2, rank=r, world_size=2, seed=1).batches(3)
                for r in range(2)]
    assert len(per_rank[0]) == len(per_rank[1])
    used = {i for rank in per_rank for batch in rank for i in batch}
    assert used == {i for i, n in enumerate(lengths) if 32 < n <= 400}
    for batch in per_rank[0]:  # a batch never mixes buckets
        assert len({0 if lengths[i] <= 300 else 1 for i in batch}) == 1


def test_sampler_order_is_reproducible_and_skippable() -> None:
    lengths = list(range(40, 140))
    sampler = BucketBatchSampler(lengths, uniform_boundaries(140, 50), batch_size=4, seed=7)
    first = sampler.batches(2)
    assert first == sampler.batches(2) and first != sampler.batches(3)
    sampler.set_epoch(2, skip=5)
    assert list(sampler) == first[5:]
    assert len(sampler) == len(first) - 5
