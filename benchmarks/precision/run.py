"""Precision corpus: run loralint over local copies of public LoRA code and score it against judged verdicts.

    python benchmarks/precision/run.py [--root /tmp/corpus] [--repo peft --repo trl ...]
        [--checkout-from /work/.mirror] [--save DIR | --reports DIR] [--write-unjudged FILE] [--list-gone]

repositories.tsv names the repositories (owner/name, folder under --root, commit, kind); manifest.tsv
holds one verdict a finding: repository, commit, path, line, code, verdict (true|debatable|false), reason.
For each repository this runs `loralint check --output-format json --no-cache .` in its folder, records
the commit it found there, and prints one row:
  - warnings and errors outside test folders: true / debatable / false / unjudged, and the false rate
    (false over judged);
  - the same inside test folders, where error-level findings inside `pytest.raises`/`pytest.warns`
    (or unittest's assertRaises/assertWarns) are counted apart: the test builds a wrong config on purpose;
  - info-level findings: how many, how many judged (info is judged by sample).
Findings match verdicts by (repository, path, line, code) and nothing else: a finding that moved is
unjudged. Unjudged warnings and errors are listed; so are verdicts whose finding is gone (--list-gone),
since a vanished true finding is lost recall. Nothing here is asserted: the numbers belong in notes.

--checkout-from makes the missing folders from bare git snapshots (`<dir>/<owner>+<name>/repo`, as the
session `fetch` tool leaves them) as detached worktrees at the manifest's commit, leaving out the blobs
a snapshot lacks (large data files). The corpus is read, never executed or imported, and never copied
into this project.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERDICTS = ("true", "debatable", "false")
MANIFEST_COLUMNS = ("repository", "commit", "path", "line", "code", "verdict", "reason")
# Context managers and calls inside which a test builds a wrong configuration on purpose.
EXPECTS_FAILURE = {"raises", "warns", "assertRaises", "assertRaisesRegex", "assertWarns", "assertWarnsRegex"}

Key = tuple[str, str, int, str]  # repository, path, line, code


@dataclass(frozen=True)
class Repository:
    name: str  # owner/name
    folder: str
    commit: str
    kind: str


@dataclass(frozen=True)
class Verdict:
    commit: str
    verdict: str
    reason: str


@dataclass
class Row:
    repo: Repository
    commit: str | None = None
    exit_code: int | None = None
    seconds: float = 0.0
    files: int = 0
    configs: int = 0  # configurations found: recall, which verdicts do not measure
    outside: Counter = field(default_factory=Counter)
    tests: Counter = field(default_factory=Counter)
    on_purpose: int = 0
    info: int = 0
    info_judged: int = 0
    unjudged: list[dict] = field(default_factory=list)
    gone: list[tuple[Key, Verdict]] = field(default_factory=list)
    problem: str | None = None


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(
            (line for line in handle if line.strip() and not line.startswith("#")),
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
        )
        return list(rows)


def read_repositories(path: Path) -> list[Repository]:
    return [Repository(r["repository"], r["folder"], r["commit"], r["kind"]) for r in read_tsv(path)]


def read_manifest(path: Path) -> dict[Key, Verdict]:
    verdicts: dict[Key, Verdict] = {}
    for number, r in enumerate(read_tsv(path), start=2):
        if r["verdict"] not in VERDICTS:
            sys.exit(f"{path}:{number}: verdict must be one of {', '.join(VERDICTS)}, not {r['verdict']!r}")
        key = (r["repository"], r["path"], int(r["line"]), r["code"])
        if key in verdicts:
            sys.exit(f"{path}:{number}: a second verdict for {key}")
        verdicts[key] = Verdict(r["commit"], r["verdict"], r["reason"])
    return verdicts


def tree_commit(folder: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(folder), "rev-parse", "HEAD"], check=False, capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else None


def checkout(repo: Repository, mirrors: Path, folder: Path) -> str | None:
    """A detached worktree at repo.commit; blobs the snapshot lacks stay out of it (sparse)."""
    gitdir = mirrors / repo.name.replace("/", "+") / "repo"
    if not gitdir.is_dir():
        return f"no snapshot at {gitdir}"
    git = ["git", "--git-dir", str(gitdir)]
    listing = subprocess.run([*git, "ls-tree", "-r", "-z", repo.commit], check=False, capture_output=True)
    if listing.returncode:
        return f"commit {repo.commit} is not in {gitdir}"
    entries = [e.split(b"\t", 1) for e in listing.stdout.split(b"\0") if e]
    blobs = [
        (meta.split()[2].decode(), path.decode()) for meta, path in entries if meta.split()[1] == b"blob"
    ]
    present = subprocess.run(
        [*git, "cat-file", "--batch-check"],
        input="\n".join(s for s, _ in blobs) + "\n",
        check=False,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    missing = [path for (_, path), line in zip(blobs, present) if line.endswith("missing")]
    if subprocess.run(
        [*git, "worktree", "add", "--detach", "--no-checkout", str(folder), repo.commit],
        check=False,
        capture_output=True,
    ).returncode:
        return f"git worktree add {folder} failed"
    patterns = ["/*", *(f"!/{path}" for path in missing)]
    subprocess.run(
        ["git", "-C", str(folder), "sparse-checkout", "set", "--no-cone", "--stdin"],
        input="\n".join(patterns) + "\n",
        check=False,
        capture_output=True,
        text=True,
    )
    subprocess.run(
        ["git", "-C", str(folder), "checkout", "-q", repo.commit], check=False, capture_output=True
    )
    return None


def loralint_command() -> list[str]:
    beside = Path(sys.executable).with_name("loralint")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "loralint"]


def in_test_folder(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return (
        any(part.startswith("test") for part in parts[:-1])
        or name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
    )


class ExpectedFailures:
    """Line ranges, per file, of `with pytest.raises(...)` / `pytest.warns` blocks and calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ranges: dict[str, list[tuple[int, int]]] = {}

    def covers(self, path: str, line: int) -> bool:
        if path not in self.ranges:
            self.ranges[path] = self._scan(self.root / path)
        return any(start <= line <= end for start, end in self.ranges[path])

    @staticmethod
    def _scan(file: Path) -> list[tuple[int, int]]:
        try:
            tree = ast.parse(file.read_bytes())  # parsed, never run
        except (OSError, SyntaxError, ValueError):
            return []
        ranges = []
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
                continue
            blocks = [
                node
                for node in ast.walk(function)
                if isinstance(node, (ast.With, ast.AsyncWith))
                and any(expects_failure(item.context_expr) for item in node.items)
            ]
            calls = [
                node
                for node in ast.walk(function)
                if isinstance(node, ast.Call) and expects_failure(node) and len(node.args) > 1
            ]  # pytest.raises(E, fn, *args)
            ranges += [(node.lineno, node.end_lineno or node.lineno) for node in blocks + calls]
            # A config built first and used inside the block (`cfg = {...}`, then `LoraConfig(**cfg)`)
            # is on purpose too.
            used = {
                name.id for node in blocks + calls for name in ast.walk(node) if isinstance(name, ast.Name)
            }
            for node in ast.walk(function) if not isinstance(function, ast.Module) else ():
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id in used for t in node.targets
                ):
                    ranges.append((node.lineno, node.end_lineno or node.lineno))
        return ranges


