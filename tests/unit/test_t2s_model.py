"""The GPT model at toy scale: generation semantics, KV cache vs full recompute, batching, training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from GPT_SoVITS.config import ConfigError
from GPT_SoVITS.models.sampling import (
    SamplingOptions,
    apply_repetition_penalty,
    choose_tokens,
    sample_step,
    top_k_filter,
    top_p_filter,
)
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder, left_align, make_rejected_codes
from tests.compat import json_file

TINY = T2SConfig(embedding_dim=16, hidden_dim=16, head=2, linear_units=32, n_layer=2, bert_dim=8)
EOS = TINY.eos


def tiny_model(seed: int = 0) -> Text2SemanticDecoder:
    torch.manual_seed(seed)
    return Text2SemanticDecoder(TINY).eval()


def sentence(seed: int, n_phones: int, n_prompt: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed)
    phones = torch.randint(0, TINY.phoneme_vocab_size, (n_phones,), generator=g)
    bert = torch.randn(TINY.bert_dim, n_phones, generator=g)
    prompt = None if n_prompt is None else torch.randint(0, 1024, (n_prompt,), generator=g)
    return phones, bert, prompt


class EosWhen(nn.Module):
    """Output layer that makes EOS the clear winner whenever the base layer's best code is a multiple of ``k``."""

    def __init__(self, base: nn.Linear, k: int) -> None:
        super().__init__()
        self.base, self.k = base, k

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        logits = self.base(h)
        best = logits[..., :EOS].argmax(dim=-1)
        bonus = torch.where(best % self.k == 0, 100.0, -100.0)
        return torch.cat([logits[..., :EOS], bonus.unsqueeze(-1)], dim=-1)


def recompute_greedy(model: Text2SemanticDecoder, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor,
                     steps: int, penalty: float) -> tuple[list[int], list[torch.Tensor]]:
    """Reference decoder without a cache: a full pass over the whole sequence for every token."""
    tokens: list[int] = []
    rows = []
    for step in range(steps):
        audio = torch.cat([prompt, torch.tensor(tokens, dtype=torch.long)])[None]
        with torch.no_grad():
            logits = model.teacher_forced_logits(phones[None], bert[None], audio)[0, -1]
        rows.append(logits)
        seen = torch.zeros(1, TINY.vocab_size, dtype=torch.bool)
        seen[0, audio[0]] = True
        scores = apply_repetition_penalty(logits[None], seen, penalty)[0].clone()
        if step < 11:
            scores[EOS] = float("-inf")
        tokens.append(int(scores.argmax()))
    return tokens, rows


@pytest.mark.parametrize("penalty", [1.35, 1.0])
def test_kv_cache_generation_equals_full_recompute(penalty: float) -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(1, 7, 5)
    opts = SamplingOptions(top_k=1, repetition_penalty=penalty, max_new_tokens=20, min_new_tokens=11)
    result = model.generate([phones], [bert], [prompt], opts, record_logits=True)
    expected, rows = recompute_greedy(model, phones, bert, prompt, 20, penalty)
    assert result.tokens[0].tolist() == expected
    torch.testing.assert_close(result.logits[0], torch.stack(rows), rtol=0, atol=1e-5)


def test_batched_generation_equals_single_runs_with_mixed_lengths_and_stops() -> None:
    model = tiny_model()
    model.ar_predict_layer = EosWhen(model.ar_predict_layer, k=17)
    batch = [sentence(2, 3, 4), sentence(3, 9, None), sentence(4, 6, 12), sentence(5, 1, 2)]
    opts = SamplingOptions(top_k=1, repetition_penalty=1.35, max_new_tokens=20)
    singles = [model.generate([p], [b], [q], opts) for p, b, q in batch]
    together = model.generate([p for p, _, _ in batch], [b for _, b, _ in batch], [q for _, _, q in batch], opts)
    assert together.stopped_on_eos == [s.stopped_on_eos[0] for s in singles]
    for single, tokens in zip(singles, together.tokens, strict=True):
        assert tokens.tolist() == single.tokens[0].tolist()
    # the case is only meaningful if sequences stop at different steps, some on EOS and some on the cap
    lengths = {len(t) for t in together.tokens}
    assert len(lengths) > 1 and any(together.stopped_on_eos) and not all(together.stopped_on_eos)


