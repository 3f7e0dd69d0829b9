"""Time `loralint check` on real trees against `ruff check`, in one run, as ratios.

    python benchmarks/bench_trees.py TREE [TREE ...] [--repeat 3] [--baseline OTHER_CHECKOUT]

For each tree, interleaved so that a busy machine slows every tool alike:
  - cold: `loralint check --no-cache` and `ruff check --isolated --no-cache` (ruff's default rules);
  - warm: `loralint check` with its cache filled, and `ruff check --isolated` with its cache filled;
  - with --baseline, the same cold run of another loralint checkout (an older commit), so a change
    is measured against what it replaces on the same machine in the same minutes.
Then start-up: `python -c pass` and `loralint check one_file.py` on a small training script; with
--lsp FILE, the language server's check of that file after each change (in one warm process).

Wall time (best and median) and CPU time (user+sys of the process and its workers) are printed;
on a shared machine the CPU time is the steadier figure. Nothing is asserted: timings belong in
notes, not in tests. Trees are read, never modified, except for the tools' cache folders, which
are removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = '''from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
model = get_peft_model(model, config)
'''


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start, _children_cpu() - cpu


_PYCACHE = Path(tempfile.gettempdir()) / "loralint-bench-pycache"


def loralint_cmd(checkout: Path) -> tuple[list[str], dict[str, str]]:
    # As installed: with bytecode (kept outside the checkout). PYTHONDONTWRITEBYTECODE would make every
    # run compile loralint's own modules again, ~0.2 s that no installed copy pays.
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONPYCACHEPREFIX": str(_PYCACHE / checkout.name)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return [sys.executable, "-m", "loralint"], env


def summary(name: str, runs: list[tuple[float, float]]) -> tuple[float, str]:
    walls = [w for w, _ in runs]
    cpus = [c for _, c in runs]
    best = min(walls)
    text = f"{name:<34} best {best:7.2f} s  median {statistics.median(walls):7.2f} s  cpu {statistics.median(cpus):7.2f} s"
    return best, text


def bench_tree(tree: Path, repeat: int, baseline: Path | None) -> None:
    ruff = shutil.which("ruff")
    cmd, env = loralint_cmd(REPO)
    jobs: dict[str, tuple[list[str], dict[str, str]]] = {
        "loralint cold (--no-cache)": ([*cmd, "check", "--no-cache", "--exit-zero", "-q", "."], env),
    }
    if baseline is not None:
        bcmd, benv = loralint_cmd(baseline)
        jobs["baseline loralint cold"] = ([*bcmd, "check", "--no-cache", "--exit-zero", "-q", "."], benv)
    if ruff:
        jobs["ruff cold (--isolated --no-cache)"] = ([ruff, "check", "--isolated", "--no-cache", "--exit-zero", "-q", "."], dict(os.environ))
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
    for name, (command, environment) in jobs.items():
        if "loralint" in name:
            timed([*command[:3], "--version"], tree, environment)  # write the bytecode once
    for _ in range(repeat):
        for name, (command, environment) in jobs.items():
            results[name].append(timed(command, tree, environment))
    # warm: fill each cache once, then time
    warm = {"loralint warm (cache)": ([*cmd, "check", "--exit-zero", "-q", "."], env)}
    if ruff:
        warm["ruff warm (--isolated, cache)"] = ([ruff, "check", "--isolated", "--exit-zero", "-q", "."], dict(os.environ))
    for name, (command, environment) in warm.items():
        timed(command, tree, environment)
        results[name] = [timed(command, tree, environment) for _ in range(repeat)]
    for folder in (".loralint_cache", ".ruff_cache"):
        shutil.rmtree(tree / folder, ignore_errors=True)
    print(f"\n{tree} ({sum(1 for _ in tree.rglob('*.py'))} .py files)")
    best: dict[str, float] = {}
    for name, runs in results.items():
        best[name], text = summary(name, runs)
        print("  " + text)
    ruff_cold = best.get("ruff cold (--isolated --no-cache)")
    if ruff_cold:
        print(f"  cold ratio loralint/ruff: {best['loralint cold (--no-cache)'] / ruff_cold:.2f}x")
        if "baseline loralint cold" in best:
            print(f"  cold ratio baseline/ruff: {best['baseline loralint cold'] / ruff_cold:.2f}x")
        print(f"  warm ratio loralint/ruff: {best['loralint warm (cache)'] / best['ruff warm (--isolated, cache)']:.2f}x")


def bench_startup(repeat: int, baseline: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "train.py").write_text(SCRIPT)
        cmd, env = loralint_cmd(REPO)
        jobs = {
            "python -c pass": ([sys.executable, "-c", "pass"], dict(os.environ)),
            "loralint check one_file.py": ([*cmd, "check", "--no-cache", "--exit-zero", "-q", "train.py"], env),
        }
        if baseline is not None:
            bcmd, benv = loralint_cmd(baseline)
            jobs["baseline check one_file.py"] = ([*bcmd, "check", "--no-cache", "--exit-zero", "-q", "train.py"], benv)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in jobs}
        for name, (command, environment) in jobs.items():
            timed(command, folder, environment)  # bytecode written once
        for _ in range(repeat * 3):
            for name, (command, environment) in jobs.items():
                results[name].append(timed(command, folder, environment))
    print("\nstart-up")
    best = {}
    for name, runs in results.items():
        best[name], text = summary(name, runs)
        print("  " + text)
    print(f"  loralint one file minus python start-up: {best['loralint check one_file.py'] - best['python -c pass']:.3f} s")


LSP_CHECK = """
import sys, time
from loralint.server import LoraLintServer
path, repeat = sys.argv[1], int(sys.argv[2])
text = open(path, encoding="utf-8").read()
server = LoraLintServer()
for i in range(repeat + 1):  # the first check also imports the pipeline: not timed
    wall, cpu = time.perf_counter(), time.process_time()
    server.check_text("file://" + path, i, path, "python", text + f"\\n# edit {i}\\n")
    if i:
        print(time.perf_counter() - wall, time.process_time() - cpu)
"""


def bench_lsp(path: Path, repeat: int, baseline: Path | None) -> None:
    """The language server's check of one edited document, alone (bench_lsp.py times change to diagnostics)."""
    checkouts = {"loralint": REPO, **({"baseline": baseline} if baseline is not None else {})}
    print(f"\nLSP check of {path} ({path.stat().st_size // 1024} KB) after each change")
    for name, checkout in checkouts.items():
        _, env = loralint_cmd(checkout)
        out = subprocess.run([sys.executable, "-c", LSP_CHECK, str(path), str(repeat * 3)], env=env,
                             capture_output=True, text=True, check=False).stdout.split()
        walls, cpus = [float(w) for w in out[0::2]], [float(c) for c in out[1::2]]
        if walls:
            print(f"  {name + ' LSP check':<34} best {min(walls):7.2f} s  median {statistics.median(walls):7.2f} s"
                  f"  cpu {statistics.median(cpus):7.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another loralint checkout to time alongside")
    parser.add_argument("--no-startup", action="store_true")
    parser.add_argument("--lsp", type=Path, help="also time the language server's check of this file after a change")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    for tree in args.trees:
        bench_tree(tree.resolve(), args.repeat, args.baseline)
    if not args.no_startup:
        bench_startup(args.repeat, args.baseline)
    if args.lsp is not None:
        bench_lsp(args.lsp.resolve(), args.repeat, args.baseline)


if __name__ == "__main__":
    main()
