"""A trainer stand-in for launcher tests (``python -m tests.fake_trainer GO_FILE``): it runs until SIGTERM, then
"saves" until ``GO_FILE`` appears (the test decides when the save ends) and exits 0, as a stopped trainer does."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path


def main() -> None:
    go = Path(sys.argv[1])
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print("training", flush=True)
    while not stop:
        time.sleep(0.05)
    print("saving the training state", flush=True)
    while not go.exists():
        time.sleep(0.05)
    print("saved", flush=True)


if __name__ == "__main__":
    main()
