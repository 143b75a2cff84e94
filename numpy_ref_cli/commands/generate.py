"""numpy-ref generate: grow a prompt word by word, the original's way or the notebook's."""

from __future__ import annotations

import sys

import numpy as np

from numpy_ref.checkpoint import load_checkpoint
from numpy_ref.errors import InputError
from numpy_ref.generate import MODES, generate
from numpy_ref.model import Model

DEFAULT_CHECKPOINT = "data/rpg_model.safetensors"


def register(subparsers):
    parser = subparsers.add_parser(
        "generate",
        help="generate words from a prompt (the original's padded way, the notebook's unpadded way, ...)",
        description=(
            "Modes: original-next = left-padded to max_seq_len, argmax (the original's next word); "
            "original = left-padded, the original's sampling (<nl> ban after <nl>, -2.0 per occurrence "
            "among the last 5 ids, temperature 0.5); notebook (= greedy) = unpadded with sliced positions, "
            "argmax; sample = unpadded, --temperature and --top-k. The same --seed chooses the same words "
            "with --impl numpy and --impl torch."
        ),
    )
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help=f"default {DEFAULT_CHECKPOINT}")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--steps", type=int, default=1, help="words to generate (default 1)")
    parser.add_argument("--mode", choices=list(MODES), default="original")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0, help="for --mode sample")
    parser.add_argument("--top-k", type=int, default=None, help="for --mode sample")
    parser.add_argument("--impl", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--kv-cache", action="store_true", help="numpy, unpadded modes: reuse keys and values (faster)")
    parser.add_argument("--show-steps", action="store_true", help="print each chosen word with its probability")
    parser.set_defaults(func=run)


def logits_function(checkpoint, impl: str, kv_cache: bool, unpadded: bool):
    if impl == "torch":
        try:
            import torch

            from torch_model.model import Decoder
        except ImportError as error:
            raise InputError(f"--impl torch needs PyTorch, which cannot be imported here ({error}).") from None
        module = Decoder.from_params(checkpoint.config, checkpoint.params, torch.float32)

        def torch_logits(context):
            with torch.no_grad():
                return module(torch.from_numpy(context)).numpy()

        return torch_logits
    model = Model.from_checkpoint(checkpoint, "float32")
    if kv_cache:
        if not unpadded:
            raise InputError("--kv-cache works with the unpadded modes (notebook, greedy, sample): a padded "
                             "context shifts every position at every step, so nothing can be kept.")
        from numpy_ref.kv_cache import CachedLogits

        return CachedLogits(model)
    return model


def run(args) -> int:
    checkpoint = load_checkpoint(args.checkpoint)
    model = Model.from_checkpoint(checkpoint, "float32")
    encoded = model.encode(args.prompt)
    if encoded.unknown:
        print(f"note: not in the vocabulary, read as id {checkpoint.config.pad_id} ([PAD]): "
              f"{', '.join(encoded.unknown)}", file=sys.stderr)
    unpadded = MODES[args.mode][0] == "unpadded"
    logits_fn = logits_function(checkpoint, args.impl, args.kv_cache, unpadded)
    result = generate(logits_fn, checkpoint.config, checkpoint.vocab, encoded.ids, args.steps, args.mode,
                      args.seed, args.temperature, args.top_k)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if args.show_steps:
        for number, step in enumerate(result.steps, 1):
            print(f"{number:3d}  {step.word!r:24} p={step.probability:.3f}  context {list(step.context_shape)}")
        print()
    print(model.decode(result.ids))
    return 0