def test_eos_is_blocked_for_the_first_steps_then_ends_generation() -> None:
    model = tiny_model()
    model.ar_predict_layer = EosWhen(model.ar_predict_layer, k=1)  # EOS always wins when allowed
    phones, bert, prompt = sentence(6, 5, 3)
    result = model.generate([phones], [bert], [prompt], SamplingOptions(top_k=1))
    assert result.stopped_on_eos == [True]
    assert len(result.tokens[0]) == 11 and EOS not in result.tokens[0].tolist()
    result = model.generate([phones], [bert], [prompt], SamplingOptions(top_k=1, min_new_tokens=0))
    assert result.tokens[0].numel() == 0 and result.stopped_on_eos == [True]


def test_sampling_never_returns_eos_and_flags_early_stops() -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(7, 5, 3)
    g = torch.Generator().manual_seed(0)
    result = model.generate([phones], [bert], [prompt], SamplingOptions(top_k=1025, max_new_tokens=400,
                                                                        min_new_tokens=0), generator=g)
    # a random tiny model gives EOS ~1/1025 per step: a long cap without EOS would be surprising but possible,
    # so only check the invariant that holds either way
    assert EOS not in result.tokens[0].tolist()
    assert result.stopped_on_eos[0] == (len(result.tokens[0]) < 400)


def test_generation_ignores_training_mode() -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(12, 5, 4)
    opts = SamplingOptions(top_k=1, max_new_tokens=12)
    expected = model.generate([phones], [bert], [prompt], opts).tokens[0].tolist()
    model.train()
    assert model.generate([phones], [bert], [prompt], opts).tokens[0].tolist() == expected
    assert model.training  # the mode is restored afterwards


def test_int8_decoding_stays_close_to_float_and_can_be_switched_off() -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(13, 6, 5)
    opts = SamplingOptions(top_k=1, max_new_tokens=2)
    exact = model.generate([phones], [bert], [prompt], opts, record_logits=True).logits[0]
    model.enable_int8_decoding()
    approx = model.generate([phones], [bert], [prompt], opts, record_logits=True).logits[0]
    torch.testing.assert_close(approx[0], exact[0], rtol=0, atol=0)  # step 0 comes from the float prefill
    error = (approx[1] - exact[1]).abs().max()
    assert 0 < error < 0.05 * exact[1].std()  # the decode step really ran in int8, and stayed close
    model.enable_int8_decoding(False)
    again = model.generate([phones], [bert], [prompt], opts, record_logits=True).logits[0]
    torch.testing.assert_close(again, exact, rtol=0, atol=0)


def test_step_limits() -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(8, 4, 6)
    result = model.generate([phones], [bert], [prompt], SamplingOptions(top_k=1, early_stop_num=40))
    assert len(result.tokens[0]) == 41 and result.stopped_on_eos == [False]  # "more than 40" → 41
    result = model.generate([phones], [bert], [prompt], SamplingOptions(top_k=1, max_new_tokens=7))
    assert len(result.tokens[0]) == 7


def test_no_prompt_mode_predicts_first_token_from_last_phone() -> None:
    model = tiny_model()
    phones, bert, _ = sentence(9, 6, None)
    result = model.generate([phones], [bert], None, SamplingOptions(top_k=1, max_new_tokens=15),
                            record_logits=True)
    with torch.no_grad():
        full = model.teacher_forced_logits(phones[None], bert[None], result.tokens[0][None, :-1])[0]
    torch.testing.assert_close(result.logits[0], full, rtol=0, atol=1e-5)


def test_seeded_sampling_is_reproducible() -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(10, 6, 8)
    opts = SamplingOptions(top_k=50, top_p=0.9, temperature=1.3, max_new_tokens=30)

    def run(seed: int) -> list[int]:
        return model.generate([phones], [bert], [prompt], opts, generator=torch.Generator().manual_seed(seed)
                              ).tokens[0].tolist()

    assert run(123) == run(123)
    assert run(123) != run(124)


