"""``python -m GPT_SoVITS.prepare.text``: run only the text formatting step (see :mod:`GPT_SoVITS.prepare`)."""

from GPT_SoVITS.prepare.cli import main

if __name__ == "__main__":
    raise SystemExit(main(steps=("text",)))
