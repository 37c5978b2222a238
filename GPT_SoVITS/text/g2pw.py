"""Optional G2PW polyphone disambiguation with upstream's ONNX model (``GPT_SoVITS/text/G2PWModel``).

G2PW is a BERT classifier: for each polyphonic character of a sentence it scores the character's possible
readings (zhuyin/bopomofo labels) and the best one is converted to tone3 pinyin. The model folder (a separate
download in upstream, not shipped here) holds::

    g2pW.onnx                               the network (inputs: input_ids, token_type_ids, attention_mask,
                                            phoneme_mask, char_ids, position_ids; output: label probabilities)
    POLYPHONIC_CHARS.txt                    "char<TAB>bopomofo" per line: the labels of each polyphonic character
    MONOPHONIC_CHARS.txt                    "char<TAB>bopomofo": characters with a single reading
    bopomofo_to_pinyin_wo_tune_dict.json    bopomofo without tone → pinyin without tone
    char_bopomofo_dict.json                 (listed for completeness; not needed at inference)
    config.py                               training settings; only ``use_mask`` and ``use_char_phoneme`` matter

The tokenizer is the Chinese BERT of the pretrained folder (``chinese-roberta-wwm-ext-large``). The model was
trained on traditional characters, so sentences are converted with OpenCC ``s2tw`` first (as upstream does).
Without the folder, :func:`load_default_g2pw` returns ``None`` and Mandarin readings come from pypinyin.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

REQUIRED_FILES = (
    "g2pW.onnx",
    "POLYPHONIC_CHARS.txt",
    "MONOPHONIC_CHARS.txt",
    "bopomofo_to_pinyin_wo_tune_dict.json",
)
# Characters upstream never sends to the model (their sandhi rules or pypinyin read them better) or never reads
# from the monophonic table.
_NOT_POLYPHONIC = set("一不和咋嗲剖差攢倒難奔勁拗肖瘙誒泊听噢")
_NOT_MONOPHONIC = set("似攢")
_MAX_TOKENS = 512


class G2PWModelError(FileNotFoundError):
    """The G2PW model folder or its tokenizer folder is incomplete."""


def check_model_dir(model_dir: Path, tokenizer_dir: Path) -> None:
    """Raise :class:`G2PWModelError` naming every missing file of a G2PW model folder and its tokenizer."""
    model_dir, tokenizer_dir = Path(model_dir), Path(tokenizer_dir)
    if not model_dir.is_dir():
        raise G2PWModelError(
            f"G2PW model folder {model_dir} does not exist. Copy upstream's G2PWModel folder there "
            "(it contains g2pW.onnx), or leave it out to read polyphones with pypinyin."
        )
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise G2PWModelError(
            f"G2PW model folder {model_dir} is incomplete: missing {', '.join(missing)}. "
            "Copy the whole G2PWModel folder from upstream's download."
        )
    if not ((tokenizer_dir / "vocab.txt").is_file() or (tokenizer_dir / "tokenizer.json").is_file()):
        raise G2PWModelError(
            f"G2PW needs the Chinese BERT tokenizer (vocab.txt or tokenizer.json) in {tokenizer_dir}; "
            "put chinese-roberta-wwm-ext-large in the pretrained folder."
        )


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            char, reading = line.split("\t")[:2]
            pairs.append((char, reading.strip()))
    return pairs


def read_config(path: Path) -> dict[str, object]:
    """Literal top-level assignments of G2PW's ``config.py`` (read with ``ast``; the file is never executed)."""
    if not path.is_file():
        return {}
    values: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


