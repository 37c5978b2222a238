"""Phone-level BERT features for Chinese text (upstream's ``get_bert_feature``).

The model is a local ``chinese-roberta-wwm-ext-large``-style folder (``config.json``, weights, ``vocab.txt`` or
``tokenizer.json``), loaded with ``transformers`` from local files only. For a normalised Chinese text the features
are the third-from-last hidden layer, without the [CLS]/[SEP] positions, each character's vector repeated
``word2ph[i]`` times, transposed to ``(hidden_size, n_phones)`` (hidden_size is 1024 for the real model).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import torch

log = logging.getLogger(__name__)

HIDDEN_LAYER = -3  # third from last: upstream's choice
EXPECTED_FILES = "config.json, the weights (pytorch_model.bin or model.safetensors) and vocab.txt or tokenizer.json"


class BertAlignmentError(ValueError):
    """The tokenizer did not produce one token per character of the normalised text."""


class BertFeaturizer:
    """Loads the BERT folder once; :meth:`phone_level` turns (norm_text, word2ph) into phone-level features.

    Parameters
    ----------
    model_dir:
        Folder such as ``pretrained_models/chinese-roberta-wwm-ext-large``.
    device:
        Torch device for the model (``"cpu"``, ``"cuda:0"``).
    half:
        Run in float16 (CUDA only); features are returned as float32 either way.
    """

    def __init__(self, model_dir: str | Path, device: str | torch.device = "cpu", half: bool = False) -> None:
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"BERT model folder not found or incomplete: {model_dir} (no config.json). It should hold the "
                f"chinese-roberta-wwm-ext-large files: {EXPECTED_FILES}. See pretrained_models/README.md."
            )
        self.model_dir = model_dir
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        # The checkpoint is a masked LM (as upstream loads it); only its encoder is used, so the LM head is
        # neither run nor reported as unexpected weights.
        model = AutoModelForMaskedLM.from_pretrained(str(model_dir), local_files_only=True).base_model
        model = model.to(self.device).eval()
        if half and self.device.type == "cuda":
            model = model.half()
        elif half:
            log.info("BERT stays float32 on %s: half precision is used on CUDA only", self.device)
        self.model = model
        self.hidden_size = int(model.config.hidden_size)
        self._lock = threading.Lock()  # one forward at a time: the UI and API may call from several threads
        self._check_tokenizer()
        log.info("BERT loaded from %s on %s (hidden size %d)", model_dir, self.device, self.hidden_size)

    def _check_tokenizer(self) -> None:
        # transformers 5 can build (and save) a tokenizer that maps every character to [UNK], e.g. from
        # BertTokenizer(vocab_file=...); that would silently give every sentence the same features. Probe a few
        # Chinese characters of vocab.txt (ids = line numbers), else of the tokenizer's own vocabulary.
        vocab_file = self.model_dir / "vocab.txt"
        if vocab_file.is_file():
            lines = vocab_file.read_text(encoding="utf-8").splitlines()
            vocab = {tok: i for i, tok in enumerate(lines)}
        else:
            vocab = self.tokenizer.get_vocab()
        probe = [tok for tok in vocab if len(tok) == 1 and "\u4e00" <= tok <= "\u9fa5"][:8]
        if not probe:
            return
        ids = self.tokenizer("".join(probe), add_special_tokens=False)["input_ids"]
        if ids != [vocab[tok] for tok in probe]:
            raise ValueError(
                f"The tokenizer in {self.model_dir} does not map Chinese characters to their vocab.txt ids "
                f"({''.join(probe)!r} -> {ids}); its tokenizer.json is broken or does not match vocab.txt. "
                "Delete tokenizer.json to rebuild it from vocab.txt, or restore the original model files."
            )

    @torch.no_grad()
    def phone_level(self, norm_text: str, word2ph: Sequence[int]) -> torch.Tensor:
        """Features of shape ``(hidden_size, sum(word2ph))``, float32 on the model's device.

        ``norm_text`` must tokenise to exactly one token per character (true for the Chinese normaliser's output:
        CJK characters and ``!?…,.-``); ``word2ph`` has one count per character.
        """
        if len(word2ph) != len(norm_text):
            raise BertAlignmentError(
                f"word2ph has {len(word2ph)} entries but the text has {len(norm_text)} characters: {norm_text!r}"
            )
        inputs = self.tokenizer(norm_text, return_tensors="pt").to(self.device)
        with self._lock:
            hidden = self.model(**inputs, output_hidden_states=True).hidden_states[HIDDEN_LAYER]
        per_char = hidden[0, 1:-1].float()  # drop [CLS] and [SEP]: [n_chars, hidden]
        if per_char.shape[0] != len(norm_text):
            raise BertAlignmentError(
                f"The BERT tokenizer split {norm_text!r} ({len(norm_text)} characters) into {per_char.shape[0]} "
                "tokens; phone-level features need one token per character (use the Chinese normaliser's output)."
            )
        counts = torch.as_tensor(list(word2ph), device=per_char.device)
        return per_char.repeat_interleave(counts, dim=0).T.contiguous()

    def zeros(self, n_phones: int) -> torch.Tensor:
        """The features of a non-Chinese segment: zeros ``(hidden_size, n_phones)``."""
        return torch.zeros(self.hidden_size, n_phones, device=self.device)
