"""numpy-ref train: train the decoder on two tokenized files (SPEC's recipe), in PyTorch or,
with --impl numpy, in NumPy alone (numpy_ref.train: the NumPy backward pass and Adam)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from numpy_ref.config import ModelConfig
from numpy_ref.data import encode_words
from numpy_ref.errors import InputError
from numpy_ref.vocab import build_vocabulary, read_words

DEFAULT_TRAIN = "data/rpg-training-tokenized.txt"
DEFAULT_EVAL = "data/rpg-evaluation-tokenized.txt"


def register(subparsers):
    parser = subparsers.add_parser(
        "train",
        help="train the decoder in PyTorch or NumPy (SPEC's data pipeline, loss and optimiser)",
        description="Train on a tokenized training file, evaluate on a tokenized evaluation file after "
                    "every epoch, and write a canonical safetensors checkpoint (atomically, every epoch "
                    "and every --save-every steps), the optimiser state beside it, and the loss curve "
                    "as CSV. Defaults are the original's.",
    )
    parser.add_argument("--train", default=DEFAULT_TRAIN, help=f"tokenized training text (default {DEFAULT_TRAIN})")
    parser.add_argument("--eval", default=DEFAULT_EVAL, help=f"tokenized evaluation text (default {DEFAULT_EVAL})")
    parser.add_argument("-o", "--output", required=True, help="the checkpoint to write (.safetensors)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all")
    parser.add_argument("--time-limit", type=float, default=None, help="stop after this many minutes (saving first)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per row (default: max_seq_len)")
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--warmup", type=int, default=200, help="linear warm-up steps (from step 0)")
    parser.add_argument("--clip", type=float, default=0.5, help="global gradient-norm bound")
    parser.add_argument("--adam-eps", type=float, default=1e-37, help="Adam's eps (the original's 1e-37; PyTorch's default is 1e-8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--impl", choices=("torch", "numpy"), default="torch",
                        help="torch (default) or numpy: the NumPy backward pass and optimiser, no PyTorch needed")
    defaults = ModelConfig(vocab_size=1)
    for name in ("d_model", "n_heads", "d_ff", "n_layers", "max_seq_len"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--threads", type=int, default=None, help="PyTorch threads (default: PyTorch's choice)")
    parser.add_argument("--log-every", type=int, default=200)
    parser.add_argument("--save-every", type=int, default=2000)
    parser.add_argument("--resume", action="store_true", help="continue from --output and its training state")
    parser.add_argument("--force", action="store_true", help="start afresh even if --output exists")
    parser.set_defaults(func=run)


def run(args) -> int:
    from numpy_ref.train import TrainSettings, curve_path

    torch = None
    if args.impl == "numpy":
        from numpy_ref.train import train
    else:
        try:
            import torch

            from torch_model.train import train
        except ImportError as error:
            raise InputError(f"training needs PyTorch, which cannot be imported here ({error}); "
                             f"--impl numpy trains without it.") from None
    output = Path(args.output)
    if output.exists() and not (args.resume or args.force):
        raise InputError(f"{output} already exists; pass --resume to continue training it or --force to start afresh.")
    if args.resume and not output.exists():
        raise InputError(f"--resume: {output} does not exist yet; train without --resume first.")
    if not output.parent.is_dir():
        raise InputError(f"{output}: the folder {output.parent} does not exist.")
    if args.threads and torch is not None:
        torch.set_num_threads(args.threads)

    train_words, eval_words = read_words(args.train), read_words(args.eval)
    if len(train_words) < 2 or len(eval_words) < 2:
        raise InputError(f"{args.train if len(train_words) < 2 else args.eval}: needs at least 2 words to train or evaluate on.")
    vocab = build_vocabulary(train_words, eval_words)
    config = ModelConfig(vocab_size=len(vocab), d_model=args.d_model, n_heads=args.n_heads, d_ff=args.d_ff,
                         n_layers=args.n_layers, max_seq_len=args.max_seq_len)
    settings = TrainSettings(
        epochs=args.epochs, batch_size=args.batch_size, seq_len=args.seq_len or config.max_seq_len, lr=args.lr,
        warmup_steps=args.warmup, clip_norm=args.clip, adam_eps=args.adam_eps, seed=args.seed,
        max_steps=args.max_steps, time_limit=None if args.time_limit is None else args.time_limit * 60,
        log_every=args.log_every, save_every=args.save_every,
    )
    print(f"training on {len(train_words):,} words, evaluating on {len(eval_words):,}; vocabulary {len(vocab)} words; "
          f"{config}; " + (f"torch threads {torch.get_num_threads()}" if torch is not None else "in NumPy"))
    summary = train(config, vocab, encode_words(train_words, vocab, args.train), encode_words(eval_words, vocab, args.eval),
                    settings, output, resume=args.resume)
    print(f"stopped: {summary['stopped']} after {summary['steps']} steps in {summary['seconds'] / 60:.1f} min; "
          f"evaluation loss {summary['eval_loss']:.4f}, top-1 accuracy {summary['eval_accuracy']:.2%}")
    print(f"wrote {output} and {curve_path(output)}")
    plot = _plot_curve(curve_path(output))
    if plot:
        print(f"wrote {plot}")
    print(json.dumps({k: v for k, v in summary.items() if k != "settings"}))
    return 0


def _plot_curve(csv_path: Path):
    """A PNG of the loss curve, where matplotlib is installed (it is optional)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import csv

    rows = list(csv.DictReader(open(csv_path)))
    figure, axis = plt.subplots(figsize=(7, 4))
    for kind, style in (("train", "-"), ("eval", "o-")):
        points = [(int(r["step"]), float(r["loss"])) for r in rows if r["kind"] == kind]
        if points:
            axis.plot(*zip(*points), style, label=f"{kind} loss")
    axis.set_xlabel("step")
    axis.set_ylabel("cross-entropy (nats)")
    axis.legend()
    path = csv_path.with_suffix(".png")
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
