"""Fuzzing the checkpoint readers with seeded mutations of real fixtures.

Every mutated file (of the original-format fixtures, a torch.save state_dict, and a
canonical safetensors file) must end in a clean NumpyRefError or a valid load: never another
exception, a crash, a hang or a huge allocation. The campaign runs in a child
process with its address space limited (RLIMIT_AS, 2 GiB), so an allocation of
gigabytes fails the run instead of the machine, and a crash or a hang fails it too.

In the suite: FUZZ_CASES cases (default 2000, about 10 s) from seed FUZZ_SEED (default 0).
A longer campaign:

    FUZZ_CASES=100000 FUZZ_SEED=1 .venv/bin/python -m pytest tests/test_fuzz_archive.py -q
    # or directly, printing progress; --case K re-runs one case and shows its traceback:
    .venv/bin/python tests/test_fuzz_archive.py --cases 100000 --seed 1
    .venv/bin/python tests/test_fuzz_archive.py --seed 1 --case 4711
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FIXTURES = HERE / "fixtures"
BASES = ["original_views.pt", "original_f16_big.pt", "original_requires_grad.pt", "state_dict_f32.pt"]
MEMORY_LIMIT = 2 << 30
SLOW_CASE_SECONDS = 2.0

for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)


# -- mutations --------------------------------------------------------------------------------

INTERESTING_INTS = [0, 1, 2, 7, 8, 11, 12, 255, 256, 65535, 2**31 - 1, -1, -2**31, 10**9, 2**30]


def _rezip(members) -> bytes:
    from archive_tools import archive_bytes

    return archive_bytes(members)


def _pickle_name(members) -> str:
    return next(name for name in members if name.endswith("/data.pkl"))


def mutate(rng: random.Random, raw: bytes, members: dict) -> tuple[str, bytes]:
    """One seeded mutation of an archive: (kind, bytes)."""
    if members is None:  # not a zip (the canonical safetensors base): bytes only
        kind = rng.choice(["flip", "truncate", "header"])
        data = bytearray(raw)
        if kind == "truncate":
            return kind, raw[: rng.randrange(len(raw))]
        header_end = 8 + int.from_bytes(raw[:8], "little")
        for _ in range(rng.randint(1, 6)):
            spot = rng.randrange(header_end) if kind == "header" else rng.randrange(len(data))
            data[spot] = rng.choice([rng.randrange(256), ord('"'), ord("{"), ord("}"), ord("9"), ord(",")])
        return kind, bytes(data)
    members = dict(members)
    names = list(members)
    kind = rng.choice([
        "flip", "truncate", "remove", "swap", "rename", "pickle-flip", "pickle-flip",
        "pickle-splice", "pickle-int", "pickle-int", "storage", "storage-resize", "byteorder",
    ])
    if kind == "flip":
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return kind, bytes(data)
    if kind == "truncate":
        return kind, raw[: rng.randrange(len(raw))]
    if kind == "remove":
        del members[rng.choice(names)]
        return kind, _rezip(members)
    if kind == "swap":
        a, b = rng.sample(names, 2)
        members[a], members[b] = members[b], members[a]
        return kind, _rezip(members)
    if kind == "rename":
        old = rng.choice(names)
        new = rng.choice(names + [old + "x", old.split("/")[0] + "/data/999", "other/data.pkl", old.replace("/", "//")])
        data = members.pop(old)
        members[new] = data
        return kind, _rezip(members)
    pkl = _pickle_name(members)
    if kind == "pickle-flip":
        data = bytearray(members[pkl])
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        members[pkl] = bytes(data)
    elif kind == "pickle-splice":
        data = members[pkl]
        start = rng.randrange(len(data))
        length = rng.randint(1, 24)
        if rng.random() < 0.5:
            data = data[:start] + data[start + length:]
        else:
            data = data[:start] + data[start:start + length] + data[start:]
        members[pkl] = data
    elif kind == "pickle-int":
        data = members[pkl]
        spots = [i for i in range(len(data) - 1) if data[i] == ord("K")]
        if spots:
            i = rng.choice(spots)
            value = rng.choice(INTERESTING_INTS + [rng.randint(-2**31, 2**31 - 1)])
            data = data[:i] + b"J" + struct.pack("<i", value) + data[i + 2:]
        members[pkl] = data
    elif kind == "storage":
        storage_names = [n for n in names if "/data/" in n] or names
        name = rng.choice(storage_names)
        data = bytearray(members[name])
        if data:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.choice([0xFF, 0x7F, 0x80, 0x00, rng.randrange(256)])
        members[name] = bytes(data)
    elif kind == "storage-resize":
        storage_names = [n for n in names if "/data/" in n] or names
        name = rng.choice(storage_names)
        data = members[name]
        members[name] = data[: rng.randrange(len(data) + 1)] if rng.random() < 0.5 else data + bytes(rng.randint(1, 64))
    elif kind == "byteorder":
        folder = pkl.split("/")[0]
        members[f"{folder}/byteorder"] = rng.choice([b"big", b"little", b"", b"middle", bytes(rng.randrange(256) for _ in range(5))])
    return kind, _rezip(members)


# -- the campaign (runs in the child process) -------------------------------------------------


def make_case(seed: int, case: int, bases, path: Path) -> tuple[str, str]:
    """Write case `case` of campaign `seed` to `path`; return (base fixture, mutation kind)."""
    rng = random.Random(seed * 1_000_003 + case)
    base_name = rng.choice(list(bases))
    raw, members = bases[base_name]
    kind, data = mutate(rng, raw, members)
    path.write_bytes(data)
    return base_name, kind


def load_bases():
    """The fixtures to mutate: (bytes, zip members) by name, plus a canonical safetensors file."""
    from archive_tools import read_members
    from conversion import load_any
    from numpy_ref.checkpoint import save_checkpoint

    bases = {name: ((FIXTURES / name).read_bytes(), read_members(FIXTURES / name)) for name in BASES}
    with tempfile.TemporaryDirectory() as folder:
        canonical = Path(folder) / "canonical.safetensors"
        checkpoint, _ = load_any(FIXTURES / "original_f32.pt")
        save_checkpoint(canonical, checkpoint.params, checkpoint.config, checkpoint.vocab)
        bases["canonical.safetensors"] = (canonical.read_bytes(), None)
    return bases


def campaign(cases: int, seed: int, progress: bool = False) -> dict:
    from conversion import load_any
    from numpy_ref.errors import NumpyRefError

    bases = load_bases()
    outcome = {"cases": cases, "seed": seed, "loaded": 0, "rejected": 0, "failures": [], "slow": [], "kinds": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzzed.pt"
        for case in range(cases):
            _, kind = make_case(seed, case, bases, path)
            counts = outcome["kinds"].setdefault(kind, {"loaded": 0, "rejected": 0})
            t0 = time.perf_counter()
            try:
                load_any(path)
                outcome["loaded"] += 1
                counts["loaded"] += 1
            except NumpyRefError as error:
                outcome["rejected"] += 1
                counts["rejected"] += 1
                message = str(error)
                if str(path) not in message:
                    outcome["failures"].append({"case": case, "kind": kind, "error": "message does not name the file: " + message[:300]})
            except BaseException as error:  # noqa: BLE001 - the point is to catch everything
                outcome["failures"].append({
                    "case": case, "kind": kind, "error": f"{type(error).__name__}: {str(error)[:300]}",
                    "where": traceback.format_exc().strip().splitlines()[-3:],
                })
            elapsed = time.perf_counter() - t0
            if elapsed > SLOW_CASE_SECONDS:
                outcome["slow"].append({"case": case, "seconds": round(elapsed, 2)})
            if progress and (case + 1) % 1000 == 0:
                print(f"{case + 1} cases, {len(outcome['failures'])} failures, "
                      f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    outcome["seconds"] = round(time.perf_counter() - started, 2)
    return outcome


def _limit_memory():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_in_child(cases: int, seed: int, timeout: float) -> dict:
    """The campaign in a child process with limited memory; a crash or a hang is a failure."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        completed = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--cases", str(cases), "--seed", str(seed),
             "--report", str(report)],
            env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=timeout, preexec_fn=_limit_memory,
        )
        assert completed.returncode == 0, (
            f"the fuzz campaign died (exit {completed.returncode}): {completed.stderr[-2000:]}"
        )
        return json.loads(report.read_text())


