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

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import safetensors.numpy
import torch
import torch.nn.functional as F

from numpy_ref.atomic import atomic_path
from numpy_ref.checkpoint import load_checkpoint, save_checkpoint
from numpy_ref.config import ModelConfig
from numpy_ref.data import batches_per_epoch, epoch_batches
from numpy_ref.errors import CheckpointError, InputError
from numpy_ref.schema import parameter_shapes
from numpy_ref.train import CurveWriter, TrainSettings, curve_path, state_path  # shared with the NumPy trainer

from .model import Decoder


def learning_rate(step: int, settings: TrainSettings) -> float:
    """SPEC's linear warm-up, with steps counted from 0."""
    if step < settings.warmup_steps:
        return settings.lr * (step + 1) / settings.warmup_steps
    return settings.lr


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


def _atomic_save_state(path: Path, optimizer, model: Decoder, progress: dict) -> None:
    tensors, names = {}, {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = optimizer.state.get(p)
            if state:
                tensors[f"exp_avg.{names[id(p)]}"] = state["exp_avg"].detach().numpy().copy()
                tensors[f"exp_avg_sq.{names[id(p)]}"] = state["exp_avg_sq"].detach().numpy().copy()
    with atomic_path(path) as temporary:
        safetensors.numpy.save_file(tensors, temporary, metadata={"progress": json.dumps(progress)})


def _load_state(path: Path, optimizer, model: Decoder) -> dict:
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            progress = json.loads(handle.metadata()["progress"])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # a damaged state file is a user-facing problem, said plainly
        raise CheckpointError(f"{path}: cannot read the training state ({error}); delete it to resume with fresh optimiser moments.") from None
    for name, p in model.named_parameters():
        if f"exp_avg.{name}" in tensors:
            optimizer.state[p] = {
                "step": torch.tensor(float(progress["step"])),
                "exp_avg": torch.from_numpy(tensors[f"exp_avg.{name}"]),
                "exp_avg_sq": torch.from_numpy(tensors[f"exp_avg_sq.{name}"]),
            }
    return progress


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
        checkpoint = load_checkpoint(output)
        if checkpoint.config != config or checkpoint.vocab != vocab:
            raise CheckpointError(f"{output}: its config or vocabulary differs from this run's; resume with the same files and sizes.")
        model.load_state_dict({k: torch.from_numpy(v.astype(np.float32)) for k, v in checkpoint.params.items()})
        if state_path(output).exists():
            progress = _load_state(state_path(output), optimizer, model)
            log(f"resuming at epoch {progress['epoch'] + 1}, batch {progress['batch']}, step {progress['step']}")
        else:
            log(f"resuming from the weights of {output}; no training state beside it, so Adam's moments start at zero")

    per_epoch = batches_per_epoch(len(train_ids), settings.batch_size, settings.seq_len)
    total_steps = settings.epochs * per_epoch
    if settings.max_steps is not None:
        total_steps = min(total_steps, settings.max_steps)
    curve = CurveWriter(curve_path(output), append=resume)
    tokens_per_step = settings.batch_size * settings.seq_len
    started = time.perf_counter() - progress["elapsed"]
    window_start, window_steps = time.perf_counter(), 0
    summary = {"stopped": "finished"}

    def save(epoch, batch_index):
        progress.update(epoch=epoch, batch=batch_index, elapsed=time.perf_counter() - started)
        save_checkpoint(output, model.numpy_params(), config, vocab)
        _atomic_save_state(state_path(output), optimizer, model, dict(progress))

    model.train()
    try:
        for epoch in range(progress["epoch"], settings.epochs):
            next_batch = progress["batch"] if epoch == progress["epoch"] else 0
            stop = None
            for index, inputs, targets in epoch_batches(train_ids, settings.batch_size, settings.seq_len, next_batch):
                if progress["step"] >= total_steps:
                    stop = "max steps"
                    break
                lr = learning_rate(progress["step"], settings)
                loss, grad_norm = train_step(model, optimizer, inputs, targets, lr, settings.clip_norm)
                progress["step"] += 1
                next_batch = index + 1
                window_steps += 1
                step = progress["step"]
                if step % settings.log_every == 0 or step == total_steps:
                    now = time.perf_counter()
                    speed = window_steps * tokens_per_step / max(now - window_start, 1e-9)
                    left = (total_steps - step) * tokens_per_step / max(speed, 1e-9)
                    log(f"epoch {epoch + 1}/{settings.epochs} step {step}/{total_steps} loss {loss:.4f} "
                        f"lr {lr:.2e} |g| {grad_norm:.3f} {speed:,.0f} tokens/s, {left / 60:.1f} min left")
                    curve.row(kind="train", epoch=epoch + 1, step=step, lr=f"{lr:.6g}", loss=f"{loss:.6f}",
                              grad_norm=f"{grad_norm:.6f}", tokens_per_s=f"{speed:.0f}", elapsed_s=f"{now - started:.1f}")
                    window_start, window_steps = now, 0
                if step % settings.save_every == 0:
                    save(epoch, next_batch)
                if settings.time_limit is not None and time.perf_counter() - started > settings.time_limit:
                    stop = "time limit"
                    break
            if stop is not None:
                save(epoch, next_batch)
                summary["stopped"] = stop
                break
            eval_loss, accuracy = evaluate(model, eval_ids, settings)
            log(f"epoch {epoch + 1} done: evaluation loss {eval_loss:.4f} (perplexity {math.exp(eval_loss):.2f}), "
                f"top-1 accuracy {accuracy:.2%}")
            curve.row(kind="eval", epoch=epoch + 1, step=progress["step"], loss=f"{eval_loss:.6f}",
                      accuracy=f"{accuracy:.6f}", elapsed_s=f"{time.perf_counter() - started:.1f}")
            save(epoch + 1, 0)
    except KeyboardInterrupt:
        log(f"interrupted at step {progress['step']}: {output} holds the last saved state (nothing half-written)")
        raise
    finally:
        curve.close()

    eval_loss, accuracy = evaluate(model, eval_ids, settings)
    summary.update(steps=progress["step"], eval_loss=eval_loss, eval_accuracy=accuracy,
                   seconds=time.perf_counter() - started, settings=asdict(settings))
    return summary
