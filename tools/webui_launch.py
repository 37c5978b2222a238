"""Start a Gradio page server, surviving Gradio's start-up check on a busy machine.

After binding, Gradio's ``launch`` sends one HEAD request to its own page and gives up at the first 3-second
timeout, raising "When localhost is not accessible, a shareable link must be created". On a machine whose cores
are busy (a training job, a browser, a game) the first answer can take longer, and the page never starts.
:func:`launch` closes that server and starts it again, a few times, before letting the error through.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

#: Gradio's message when its own page did not answer the start-up check
NOT_REACHABLE = "localhost is not accessible"


def launch(demo: Any, attempts: int = 3, **launch_args: Any) -> Any:
    """``demo.queue().launch(**launch_args)``, started again (up to ``attempts`` times) when Gradio's start-up
    check of its own page timed out."""
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