class G2PW:
    """Polyphone reader over an upstream G2PW ONNX folder. ``predict(sentence)`` returns, per character, a tone3
    pinyin (neutral tone 5) for the characters it knows (model prediction for polyphones, table for monophones)
    and ``None`` for the others."""

    def __init__(self, model_dir: Path, tokenizer_dir: Path, threads: int = 2) -> None:
        model_dir, tokenizer_dir = Path(model_dir), Path(tokenizer_dir)
        check_model_dir(model_dir, tokenizer_dir)
        import onnxruntime
        from transformers import AutoTokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(model_dir / "g2pW.onnx"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        config = read_config(model_dir / "config.py")
        self.use_mask = bool(config.get("use_mask", True))
        self.use_char_phoneme = bool(config.get("use_char_phoneme", False))

        polyphonic = _read_pairs(model_dir / "POLYPHONIC_CHARS.txt")
        if self.use_char_phoneme:
            self.labels = sorted({f"{char} {reading}" for char, reading in polyphonic})
        else:
            self.labels = sorted({reading for _, reading in polyphonic})
        label_index = {label: i for i, label in enumerate(self.labels)}
        self.char_labels: dict[str, list[int]] = {}
        for char, reading in polyphonic:
            key = f"{char} {reading}" if self.use_char_phoneme else reading
            self.char_labels.setdefault(char, []).append(label_index[key])
        self.chars = sorted(self.char_labels)
        self._char_index = {char: i for i, char in enumerate(self.chars)}
        self.polyphonic = set(self.chars) - _NOT_POLYPHONIC
        self.monophonic = {
            char: reading
            for char, reading in _read_pairs(model_dir / "MONOPHONIC_CHARS.txt")
            if char not in _NOT_MONOPHONIC
        }
        bopomofo_json = model_dir / "bopomofo_to_pinyin_wo_tune_dict.json"
        self.bopomofo_to_pinyin: dict[str, str] = json.loads(bopomofo_json.read_text(encoding="utf-8"))
        self._input_names = [node.name for node in self.session.get_inputs()]

    # ------------------------------------------------------------------------------------------- helpers
    def to_pinyin(self, bopomofo: str) -> str | None:
        """``"ㄏㄤ2"`` → ``"hang2"``; ``None`` (logged) when the syllable is not in the table."""
        tone = bopomofo[-1]
        base = self.bopomofo_to_pinyin.get(bopomofo[:-1])
        if not base or tone not in "12345":
            log.warning("G2PW label %r has no pinyin; falling back to pypinyin for it.", bopomofo)
            return None
        return base + tone

    def _traditional(self, sentence: str) -> str:
        from GPT_SoVITS.text.zh_normalization import to_traditional

        converted = to_traditional(sentence)
        return converted if len(converted) == len(sentence) else sentence

    def _tokens(self, text: str) -> tuple[list[str], list[int]]:
        """Word pieces of ``text`` and, per character, the index of its first piece."""
        tokens: list[str] = []
        char_to_token: list[int] = []
        for char in text:
            pieces = self.tokenizer.tokenize(char)
            char_to_token.append(len(tokens) if pieces else max(len(tokens) - 1, 0))
            tokens.extend(pieces)
        return tokens, char_to_token

    def _model_inputs(self, text: str, queries: list[int]) -> dict[str, np.ndarray]:
        tokens, char_to_token = self._tokens(text.lower())
        if len(tokens) + 2 > _MAX_TOKENS:
            raise ValueError(f"Sentence too long for G2PW ({len(tokens)} tokens, limit {_MAX_TOKENS - 2}).")
        ids = self.tokenizer.convert_tokens_to_ids(["[CLS]", *tokens, "[SEP]"])
        rows = len(queries)
        masks = np.zeros((rows, len(self.labels)), dtype=np.float32)
        for row, query in enumerate(queries):
            if self.use_mask:
                masks[row, self.char_labels[text[query]]] = 1.0
            else:
                masks[row] = 1.0
        inputs = {
            "input_ids": np.tile(np.asarray(ids, dtype=np.int64), (rows, 1)),
            "token_type_ids": np.zeros((rows, len(ids)), dtype=np.int64),
            "attention_mask": np.ones((rows, len(ids)), dtype=np.int64),
            "phoneme_mask": masks,
            "char_ids": np.asarray([self._char_index[text[q]] for q in queries], dtype=np.int64),
            "position_ids": np.asarray([char_to_token[q] + 1 for q in queries], dtype=np.int64),  # +1: [CLS]
        }
        return {name: inputs[name] for name in self._input_names}

    # ------------------------------------------------------------------------------------------ prediction
    def predict(self, sentence: str) -> list[str | None]:
        """Tone3 readings per character of ``sentence`` (``None`` where G2PW has no opinion)."""
        text = self._traditional(sentence)
        readings: list[str | None] = [None] * len(sentence)
        queries = []
        for i, char in enumerate(text):
            if char in self.polyphonic:
                queries.append(i)
            elif char in self.monophonic:
                readings[i] = self.to_pinyin(self.monophonic[char])
        if not queries:
            return readings
        probs = self.session.run(None, self._model_inputs(text, queries))[0]
        for query, label in zip(queries, np.argmax(probs, axis=1).tolist(), strict=True):
            bopomofo = self.labels[label].split(" ")[-1]
            readings[query] = self.to_pinyin(bopomofo)
        return readings


def load_default_g2pw(model_dir: Path, tokenizer_dir: Path | None = None) -> G2PW | None:
    """G2PW from ``model_dir`` or ``None`` (pypinyin readings); says which in the log. Never raises: a broken
    folder is logged as a warning and pypinyin is used."""
    if tokenizer_dir is None:
        from GPT_SoVITS.paths import PretrainedPaths

        tokenizer_dir = PretrainedPaths().bert
    if not Path(model_dir).exists():
        log.info("No G2PW model at %s: Mandarin polyphones are read with pypinyin.", model_dir)
        return None
    try:
        g2pw = G2PW(model_dir, tokenizer_dir)
    except (G2PWModelError, ImportError, OSError, ValueError) as error:
        log.warning("G2PW disabled, Mandarin polyphones are read with pypinyin: %s", error)
        return None
    log.info("Mandarin polyphones are read with G2PW from %s.", model_dir)
    return g2pw
