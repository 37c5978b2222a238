"""Dataset tools: each is a library (importable functions) and a CLI (``python -m tools.<name>``)."""
