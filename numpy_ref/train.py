"""Training in NumPy, without PyTorch: SPEC's recipe ("Loss and training of the original")
with the backward pass of numpy_ref.backward and the optimiser of numpy_ref.optim.

It shares everything around the step with torch_model.train: the settings (TrainSettings,
defined here and used by both), the data pipeline (numpy_ref.data), the checkpoint
(numpy_ref.checkpoint.save_checkpoint, atomic), the training-state file beside it
(`<name>.train-state.safetensors`: Adam's moments under the same names, and the progress),
the loss curve (`<name>.loss.csv`, the same columns) and the progress lines. One step:

    loss, grads = loss_and_gradients(params, batch)     # forward with trace, then backward
    grads, norm = clip_gradients(grads, 0.5)            # global L2 norm
    adam.step(params, grads, learning_rate(step))       # warm-up from step 0

Init (SPEC): embed and pos ~ N(0, 1) * 0.005; every Linear PyTorch's default (weight and
bias ~ U(-1/sqrt(in), 1/sqrt(in))); LayerNorm weight 1, bias 0: the same distributions as
torch_model.train, not the same numbers (the random streams differ).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy

from .atomic import atomic_path
from .backward import cross_entropy, loss_and_gradients
from .checkpoint import load_checkpoint, save_checkpoint
from .config import ModelConfig
from .data import batches_per_epoch, epoch_batches
from .errors import CheckpointError, InputError
from .forward import forward
from .model import resolve_dtype
from .optim import Adam, clip_gradients, learning_rate
from .schema import parameter_shapes


@dataclass
class TrainSettings:
    """The settings of a run, for either trainer (numpy_ref.train, torch_model.train)."""

    epochs: int = 1
    batch_size: int = 4
    seq_len: int = 64
    lr: float = 3e-4
    warmup_steps: int = 200
    clip_norm: float = 0.5
    adam_eps: float = 1e-37
    betas: tuple = (0.9, 0.999)
    seed: int = 0
    max_steps: int | None = None      # stop after this many optimiser steps in all
    time_limit: float | None = None   # stop (after a save) once this many seconds have passed
    log_every: int = 200
    save_every: int = 2000


def state_path(checkpoint_path: Path) -> Path:
    name = checkpoint_path.name
    stem = name[: -len(".safetensors")] if name.endswith(".safetensors") else name
    return checkpoint_path.with_name(stem + ".train-state.safetensors")


def curve_path(checkpoint_path: Path) -> Path:
    return state_path(checkpoint_path).with_name(state_path(checkpoint_path).name.replace(".train-state.safetensors", ".loss.csv"))


class CurveWriter:
    FIELDS = ["kind", "epoch", "step", "lr", "loss", "accuracy", "grad_norm", "tokens_per_s", "elapsed_s"]

    def __init__(self, path: Path, append: bool):
        self.path = path
        fresh = not (append and path.exists())
        self.file = open(path, "w" if fresh else "a", newline="")
        self.writer = csv.DictWriter(self.file, self.FIELDS)
        if fresh:
            self.writer.writeheader()

    def row(self, **values):
        self.writer.writerow({key: values.get(key, "") for key in self.FIELDS})
        self.file.flush()

    def close(self):
        self.file.close()


# ---------------------------------------------------------------------------
# Init, one step, evaluation


def init_params(config: ModelConfig, seed: int = 0, dtype="float32") -> dict:
    """SPEC's init (see the module docstring), in `dtype`, seeded."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in parameter_shapes(config).items():
        if name in ("embed.weight", "pos_encoding"):
            values = rng.standard_normal(shape) * 0.005
        elif ".norm" in name:
            values = np.ones(shape) if name.endswith(".weight") else np.zeros(shape)
        else:  # a Linear: its weight is [out, in]; its bias shares the weight's fan-in
            fan_in = parameter_shapes(config)[name.replace(".bias", ".weight")][1]
            bound = 1 / math.sqrt(fan_in)
            values = rng.uniform(-bound, bound, size=shape)
        params[name] = values.astype(resolve_dtype(dtype))
    return params


