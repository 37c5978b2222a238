"""``python -m GPT_SoVITS.prepare.sv``: run only the speaker-embedding step of the Pro versions (``7-sv_cn``)."""

from GPT_SoVITS.prepare.cli import main

if __name__ == "__main__":
    raise SystemExit(main(steps=("sv",)))
