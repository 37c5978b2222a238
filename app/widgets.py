"""Reusable launcher widgets: the job panel (start/stop, status, progress bar, live log tail)."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from app.context import AppContext
from app.processes import JobBusyError, JobSpec, JobState, JobStatus, format_elapsed

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0


class UserInputError(ValueError):
    """Bad input from the UI; its message (already translated) is shown to the user as a warning."""


def progress_html(status: JobStatus) -> str:
    if status.progress is None:
        return ""
    pct = round(100 * status.progress.fraction)
    label = html.escape(f"{status.progress.label} {status.progress.done}/{status.progress.total} ({pct}%)")
    return (f'<div class="job-progress"><progress max="100" value="{pct}" style="width:100%"></progress>'
            f"<div>{label}</div></div>")


def status_text(i18n, status: JobStatus) -> str:
    names = {
        JobState.IDLE: i18n("Idle"),
        JobState.RUNNING: i18n("Running"),
        JobState.FINISHED: i18n("Finished"),
        JobState.FAILED: i18n("Failed"),
        JobState.STOPPED: i18n("Stopped"),
    }
    text = f"**{names[status.state]}**"
    if status.state is not JobState.IDLE:
        text += f" · {i18n('elapsed')} {format_elapsed(status.elapsed)}"
    if status.state is JobState.FAILED:
        if status.returncode:
            text += f" · {i18n('exit code')} {status.returncode}"
        else:
            text += f" · {i18n('outputs missing')}"
    return text


class JobPanel:
    """Start/stop buttons plus live status for one named job.

    ``make_spec(*input_values) -> JobSpec`` turns the panel's input widgets into a job; it raises
    :class:`UserInputError` (or ``ValueError``/``FileNotFoundError``) with a message for the user on bad input.
    """

    def __init__(self, ctx: AppContext, name: str, make_spec: Callable[..., JobSpec], inputs: list[Any],
                 start_label: str, log_lines: int = 12,
                 extra_starts: Sequence[tuple[str, Callable[..., JobSpec], list[Any]]] = ()):
        """``extra_starts``: more ``(label, make_spec, inputs)`` buttons that start the same job differently
        (e.g. one button per formatting step plus the one-click chain); the job runs one at a time."""
        self.ctx, self.name = ctx, name
        i18n = ctx.i18n
        with gr.Row():
            starts = [(gr.Button(start_label, variant="primary"), make_spec, inputs)]
            starts += [(gr.Button(label), spec_fn, spec_inputs) for label, spec_fn, spec_inputs in extra_starts]
            self.start_btn = starts[0][0]
            self.stop_btn = gr.Button(i18n("Stop"), variant="stop", interactive=False)
        self.status = gr.Markdown(status_text(i18n, JobStatus(name, JobState.IDLE)))
        self.progress = gr.HTML("")
        self.log = gr.Textbox(label=i18n("Log"), lines=log_lines, max_lines=log_lines, interactive=False,
                              autoscroll=True, info=i18n("The last lines of the job's log file."))
        self.timer = gr.Timer(POLL_SECONDS)
        self._start_buttons = [button for button, _, _ in starts]
        outputs = [self.status, self.progress, self.log, *self._start_buttons, self.stop_btn]
        for button, spec_fn, spec_inputs in starts:
            button.click(lambda *values, _fn=spec_fn: self._start(_fn, *values), inputs=spec_inputs, outputs=outputs)
        self.stop_btn.click(self._stop, outputs=outputs)
        self.timer.tick(self.refresh, outputs=outputs)

    def refresh(self) -> tuple[Any, ...]:
        status = self.ctx.processes.status(self.name)
        message = status_text(self.ctx.i18n, status)
        if status.message and status.state is JobState.FAILED:
            message += f"\n\n{status.message}"
        starts = [gr.update(interactive=not status.running) for _ in self._start_buttons]
        return (message, progress_html(status), self.ctx.processes.tail(self.name), *starts,
                gr.update(interactive=status.running))

    def _start(self, make_spec: Callable[..., JobSpec], *values: Any) -> tuple[Any, ...]:
        i18n = self.ctx.i18n
        try:
            spec = make_spec(*values)
            self.ctx.processes.start(self.name, spec)
        except JobBusyError:
            gr.Warning(i18n("This tool is already running; stop it first or wait for it to finish."))
        except (UserInputError, ValueError, FileNotFoundError) as exc:
            gr.Warning(str(exc))
        return self.refresh()

    def _stop(self) -> tuple[Any, ...]:
        self.ctx.processes.stop(self.name)
        return self.refresh()


def note(text: str) -> gr.Markdown:
    """A one-line note, e.g. for a feature that is not built yet."""
    return gr.Markdown(f"*{text}*")


def port_open(url: str, timeout: float = 0.2) -> bool:
    """Whether something answers on the host and port of ``url`` (a sub-WebUI has finished starting)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


