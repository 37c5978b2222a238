"""The decode-thread limit: applied during GPT decode steps only, restored afterwards, outputs unchanged."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import torch

from GPT_SoVITS.models.cpu_threads import intra_op_threads
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder

# wide enough that torch splits its products over threads, small enough for a quick test
MEDIUM = T2SConfig(embedding_dim=256, hidden_dim=256, head=4, linear_units=1024, n_layer=3, bert_dim=64)


@pytest.fixture
def two_threads() -> Iterator[None]:
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def test_limit_applies_inside_and_restores_after_even_on_error(two_threads) -> None:
    with intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"), intra_op_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2
    with intra_op_threads(None):
        assert torch.get_num_threads() == 2
    with intra_op_threads(8):  # never raises the count above the process's own
        assert torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="at least 1"), intra_op_threads(0):
        pass


def test_overlapping_users_restore_only_when_the_last_leaves(two_threads) -> None:
    first_in, first_may_leave = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def first() -> None:
        with intra_op_threads(1):
            first_in.set()
            first_may_leave.wait(5)

    worker = threading.Thread(target=first)
    worker.start()
    first_in.wait(5)
    with intra_op_threads(1):
        first_may_leave.set()
        worker.join(5)
        seen["inside second"] = torch.get_num_threads()
    assert seen["inside second"] == 1  # the first user leaving did not restore while the second still holds
    assert torch.get_num_threads() == 2  # restored once both left


def spy_on_steps(model: Text2SemanticDecoder) -> list[int]:
    """Record the thread count each time the decode loop runs a decode step (then run the real step)."""
    counts: list[int] = []
    real_step = model._step

    def step(*args, **kwargs):
        counts.append(torch.get_num_threads())
        return real_step(*args, **kwargs)

    model._step = step
    return counts


def medium_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return (torch.randint(0, MEDIUM.phoneme_vocab_size, (30,), generator=g), torch.randn(64, 30, generator=g),
            torch.randint(0, 1024, (40,), generator=g))


def test_decode_threads_limit_decode_steps_and_leave_outputs_exact(two_threads) -> None:
    torch.manual_seed(0)
    model = Text2SemanticDecoder(MEDIUM).eval()
    counts = spy_on_steps(model)
    phones, bert, prompt = medium_inputs()
    opts = SamplingOptions(top_k=5, max_new_tokens=30, min_new_tokens=30)

    free = model.generate([phones], [bert], [prompt], opts, torch.Generator().manual_seed(7), record_logits=True)
    assert set(counts) == {2}
    counts.clear()
    model.decode_threads = 1
    limited = model.generate([phones], [bert], [prompt], opts, torch.Generator().manual_seed(7), record_logits=True)
    assert set(counts) == {1} and len(counts) == 29  # every step after the first token
    assert torch.get_num_threads() == 2  # restored after generate
    assert torch.equal(free.tokens[0], limited.tokens[0])
    assert torch.equal(free.logits[0], limited.logits[0])  # bit for bit: thread count changes speed only


def test_streaming_consumer_keeps_its_threads_between_chunks(two_threads) -> None:
    torch.manual_seed(0)
    model = Text2SemanticDecoder(MEDIUM).eval()
    model.decode_threads = 1
    phones, bert, prompt = medium_inputs()
    opts = SamplingOptions(top_k=1, max_new_tokens=20, min_new_tokens=20)
    between = [torch.get_num_threads() for _ in model.generate_chunks(phones, bert, prompt, opts, chunk=4)]
    assert between == [2] * 5  # the caller's own work (SoVITS decoding of each chunk) is not limited
    streamed = torch.cat(list(model.generate_chunks(phones, bert, prompt, opts, chunk=4)))
    model.decode_threads = None
    assert torch.equal(streamed, model.generate([phones], [bert], [prompt], opts).tokens[0])