def test_sample_step_stops_when_eos_is_most_likely_even_if_another_token_is_drawn() -> None:
    logits = torch.zeros(1, TINY.vocab_size)
    logits[0, EOS] = 0.5  # most likely, but the draw over 1025 near-equal tokens almost never picks it
    seen = torch.zeros_like(logits, dtype=torch.bool)
    opts = SamplingOptions(top_k=TINY.vocab_size)
    tokens, is_eos = sample_step(logits, seen, 20, opts, EOS, torch.Generator().manual_seed(0))
    assert int(tokens[0]) != EOS and bool(is_eos[0])
    tokens, is_eos = sample_step(logits, seen, 3, opts, EOS, torch.Generator().manual_seed(0))
    assert int(tokens[0]) != EOS and not bool(is_eos[0])  # during the first 11 steps EOS is out of the race


def test_repetition_penalty_and_top_p() -> None:
    logits = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    seen = torch.tensor([[True, True, False, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 1.0, 0.5]]
    # probabilities ≈ .42, .42, .155, .001: cumulative .42, .85, .9993 → the token that crosses 0.9 goes too
    kept = top_p_filter(torch.tensor([[2.0, 2.0, 1.0, -5.0]]), 0.9)
    assert torch.isfinite(kept).tolist() == [[True, True, False, False]]
    kept = top_p_filter(torch.tensor([[3.0, 0.0, 0.0]]), 0.5)  # the most likely token always stays
    assert torch.isfinite(kept).tolist() == [[True, False, False]]


def test_training_step_gives_finite_loss_and_overfits_a_tiny_batch() -> None:
    torch.manual_seed(0)
    model = Text2SemanticDecoder(TINY).train()
    phones = torch.randint(0, 732, (2, 6))
    phone_lens = torch.tensor([6, 4])
    bert = torch.randn(2, TINY.bert_dim, 6)
    codes = torch.randint(0, 1024, (2, 9))
    code_lens = torch.tensor([9, 5])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        out = model(phones, phone_lens, bert, codes, code_lens)
        assert torch.isfinite(out.loss)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.2 * losses[0]
    assert out.n_targets == 14 and 0.0 <= out.top3_acc <= 1.0  # EOS targets are not counted
    model.eval()
    assert model(phones, phone_lens, bert, codes, code_lens).top3_acc == 1.0


def test_padded_training_logits_equal_each_item_alone() -> None:
    model = tiny_model()
    phones = torch.randint(0, 732, (2, 7))
    bert = torch.randn(2, TINY.bert_dim, 7)
    codes = torch.randint(0, 1024, (2, 5))
    phone_lens, code_lens = torch.tensor([7, 3]), torch.tensor([2, 5])
    with torch.no_grad():
        logits, targets = model.training_logits(phones, phone_lens, bert, codes, code_lens)
        for b in range(2):
            x, t = int(phone_lens[b]), int(code_lens[b])
            alone = model.teacher_forced_logits(phones[b:b + 1, :x], bert[b:b + 1, :, :x], codes[b:b + 1, :t])
            torch.testing.assert_close(logits[b, : t + 1], alone[0], rtol=0, atol=1e-5)
            assert targets[b, :t].tolist() == codes[b, :t].tolist()
            assert set(targets[b, t:].tolist()) == {EOS}


def test_dpo_loss_adds_a_positive_preference_term_and_backpropagates() -> None:
    torch.manual_seed(0)
    model = Text2SemanticDecoder(TINY).eval()  # eval: no dropout, so both passes see the same network
    phones, bert = torch.randint(0, 732, (2, 5)), torch.randn(2, TINY.bert_dim, 5)
    codes, code_lens, phone_lens = torch.randint(0, 1024, (2, 8)), torch.tensor([8, 6]), torch.tensor([5, 5])
    out = model.forward_dpo(phones, phone_lens, bert, codes, code_lens, generator=torch.Generator().manual_seed(1))
    plain = model(phones, phone_lens, bert, codes, code_lens)
    extra = (out.loss - plain.loss).item()
    assert 0.0 < extra < 10.0  # -log(sigmoid(0.2 * margin)): log 2 for an untrained model, give or take
    assert out.top3_acc == plain.top3_acc and out.n_targets == plain.n_targets
    out.loss.backward()
    assert model.ar_predict_layer.weight.grad is not None and torch.isfinite(model.ar_predict_layer.weight.grad).all()


def test_rejected_codes_repeat_or_drop_a_span() -> None:
    codes = torch.arange(10).repeat(3, 1)
    lens = torch.tensor([10, 7, 4])
    rejected, new_lens = make_rejected_codes(codes, lens, pad=EOS, generator=torch.Generator().manual_seed(3))
    for b in range(3):
        row, n, orig = rejected[b, : new_lens[b]].tolist(), int(lens[b]), list(range(int(lens[b])))
        assert set(row) <= set(orig) and set(rejected[b, new_lens[b]:].tolist()) <= {EOS}
        if len(row) >= n:  # repeated span: removing it once gives back the original
            assert any(row[:i] + row[i + (len(row) - n):] == orig for i in range(len(row)))
        else:  # dropped span: the rest keeps its order
            assert row == sorted(row)


def test_left_align() -> None:
    ids = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0]])
    assert left_align(ids, torch.tensor([3, 2])).tolist() == [[0, 1, 2, 3], [0, 0, 4, 5]]


