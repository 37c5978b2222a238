"""ScaledAdam, the optimizer upstream trains its GPT with (from icefall/k2; our own implementation).

Idea: Adam's normalised step is multiplied by each tensor's RMS, so every weight matrix changes by a similar
*relative* amount whatever its scale; each tensor's overall scale is learned separately (slowly, every
``size_update_period`` steps); gradients are clipped against ``clipping_scale × median`` of recent gradient
norms. Scalars (e.g. the position-encoding gains) get plain Adam at ``lr × scalar_lr_scale``.

Why not AdamW: the pretrained GPT was trained with this optimizer at a constant LR of 0.002, which is a
*relative* step size; AdamW at 0.002 would move the pretrained weights ~20-40× further per step and wreck them.
Keeping the optimizer keeps upstream's fine-tuning behaviour and its defaults meaningful.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


class ScaledAdam(torch.optim.Optimizer):
    def __init__(self, params: Iterable[Tensor] | Iterable[dict], lr: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.98), clipping_scale: float | None = 2.0,
                 clipping_update_period: int = 100, scalar_lr_scale: float = 0.1, eps: float = 1e-8,
                 param_min_rms: float = 1e-5, param_max_rms: float = 3.0, scalar_max: float = 10.0,
                 size_update_period: int = 4) -> None:
        defaults = dict(lr=lr, betas=betas, clipping_scale=clipping_scale,
                        clipping_update_period=clipping_update_period, scalar_lr_scale=scalar_lr_scale,
                        eps=eps, param_min_rms=param_min_rms,
                        param_max_rms=param_max_rms, scalar_max=scalar_max, size_update_period=size_update_period)
        super().__init__(params, defaults)

    def _params_with_grad(self) -> list[tuple[dict, Tensor]]:
        return [(group, p) for group in self.param_groups for p in group["params"] if p.grad is not None]

    def _clip_factor(self, items: list[tuple[dict, Tensor]]) -> float:
        """Scale applied to every gradient: ≤ 1, from the RMS-weighted global norm vs recent history."""
        group = self.param_groups[0]
        scale = group["clipping_scale"]
        if scale is None or not items:
            return 1.0
        total = torch.zeros((), device=items[0][1].device)
        for _, p in items:
            state = self.state[p]
            rms_sq = state["param_rms"] ** 2 if "param_rms" in state else 1.0
            total = total + (p.grad.float() ** 2).sum() * rms_sq
        norm = float(total.sqrt())
        head = self.state[items[0][1]]
        period = group["clipping_update_period"]
        if "model_norms" not in head:
            head["model_norms"] = torch.zeros(period)
            head["clip_step"] = 0
            head["norm_threshold"] = float("inf")
        step = head["clip_step"]
        head["model_norms"][step % period] = norm
        head["clip_step"] = step + 1
        filled = head["model_norms"][: min(step + 1, period)]
        if step < period or step % period == 0:  # warm start: follow the median closely during the first period
            head["norm_threshold"] = scale * float(filled.median())
        if step == 0 or norm <= head["norm_threshold"] or norm == 0.0:
            return 1.0
        return head["norm_threshold"] / norm

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch's signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        items = self._params_with_grad()
        factor = self._clip_factor(items)
        for group, p in items:
            grad = p.grad.float() * factor
            if grad.is_sparse:
                raise RuntimeError("ScaledAdam does not support sparse gradients")
            if p.numel() == 1:
                self._scalar_step(group, p, grad)
            else:
                self._tensor_step(group, p, grad)
        return loss

    def _scalar_step(self, group: dict, p: Tensor, grad: Tensor) -> None:
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
        state["step"] += 1
        t = state["step"]
        state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (state["exp_avg_sq"] / (1 - beta2**t)).sqrt() + group["eps"]
        update = -group["lr"] * group["scalar_lr_scale"] * (state["exp_avg"] / (1 - beta1**t)) / denom
        p.add_(update.to(p.dtype)).clamp_(-group["scalar_max"], group["scalar_max"])

    def _tensor_step(self, group: dict, p: Tensor, grad: Tensor) -> None:
        beta1, beta2 = group["betas"]
        period = group["size_update_period"]
        state = self.state[p]
        if "step" not in state:
            state["step"] = 0
            state["delta"] = torch.zeros_like(p, dtype=torch.float32)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
            state["param_rms"] = p.float().pow(2).mean().sqrt().clamp(min=group["param_min_rms"])
            state["scale_grads"] = torch.zeros(period, device=p.device)
            state["scale_exp_avg_sq"] = torch.zeros((), device=p.device)
        step = state["step"]
        delta = state["delta"]
        # learn the tensor's overall scale from d(loss)/d(log scale) = sum(p * grad), every `period` steps
        state["scale_grads"][step % period] = (p.float() * grad).sum()
        if step % period == period - 1:
            self._scale_step(group, p, state, step // period + 1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (state["exp_avg_sq"] / (1 - beta2 ** (step + 1))).sqrt() + group["eps"]
        delta.add_(grad / denom, alpha=-group["lr"] * (1 - beta1) * float(state["param_rms"]))
        p.add_(delta.to(p.dtype))
        delta.mul_(beta1)
        state["step"] = step + 1

    def _scale_step(self, group: dict, p: Tensor, state: dict, n_updates: int) -> None:
        beta1, beta2 = group["betas"]
        grads = state["scale_grads"]
        rms = p.float().pow(2).mean().sqrt()
        state["param_rms"] = rms.clamp(min=group["param_min_rms"])
        beta2_period = beta2 ** grads.numel()
        state["scale_exp_avg_sq"].mul_(beta2_period).add_((grads**2).sum(), alpha=1 - beta2_period)
        denom = (state["scale_exp_avg_sq"] / (1 - beta2_period**n_updates)).sqrt() + group["eps"]
        scale_step = -group["lr"] * group["scalar_lr_scale"] * grads.sum() / denom
        if rms < group["param_min_rms"]:
            scale_step = scale_step.clamp(min=0.0)
        elif rms > group["param_max_rms"]:
            scale_step = scale_step.clamp(max=0.0)
        state["delta"].add_(p.float() * scale_step, alpha=1 - beta1)
