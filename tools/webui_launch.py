"""Start a Gradio page server, surviving Gradio's start-up check on a busy machine.

After binding, Gradio's ``launch`` sends one HEAD request to its own page and gives up at the first 3-second
timeout, raising "When localhost is not accessible, a shareable link must be created". On a machine whose cores
are busy (a training job, a browser, a game) the first answer can take longer, and the page never starts.
:func:`launch` closes that server and starts it again, a few times, before letting the error through. It also
makes the server's event queue poll calmly when idle (:func:`quiet_queue`).
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: Gradio's message when its own page did not answer the start-up check
NOT_REACHABLE = "localhost is not accessible"
#: Seconds Gradio's queue sleeps between looks for new events and for progress to send, when it has none:
#: Gradio's own values on Windows (on Linux it looks every 1 ms and 10 ms).
QUEUE_IDLE_SLEEP = (0.05, 0.1)


def launch(demo: Any, attempts: int = 3, **launch_args: Any) -> Any:
    """``demo.queue().launch(**launch_args)``, started again (up to ``attempts`` times) when Gradio's start-up
    check of its own page timed out."""
    quiet_queue(demo)
    for attempt in range(1, attempts + 1):
        try:
            return demo.queue().launch(**launch_args)
        except ValueError as exc:
            if NOT_REACHABLE not in str(exc) or attempt == attempts:
                raise
            log.warning("the page server did not answer its start-up check in time (a busy machine?); starting it "
                        "again (%d of %d)", attempt + 1, attempts)
            demo.close()
    raise AssertionError("unreachable")


def quiet_queue(demo: Any) -> None:
    """Make the page server's event queue look for work 20 times a second instead of 1000 when it has none.

    On Linux Gradio's queue polls for new events every millisecond: an idle launcher with no page open used about
    8 % of a core. An event now waits at most 50 ms longer before it starts. Applied when the server starts
    (``demo.queue()`` makes a new queue each time it is called).
    """
    async def calm() -> None:
        queue = getattr(demo, "_queue", None)
        names = ("sleep_when_free", "progress_update_sleep_when_free")
        if queue is None or not all(hasattr(queue, name) for name in names):
            log.warning("Gradio's queue has no %s: it keeps polling at its own rate", " / ".join(names))
            return
        for name, seconds in zip(names, QUEUE_IDLE_SLEEP, strict=True):
            setattr(queue, name, max(getattr(queue, name), seconds))

    demo.extra_startup_events.append(calm)
