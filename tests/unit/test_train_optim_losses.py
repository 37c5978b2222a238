"""ScaledAdam's defining behaviour and the GAN/KL losses' properties."""

from __future__ import annotations

import pytest
import torch

from GPT_SoVITS.train.losses import discriminator_loss, feature_matching_loss, generator_adversarial_loss, kl_loss
from GPT_SoVITS.train.optim import ScaledAdam


def test_first_step_moves_each_tensor_relative_to_its_scale() -> None:
    big = torch.nn.Parameter(torch.randn(64, 64))
    small = torch.nn.Parameter(0.01 * torch.randn(64, 64))
    before = (big.detach().clone(), small.detach().clone())
    opt = ScaledAdam([big, small], lr=0.01, betas=(0.9, 0.95), clipping_scale=None)
    (big.sum() * 3.0 + small.sum() * 1e-3).backward()  # very different gradient sizes
    opt.step()
    for p, old in zip((big, small), before, strict=True):
        rms = old.pow(2).mean().sqrt()
        change = (p.detach() - old).abs()
        torch.testing.assert_close(change, torch.full_like(change, 0.01 * 0.1 * float(rms)), rtol=1e-3, atol=1e-9)


def test_scalars_get_plain_adam_at_a_tenth_of_the_lr() -> None:
    alpha = torch.nn.Parameter(torch.ones(1))
    opt = ScaledAdam([alpha], lr=0.02, clipping_scale=None)
    (alpha * 5).sum().backward()
    opt.step()
    assert float(alpha.detach()) == pytest.approx(1 - 0.02 * 0.1, abs=1e-6)


def test_gradient_spikes_are_clipped_against_the_median() -> None:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(16, 16))
    opt = ScaledAdam([w], lr=0.01, clipping_scale=2.0, clipping_update_period=10)
    for _ in range(6):
        opt.zero_grad()
        (w * torch.randn(16, 16)).sum().backward()
        opt.step()
    opt.zero_grad()
    (w * 1000 * torch.randn(16, 16)).sum().backward()
    norm = float(w.grad.norm() * opt.state[w]["param_rms"])
    factor = opt._clip_factor([(opt.param_groups[0], w)])
    assert factor < 0.01 and factor * norm == pytest.approx(opt.state[w]["norm_threshold"], rel=1e-5)


def test_state_dict_round_trip_continues_identically() -> None:
    def run(split: bool) -> torch.Tensor:
        torch.manual_seed(1)
        model = torch.nn.Linear(8, 4)
        data = [torch.randn(5, 8) for _ in range(12)]
        opt = ScaledAdam(model.parameters(), lr=0.01, clipping_update_period=4)
        for i, x in enumerate(data):
            if split and i == 6:
                state = opt.state_dict()
                opt = ScaledAdam(model.parameters(), lr=0.01, clipping_update_period=4)
                opt.load_state_dict(state)
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        return model.weight.detach()

    torch.testing.assert_close(run(True), run(False))


def test_lsgan_losses_are_zero_at_their_targets() -> None:
    ones, zeros = [torch.ones(2, 5), torch.ones(2, 3)], [torch.zeros(2, 5), torch.zeros(2, 3)]
    assert float(discriminator_loss(ones, zeros)) == 0.0
    assert float(discriminator_loss(zeros, ones)) == pytest.approx(4.0)  # 2 discriminators × (1 + 1)
    assert float(generator_adversarial_loss(ones)) == 0.0
    fmap = [[torch.randn(2, 4, 8), torch.randn(2, 1, 8)]]
    assert float(feature_matching_loss(fmap, fmap)) == 0.0
    shifted = [[f + 0.5 for f in fmap[0]]]
    assert float(feature_matching_loss(fmap, shifted)) == pytest.approx(2 * 2 * 0.5)


def test_kl_estimate_is_zero_for_matching_gaussians_and_respects_the_mask() -> None:
    torch.manual_seed(0)
    m_p, logs_p = torch.randn(4, 8, 2000), 0.3 * torch.randn(4, 8, 2000)
    z_p = m_p + torch.randn_like(m_p) * torch.exp(logs_p)
    mask = torch.ones(4, 1, 2000)
    assert float(kl_loss(z_p, logs_p, m_p, logs_p, mask)) == pytest.approx(0.0, abs=0.02)
    wider = float(kl_loss(z_p, logs_p - 1.0, m_p, logs_p, mask))
    assert wider > 0.5  # a narrower posterior than the sample spread costs
    mask[:, :, 1000:] = 0
    garbage = z_p.clone()
    garbage[:, :, 1000:] = 1e6
    assert float(kl_loss(garbage, logs_p, m_p, logs_p, mask)) == pytest.approx(0.0, abs=0.03)
