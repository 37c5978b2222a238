"""``python -m GPT_SoVITS.prepare.hubert``: run only the hubert formatting step (see :mod:`GPT_SoVITS.prepare`)."""

from GPT_SoVITS.prepare.cli import main

if __name__ == "__main__":
    raise SystemExit(main(steps=("hubert",)))
