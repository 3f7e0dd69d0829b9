"""What any `loralint check` written in Python on the standard library's `ast` must spend on a tree,
against what ruff spends on the whole job, measured in one run.

    python benchmarks/floors.py TREE [TREE ...] [--repeat 5]

For each tree:
  - start-up: `python -c pass`, and a Python that imports only the modules outside loralint that
    `loralint check` imports on that tree (click, pathlib, json, ast, PyYAML, ...: found by running it
    with -X importtime), so loralint's own modules and work are left out;
  - parsing: the CPU time of `json.loads` of each candidate notebook and `ast.parse` of each candidate
    Python file and notebook code cell (the files loralint's prefilter lets through, each of which it
    must parse to report LORA901), in this process;
  - ruff: `ruff check --isolated --no-cache`, wall and CPU.
The floor is start-up plus parsing spread perfectly over the machine's cores; "floor/ruff" is how far
from ruff a loralint that did nothing but start and parse would be. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_trees import loralint_cmd, timed  # benchmarks/, this script's folder, is on sys.path

_LIST_MODULES = """
import json, sys
before = set(sys.modules)
sys.argv = ["loralint", "check", "--no-cache", "-q", "--exit-zero", "."]
from loralint.cli import main
try:
    main()
except SystemExit:
    pass
sys.stdout = sys.__stdout__
print(json.dumps([m for m in sys.modules if m not in before and m.split(".")[0] != "loralint"]))
"""


def outside_modules(tree: Path) -> list[str]:
    """The modules outside loralint that a cold `loralint check` of `tree` loads (in load order)."""
    cmd, env = loralint_cmd(REPO)
    run = subprocess.run([cmd[0], "-c", _LIST_MODULES], cwd=tree, env=env, capture_output=True, text=True,
                         check=False)
    return json.loads(run.stdout.splitlines()[-1])


def parse_cpu(tree: Path) -> tuple[int, float]:
    """(files, CPU seconds) of the parsing any extraction must do on the prefilter's candidates."""
    from loralint.engine import Options, discover_files
    from loralint.extract import is_candidate
    from loralint.settings import discover_settings

    settings = discover_settings([tree], None)
    sources = discover_files([str(tree)], settings, Options()).files
    todo = []
    for source in sources:
        try:
            data = Path(source.path).read_bytes()
        except OSError:
            continue
        if source.fmt in ("python", "notebook") and is_candidate(data, source.fmt):
            todo.append((source.fmt, data))
    start = time.process_time()
    for fmt, data in todo:
        try:
            if fmt == "python":
                ast.parse(data)
                continue
            for cell in json.loads(data).get("cells", []):
                if cell.get("cell_type") == "code":
                    source = cell.get("source")
                    ast.parse("".join(source) if isinstance(source, list) else source or "")
        except (SyntaxError, ValueError, AttributeError, TypeError):
            pass  # a magic line or a broken file: its share of the floor is left out
    return len(todo), time.process_time() - start


def best_and_median(cmd: list[str], cwd: Path, env: dict[str, str], repeat: int) -> tuple[float, float, float]:
    runs = [timed(cmd, cwd, env) for _ in range(repeat)]
    walls = [w for w, _ in runs]
    return min(walls), statistics.median(walls), statistics.median(c for _, c in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ruff = shutil.which("ruff")
    cores = os.cpu_count() or 1
    python, env = sys.executable, loralint_cmd(REPO)[1]  # bytecode kept, as for an installed copy
    print(f"{cores} cores; {python}")
    for tree in args.trees:
        tree = tree.resolve()
        modules = outside_modules(tree)
        start = best_and_median([python, "-c", "pass"], tree, env, args.repeat)
        # One at a time, as the run loads them; a module that cannot be imported alone is left out.
        load = "".join(f"try: import {m}\nexcept Exception: pass\n" for m in modules)
        imports = best_and_median([python, "-c", load], tree, env, args.repeat)
        files, parse = parse_cpu(tree)
        print(f"\n{tree} ({files} Python/notebook candidates)")
        print(f"  python -c pass                  best {start[0]:6.3f} s  median {start[1]:6.3f} s")
        print(f"  import of {len(modules):2d} outside modules   best {imports[0]:6.3f} s  median {imports[1]:6.3f} s"
              f"  ({', '.join(m for m in modules if '.' not in m)})")
        print(f"  parsing the candidates          cpu  {parse:6.3f} s  ({parse / cores:.3f} s on {cores} cores)")
        floor = imports[0] + parse / cores
        print(f"  floor: start-up + parsing       wall {floor:6.3f} s")
        if ruff:
            r = best_and_median([ruff, "check", "--isolated", "--no-cache", "--exit-zero", "-q", "."], tree, env,
                                args.repeat)
            print(f"  ruff cold                       best {r[0]:6.3f} s  median {r[1]:6.3f} s  cpu {r[2]:.3f} s")
            print(f"  floor/ruff: {floor / r[0]:.2f}x")


if __name__ == "__main__":
    main()
