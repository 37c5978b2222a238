"""The training datasets, read from the formatted experiment folder (upstream's numbered file contract).

SoVITS: ``2-name2text.txt`` (phones), ``4-cnhubert/<name>.pt`` (1, 768, T50), ``5-wav32k/<name>`` (32 kHz int16),
and for v2Pro/v2ProPlus ``7-sv_cn/<name>.pt`` (1, 20480) speaker embeddings.
SoVITS v3/v4 (LoRA): the same files; the normalised log-mel the CFM learns is computed from ``5-wav32k``.
GPT: ``6-name2semantic.tsv`` (codes), ``2-name2text.txt`` (phones), ``3-bert/<name>.pt`` (1024, phones; zeros
when absent, i.e. for non-Chinese items).

Upstream filters items silently; here every filter counts what it removed (:class:`FilterReport`) and the
trainers log the counts.
"""

from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf
import torch
import torch.nn.functional as F
from torch import Tensor

from GPT_SoVITS.features.spectrogram import MelFrontEnd, norm_mel_v4, spectrogram
from GPT_SoVITS.paths import ExperimentPaths
from GPT_SoVITS.text.cleaner import cleaned_text_to_sequence

log = logging.getLogger(__name__)

SEMANTIC_RATE = 25  # semantic codes per second
BERT_DIM = 1024


class DatasetError(RuntimeError):
    """The formatted dataset is missing or has no usable item; the message says which step to (re)run."""


@dataclass
class FilterReport:
    """Items found, kept, and removed per reason (spec §11: upstream removes them silently)."""

    found: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    repeats: int = 1

    def remove(self, reason: str, n: int = 1) -> None:
        if n:
            self.removed[reason] = self.removed.get(reason, 0) + n

    @property
    def kept(self) -> int:
        return self.found - sum(self.removed.values())

    def summary(self) -> str:
        text = f"{self.found} item(s) found, {self.kept} kept"
        if self.removed:
            text += "; left out: " + ", ".join(f"{n} {reason}" for reason, n in sorted(self.removed.items()))
        if self.repeats > 1:
            text += f"; small dataset repeated {self.repeats}× (as upstream)"
        return text


def read_name2text(path: Path) -> dict[str, list[str]]:
    """``name\\tphones\\tword2ph\\tnorm_text`` lines → name → phones."""
    if not path.exists():
        raise DatasetError(f"{path} not found: run dataset formatting (1A, text step) for this experiment first")
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[0] and parts[1].strip():
            out[parts[0]] = parts[1].split()
    return out


def read_name2semantic(path: Path) -> dict[str, list[int]]:
    """``6-name2semantic.tsv`` (header ``item_name\\tsemantic_audio``) → name → codes."""
    if not path.exists():
        raise DatasetError(f"{path} not found: run dataset formatting (1A, semantic step) for this experiment first")
    out: dict[str, list[int]] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if i == 0 and parts[0] == "item_name" or len(parts) < 2:
            continue
        codes = parts[1].split()
        if codes:
            out[parts[0]] = [int(c) for c in codes]
    return out


