"""The launcher: ``python webui.py [--port 9874] [--host 127.0.0.1] [--lang zh_CN|en_US] [--share] [--open-browser]``.

The Windows package starts it with ``--open-browser`` from ``go-webui.bat``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path
from typing import Any

import gradio as gr

from app.context import WORKFLOW_FIELDS, AppContext
from app.i18n import available_languages
from app.polls import watch_jobs
from app.tabs import dataset, tts
from GPT_SoVITS import oscompat
from GPT_SoVITS.config import WebUISettings, load_config
from GPT_SoVITS.logs import setup_logging
from GPT_SoVITS.paths import REPO_ROOT
from tools.webui_launch import launch

log = logging.getLogger(__name__)

DEFAULT_CONFIG = REPO_ROOT / "configs" / "webui.yaml"


def _apply_js(names: list[str], elem_ids: list[str], defaults: list[Any] | None) -> str:
    """A browser-side function ``(proposals, *current) -> values`` for the views of workflow fields.

    A field keeps its value when the user is in it (it has the focus) and, with ``defaults``, when it no longer
    holds the value the page was built with (the user typed in it before the proposals arrived).
    """
    single = len(names) == 1
    return f"""(p, ...cur) => {{
        const names = {json.dumps(names)}, ids = {json.dumps(elem_ids)}, defaults = {json.dumps(defaults)};
        const active = document.activeElement;
        const out = cur.map((value, i) => {{
            if (!p || typeof p !== "object" || !(names[i] in p)) return value;
            const el = document.getElementById(ids[i]);
            if (el && active && el.contains(active)) return value;
            if (defaults !== null && value !== defaults[i]) return value;
            return p[names[i]];
        }});
        return {"out[0]" if single else "out"};
    }}"""


def _wire_workflow(ctx: AppContext, demo: gr.Blocks) -> None:
    """Connect the views of the workflow fields without ever overwriting what the user is typing.

    * Two views of one field (the .list path in 0d and 1A) follow each other in the browser, without a server
      round trip.
    * A page that opens shows the values the last jobs used or produced (fields the user already changed are
      kept).
    * When a job this page started finishes, the fields it offers values for (the slicer's output folder for the
      ASR input ...) are filled in, except the one the user is typing in.
    """
    for name in WORKFLOW_FIELDS:
        views = ctx.components.get(name, [])
        for view in views:
            siblings = [v for v in views if v is not view]
            if siblings:
                view.input(None, inputs=view, outputs=siblings,
                           js="(v) => v" if len(siblings) == 1 else f"(v) => Array({len(siblings)}).fill(v)")
    bound = [(name, view) for name in WORKFLOW_FIELDS for view in ctx.components.get(name, [])]
    if bound:
        names, views = [n for n, _ in bound], [v for _, v in bound]
        load_box = gr.JSON(visible="hidden")
        demo.load(ctx.workflow.snapshot, outputs=load_box, show_progress="hidden").then(
            None, inputs=[load_box, *views], outputs=views,
            js=_apply_js(names, [v.elem_id for v in views], [v.value for v in views]))
    for panel in ctx.panels:
        targets = [(name, view) for name in panel.flow_fields for view in ctx.components.get(name, [])]
        if not targets:
            continue
        box = gr.JSON(visible="hidden")
        panel.finished.change(panel.flows_of, inputs=panel.finished, outputs=box, show_progress="hidden").then(
            None, inputs=[box, *(v for _, v in targets)], outputs=[v for _, v in targets],
            js=_apply_js([n for n, _ in targets], [v.elem_id for _, v in targets], None))
    for fn, inputs, outputs in ctx.on_load:
        demo.load(fn, inputs=inputs, outputs=outputs, show_progress="hidden")


def build_app(ctx: AppContext) -> gr.Blocks:
    """Build the launcher UI (nothing is started or loaded here)."""
    i18n = ctx.i18n
    with gr.Blocks(title="GPT-SoVITS WebUI") as demo:
        gr.Markdown(i18n("This software is open source under the MIT licence. The authors have no control over "
                         "it; users and distributors of generated audio are fully responsible for their use."))
        ctx.page_opened = gr.State(0)  # the newest run id when the page opened (set by watch_jobs' load event)
        dataset.build_tab(ctx)
        tts.build_tab(ctx)
        _wire_workflow(ctx, demo)
        watch_jobs(ctx, demo)  # the status timers of the tabs tick only while a job of their tab runs
    return demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python webui.py", description="GPT-SoVITS studio launcher",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--port", type=int, default=None, help="port of the launcher (default from config: 9874)")
    parser.add_argument("--host", default=None,
                        help="address to bind (default 127.0.0.1; 0.0.0.0 exposes the UI to your network)")
    parser.add_argument("--lang", choices=available_languages(), default=None,
                        help="UI language (default: the system locale, else en_US)")
    parser.add_argument("--share", action="store_true", help="also create a public Gradio share link")
    parser.add_argument("--open-browser", action="store_true",
                        help="open the launcher in the default web browser once it is ready")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="launcher settings (YAML)")
    parser.add_argument("locale", nargs="?", choices=available_languages(),
                        help="upstream style: a bare UI language as the last argument, e.g. zh_CN")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides.setdefault("ports", {})["main"] = args.port
    if args.host is not None:
        overrides["host"] = args.host
    settings = load_config(WebUISettings, args.config, overrides)
    ctx = AppContext.create(settings, args.lang or args.locale)
    demo = build_app(ctx)

    def shutdown(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping jobs", signum)
        ctx.processes.stop_all()
        raise SystemExit(0)

    for sig in oscompat.SHUTDOWN_SIGNALS:
        signal.signal(sig, shutdown)
    log.info("launcher on http://%s:%d (language %s)", settings.host, settings.ports.main, ctx.i18n.language)
    try:
        launch(demo, server_name=settings.host, server_port=settings.ports.main, share=args.share,
               inbrowser=args.open_browser, allowed_paths=[str(ctx.path(settings.output_root))])
    finally:
        ctx.processes.stop_all()
    return 0
