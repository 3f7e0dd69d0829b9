"""Time `loralint verify` on a Llama-3.1-70B-shaped config against the same work written by hand.

    python benchmarks/bench_verify.py [--repeat 5] [--model benchmarks/models/llama-3.1-70b]

Both sides run in fresh child processes, alternately, --repeat times each:
  - loralint: `loralint verify --output-format json` on a training script whose base model is the
    config folder (r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM");
  - baseline: a few lines of transformers + peft that do the same by hand: config.json →
    AutoModelForCausalLM.from_config on the meta device → get_peft_model(low_cpu_mem_usage=True)
    → get_nb_trainable_parameters().
For each: wall time, peak resident memory (os.wait4's rusage of that child), the time spent
importing torch/transformers/peft (measured inside the child), and the time after those imports
(wall minus that import time: interpreter start, loralint's own stages, building, PEFT, output).
Both sides must report the same counts. Goals: loralint within 1.2x of the baseline, under 1 GB
peak memory, under 1 s of work after imports. Nothing is asserted; the numbers belong in notes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "models" / "llama-3.1-70b"

TRAIN = '''\
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

model = AutoModelForCausalLM.from_pretrained({model!r})
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
model = get_peft_model(model, config)
'''

BASELINE = '''\
import json, sys, time
start = time.perf_counter()
import torch
import transformers
import peft
imported = time.perf_counter()
from transformers import AutoConfig, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model

config = AutoConfig.from_pretrained(sys.argv[1])
with torch.device("meta"):
    model = AutoModelForCausalLM.from_config(config)
built = time.perf_counter()
peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"),
                            low_cpu_mem_usage=True)
trainable, total = peft_model.get_nb_trainable_parameters()
done = time.perf_counter()
print(json.dumps({"trainable": trainable, "total": total, "import": imported - start,
                  "build": built - imported, "peft": done - built}))
'''


def run_measured(argv: list[str], cwd: Path) -> tuple[float, float, str, str]:
    """(wall seconds, peak RSS in MiB, stdout, stderr) of one fresh process; the peak is that
    child's own (os.wait4), not the cumulative RUSAGE_CHILDREN."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out_file, stderr=err_file, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(), err_file.read().decode()
    peak_mib = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return wall, peak_mib, out, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    model = args.model.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        work = Path(tmp)
        (work / "train.py").write_text(TRAIN.format(model=str(model)))
        (work / "baseline.py").write_text(BASELINE)
        loralint = [sys.executable, "-c", "from loralint.cli import main; main()", "verify", "--output-format", "json",
                    "--no-cache", "train.py"]
        baseline = [sys.executable, "baseline.py", str(model)]
        rows: dict[str, list[dict]] = {"loralint": [], "baseline": []}
        for i in range(args.repeat):
            for name, argv in (("baseline", baseline), ("loralint", loralint)):
                wall, peak, out, err = run_measured(argv, work)
                try:
                    data = json.loads(out)
                except ValueError:
                    sys.exit(f"{name} failed:\n{out}\n{err}")
                if name == "loralint":
                    (config,) = data["configs"]
                    counts = (config["trainable_params"], config["total_params"])
                    imported = data["timings"]["import"]
                    phases = {"verify": data["timings"]["verify"], "build": data["timings"].get("build", 0.0),
                              "peft": data["timings"].get("peft", 0.0)}
                else:
                    counts = (data["trainable"], data["total"])
                    imported = data["import"]
                    phases = {"verify": data["build"] + data["peft"], "build": data["build"], "peft": data["peft"]}
                rows[name].append({"wall": wall, "peak": peak, "import": imported, "after": wall - imported,
                                   "counts": counts, **phases})
                print(f"run {i + 1} {name:<8} wall {wall:6.2f} s  peak {peak:7.1f} MiB  imports {imported:5.2f} s  "
                      f"after imports {wall - imported:5.2f} s  (build {phases['build']:.2f} s, PEFT {phases['peft']:.2f} s)"
                      f"  counts {counts[0]:,} / {counts[1]:,}", flush=True)
    ours, theirs = rows["loralint"], rows["baseline"]
    assert {r["counts"] for r in ours} == {r["counts"] for r in theirs}, "loralint and PEFT disagree"

    def summary(rs: list[dict], key: str) -> str:
        values = [r[key] for r in rs]
        return f"best {min(values):.3f}, median {statistics.median(values):.3f}"

    print()
    for key, unit in (("wall", "s"), ("after", "s"), ("verify", "s"), ("peak", "MiB")):
        print(f"{key:<7} loralint {summary(ours, key)} {unit} | baseline {summary(theirs, key)} {unit}")
    ratio = statistics.median(r["wall"] for r in ours) / statistics.median(r["wall"] for r in theirs)
    print(f"\nmedian wall ratio loralint / baseline: {ratio:.2f}x (goal ≤ 1.2x)")
    print(f"median peak RSS of loralint: {statistics.median(r['peak'] for r in ours):.0f} MiB (goal < 1024 MiB)")
    print(f"median work after imports (loralint): {statistics.median(r['after'] for r in ours):.2f} s (goal < 1 s); "
          f"verify stage alone {statistics.median(r['verify'] for r in ours):.2f} s")
    print(f"counts: {ours[0]['counts'][0]:,} trainable of {ours[0]['counts'][1]:,}")


if __name__ == "__main__":
    main()