# -- the test -----------------------------------------------------------------------------------


def test_fuzzed_archives_fail_cleanly_or_load():
    cases = int(os.environ.get("FUZZ_CASES", "2000"))
    seed = int(os.environ.get("FUZZ_SEED", "0"))
    outcome = run_in_child(cases, seed, timeout=max(120.0, cases * 0.1))
    print(f"fuzz: {outcome['cases']} cases (seed {seed}) in {outcome['seconds']} s: "
          f"{outcome['rejected']} rejected with a NumpyRefError, {outcome['loaded']} loaded")
    assert not outcome["failures"], json.dumps(outcome["failures"][:10], indent=1)
    assert not outcome["slow"], f"cases slower than {SLOW_CASE_SECONDS} s: {outcome['slow'][:10]}"
    assert outcome["rejected"] + outcome["loaded"] == cases
    assert outcome["rejected"] > cases // 4, "the mutations hardly ever broke the file: are they applied?"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fuzz the checkpoint readers (see the module docstring).")
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--case", type=int, help="run only this case and show its exception")
    parser.add_argument("--report", help="write the outcome as JSON here")
    args = parser.parse_args(argv)
    if args.case is not None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fuzzed.pt"
            base, kind = make_case(args.seed, args.case, load_bases(), path)
            try:
                from conversion import load_any

                load_any(path)
                print(f"case {args.case}: {kind} of {base}: loaded")
            except Exception as error:  # noqa: BLE001
                print(f"case {args.case}: {type(error).__name__}: {error}")
                if not type(error).__module__.startswith("numpy_ref"):
                    raise
        return 0
    outcome = campaign(args.cases, args.seed, progress=args.report is None)
    if args.report:
        Path(args.report).write_text(json.dumps(outcome))
    else:
        print(json.dumps({k: v for k, v in outcome.items() if k != "failures"}))
        for failure in outcome["failures"][:20]:
            print(json.dumps(failure))
    return 0 if not outcome["failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
