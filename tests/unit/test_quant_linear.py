"""Quantised decode projections (GPT_SoVITS/models/quant_linear.py) and the GPT's quantised decoding modes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from GPT_SoVITS.models import t2s as t2s_module
from GPT_SoVITS.models.quant_linear import (
    QUANT_KINDS,
    DynamicInt8Linear,
    Int4Linear,
    Int8Linear,
    quantised_kernel_problem,
)
from GPT_SoVITS.models.sampling import SamplingOptions
from GPT_SoVITS.models.t2s import T2SConfig, Text2SemanticDecoder

# wide enough for torch's int4 kernel (groups of 32 inputs)
SMALL = T2SConfig(embedding_dim=64, hidden_dim=64, head=4, linear_units=128, n_layer=2, bert_dim=8)


def small_model() -> Text2SemanticDecoder:
    torch.manual_seed(0)
    return Text2SemanticDecoder(SMALL).eval()


def sentence() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return (torch.randint(0, SMALL.phoneme_vocab_size, (9,), generator=g), torch.randn(SMALL.bert_dim, 9, generator=g),
            torch.randint(0, 1024, (6,), generator=g))


def weights(n: int = 96, k: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, k, generator=g) * 0.05, torch.randn(n, generator=g) * 0.1, torch.randn(3, k, generator=g)


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).pow(2).mean().sqrt() / exact.pow(2).mean().sqrt())


def test_this_torch_has_every_kernel() -> None:
    # torch is pinned (requirements.txt); a build without these kernels would make --int8 an error
    assert [quantised_kernel_problem(kind) for kind in QUANT_KINDS] == [None] * len(QUANT_KINDS)


def test_int8_weight_only_product_is_the_bf16_activation_times_the_dequantised_weight() -> None:
    w, b, x = weights()
    lin = Int8Linear(w, b)
    assert lin.weight.dtype == torch.int8 and lin.scales.shape == (96,)  # one scale per output row
    assert int(lin.weight.abs().amax(dim=1).min()) >= 126  # each row uses the full int8 range
    out = lin(x)
    assert out.dtype == torch.float32
    # what the kernel computes: the bf16-rounded activation times the int8 weight and its scale, plus the bias;
    # its product is returned in bfloat16, so allow bf16 rounding of the product (~2^-8 relative)
    expected = F.linear(x.bfloat16().float(), lin.dequantised(), b)
    torch.testing.assert_close(out, expected, rtol=0, atol=float((expected - b).abs().max()) * 2 ** -7)
    # and against the float product: the weights' rounding costs about 1 % of the output here
    assert relative_error(out, F.linear(x, w, b)) < 0.015
    hidden = lin.hidden(x)
    assert hidden.dtype == torch.bfloat16
    torch.testing.assert_close(hidden.float(), out.relu(), rtol=0.02, atol=0.01)


def test_int4_is_faithful_to_its_groups_and_coarser_than_int8() -> None:
    w, b, x = weights()
    exact = F.linear(x, w, b)
    err4 = relative_error(Int4Linear(w, b, group=32)(x), exact)
    err8 = relative_error(Int8Linear(w, b)(x), exact)
    assert err8 < err4 < 0.12  # 16 levels per group of 32 weights (measured 0.08; int8 0.008)
    with pytest.raises(ValueError, match="int4 groups"):
        Int4Linear(w, b, group=48)


def test_weight_only_int8_is_closer_to_float_than_the_dynamic_mode() -> None:
    w, b, x = weights()
    exact = F.linear(x, w, b)
    # the dynamic mode also rounds each activation row to 7 bits, which the weight-only mode does not
    assert relative_error(Int8Linear(w, b)(x), exact) < relative_error(DynamicInt8Linear(w, b)(x), exact)


@pytest.mark.parametrize(("kind", "tolerance"), [("int8-weight", 0.01), ("int8-dynamic", 0.02), ("int4-weight", 0.1)])
def test_quantised_decoding_stays_close_to_float(kind: str, tolerance: float) -> None:
    model = small_model()
    phones, bert, prompt = sentence()
    opts = SamplingOptions(top_k=1, max_new_tokens=6, min_new_tokens=6)
    tokens = model.generate([phones], [bert], [prompt], opts).tokens[0]
    exact = model.forced_decode_logits(phones, bert, prompt, tokens)
    model.enable_quantised_decoding(kind)
    assert model.quantised_decoding == kind
    approx = model.forced_decode_logits(phones, bert, prompt, tokens)
    assert torch.equal(approx[0], exact[0])  # the first logits come from the float prefill
    # the decode steps ran quantised, and every step's logits stay within the stated share of their spread
    error = (approx[1:] - exact[1:]).pow(2).mean(-1).sqrt() / exact[1:].std(-1)
    assert float(error.min()) > 0 and float(error.max()) < tolerance
    model.enable_quantised_decoding(None)
    assert model.quantised_decoding is None
    assert torch.equal(model.forced_decode_logits(phones, bert, prompt, tokens), exact)


def test_int8_decoding_is_the_dynamic_mode() -> None:
    model = small_model()
    model.enable_int8_decoding()
    assert model.quantised_decoding == "int8-dynamic"  # the faster int8 kernel on the measured CPU
    model.enable_int8_decoding(False)
    assert model.quantised_decoding is None


def test_a_missing_kernel_is_an_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    model = small_model()
    monkeypatch.setattr(t2s_module, "quantised_kernel_problem",
                        lambda kind: "NotImplementedError: no CPU kernel for '_weight_int8pack_mm'")
    with pytest.raises(RuntimeError, match=r"not available with this torch build.*without --int8"):
        model.enable_int8_decoding()
    with pytest.raises(RuntimeError, match=r"int8-weight decoding is not available"):
        model.enable_quantised_decoding("int8-weight")
    assert model.quantised_decoding is None  # nothing half-switched: decoding stays float


def test_bad_requests_are_clear_errors() -> None:
    model = small_model()
    with pytest.raises(ValueError, match="unknown quantised decoding 'int3'"):
        model.enable_quantised_decoding("int3")
    with pytest.raises(RuntimeError, match="CPU only"):
        small_model().to("meta").enable_int8_decoding()

