"""GPT-SoVITS compatible few-shot TTS: the library.

This package never imports Gradio, never reads environment variables and never loads a model at import
time. Front-ends (``app/``, ``tools/``) build on it.
"""