def train_step(params: dict, adam: Adam, config: ModelConfig, inputs: np.ndarray, targets: np.ndarray,
               lr: float, clip_norm: float) -> tuple[float, float]:
    """One optimiser step on one batch; updates `params` in place (its entries are replaced).
    Returns (the batch's loss before the step, the gradient norm before clipping)."""
    loss, grads, _ = loss_and_gradients(params, config, inputs, targets)
    grads, grad_norm = clip_gradients(grads, clip_norm)
    adam.step(params, grads, lr)
    return loss, grad_norm


def evaluate(params: dict, config: ModelConfig, ids: np.ndarray, settings: TrainSettings) -> tuple[float, float]:
    """(loss averaged over the evaluation batches, top-1 accuracy over non-pad targets)."""
    losses, correct, counted = [], 0, 0
    for _, inputs, targets in epoch_batches(ids, settings.batch_size, settings.seq_len):
        logits = forward(params, config, inputs)  # [B, S, V]
        losses.append(cross_entropy(logits, targets, config.pad_id))
        keep = targets != config.pad_id
        correct += int((logits.argmax(-1)[keep] == targets[keep]).sum())
        counted += int(keep.sum())
    return float(np.mean(losses)), correct / max(counted, 1)


# ---------------------------------------------------------------------------
# The training state beside the checkpoint (Adam's moments and the progress)


def save_state_file(path: Path, tensors: dict, progress: dict) -> None:
    """The training state beside a checkpoint: Adam's moments (exp_avg.<name>,
    exp_avg_sq.<name>) and the progress (epoch, batch, step, elapsed), atomically."""
    tensors = {name: np.ascontiguousarray(value) for name, value in tensors.items()}
    with atomic_path(path) as temporary:
        safetensors.numpy.save_file(tensors, temporary, metadata={"progress": json.dumps(progress)})


def load_state_file(path: Path) -> tuple[dict, dict]:
    """(tensors, progress) of a training-state file, or a CheckpointError saying what to do."""
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            progress = json.loads(handle.metadata()["progress"])
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # a damaged state file is a user-facing problem, said plainly
        raise CheckpointError(f"{path}: cannot read the training state ({error}); delete it to resume with fresh optimiser moments.") from None
    return tensors, progress


def resume_checkpoint(output: Path, config: ModelConfig, vocab: list[str]):
    """The checkpoint a --resume continues from; it must be of this run's config and vocabulary."""
    checkpoint = load_checkpoint(output)
    if checkpoint.config != config or checkpoint.vocab != vocab:
        raise CheckpointError(f"{output}: its config or vocabulary differs from this run's; resume with the same files and sizes.")
    return checkpoint


# ---------------------------------------------------------------------------
# The loop


