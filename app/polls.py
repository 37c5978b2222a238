"""Live status on the launcher's page at little cost: a status timer per tab that ticks only while a job of that
tab runs, switched on by the buttons that start jobs, by the page opening and by a slow page-wide watch.

Why: every Gradio event costs the browser work for *every* component that any earlier event of the page updated
(its loading-status bookkeeping finds each of them in the component tree, several times per event), however little
the event returns. Timers ticking every second on an idle page kept Chromium's renderer busy (78 % of a core with a
timer per panel, 64 % with one per tab, on an idle 1B tab; ``benchmarks/bench_page_cpu.py``). So:

* a tab's timer (:func:`polled_tab`) starts switched off; pressing a panel's Start/Open/Stop switches it on, and
  a tick that finds none of the tab's jobs running (before and after it polled) shows that final state and
  switches the timer off;
* when a page opens, one request switches on the timers of the tabs that have something to show (a run since the
  launcher started: running, finished, failed or stopped) and notes the newest run id (runs started later from
  elsewhere are not adopted by this page's panels: see ``_Panel._track``);
* a slow watch (:func:`watch_jobs`, every :data:`WATCH_SECONDS`) compares a fingerprint of all jobs (run id and
  state of each, no log read) with what the page saw last and switches on the timers of the tabs whose jobs
  changed: a job started from another browser tab shows up within that time. When nothing changed it sends
  nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import gradio as gr

from app.context import AppContext

log = logging.getLogger(__name__)

__all__ = ["POLL_SECONDS", "WATCH_SECONDS", "polled_tab", "run_polls", "tab_tick",
           "watch_jobs"]

POLL_SECONDS = 1.0  # a tab's status timer while one of its jobs runs
WATCH_SECONDS = 4.0  # the page-wide check for jobs started elsewhere (a Gradio event each time: keep it rare)

#: ``(fn, inputs, outputs)``: ``fn(*input_values)`` returns a dict holding only the outputs that changed
Poll = tuple[Callable[..., dict], list[Any], list[Any]]


def run_polls(polls: Sequence[Poll], values: Sequence[Any]) -> dict:
    """Run each poll on its slice of ``values``; the union of what they report changed."""
    changed: dict = {}
    at = 0
    for fn, poll_inputs, _ in polls:
        try:
            changed.update(fn(*values[at:at + len(poll_inputs)]))
        except Exception:  # one broken poll must not freeze every panel's status
            log.exception("status poll %s failed", getattr(fn, "__qualname__", fn))
        at += len(poll_inputs)
    return changed


def _any_running(ctx: AppContext, jobs: Sequence[str]) -> bool:
    running = set(ctx.processes.running())
    return any(job in running for job in jobs)


def tab_tick(ctx: AppContext, timer: gr.Timer, polls: Sequence[Poll], jobs: Sequence[str]) -> Callable[..., dict]:
    """The tick of a tab's timer: the tab's polls, and the timer switched off once none of ``jobs`` runs.

    Running is checked before and after polling: a job that ended during the polls may have been shown as
    running (the next tick shows its end), one that started during them is caught by the watch.
    """
    def tick(*values: Any) -> dict:
        busy = _any_running(ctx, jobs)
        changed = run_polls(polls, values)
        if not busy and not _any_running(ctx, jobs):
            changed[timer] = gr.Timer(active=False)
        return changed

    return tick


@contextlib.contextmanager
def polled_tab(ctx: AppContext) -> Iterator[gr.Timer]:
    """Inside a tab: the status polls registered in the block (``ctx.polls``: each panel's status, log and
    buttons, the loss plots, the inference link) share one timer, which starts switched off.

    The timer is placed first in the tab, so it ticks only once the tab has been shown (Gradio mounts a tab's
    components then). Panels built in the block switch it on when they start a job (``ctx.tab_timer``); the
    tab's jobs are those of the panels built in the block.
    """
    if ctx.tab_timer is not None:
        raise RuntimeError("polled_tab blocks do not nest")
    timer = gr.Timer(POLL_SECONDS, active=False)
    first_panel = len(ctx.panels)
    ctx.tab_timer = timer
    try:
        yield timer
    finally:
        ctx.tab_timer = None
    polls, ctx.polls[:] = list(ctx.polls), []
    jobs = tuple(panel.name for panel in ctx.panels[first_panel:])
    if polls:
        inputs = [component for _, poll_inputs, _ in polls for component in poll_inputs]
        outputs = list({id(c): c for _, _, poll_outputs in polls for c in poll_outputs}.values())
        timer.tick(tab_tick(ctx, timer, polls, jobs), inputs=inputs, outputs=[*outputs, timer],
                   show_progress="hidden")
    ctx.tab_timers.append((timer, jobs))


def wake(tabs: Sequence[tuple[gr.Timer, Sequence[str]]], before: dict, now: dict) -> dict:
    """Switch on the timers of the tabs with a job whose (run id, state) differs between ``before`` and ``now``."""
    return {timer: gr.Timer(active=True) for timer, jobs in tabs if any(before.get(j) != now.get(j) for j in jobs)}


def watch_jobs(ctx: AppContext, demo: gr.Blocks) -> None:
    """Page-wide: when the page opens and every :data:`WATCH_SECONDS`, switch on the timers of the tabs whose jobs
    have something new to show (``ctx.tab_timers``, filled by :func:`polled_tab`)."""
    if ctx.polls:
        raise RuntimeError("status polls registered outside a polled_tab block would never run")
    tabs = list(ctx.tab_timers)
    if not tabs:
        return
    seen = gr.State(None)  # the jobs' fingerprint this page's timers were last woken for
    timers = [timer for timer, _ in tabs]
    opened = [ctx.page_opened] if ctx.page_opened is not None else []

    def on_open() -> dict:
        now = ctx.processes.runs()
        updates = {**wake(tabs, {}, now), seen: now}
        if opened:
            updates[ctx.page_opened] = ctx.processes.last_run_id
        return updates

    def check(before: dict | None) -> dict:
        now = ctx.processes.runs()
        if before is None or now == before:  # nothing new (or the page's open request has not run yet)
            return {}
        return {**wake(tabs, before, now), seen: now}

    demo.load(on_open, outputs=[*timers, seen, *opened], show_progress="hidden")
    gr.Timer(WATCH_SECONDS).tick(check, inputs=seen, outputs=[*timers, seen], show_progress="hidden")
