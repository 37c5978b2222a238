"""tools.webui_launch: a page server whose start-up check timed out (a busy machine) is started again; its queue
polls calmly when idle."""

from __future__ import annotations

import socket
import urllib.request

import gradio as gr
import pytest

from tests.servers import free_port
from tools.webui_launch import QUEUE_IDLE_SLEEP, launch


def _slow_first_answers(monkeypatch: pytest.MonkeyPatch, slow: int) -> list[str]:
    """Gradio's own check of its page, made to time out ``slow`` times, as on a machine whose cores are busy."""
    import gradio.networking

    calls: list[str] = []
    real = gradio.networking.url_ok

    def check(url: str) -> bool:
        calls.append(url)
        return False if len(calls) <= slow else real(url)

    monkeypatch.setattr(gradio.networking, "url_ok", check)
    return calls


def _page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
        return response.read().decode("utf-8", "replace")


def test_a_timed_out_start_up_check_starts_the_server_again(monkeypatch):
    calls = _slow_first_answers(monkeypatch, slow=1)
    port = free_port()
    with gr.Blocks(title="retry-check") as demo:
        gr.Markdown("hello")
    launch(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        assert len(calls) == 2  # the first check failed, the second server answered
        assert "retry-check" in _page(port)
    finally:
        demo.close()
    with socket.socket() as sock:  # the port is free again: no server of the failed attempt was left listening
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (closed connections may linger in TIME_WAIT)
        sock.bind(("127.0.0.1", port))


def test_it_gives_up_after_the_attempts_with_gradios_message(monkeypatch):
    calls = _slow_first_answers(monkeypatch, slow=10)
    with gr.Blocks() as demo:
        gr.Markdown("hello")
    with pytest.raises(ValueError, match="localhost is not accessible"):
        launch(demo, attempts=2, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True)
    assert len(calls) == 2


def test_the_page_server_queue_polls_calmly():
    with gr.Blocks() as demo:
        gr.Markdown("hello")
    launch(demo, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        queue = demo._queue
        assert (queue.sleep_when_free, queue.progress_update_sleep_when_free) == QUEUE_IDLE_SLEEP
    finally:
        demo.close()