def run_loop(step, evaluate_fn, save, train_ids: np.ndarray, eval_ids: np.ndarray, settings: TrainSettings,
             output: Path, progress: dict, resume: bool, log=print) -> dict:
    """The training loop both trainers share: epochs of SPEC's batches, the warm-up, progress
    lines, the loss curve, evaluation after every epoch, saves, and the stops (--max-steps,
    --time-limit, Ctrl-C). The trainer supplies:

        step(inputs, targets, lr) -> (loss, grad_norm)    one optimiser step
        evaluate_fn() -> (loss, accuracy)                 on the evaluation ids
        save(progress)                                    checkpoint and training state

    `progress` ({epoch, batch, step, elapsed}) is where to start, and is updated as it goes."""
    per_epoch = batches_per_epoch(len(train_ids), settings.batch_size, settings.seq_len)
    total_steps = settings.epochs * per_epoch
    if settings.max_steps is not None:
        total_steps = min(total_steps, settings.max_steps)
    curve = CurveWriter(curve_path(output), append=resume)
    tokens_per_step = settings.batch_size * settings.seq_len
    started = time.perf_counter() - progress["elapsed"]
    window_start, window_steps = time.perf_counter(), 0
    summary = {"stopped": "finished"}

    def save_at(epoch, batch_index):
        progress.update(epoch=epoch, batch=batch_index, elapsed=time.perf_counter() - started)
        save(dict(progress))

    try:
        for epoch in range(progress["epoch"], settings.epochs):
            next_batch = progress["batch"] if epoch == progress["epoch"] else 0
            stop = None
            for index, inputs, targets in epoch_batches(train_ids, settings.batch_size, settings.seq_len, next_batch):
                if progress["step"] >= total_steps:
                    stop = "max steps"
                    break
                lr = learning_rate(progress["step"], settings.lr, settings.warmup_steps)
                loss, grad_norm = step(inputs, targets, lr)
                progress["step"] += 1
                next_batch = index + 1
                window_steps += 1
                done = progress["step"]
                if done % settings.log_every == 0 or done == total_steps:
                    now = time.perf_counter()
                    speed = window_steps * tokens_per_step / max(now - window_start, 1e-9)
                    left = (total_steps - done) * tokens_per_step / max(speed, 1e-9)
                    log(f"epoch {epoch + 1}/{settings.epochs} step {done}/{total_steps} loss {loss:.4f} "
                        f"lr {lr:.2e} |g| {grad_norm:.3f} {speed:,.0f} tokens/s, {left / 60:.1f} min left")
                    curve.row(kind="train", epoch=epoch + 1, step=done, lr=f"{lr:.6g}", loss=f"{loss:.6f}",
                              grad_norm=f"{grad_norm:.6f}", tokens_per_s=f"{speed:.0f}", elapsed_s=f"{now - started:.1f}")
                    window_start, window_steps = now, 0
                if done % settings.save_every == 0:
                    save_at(epoch, next_batch)
                if settings.time_limit is not None and time.perf_counter() - started > settings.time_limit:
                    stop = "time limit"
                    break
            if stop is not None:
                save_at(epoch, next_batch)
                summary["stopped"] = stop
                break
            eval_loss, accuracy = evaluate_fn()
            log(f"epoch {epoch + 1} done: evaluation loss {eval_loss:.4f} (perplexity {math.exp(eval_loss):.2f}), "
                f"top-1 accuracy {accuracy:.2%}")
            curve.row(kind="eval", epoch=epoch + 1, step=progress["step"], loss=f"{eval_loss:.6f}",
                      accuracy=f"{accuracy:.6f}", elapsed_s=f"{time.perf_counter() - started:.1f}")
            save_at(epoch + 1, 0)
    except KeyboardInterrupt:
        log(f"interrupted at step {progress['step']}: {output} holds the last saved state (nothing half-written)")
        raise
    finally:
        curve.close()

    eval_loss, accuracy = evaluate_fn()
    summary.update(steps=progress["step"], eval_loss=eval_loss, eval_accuracy=accuracy,
                   seconds=time.perf_counter() - started, settings=asdict(settings))
    return summary


def train(config: ModelConfig, vocab: list[str], train_ids: np.ndarray, eval_ids: np.ndarray,
          settings: TrainSettings, output: Path, resume: bool = False, log=print, dtype="float32") -> dict:
    """Train in NumPy and write `output`; return a summary (steps, losses, accuracy, time),
    as torch_model.train.train does. `dtype` is the dtype of the weights and of the arithmetic."""
    output = Path(output)
    if settings.seq_len > config.max_seq_len:
        raise InputError(f"--seq-len {settings.seq_len} is longer than the model's max_seq_len {config.max_seq_len}.")
    params = init_params(config, settings.seed, dtype)
    adam = Adam(params, betas=settings.betas, eps=settings.adam_eps)
    progress = {"epoch": 0, "batch": 0, "step": 0, "elapsed": 0.0}
    if resume:
        checkpoint = resume_checkpoint(output, config, vocab)
        params = {name: value.astype(resolve_dtype(dtype)) for name, value in checkpoint.params.items()}
        if state_path(output).exists():
            tensors, progress = load_state_file(state_path(output))
            adam.load_state_arrays(tensors, int(progress["step"]))
            log(f"resuming at epoch {progress['epoch'] + 1}, batch {progress['batch']}, step {progress['step']}")
        else:
            log(f"resuming from the weights of {output}; no training state beside it, so Adam's moments start at zero")

    def save(progress):
        save_checkpoint(output, params, config, vocab)
        save_state_file(state_path(output), adam.state_arrays(), progress)

    return run_loop(lambda inputs, targets, lr: train_step(params, adam, config, inputs, targets, lr, settings.clip_norm),
                    lambda: evaluate(params, config, eval_ids, settings), save,
                    train_ids, eval_ids, settings, output, progress, resume, log)
