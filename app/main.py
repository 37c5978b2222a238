"""The launcher: ``python webui.py [--port 9874] [--host 127.0.0.1] [--lang zh_CN|en_US] [--share] [--open-browser]``.

The Windows package starts it with ``--open-browser`` from ``go-webui.bat``.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

import gradio as gr

from app.context import WORKFLOW_FIELDS, AppContext
from app.i18n import available_languages
from app.tabs import dataset, tts
from GPT_SoVITS import oscompat
from GPT_SoVITS.config import WebUISettings, load_config
from GPT_SoVITS.logs import setup_logging
from GPT_SoVITS.paths import REPO_ROOT

log = logging.getLogger(__name__)

DEFAULT_CONFIG = REPO_ROOT / "configs" / "webui.yaml"


def _wire_workflow(ctx: AppContext, demo: gr.Blocks) -> None:
    """Keep every view of a shared field in sync with the server-side workflow values.

    A user edit updates the server value and the field's other views at once; a job that pushes values
    (e.g. the slicer's output folder becoming the ASR input) bumps the workflow version, and each page picks
    the new values up on its next timer tick. A reloaded page starts from the server values.
    """
    bound = [(name, comp) for name in WORKFLOW_FIELDS for comp in ctx.components.get(name, [])]
    if not bound:
        return
    all_components = [comp for _, comp in bound]
    seen_version = gr.State(-1)

    def load_all() -> tuple[Any, ...]:
        values = ctx.workflow.snapshot()
        return (ctx.workflow.version, *(values[name] for name, _ in bound))

    def poll(version: int) -> tuple[Any, ...]:
        if version == ctx.workflow.version:
            return (version, *(gr.update() for _ in bound))
        return load_all()

    demo.load(load_all, outputs=[seen_version, *all_components])
    gr.Timer(1.0).tick(poll, inputs=seen_version, outputs=[seen_version, *all_components])

    for name in WORKFLOW_FIELDS:
        views = ctx.components.get(name, [])
        for view in views:
            siblings = [v for v in views if v is not view]

            def on_input(value: str, _name: str = name, _n: int = len(siblings)) -> Any:
                ctx.workflow.set(_name, value)
                if _n == 0:
                    return None
                return value if _n == 1 else [value] * _n

            view.input(on_input, inputs=view, outputs=siblings or None)


def build_app(ctx: AppContext) -> gr.Blocks:
    """Build the launcher UI (nothing is started or loaded here)."""
    i18n = ctx.i18n
    with gr.Blocks(title="GPT-SoVITS WebUI") as demo:
        gr.Markdown(i18n("This software is open source under the MIT licence. The authors have no control over "
                         "it; users and distributors of generated audio are fully responsible for their use."))
        dataset.build_tab(ctx)
        tts.build_tab(ctx)
        _wire_workflow(ctx, demo)
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
        demo.queue().launch(server_name=settings.host, server_port=settings.ports.main, share=args.share,
                            inbrowser=args.open_browser, allowed_paths=[str(ctx.path(settings.output_root))])
    finally:
        ctx.processes.stop_all()
    return 0