def repeat_count(n: int, min_items: int) -> int:
    """Upstream repeats datasets under ``min_items`` items ``max(2, min_items // n)`` times."""
    return max(2, min_items // n) if 0 < n < min_items else 1


def repeated_items(items: list, report: FilterReport, min_items: int, where: Path, what: str) -> list:
    """The kept ``items`` repeated as upstream does for small datasets (:func:`repeat_count`); none is an error."""
    if not items:
        raise DatasetError(f"{where}: no usable {what} training item ({report.summary()}); check the 1A "
                           "dataset-formatting logs and run it again")
    report.repeats = repeat_count(len(items), min_items)
    return items * report.repeats


# ------------------------------------------------------------------------------------------------- SoVITS
@dataclass(frozen=True)
class SoVITSItem:
    name: str
    phone_ids: tuple[int, ...]
    frames: int  # spectrogram frames (50 per second)


class SoVITSDataset(torch.utils.data.Dataset):
    """Items with text, HuBERT features and 32 kHz audio; returns tensors for :func:`collate_sovits`."""

    def __init__(self, exp: ExperimentPaths, version: str = "v2", hop_length: int = 640, n_fft: int = 2048,
                 win_length: int = 2048, sampling_rate: int = 32000, min_seconds: float = 0.6,
                 max_seconds: float = 54.0, min_items: int = 100, with_sv: bool = False) -> None:
        self.exp, self.hop, self.n_fft, self.win = exp, hop_length, n_fft, win_length
        self.sampling_rate = sampling_rate
        self.with_sv = with_sv
        texts = read_name2text(exp.name2text)
        if with_sv and not exp.sv_dir.is_dir():
            raise DatasetError(f"{exp.sv_dir} not found: this model version needs speaker embeddings; run dataset "
                               "formatting (1A) again with the same version selected (its SV step writes them)")
        report = FilterReport(found=len(texts))
        items = []
        for name, phones in texts.items():
            ssl, wav = exp.hubert_dir / f"{name}.pt", exp.wav32k_dir / name
            if not ssl.exists() or not wav.exists():
                report.remove("without HuBERT features or 32 kHz audio (1A hubert step)")
                continue
            if with_sv and not (exp.sv_dir / f"{name}.pt").exists():
                report.remove("without a speaker embedding (1A SV step)")  # upstream drops these silently
                continue
            try:
                info = sf.info(str(wav))
            except (sf.LibsndfileError, RuntimeError):
                report.remove("unreadable audio")
                continue
            seconds = info.frames / info.samplerate
            if not min_seconds <= seconds <= max_seconds:
                report.remove(f"shorter than {min_seconds} s or longer than {max_seconds} s")
                continue
            items.append(SoVITSItem(name, tuple(cleaned_text_to_sequence(phones, version)),
                                    info.frames * sampling_rate // info.samplerate // hop_length))
        self.items = repeated_items(items, report, min_items, exp.root, "SoVITS")
        self.report = report

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> list[int]:
        return [item.frames for item in self.items]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """(ssl [768, T], spec [1025, T], wav [1, T·hop], phones [L], speaker embedding [D] or None)."""
        item = self.items[index]
        audio, sr = sf.read(str(self.exp.wav32k_dir / item.name), dtype="float32", always_2d=True)
        if sr != self.sampling_rate:
            raise DatasetError(f"{item.name}: 5-wav32k audio is {sr} Hz, expected {self.sampling_rate}; "
                               "re-run the 1A hubert step")
        wav = torch.from_numpy(audio[:, 0].copy()).unsqueeze(0)
        spec = spectrogram(wav, self.n_fft, self.hop, self.win)[0]
        ssl = torch.load(self.exp.hubert_dir / f"{item.name}.pt", map_location="cpu", weights_only=True).float()
        ssl = ssl.reshape(ssl.shape[-2], ssl.shape[-1])
        frames = spec.shape[-1]
        # HuBERT runs at 50 Hz like the spectrogram; lengths differ by a frame at most: pad by replication or cut
        if ssl.shape[-1] < frames:
            ssl = F.pad(ssl.unsqueeze(0), (0, frames - ssl.shape[-1]), mode="replicate")[0]
        ssl = ssl[:, :frames]
        wav = wav[:, : frames * self.hop]
        sv = None
        if self.with_sv:  # float16 when 1A ran in half precision; training takes float32 (as upstream's collate)
            sv = torch.load(self.exp.sv_dir / f"{item.name}.pt", map_location="cpu", weights_only=True).float()
            sv = sv.reshape(-1)
        return ssl, spec, wav, torch.tensor(item.phone_ids, dtype=torch.long), sv


@dataclass
class SoVITSBatch:
    ssl: Tensor  # [B, 768, T]
    spec: Tensor  # [B, 1025, T]
    spec_lengths: Tensor  # [B]
    wav: Tensor  # [B, 1, T·hop]
    wav_lengths: Tensor  # [B]
    phones: Tensor  # [B, L]
    phone_lengths: Tensor  # [B]
    sv_emb: Tensor | None = None  # [B, D] speaker embeddings (v2Pro/v2ProPlus)

    def to(self, device: torch.device) -> SoVITSBatch:
        return SoVITSBatch(*(t.to(device, non_blocking=True) if t is not None else None for t in vars(self).values()))


def collate_sovits(items: list[tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None]]) -> SoVITSBatch:
    """Pad to the longest item (frames rounded up to even, as upstream: the 25 Hz codes need pairs)."""
    items = sorted(items, key=lambda it: it[1].shape[-1], reverse=True)
    frames = [it[1].shape[-1] for it in items]
    t_max = max(frames) + max(frames) % 2
    hop = items[0][2].shape[-1] // max(1, frames[0])
    b = len(items)
    ssl = torch.zeros(b, items[0][0].shape[0], t_max)
    spec = torch.zeros(b, items[0][1].shape[0], t_max)
    wav = torch.zeros(b, 1, t_max * hop)
    l_max = max(it[3].numel() for it in items)
    phones = torch.zeros(b, l_max, dtype=torch.long)
    for i, (s, sp, w, p, _) in enumerate(items):
        ssl[i, :, : s.shape[-1]] = s
        spec[i, :, : sp.shape[-1]] = sp
        wav[i, :, : w.shape[-1]] = w
        phones[i, : p.numel()] = p
    sv = torch.stack([it[4] for it in items]) if items[0][4] is not None else None
    return SoVITSBatch(ssl, spec, torch.tensor(frames), wav, torch.tensor([it[2].shape[-1] for it in items]),
                       phones, torch.tensor([it[3].numel() for it in items]), sv)


# ------------------------------------------------------------------------------------- SoVITS v3/v4 (LoRA)
def _tensor_file_looks_whole(path: Path) -> bool:
    """A ``torch.save`` file whose container is intact (zip directory readable, or a legacy pickle)."""
    try:
        with open(path, "rb") as fh:
            legacy = fh.read(1) == b"\x80"
        return legacy or zipfile.is_zipfile(path)
    except OSError:
        return False


class CFMDataset(SoVITSDataset):
    """SoVITS items for the v3/v4 flow-matching model: HuBERT features, the v2 linear spectrogram (for the style
    vector ge), phones, and the normalised log-mel the CFM learns, computed from the same ``5-wav32k`` clip.

    Upstream trains on an all-zero item when one fails to load; here the items that cannot be read (missing files,
    unreadable audio, a broken HuBERT file) are found at start, left out and counted in :attr:`report`, and a file
    that breaks later stops training with its name instead of being replaced by zeros.
    """

    def __init__(self, exp: ExperimentPaths, mel: MelFrontEnd, version: str = "v4", hop_length: int = 640,
                 n_fft: int = 2048, win_length: int = 2048, sampling_rate: int = 32000, min_seconds: float = 0.6,
                 max_seconds: float = 54.0, min_items: int = 100) -> None:
        if mel.sampling_rate != sampling_rate:
            raise DatasetError(f"this mel front end reads {mel.sampling_rate} Hz audio, but 5-wav32k holds "
                               f"{sampling_rate} Hz clips (v3's 24 kHz mel needs resampling, not supported yet)")
        super().__init__(exp, version, hop_length, n_fft, win_length, sampling_rate, min_seconds, max_seconds,
                         min_items=min_items)
        self.mel = mel
        unique = self.items[: len(self.items) // self.report.repeats]
        whole = [item for item in unique if _tensor_file_looks_whole(exp.hubert_dir / f"{item.name}.pt")]
        if len(whole) != len(unique):
            self.report.remove("with an unreadable HuBERT file (re-run the 1A hubert step)", len(unique) - len(whole))
            self.items = repeated_items(whole, self.report, min_items, exp.root, "SoVITS")

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(ssl [768, T], spec [1025, T], normalised mel [100, M] (M ≈ 2T for v4), phones [L])."""
        item = self.items[index]
        wav_path, ssl_path = self.exp.wav32k_dir / item.name, self.exp.hubert_dir / f"{item.name}.pt"
        try:
            audio, sr = sf.read(str(wav_path), dtype="float32", always_2d=True)
            ssl = torch.load(ssl_path, map_location="cpu", weights_only=True).float()
        except (sf.LibsndfileError, RuntimeError, OSError, EOFError, ValueError) as exc:
            raise DatasetError(f"{item.name}: cannot read its 1A files ({type(exc).__name__}: {exc}); re-run the 1A "
                               "hubert step for this experiment") from None
        if sr != self.sampling_rate:
            raise DatasetError(f"{item.name}: 5-wav32k audio is {sr} Hz, expected {self.sampling_rate}; "
                               "re-run the 1A hubert step")
        wave = torch.from_numpy(audio[:, 0].copy())
        spec = spectrogram(wave.unsqueeze(0), self.n_fft, self.hop, self.win)[0]
        mel = norm_mel_v4(self.mel(wave))[0]  # from the whole clip, no peak normalisation (as upstream)
        ssl = ssl.reshape(ssl.shape[-2], ssl.shape[-1])
        frames = spec.shape[-1]
        if ssl.shape[-1] < frames:  # 50 Hz like the spectrogram; a frame short at most: replicate the last one
            ssl = F.pad(ssl.unsqueeze(0), (0, frames - ssl.shape[-1]), mode="replicate")[0]
        return ssl[:, :frames], spec, mel, torch.tensor(item.phone_ids, dtype=torch.long)


@dataclass
class CFMBatch:
    ssl: Tensor  # [B, 768, T]
    spec: Tensor  # [B, 1025, T]
    spec_lengths: Tensor  # [B]
    mel: Tensor  # [B, 100, M] normalised log-mel, padded with zeros
    mel_lengths: Tensor  # [B]
    phones: Tensor  # [B, L]
    phone_lengths: Tensor  # [B]

    def to(self, device: torch.device) -> CFMBatch:
        return CFMBatch(*(t.to(device, non_blocking=True) for t in vars(self).values()))


def collate_cfm(items: list[tuple[Tensor, Tensor, Tensor, Tensor]]) -> CFMBatch:
    """Pad to the longest item, longest first; spectrogram and mel frames rounded up to even (the 25 Hz codes
    need pairs of 50 Hz frames)."""
    items = sorted(items, key=lambda it: it[1].shape[-1], reverse=True)
    frames = [it[1].shape[-1] for it in items]
    mel_frames = [it[2].shape[-1] for it in items]
    t_max = max(frames) + max(frames) % 2
    m_max = max(mel_frames) + max(mel_frames) % 2
    b = len(items)
    ssl = torch.zeros(b, items[0][0].shape[0], t_max)
    spec = torch.zeros(b, items[0][1].shape[0], t_max)
    mel = torch.zeros(b, items[0][2].shape[0], m_max)
    phones = torch.zeros(b, max(it[3].numel() for it in items), dtype=torch.long)
    for i, (s, sp, m, p) in enumerate(items):
        ssl[i, :, : s.shape[-1]] = s
        spec[i, :, : sp.shape[-1]] = sp
        mel[i, :, : m.shape[-1]] = m
        phones[i, : p.numel()] = p
    return CFMBatch(ssl, spec, torch.tensor(frames), mel, torch.tensor(mel_frames), phones,
                    torch.tensor([it[3].numel() for it in items]))


# ---------------------------------------------------------------------------------------------------- GPT
@dataclass(frozen=True)
class GPTItem:
    name: str
    phone_ids: tuple[int, ...]
    codes: tuple[int, ...]


class GPTDataset(torch.utils.data.Dataset):
    """Items with phones, phone-level BERT features and semantic codes; see :func:`collate_gpt`."""

    def __init__(self, exp: ExperimentPaths, version: str = "v2", max_sec: int = 54, min_phones_per_sec: float = 3.0,
                 max_phones_per_sec: float = 25.0, min_items: int = 100) -> None:
        self.exp = exp
        semantic = read_name2semantic(exp.name2semantic)
        texts = read_name2text(exp.name2text)
        report = FilterReport(found=len(semantic))
        max_codes = max_sec * SEMANTIC_RATE
        max_phones = int(max_codes / 2.5)
        items = []
        for name, codes in semantic.items():
            phones = texts.get(name)
            if phones is None:
                report.remove("without text in 2-name2text.txt")
                continue
            if len(codes) > max_codes:
                report.remove(f"longer than {max_sec} s ({max_codes} codes)")
                continue
            if len(phones) > max_phones:
                report.remove(f"with more than {max_phones} phones")
                continue
            rate = len(phones) / (len(codes) / SEMANTIC_RATE)
            if not min_phones_per_sec <= rate <= max_phones_per_sec:
                report.remove(f"with phones per second outside {min_phones_per_sec:g}–{max_phones_per_sec:g}")
                continue
            items.append(GPTItem(name, tuple(cleaned_text_to_sequence(phones, version)), tuple(codes)))
        self.items = repeated_items(items, report, min_items, exp.root, "GPT")
        self.report = report

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> list[int]:
        return [len(item.codes) for item in self.items]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        """(phones [X], bert [1024, X] (zeros without a 3-bert file), codes [T])."""
        item = self.items[index]
        phones = torch.tensor(item.phone_ids, dtype=torch.long)
        path = self.exp.bert_dir / f"{item.name}.pt"
        if path.exists():
            bert = torch.load(path, map_location="cpu", weights_only=True).float()
            if tuple(bert.shape) != (BERT_DIM, phones.numel()):
                raise DatasetError(f"{path}: BERT features have shape {tuple(bert.shape)}, expected "
                                   f"({BERT_DIM}, {phones.numel()}); re-run the 1A text step")
        else:
            bert = torch.zeros(BERT_DIM, phones.numel())
        return phones, bert, torch.tensor(item.codes, dtype=torch.long)


@dataclass
class GPTBatch:
    phones: Tensor  # [B, X] right-padded with 0
    phone_lengths: Tensor  # [B]
    bert: Tensor  # [B, 1024, X]
    codes: Tensor  # [B, T] right-padded with the EOS/pad id
    code_lengths: Tensor  # [B]

    def to(self, device: torch.device) -> GPTBatch:
        return GPTBatch(*(t.to(device, non_blocking=True) for t in vars(self).values()))


def collate_gpt(items: list[tuple[Tensor, Tensor, Tensor]], pad_code: int = 1024) -> GPTBatch:
    b = len(items)
    x_max = max(it[0].numel() for it in items)
    t_max = max(it[2].numel() for it in items)
    phones = torch.zeros(b, x_max, dtype=torch.long)
    bert = torch.zeros(b, BERT_DIM, x_max)
    codes = torch.full((b, t_max), pad_code, dtype=torch.long)
    for i, (p, be, c) in enumerate(items):
        phones[i, : p.numel()] = p
        bert[i, :, : p.numel()] = be
        codes[i, : c.numel()] = c
    return GPTBatch(phones, torch.tensor([it[0].numel() for it in items]), bert, codes,
                    torch.tensor([it[2].numel() for it in items]))
