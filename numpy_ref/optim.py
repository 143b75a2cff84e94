"""The optimiser of SPEC "Loss and training of the original", in NumPy: the warm-up
schedule, global-norm clipping and Adam. Gradients and parameters are dicts of
canonical name -> array (numpy_ref.backward.loss_and_gradients gives the gradients).
"""

from __future__ import annotations

import math

import numpy as np

CLIP_EPS = 1e-6  # clipping scales by max_norm / (norm + 1e-6)


def learning_rate(step: int, lr: float = 3e-4, warmup_steps: int = 200) -> float:
    """SPEC's linear warm-up: lr * (step + 1) / warmup_steps while step < warmup_steps, steps
    counted from 0 (the original counted from epoch * batches + iteration, both from 1, so with
    200 or more batches per epoch its warm-up never took effect; here it does)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr


def global_norm(grads: dict) -> float:
    """The L2 norm of all gradients together, as one long vector (summed in float64)."""
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


def clip_gradients(grads: dict, max_norm: float) -> tuple[dict, float]:
    """(grads, norm): every gradient scaled by max_norm / (norm + 1e-6) when the global norm
    exceeds max_norm, else the gradients unchanged; `norm` is the norm before clipping."""
    norm = global_norm(grads)
    if norm <= max_norm:
        return grads, norm
    scale = max_norm / (norm + CLIP_EPS)  # a Python float: the gradients keep their dtype
    return {name: g * scale for name, g in grads.items()}, norm


class Adam:
    """Adam as SPEC (hasktorch) has it: moments from zero, bias correction with the step
    count t from 1, and the update p - lr * m_hat / (sqrt(v_hat) + eps), eps = 1e-37 by
    default (the original's; PyTorch's default is 1e-8). The moments have the parameters'
    dtype. The state is `m`, `v` (name -> array) and `t` (steps taken)."""

    def __init__(self, params: dict, betas: tuple = (0.9, 0.999), eps: float = 1e-37):
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = {name: np.zeros_like(p) for name, p in params.items()}  # first moment
        self.v = {name: np.zeros_like(p) for name, p in params.items()}  # second moment

    def step(self, params: dict, grads: dict, lr: float) -> None:
        """One update of every parameter that has a gradient (params[name] is replaced)."""
        self.t += 1
        correction1 = 1 - self.beta1 ** self.t  # bias corrections: the moments started at 0
        correction2 = 1 - self.beta2 ** self.t
        for name, g in grads.items():
            self.m[name] = self.beta1 * self.m[name] + (1 - self.beta1) * g
            self.v[name] = self.beta2 * self.v[name] + (1 - self.beta2) * (g * g)
            m_hat = self.m[name] / correction1
            v_hat = self.v[name] / correction2
            params[name] = params[name] - lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def state_arrays(self) -> dict:
        """The moments under the names torch_model.train's state file uses too
        (exp_avg.<name>, exp_avg_sq.<name>)."""
        arrays = {f"exp_avg.{name}": m for name, m in self.m.items()}
        arrays.update({f"exp_avg_sq.{name}": v for name, v in self.v.items()})
        return arrays

    def load_state_arrays(self, arrays: dict, t: int) -> None:
        """Restore the moments saved by state_arrays (missing names keep zero moments)."""
        for name in self.m:
            if f"exp_avg.{name}" in arrays:
                self.m[name] = np.asarray(arrays[f"exp_avg.{name}"], dtype=self.m[name].dtype)
                self.v[name] = np.asarray(arrays[f"exp_avg_sq.{name}"], dtype=self.v[name].dtype)
        self.t = t
