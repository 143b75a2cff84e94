"""Training in PyTorch, as SPEC "Loss and training of the original" describes it.

- loss: cross-entropy of the logits against the next token, mean over positions whose
  target is not the pad id;
- Adam, betas 0.9 / 0.999, eps 1e-37 by default (hasktorch's; PyTorch's default is 1e-8);
- learning rate lr * (step + 1) / warmup while step < warmup, steps counted from 0 (the
  original counted from epoch * batches + iteration, both from 1, so with 200 or more
  batches per epoch its warm-up never took effect; here it does);
- the global L2 norm of all gradients clipped to clip_norm: every gradient scaled by
  clip_norm / (norm + 1e-6) when norm > clip_norm;
- init: embed and pos ~ N(0, 1) * 0.005, Linear and LayerNorm the PyTorch defaults.

The checkpoint is written atomically at the end of every epoch and every `save_every`
steps, with the optimiser's state beside it (`<name>.train-state.safetensors`) so that
--resume continues exactly where the last save left off. Ctrl-C stops between saves and
leaves the last good checkpoint as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from numpy_ref.checkpoint import save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.data import epoch_batches
from numpy_ref.errors import InputError
from numpy_ref.train import (  # shared with the NumPy trainer
    TrainSettings, curve_path, load_state_file, resume_checkpoint, run_loop, save_state_file, state_path,
)

from .model import Decoder


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Mean cross-entropy over the positions whose target is not the pad id."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=pad_id)


def clip_gradients(parameters, max_norm: float) -> float:
    """Scale every gradient by max_norm / (norm + 1e-6) when the global norm exceeds max_norm."""
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in grads:
            g.mul_(scale)
    return norm


def make_optimizer(model: Decoder, settings: TrainSettings) -> torch.optim.Adam:
    """Adam with SPEC's betas and eps (1e-37 by default), in the model's dtype."""
    return torch.optim.Adam(model.parameters(), lr=settings.lr, betas=settings.betas, eps=settings.adam_eps, foreach=False)


def train_step(model: Decoder, optimizer, inputs: np.ndarray, targets: np.ndarray, lr: float,
               clip_norm: float) -> tuple[float, float]:
    """One optimiser step on one batch: (the batch's loss before the step, the gradient norm
    before clipping). Works in the model's dtype (float32 or float64)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    logits = model(torch.from_numpy(inputs))
    loss = loss_fn(logits, torch.from_numpy(targets), model.config.pad_id)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = clip_gradients(list(model.parameters()), clip_norm)
    optimizer.step()
    return loss.item(), grad_norm


def evaluate(model: Decoder, ids: np.ndarray, settings: TrainSettings) -> tuple[float, float]:
    """(loss averaged over the evaluation batches, top-1 accuracy over non-pad targets)."""
    pad_id = model.config.pad_id
    losses, correct, counted = [], 0, 0
    model.eval()
    with torch.no_grad():
        for _, inputs, targets in epoch_batches(ids, settings.batch_size, settings.seq_len):
            inputs, targets = torch.from_numpy(inputs), torch.from_numpy(targets)
            logits = model(inputs)
            losses.append(loss_fn(logits, targets, pad_id).item())
            keep = targets != pad_id
            correct += int((logits.argmax(-1)[keep] == targets[keep]).sum())
            counted += int(keep.sum())
    model.train()
    return float(np.mean(losses)), correct / max(counted, 1)


def optimizer_state(optimizer, model: Decoder) -> dict:
    """Adam's moments under the names the NumPy trainer uses (exp_avg.<name>, exp_avg_sq.<name>)."""
    tensors = {}
    for name, p in model.named_parameters():
        state = optimizer.state.get(p)
        if state:
            tensors[f"exp_avg.{name}"] = state["exp_avg"].detach().numpy().copy()
            tensors[f"exp_avg_sq.{name}"] = state["exp_avg_sq"].detach().numpy().copy()
    return tensors


def load_optimizer_state(optimizer, model: Decoder, tensors: dict, step: int) -> None:
    for name, p in model.named_parameters():
        if f"exp_avg.{name}" in tensors:
            optimizer.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": torch.from_numpy(tensors[f"exp_avg.{name}"]),
                "exp_avg_sq": torch.from_numpy(tensors[f"exp_avg_sq.{name}"]),
            }


def train(config: ModelConfig, vocab: list[str], train_ids: np.ndarray, eval_ids: np.ndarray,
          settings: TrainSettings, output: Path, resume: bool = False, log=print) -> dict:
    """Train and write `output`; return a summary (steps, losses, accuracy, time)."""
    output = Path(output)
    if settings.seq_len > config.max_seq_len:
        raise InputError(f"--seq-len {settings.seq_len} is longer than the model's max_seq_len {config.max_seq_len}.")
    torch.manual_seed(settings.seed)
    model = Decoder(config)
    progress = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0}
    optimizer = make_optimizer(model, settings)
    if resume:
        checkpoint = resume_checkpoint(output, config, vocab)
        model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in checkpoint.params.items()})
        if state_path(output).exists():
            tensors, progress = load_state_file(state_path(output))
            load_optimizer_state(optimizer, model, tensors, int(progress["step"]))
            log(f"resuming at epoch {progress['epoch'] + 1}, batch {progress['batch']}, step {progress['step']}")
        else:
            log(f"resuming from the weights of {output}; no training state beside it, so Adam's moments start at zero")

    def save(progress):
        save_checkpoint(output, model.numpy_params(), config, vocab)
        save_state_file(state_path(output), optimizer_state(optimizer, model), progress)

    model.train()
    return run_loop(lambda inputs, targets, lr: train_step(model, optimizer, inputs, targets, lr, settings.clip_norm),
                    lambda: evaluate(model, eval_ids, settings), save,
                    train_ids, eval_ids, settings, output, progress, resume, log)
