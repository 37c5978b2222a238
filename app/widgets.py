"""Reusable launcher widgets: the job panel (start/stop, status, progress bar, live log tail) and the sub-WebUI panel.

Every handler gets the values on the screen as its inputs, so a job uses exactly what the page shows when the
button is pressed. Per browser session (``gr.State``) a panel remembers the refusal it showed last (the status
keeps saying why nothing started until the next press) and the run it started or found running; when that run
finishes, the panel's ``finished`` state changes to the run's id, which later steps listen to (pre-filling the
next step's fields, refreshing model lists). Other tabs are not touched.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import gradio as gr

from app.context import AppContext
from app.i18n import I18n, UserInputError
from app.processes import JobBusyError, JobSpec, JobState, JobStatus, format_elapsed
from GPT_SoVITS.labels import LabelFileError

log = logging.getLogger(__name__)

__all__ = ["JobPanel", "SubWebUIPanel", "UserInputError", "error_text", "status_text", "progress_html"]

#: Exceptions a ``make_spec`` may raise for bad input; their message is shown in the panel's status.
INPUT_ERRORS = (UserInputError, JobBusyError, ValueError, FileNotFoundError)


def label_file_message(i18n: I18n, exc: LabelFileError) -> str:
    """A label-file problem in the UI language (the library's English templates, by kind)."""
    templates = {
        "none_given": i18n("No label file given: enter the path of a .list file."),
        "not_found": i18n("Label file not found: {path}"),
        "is_folder": i18n("{path} is a folder; give the .list file inside it."),
        "unreadable": i18n("Cannot read label file {path}: {reason}"),
        "not_utf8": i18n("{path} is not UTF-8 text (byte {byte}); re-save it as UTF-8."),
        "no_list_in_folder": i18n("{path} is a folder with no .list file in it; give the path of a .list file "
                                  "(batch ASR writes one into its output folder, named after the folder of clips)."),
        "several_lists": i18n("{path} is a folder with {n} .list files ({names}); give one of them."),
    }
    return templates[exc.kind].format(**exc.params) if exc.kind in templates else str(exc)


def error_text(i18n: I18n, exc: Exception) -> str:
    """What to tell the user about a refused start, in the UI language."""
    if isinstance(exc, UserInputError):
        return exc.text(i18n)
    if isinstance(exc, JobBusyError):
        return i18n("This tool is already running; stop it first or wait for it to finish.")
    if isinstance(exc, LabelFileError):
        return label_file_message(i18n, exc)
    # an error raised inside the library: its detail is English, the lead-in says what happened
    return i18n("Not started: {reason}", reason=str(exc))


def progress_html(status: JobStatus) -> str:
    """The progress bar of a running job (a finished or stopped job shows none: its last line is history)."""
    if status.progress is None or not status.running:
        return ""
    pct = round(100 * status.progress.fraction)
    label = html.escape(f"{status.progress.label} {status.progress.done}/{status.progress.total} ({pct}%)")
    return (f'<div class="job-progress"><progress max="100" value="{pct}" style="width:100%"></progress>'
            f"<div>{label}</div></div>")


def status_text(i18n: I18n, status: JobStatus) -> str:
    names = {
        JobState.IDLE: i18n("Idle"),
        JobState.RUNNING: i18n("Running"),
        JobState.STOPPING: i18n("Stopping"),
        JobState.FINISHED: i18n("Finished"),
        JobState.FAILED: i18n("Failed"),
        JobState.STOPPED: i18n("Stopped"),
    }
    text = f"**{names[status.state]}**"
    if status.state is not JobState.IDLE:
        text += f" · {i18n('elapsed')} {format_elapsed(status.elapsed)}"
    if status.state is JobState.STOPPING:
        text += " · " + i18n("saving… (it ends after its current step; press Stop again to end it at once and "
                             "lose that step)")
    if status.state is JobState.FAILED:
        if status.returncode:
            text += f" · {i18n('exit code')} {status.returncode}"
        else:
            text += f" · {i18n('outputs missing')}"
            if status.missing:
                text += f": {html.escape(status.missing)}"
    return text


@dataclass(frozen=True)
class PanelSession:
    """What one browser session's panel remembers (kept in a ``gr.State``)."""

    notice: str = ""  # the last refusal, shown until the next press of a button of this panel
    watched: int = 0  # the run this session started, or found running when the page opened
    ticked: bool = False  # the first status poll of this page has happened (or a button of it was pressed)
    shown: int = 0  # hash of what the page shows now: a poll that would change nothing sends nothing


class _Panel:
    """Shared machinery: the session state, the refusal notice, the finished-run signal and the status poll.

    The poll runs on its tab's timer (``app.polls.polled_tab``), which ticks only while a job of the tab runs; the
    panel's buttons switch it on when they start or stop a job.
    """

    def __init__(self, ctx: AppContext, name: str, flow_fields: Sequence[str] = ()):
        self.ctx, self.name, self.i18n = ctx, name, ctx.i18n
        self.flow_fields = tuple(flow_fields)  # workflow fields a finished run of this job pre-fills
        self._run_flows: dict[int, dict[str, str]] = {}
        self.session = gr.State(PanelSession())
        self.finished = gr.State(0)  # id of the last watched run that finished successfully
        self.timer = ctx.tab_timer  # the status timer of the panel's tab (None outside app.polls.polled_tab)
        # the poll's inputs: with the page's opening run id where the page has one (see _track)
        self.poll_inputs = [self.session, self.finished, *([ctx.page_opened] if ctx.page_opened is not None else [])]
        ctx.panels.append(self)

    def _button_outputs(self, outputs: list[Any]) -> list[Any]:
        """What a button of the panel updates: the panel's view and, in a polled tab, the tab's timer."""
        return [*outputs, self.timer] if self.timer is not None else list(outputs)

    def _woken(self, updates: dict) -> dict:
        """``updates`` plus switching the tab's status timer on (a job of this panel started or is stopping)."""
        return {**updates, self.timer: gr.Timer(active=True)} if self.timer is not None else updates

    @staticmethod
    def _shown(session: PanelSession, finished: int, view: tuple) -> PanelSession | None:
        """``session`` remembering ``view`` (what the page is about to show), or None when nothing would change:
        neither the view nor the session's state. Re-rendering unchanged markdown, logs and buttons every second
        kept the browser busy on an idle page."""
        shown = hash((view, session.ticked, session.watched, session.notice, finished))
        return None if shown == session.shown else replace(session, shown=shown)

    def flows_of(self, run_id: int) -> dict[str, str]:
        """The values run ``run_id`` offers to later steps (after it finished successfully)."""
        return self._run_flows.get(run_id, {})

    def _remember_inputs(self, components: Sequence[Any], values: Sequence[Any]) -> None:
        """The workflow fields a job used are what a page opened later shows."""
        used = {self.ctx.field_of(comp): value for comp, value in zip(components, values, strict=False)}
        self.ctx.workflow.remember(**{name: str(value) for name, value in used.items() if name})

    def _launch(self, spec: JobSpec) -> int:
        if spec.flows:
            flows, hook = dict(spec.flows), spec.on_finished

            def on_finished() -> None:
                if hook is not None:
                    hook()
                self.ctx.workflow.remember(**flows)

            spec = replace(spec, on_finished=on_finished)
        run_id = self.ctx.processes.start(self.name, spec).run_id
        self._run_flows[run_id] = dict(spec.flows or {})
        return run_id

    def _track(self, status: JobStatus, session: PanelSession, finished: int,
               opened: int | None) -> tuple[PanelSession, int]:
        """Adopt a run found running at the page's first poll, if it had started when the page opened (run id up
        to ``opened``; None: any): a page's first poll can come long after it opened, when a job started from
        another browser tab wakes its timer, and that job's results must not pre-fill this page's fields. Report
        a watched run's successful finish."""
        if not session.ticked:
            adopt = status.running and (opened is None or status.run_id <= opened)
            session = replace(session, ticked=True, watched=status.run_id if adopt else session.watched)
        if session.watched and status.run_id == session.watched and status.state is JobState.FINISHED:
            finished = status.run_id
        return session, finished

    def _notice_markdown(self, session: PanelSession) -> str:
        return f"⚠️ {html.escape(session.notice)}\n\n" if session.notice else ""

    def _refuse(self, exc: Exception, session: PanelSession) -> PanelSession:
        """Show why nothing started (the run this session watches, if any, is still watched)."""
        text = error_text(self.i18n, exc)
        log.info("%s not started: %s", self.name, exc)
        gr.Warning(text)
        return replace(session, notice=text, ticked=True)


class JobPanel(_Panel):
    """Start/stop buttons plus live status for one named job.

    ``make_spec(*input_values) -> JobSpec`` turns the panel's input widgets into a job; it raises
    :class:`UserInputError` (or ``ValueError``/``FileNotFoundError``) with a message for the user on bad input.
    ``finish_note(status, input_values) -> str`` adds a line to the status of a finished run (e.g. items left out).
    """

    def __init__(self, ctx: AppContext, name: str, make_spec: Callable[..., JobSpec], inputs: list[Any],
                 start_label: str, log_lines: int = 12,
                 extra_starts: Sequence[tuple[str, Callable[..., JobSpec], list[Any]]] = (),
                 finish_note: Callable[[JobStatus, tuple], str] | None = None, flow_fields: Sequence[str] = ()):
        """``extra_starts``: more ``(label, make_spec, inputs)`` buttons that start the same job differently
        (e.g. one button per formatting step plus the one-click chain); the job runs one at a time.
        ``flow_fields``: the workflow fields a finished run pre-fills (its spec's ``flows`` give the values)."""
        i18n = ctx.i18n
        self.log_lines, self.finish_note = log_lines, finish_note
        self._run_inputs: dict[int, tuple] = {}  # run id → the input values it was started with
        with gr.Row():  # element ids: hooks for browser tests and custom CSS
            starts = [(gr.Button(start_label, variant="primary", elem_id=f"{name}-start"), make_spec, inputs)]
            starts += [(gr.Button(label, elem_id=f"{name}-start-{i}"), spec_fn, spec_inputs)
                       for i, (label, spec_fn, spec_inputs) in enumerate(extra_starts, start=1)]
            self.start_btn = starts[0][0]
            self.stop_btn = gr.Button(i18n("Stop"), variant="stop", interactive=False, elem_id=f"{name}-stop")
        super().__init__(ctx, name, flow_fields)
        self.status = gr.Markdown(status_text(i18n, JobStatus(name, JobState.IDLE)), elem_id=f"{name}-status")
        self.progress = gr.HTML("", elem_id=f"{name}-progress")
        self.log = gr.Textbox(label=i18n("Log"), lines=log_lines, max_lines=log_lines, interactive=False,
                              autoscroll=True, elem_classes=["job-log"], elem_id=f"{name}-log",
                              info=i18n("The last lines of the job's log file."))
        self._start_buttons = [button for button, _, _ in starts]
        self.outputs = [self.status, self.progress, self.log, *self._start_buttons, self.stop_btn, self.session,
                        self.finished]
        for button, spec_fn, spec_inputs in starts:
            button.click(self._start_handler(spec_fn, spec_inputs), inputs=[*spec_inputs, self.session, self.finished],
                         outputs=self._button_outputs(self.outputs))
        self.stop_btn.click(self._stop, inputs=[self.session, self.finished],
                            outputs=self._button_outputs(self.outputs))
        ctx.polls.append((self.refresh, self.poll_inputs, self.outputs))

    def refresh(self, session: PanelSession, finished: int, opened: int | None = None) -> dict:
        """The panel's view, or {} when it would show what it shows (``opened``: see :meth:`_track`)."""
        status = self.ctx.processes.status(self.name)
        session, finished = self._track(status, session, finished, opened)
        message = self._notice_markdown(session) + status_text(self.i18n, status)
        if status.state is JobState.FINISHED and self.finish_note and status.run_id in self._run_inputs:
            note = self.finish_note(status, self._run_inputs[status.run_id])
            message += f"\n\n{note}" if note else ""
        progress, tail = progress_html(status), self.ctx.processes.tail(self.name, self.log_lines)
        session = self._shown(session, finished, (message, progress, tail, status.running))
        if session is None:
            return {}
        updates = {self.status: message, self.progress: progress, self.log: tail,
                   self.stop_btn: gr.update(interactive=status.running), self.session: session,
                   self.finished: finished}
        updates.update({button: gr.update(interactive=not status.running) for button in self._start_buttons})
        return updates

    def _start_handler(self, make_spec: Callable[..., JobSpec], inputs: list[Any]) -> Callable[..., dict]:
        def start(*values: Any) -> dict:
            *values, session, finished = values
            try:
                run_id = self._launch(make_spec(*values))
                self._run_inputs[run_id] = tuple(values)
                self._remember_inputs(inputs, values)
                session = PanelSession(watched=run_id, ticked=True)
            except INPUT_ERRORS as exc:
                return self.refresh(self._refuse(exc, session), finished)
            return self._woken(self.refresh(session, finished))

        return start

    def _stop(self, session: PanelSession, finished: int) -> dict:
        self.ctx.processes.stop(self.name)
        return self._woken(self.refresh(replace(session, notice=""), finished))


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


class SubWebUIPanel(_Panel):
    """Open/close buttons for a tool with its own WebUI (a server job), with a link to it while it runs.

    ``make_spec(*input_values) -> (JobSpec, url)``; it raises :class:`UserInputError` (or ``ValueError`` /
    ``FileNotFoundError``) with a message for the user on bad input.
    """

    def __init__(self, ctx: AppContext, name: str, make_spec: Callable[..., tuple[JobSpec, str]], inputs: list[Any],
                 open_label: str, close_label: str, log_lines: int = 6):
        self.make_spec, self.url, self.log_lines = make_spec, "", log_lines
        i18n = ctx.i18n
        with gr.Row():
            self.open_btn = gr.Button(open_label, variant="primary", elem_id=f"{name}-open")
            self.close_btn = gr.Button(close_label, variant="stop", visible=False, elem_id=f"{name}-close")
        super().__init__(ctx, name)
        self.status = gr.Markdown(status_text(i18n, JobStatus(name, JobState.IDLE)), elem_id=f"{name}-status")
        self.log = gr.Textbox(label=i18n("Log"), lines=log_lines, max_lines=log_lines, interactive=False,
                              autoscroll=True, elem_classes=["job-log"], elem_id=f"{name}-log",
                              info=i18n("The last lines of the job's log file."))
        self.inputs = inputs
        self.outputs = [self.status, self.log, self.open_btn, self.close_btn, self.session, self.finished]
        self.open_btn.click(self._open, inputs=[*inputs, self.session, self.finished],
                            outputs=self._button_outputs(self.outputs))
        self.close_btn.click(self._close, inputs=[self.session, self.finished],
                             outputs=self._button_outputs(self.outputs))
        ctx.polls.append((self.refresh, self.poll_inputs, self.outputs))

    def status_markdown(self, status: JobStatus) -> str:
        i18n = self.i18n
        if status.state is JobState.RUNNING:
            if self.url and port_open(self.url):
                return f"**{i18n('Running')}** · {i18n('Open in your browser:')} [{self.url}]({self.url})"
            return f"**{i18n('Running')}** · {i18n('Starting; the link appears when the page is ready.')}"
        if status.state is JobState.STOPPED:
            return f"**{i18n('Closed')}**"
        return status_text(i18n, status)

    def refresh(self, session: PanelSession, finished: int, opened: int | None = None) -> dict:
        """The panel's view, or {} when it would show what it shows (``opened``: see :meth:`_track`)."""
        status = self.ctx.processes.status(self.name)
        session, finished = self._track(status, session, finished, opened)
        message = self._notice_markdown(session) + self.status_markdown(status)
        tail = self.ctx.processes.tail(self.name, self.log_lines)
        session = self._shown(session, finished, (message, tail, status.running))
        if session is None:
            return {}
        return {self.status: message, self.log: tail, self.open_btn: gr.update(visible=not status.running),
                self.close_btn: gr.update(visible=status.running), self.session: session, self.finished: finished}

    def _open(self, *values: Any) -> dict:
        *values, session, finished = values
        try:
            spec, url = self.make_spec(*values)
            session = PanelSession(watched=self._launch(spec), ticked=True)
            self.url = url
            self._remember_inputs(self.inputs, values)
        except INPUT_ERRORS as exc:
            return self.refresh(self._refuse(exc, session), finished)
        return self._woken(self.refresh(session, finished))

    def _close(self, session: PanelSession, finished: int) -> dict:
        self.ctx.processes.stop(self.name)
        return self._woken(self.refresh(replace(session, notice=""), finished))


def note(text: str) -> gr.Markdown:
    """A one-line note, e.g. for a feature that is not built yet."""
    return gr.Markdown(f"*{text}*")
