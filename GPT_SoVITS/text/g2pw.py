"""Optional G2PW polyphone disambiguation (upstream's ``GPT_SoVITS/text/G2PWModel`` ONNX model).

Placeholder until the ONNX runner lands: only the folder check and the fallback message exist.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def load_default_g2pw(model_dir: Path) -> object | None:
    """The G2PW model in ``model_dir`` or ``None`` (pypinyin readings) when it is absent; logs the choice once."""
    log.info("G2PW model folder %s not found: Mandarin polyphones are read with pypinyin.", model_dir)
    return None
