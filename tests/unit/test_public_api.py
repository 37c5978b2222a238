"""The package's public names resolve lazily, and importing the package does not import torch."""

import subprocess
import sys

import GPT_SoVITS
from GPT_SoVITS.paths import REPO_ROOT


def test_public_names_resolve():
    from GPT_SoVITS.infer.tts import TTS
    from GPT_SoVITS.models import load_sovits, load_t2s

    assert GPT_SoVITS.TTS is TTS and GPT_SoVITS.load_t2s is load_t2s and GPT_SoVITS.load_sovits is load_sovits
    assert {"Reference", "SynthesisOptions"} <= set(GPT_SoVITS.__all__)


def test_import_is_cheap():
    code = "import sys, GPT_SoVITS, GPT_SoVITS.paths; print('torch' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