def test_config_from_upstream_dict_and_back() -> None:
    upstream = {"model": json_file("example_gpt_tiny.config.json")["model"], "data": {"max_sec": 54},
                "inference": {"top_k": 5}}
    cfg = T2SConfig.from_upstream(upstream)
    assert (cfg.hidden_dim, cfg.head, cfg.n_layer, cfg.linear_units, cfg.eos, cfg.top_k) == (16, 2, 2, 64, 1024, 5)
    assert cfg.early_stop_num == 2700
    assert T2SConfig.from_upstream(cfg.to_upstream()) == cfg
    with pytest.raises(ConfigError, match="model"):
        T2SConfig.from_upstream({"data": {}})
    with pytest.raises(ConfigError, match="divisible"):
        T2SConfig(hidden_dim=30, embedding_dim=30, head=4)


def test_generate_rejects_mismatched_inputs() -> None:
    model = tiny_model()
    phones, bert, prompt = sentence(11, 4, 2)
    with pytest.raises(ValueError, match="bert"):
        model.generate([phones], [bert[:, :3]], [prompt])
    with pytest.raises(ValueError, match="at least one phone"):
        model.generate([phones[:0]], [bert[:, :0]], [prompt])


def test_forced_decode_logits_match_generation_and_follow_the_given_tokens() -> None:
    model = tiny_model(4)
    phones, bert, prompt = sentence(5, 9, 6)
    opts = SamplingOptions(top_k=1, max_new_tokens=12, min_new_tokens=12)
    result = model.generate([phones], [bert], [prompt], opts, record_logits=True)
    forced = model.forced_decode_logits(phones, bert, prompt, result.tokens[0])
    assert torch.equal(forced, result.logits[0])  # the same cached steps as generation
    other = torch.flip(result.tokens[0], [0])  # a different history changes every row after the first
    forced_other = model.forced_decode_logits(phones, bert, prompt, other)
    assert torch.equal(forced_other[0], forced[0])
    assert not torch.allclose(forced_other[1:], forced[1:])
    expected = model.teacher_forced_logits(phones[None], bert[None], torch.cat([prompt, other])[None])[0, -13:-1]
    torch.testing.assert_close(forced_other, expected, atol=1e-4, rtol=1e-4)  # full-pass teacher forcing agrees
    model.enable_int8_decoding()
    assert not torch.equal(model.forced_decode_logits(phones, bert, prompt, other), forced_other)  # int8 steps ran


def test_sampling_at_temperature_one_draws_what_the_division_would() -> None:
    # choose_tokens skips dividing by a temperature of 1; the tokens must be those of the divided logits
    logits = torch.randn(4, 1025, generator=torch.Generator().manual_seed(5)) * 3
    opts = SamplingOptions(top_k=15, temperature=1.0)
    got = choose_tokens(logits, opts, torch.Generator().manual_seed(9))
    probs = torch.softmax(top_k_filter(logits / 1.0, 15), dim=-1)
    race = torch.empty_like(probs).exponential_(1.0, generator=torch.Generator().manual_seed(9))
    assert torch.equal(got, (probs / race).argmax(dim=-1))