def expects_failure(node: ast.expr) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    return name in EXPECTS_FAILURE


def run_one(
    repo: Repository,
    folder: Path,
    verdicts: dict[Key, Verdict],
    save: Path | None,
    reports: Path | None = None,
) -> Row:
    row = Row(repo, commit=tree_commit(folder))
    if reports:  # score a report saved by an earlier --save, without running loralint again
        try:
            report = json.loads((reports / f"{repo.folder}.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            row.problem = f"no saved report: {error}"
            return row
    else:
        start = time.perf_counter()
        done = subprocess.run(
            [*loralint_command(), "check", "--output-format", "json", "--no-cache", "."],
            cwd=folder,
            check=False,
            capture_output=True,
            text=True,
        )
        row.seconds = time.perf_counter() - start
        row.exit_code = done.returncode
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            row.problem = f"exit {done.returncode}, no JSON report: {done.stderr.strip()[-300:]}"
            return row
    if save:
        save.mkdir(parents=True, exist_ok=True)
        (save / f"{repo.folder}.json").write_text(json.dumps(report, indent=1))
    row.files = report.get("files_checked", 0)
    row.configs = len(report.get("configs", []))
    expected = ExpectedFailures(folder)
    seen: set[Key] = set()
    for d in report["diagnostics"]:
        key = (repo.name, d["path"], d["line"], d["code"])
        seen.add(key)
        verdict = verdicts.get(key)
        if d["severity"] == "info":
            row.info += 1
            row.info_judged += verdict is not None
            continue
        testing = in_test_folder(d["path"])
        if testing and d["severity"] == "error" and expected.covers(d["path"], d["line"]):
            row.on_purpose += 1
            continue
        bucket = row.tests if testing else row.outside
        bucket[verdict.verdict if verdict else "unjudged"] += 1
        if verdict is None:
            row.unjudged.append(d)
    row.gone = [(k, v) for k, v in verdicts.items() if k[0] == repo.name and k not in seen]
    return row


def rate(counts: Counter) -> str:
    judged = sum(counts[v] for v in VERDICTS)
    return f"{100 * counts['false'] / judged:5.1f}%" if judged else "    -"


def cells(counts: Counter) -> str:
    total = sum(counts.values())
    return (
        f"{total:5d} {counts['true']:5d} {counts['debatable']:5d} {counts['false']:5d} "
        f"{counts['unjudged']:5d} {rate(counts)}"
    )


def print_table(rows: list[Row]) -> None:
    columns = f"{'W+E':>5} {'true':>5} {'deb.':>5} {'false':>5} {'unjd.':>5} {'false%':>6}"
    print(f"{'':<45} {'':<8} | {'outside test folders':<36} | {'in test folders':<43} | info        | found")
    print(
        f"{'repository':<45} {'commit':<8} | {columns} | {columns} {'raises':>6} "
        f"| {'all':>4} {'judged':>6} | configs"
    )
    total_out, total_tests, on_purpose, info, info_judged, configs = Counter(), Counter(), 0, 0, 0, 0
    for row in rows:
        commit = (row.commit or "no git")[:8]
        if row.problem:
            print(f"{row.repo.name:<45} {commit:<8} | {row.problem}")
            continue
        print(
            f"{row.repo.name:<45} {commit:<8} | {cells(row.outside)} | {cells(row.tests)} {row.on_purpose:6d} "
            f"| {row.info:4d} {row.info_judged:6d} | {row.configs:7d}"
        )
        total_out += row.outside
        total_tests += row.tests
        on_purpose += row.on_purpose
        info += row.info
        info_judged += row.info_judged
        configs += row.configs
    print(
        f"{'all':<45} {'':<8} | {cells(total_out)} | {cells(total_tests)} {on_purpose:6d} "
        f"| {info:4d} {info_judged:6d} | {configs:7d}"
    )
    print(
        "raises: error-level findings on configs a test uses inside pytest.raises/warns (on purpose, not judged "
        "in the columns); false%: false over judged"
    )


def write_unjudged(rows: list[Row], target: Path) -> None:
    """Unjudged findings in the manifest's columns, the verdict left empty and the message as a hint."""
    with target.open("w", encoding="utf-8") as handle:
        handle.write("\t".join(MANIFEST_COLUMNS) + "\tseverity\tmessage\n")
        for row in rows:
            for d in row.unjudged:
                message = " ".join(d["message"].split())
                handle.write(
                    f"{row.repo.name}\t{row.commit or row.repo.commit}\t{d['path']}\t{d['line']}\t"
                    f"{d['code']}\t\t\t{d['severity']}\t{message}\n"
                )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=Path("/tmp/corpus"), help="folder of the local copies")
    parser.add_argument("--repositories", type=Path, default=HERE / "repositories.tsv")
    parser.add_argument("--manifest", type=Path, default=HERE / "manifest.tsv")
    parser.add_argument("--repo", action="append", default=[], help="only these (folder or owner/name)")
    parser.add_argument("--checkout-from", type=Path, help="make missing folders from bare snapshots here")
    parser.add_argument("--save", type=Path, help="keep each repository's JSON report in this folder")
    parser.add_argument(
        "--reports", type=Path, help="score the reports an earlier --save kept, without running loralint"
    )
    parser.add_argument("--write-unjudged", type=Path, help="write unjudged warnings/errors as manifest rows")
    parser.add_argument("--list-gone", action="store_true", help="list verdicts whose finding is gone")
    args = parser.parse_args()

    if not shutil.which("git"):
        sys.exit("git is needed to read each copy's commit")
    verdicts = read_manifest(args.manifest)
    repos = [
        r
        for r in read_repositories(args.repositories)
        if not args.repo or r.folder in args.repo or r.name in args.repo
    ]
    rows = []
    for repo in repos:
        folder = args.root / repo.folder
        if not folder.is_dir() and args.checkout_from:
            problem = checkout(repo, args.checkout_from, folder)
            if problem:
                rows.append(Row(repo, problem=problem))
                continue
        if not folder.is_dir():
            rows.append(Row(repo, problem=f"no copy at {folder} (see --checkout-from)"))
            continue
        print(f"checking {repo.name} ...", file=sys.stderr, flush=True)
        rows.append(run_one(repo, folder, verdicts, args.save, args.reports))

    print_table(rows)
    for row in rows:
        if row.commit and row.commit != row.repo.commit:
            print(
                f"note: {row.repo.name} is at {row.commit[:12]}, "
                f"the verdicts were made at {row.repo.commit[:12]}"
            )
        if row.exit_code not in (None, 0, 1):
            print(f"note: {row.repo.name}: loralint exited {row.exit_code}")
    unjudged = [(row, d) for row in rows for d in row.unjudged]
    if unjudged:
        print(f"\nunjudged warnings and errors ({len(unjudged)}):")
        for row, d in unjudged:
            message = " ".join(d["message"].split())
            print(f"  {row.repo.name} {d['path']}:{d['line']} {d['code']} {d['severity']}: {message[:140]}")
    gone = [(k, v) for row in rows for k, v in row.gone]
    if gone:
        print(f"\nverdicts whose finding is gone: {dict(Counter(v.verdict for _, v in gone))}")
        if args.list_gone:
            for (repo, path, line, code), v in gone:
                print(f"  {repo} {path}:{line} {code} was {v.verdict}: {v.reason}")
    if args.write_unjudged:
        write_unjudged(rows, args.write_unjudged)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
