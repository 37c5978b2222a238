"""Start the GPT-SoVITS studio launcher: ``python webui.py [--port 9874] [--lang zh_CN] [--share]``."""

from app.main import main

if __name__ == "__main__":
    raise SystemExit(main())