class SubWebUIPanel:
    """Open/close buttons for a tool with its own WebUI (a server job), with a link to it while it runs.

    ``make_spec(*input_values) -> (JobSpec, url)``; it raises :class:`UserInputError` (or ``ValueError`` /
    ``FileNotFoundError``) with a message for the user on bad input.
    """

    def __init__(self, ctx: AppContext, name: str, make_spec: Callable[..., tuple[JobSpec, str]], inputs: list[Any],
                 open_label: str, close_label: str, log_lines: int = 6):
        self.ctx, self.name, self.make_spec = ctx, name, make_spec
        self.url = ""
        i18n = ctx.i18n
        with gr.Row():
            self.open_btn = gr.Button(open_label, variant="primary")
            self.close_btn = gr.Button(close_label, variant="stop", visible=False)
        self.status = gr.Markdown(status_text(i18n, JobStatus(name, JobState.IDLE)))
        self.log = gr.Textbox(label=i18n("Log"), lines=log_lines, max_lines=log_lines, interactive=False,
                              autoscroll=True, info=i18n("The last lines of the job's log file."))
        self.timer = gr.Timer(POLL_SECONDS)
        outputs = [self.status, self.log, self.open_btn, self.close_btn]
        self.open_btn.click(self._open, inputs=inputs, outputs=outputs)
        self.close_btn.click(self._close, outputs=outputs)
        self.timer.tick(self.refresh, outputs=outputs)

    def status_markdown(self, status: JobStatus) -> str:
        i18n = self.ctx.i18n
        if status.running:
            if self.url and port_open(self.url):
                return f"**{i18n('Running')}** · {i18n('Open in your browser:')} [{self.url}]({self.url})"
            return f"**{i18n('Running')}** · {i18n('Starting; the link appears when the page is ready.')}"
        if status.state is JobState.STOPPED:
            return f"**{i18n('Closed')}**"
        message = status_text(i18n, status)
        if status.state is JobState.FAILED and status.message:
            message += f"\n\n{status.message}"
        return message

    def refresh(self) -> tuple[Any, ...]:
        status = self.ctx.processes.status(self.name)
        return (self.status_markdown(status), self.ctx.processes.tail(self.name),
                gr.update(visible=not status.running), gr.update(visible=status.running))

    def _open(self, *values: Any) -> tuple[Any, ...]:
        i18n = self.ctx.i18n
        try:
            spec, url = self.make_spec(*values)
            self.ctx.processes.start(self.name, spec)
            self.url = url
        except JobBusyError:
            gr.Warning(i18n("This tool is already running; stop it first or wait for it to finish."))
        except (UserInputError, ValueError, FileNotFoundError) as exc:
            gr.Warning(str(exc))
        return self.refresh()

    def _close(self) -> tuple[Any, ...]:
        self.ctx.processes.stop(self.name)
        return self.refresh()
