"""``python -m GPT_SoVITS.prepare``: run dataset-formatting steps (all three by default: the one-click chain)."""

from GPT_SoVITS.prepare.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
