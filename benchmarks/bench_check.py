"""Time `loralint check` against peers measured in the same run, on the same generated tree.

    python benchmarks/bench_check.py [--files 2000] [--lora-share 0.01] [--repeat 5]

Generates a repository-like tree (ordinary Python modules, 1% of them training scripts with LoRA
configurations), then times, best and median of --repeat runs each:
  - loralint check (no cache, and with a warm cache),
  - ruff check --no-cache (a fast linter written in Rust), when ruff is installed,
  - grep -rl LoraConfig (the floor: reading every byte once),
  - python -c pass and `loralint check one_file.py` (start-up), and the same file with a model id
    that does not resolve (the difference is the cost of one resolved model).
and prints ratios. Nothing here is asserted: timings belong in notes, not in tests.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ORDINARY = '''"""Module {i}: data helpers."""

import json
import os
from dataclasses import dataclass


@dataclass
class Record{i}:
    name: str
    value: float = 0.0

    def scaled(self, factor: float) -> float:
        return self.value * factor


def load_{i}(path: str) -> list[Record{i}]:
    with open(path) as handle:
        rows = json.load(handle)
    return [Record{i}(**row) for row in rows if row.get("name")]


def summarise_{i}(records: list[Record{i}]) -> dict:
    total = sum(r.value for r in records)
    return {{"count": len(records), "total": total, "mean": total / max(len(records), 1)}}


class Processor{i}:
    def __init__(self, root: str = os.getcwd()) -> None:
        self.root = root
        self.cache = {{}}

    def run(self, names: list[str]) -> list[str]:
        out = []
        for name in names:
            if name in self.cache:
                out.append(self.cache[name])
                continue
            value = os.path.join(self.root, name.strip().lower())
            self.cache[name] = value
            out.append(value)
        return out
'''

TRAINING = '''"""Training script {i}."""

import argparse

from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

MODEL_ID = "meta-llama/Llama-3.2-3B"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lora_r", type=int, default={r})
    parser.add_argument("--lora_alpha", type=int, default=16)
    args = parser.parse_args()
    model = AutoModelForCausalLM.from_pretrained(MODEL_ID)
    config = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.05,
                        target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    return model


if __name__ == "__main__":
    main()
'''


def generate(root: Path, files: int, share: float, seed: int = 0) -> int:
    rng = random.Random(seed)
    lora = max(1, round(files * share))
    chosen = set(rng.sample(range(files), lora))
    for i in range(files):
        package = root / f"pkg{i // 100:02d}"
        package.mkdir(parents=True, exist_ok=True)
        text = TRAINING.format(i=i, r=rng.choice([8, 16, 64])) if i in chosen else ORDINARY.format(i=i)
        (package / f"mod{i:04d}.py").write_text(text)
    return lora


def timed(cmd: list[str], cwd: Path, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--lora-share", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    loralint = [sys.executable, "-m", "loralint"] if not shutil.which("loralint") else [shutil.which("loralint")]
    ruff = shutil.which("ruff")
    with tempfile.TemporaryDirectory(prefix="loralint-bench-") as tmp:
        root = Path(tmp)
        lora = generate(root, args.files, args.lora_share)
        one = next(root.rglob("mod*.py"))
        for path in root.rglob("*.py"):
            if "LoraConfig" in path.read_text():
                one = path
                break
        # The same script with a model id nothing resolves: the difference is what one resolved model costs
        # (reading its knowledge-base entry, expanding its modules, PEFT's targeting and counting).
        unresolved = root / "unresolved_model.py"
        unresolved.write_text(one.read_text().replace("meta-llama/Llama-3.2-3B", "example-org/not-a-known-model"))
        rows = []
        rows.append(("python -c pass", timed([sys.executable, "-c", "pass"], root, args.repeat)))
        rows.append(("loralint check one_file.py", timed([*loralint, "check", "--no-cache", "--exit-zero", str(one)], root, args.repeat)))
        rows.append(("  same, model not resolvable", timed([*loralint, "check", "--no-cache", "--exit-zero", str(unresolved)], root, args.repeat)))
        rows.append(("grep -rl LoraConfig .", timed(["grep", "-rl", "LoraConfig", "."], root, args.repeat)))
        if ruff:
            rows.append(("ruff check --no-cache .", timed([ruff, "check", "--no-cache", "--exit-zero", "-q", "."], root, args.repeat)))
        rows.append(("loralint check --no-cache .", timed([*loralint, "check", "--no-cache", "--exit-zero", "."], root, args.repeat)))
        subprocess.run([*loralint, "check", "--exit-zero", "."], cwd=root, stdout=subprocess.DEVNULL)
        rows.append(("loralint check . (warm cache)", timed([*loralint, "check", "--exit-zero", "."], root, args.repeat)))

    print(f"tree: {args.files} files, {lora} with LoRA configurations; best / median of {args.repeat} runs")
    baseline = dict(rows)
    for name, (best, median) in rows:
        print(f"  {name:<34} {best:7.3f} s  {median:7.3f} s")
    lint = baseline["loralint check --no-cache ."][1]
    if ruff:
        print(f"loralint / ruff (median, cold):  {lint / baseline['ruff check --no-cache .'][1]:.2f}x")
    print(f"loralint / grep (median, cold):  {lint / baseline['grep -rl LoraConfig .'][1]:.2f}x")
    print(f"one-file check / python start-up: {baseline['loralint check one_file.py'][1] / baseline['python -c pass'][1]:.1f}x "
          f"({baseline['loralint check one_file.py'][1] - baseline['python -c pass'][1]:.3f} s over start-up)")
    print(f"one resolved model adds: {baseline['loralint check one_file.py'][1] - baseline['  same, model not resolvable'][1]:.3f} s (median)")


if __name__ == "__main__":
    main()
