"""The extraction cache lives in the checked tree, which a stranger controls: it never writes or
deletes through a link, never deletes what it did not make, never runs what it reads, and treats
anything it cannot verify as a miss. Every test runs the real CLI twice or more and compares what
the user sees with a run that has no cache at all."""

from __future__ import annotations

import math
import os
import pickle
import re
import shutil
import stat
from pathlib import Path

import pytest
from helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from loralint import cache_format
from loralint.sites import ConfigSite, Diagnostic, Field, FileResult, Fix, Hints, Span, TextEdit, Unknown

TRAIN = '''\
from peft import LoraConfig
bad = LoraConfig(r=8, lora_alpah=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
odd = LoraConfig(r=4, lora_alpha=1e400, target_modules={"k_proj", "o_proj"}, rank_pattern={"q_proj": 2},
                 layers_to_transform=(0, 1), modules_to_save=None, lora_dropout=0.05)  # loralint: ignore[LORA102]
'''
AXOLOTL = """\
base_model: acme/tiny
adapter: lora
lora_r: 8
lora_alpha: .inf
lora_dropout: .nan
lora_target_modules: [q_proj, v_proj]
created: 2024-01-02
"""
ENTRY = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[tool.loralint]\n")
    (root / "train.py").write_text(TRAIN)
    (root / "axolotl.yml").write_text(AXOLOTL)
    return root


@pytest.fixture
def env(tmp_path):
    return {"XDG_CACHE_HOME": str(tmp_path / "user-cache")}  # the per-user key lives outside the project


@pytest.fixture
def check(env, bounded):
    """check(project, *args): `loralint check --output-format json ARGS .`, in process (fast), or
    with `process=True` in a bounded subprocess (where a regression could hang: a FIFO read)."""

    def _check(project: Path, *args: str, output: str = "json", environment: dict | None = None, process: bool = False):
        argv = ["check", "--output-format", output, *args, "."]
        if process:
            run = bounded(argv, cwd=project, env={**(environment or env), "PYTHONHASHSEED": "0"})
            assert not run.traceback, run.stderr
        else:
            run = run_cli(argv, cwd=project, env=environment or env)
        assert run.exit_code in (0, 1), run.stderr
        assert "LORA904" not in run.stdout
        return run

    return _check


def entries(project: Path) -> list[Path]:
    cache = project / ".loralint_cache"
    return sorted(p for p in cache.rglob("*") if ENTRY.match(p.name)) if cache.is_dir() and not cache.is_symlink() else []


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` with its kind, content and modification time, links not followed."""
    found = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else os.readlink(path) if path.is_symlink() else None
        found[str(path.relative_to(root))] = (stat.S_IFMT(info.st_mode), content, info.st_mtime_ns)
    return found


def outside_tree(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    for name in ("victim", "0.1.0-1-0123456789ab", "0.1.0-2-0123456789ab"):  # look like stale cache versions
        (outside / name).mkdir(parents=True)
        (outside / name / "keep.txt").write_text("precious\n")
        (outside / name / ".loralint-cache-dir").write_text("loralint cache directory\n")
    (outside / "file.txt").write_text("precious\n")
    return outside


def test_results_are_the_same_from_the_cache_and_the_second_run_reads_it(check, project, env):
    fresh = check(project, "--no-cache")
    first = check(project)
    written = entries(project)
    assert len(written) == 4  # per candidate file: its extraction and its checked findings
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in written}
    second = check(project)
    assert first.stdout == fresh.stdout and second.stdout == fresh.stdout
    assert first.exit_code == second.exit_code == fresh.exit_code == 1
    # A miss rewrites its entry (a new file renamed into place): untouched entries were read, not recomputed.
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in entries(project)} == before
    text = [check(project, *args, output="text").stdout for args in ((), ("--no-cache",))]
    assert text[0] == text[1]
    cache = project / ".loralint_cache"
    assert (cache / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert (cache / ".gitignore").read_text().strip().endswith("*")


@pytest.mark.parametrize("where", ["cache", "version", "shard", "entry"])
def test_nothing_is_written_or_deleted_through_a_link(check, project, env, tmp_path, where):
    fresh = check(project, "--no-cache")
    outside = outside_tree(tmp_path)
    if where == "cache":
        (project / ".loralint_cache").symlink_to(outside, target_is_directory=True)
    else:
        check(project)
        entry = entries(project)[0]
        target = {"version": entry.parent.parent, "shard": entry.parent, "entry": entry}[where]
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.symlink_to(outside / "file.txt" if where == "entry" else outside)
    before = snapshot(outside)
    for _ in range(2):
        run = check(project)
        assert run.stdout == fresh.stdout and run.stderr.strip() == ""
    assert snapshot(outside) == before


def test_a_planted_pickle_entry_is_never_executed(check, project, env, tmp_path):
    fresh = check(project, "--no-cache")
    check(project)
    proof = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(proof), "w"))

    planted = pickle.dumps(Payload())
    for entry in entries(project):
        entry.write_bytes(planted)
    run = check(project)
    assert not proof.exists()
    assert run.stdout == fresh.stdout
    assert all(entry.read_bytes() != planted for entry in entries(project))  # replaced by a real entry


def test_an_edited_entry_is_not_trusted(check, project, env):
    """A value changed inside a genuine entry (what a planted or corrupted one amounts to) is a miss."""
    fresh = check(project, "--no-cache")
    check(project)
    for entry in entries(project):
        header, mac, payload = entry.read_bytes().split(b"\n", 2)
        # Every digit of the payload (positions, ranks, alphas) one up, the MAC kept: editing the MAC's
        # random hex too would make this depend on what digits it happens to hold.
        edited = re.sub(rb"\d", lambda m: b"%d" % ((int(m.group()) + 1) % 10), payload)
        assert edited != payload
        entry.write_bytes(b"\n".join((header, mac, edited)))
    run = check(project)
    assert run.stdout == fresh.stdout and "lora_alpah" in run.stdout


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "flipped", "huge", "fifo", "directory", "wrong-version"])
def test_a_damaged_entry_is_a_miss(check, project, env, damage):
    process = damage == "fifo"  # reading a FIFO blocks forever: a regression must fail, not hang the suite
    fresh = check(project, "--no-cache", process=process)
    check(project)
    for entry in entries(project):
        data = entry.read_bytes()
        if damage in ("fifo", "directory"):
            entry.unlink()
            os.mkfifo(entry) if damage == "fifo" else entry.mkdir()
            continue
        with entry.open("r+b") as handle:
            if damage == "truncated":
                handle.truncate(len(data) // 2)
            elif damage == "empty":
                handle.truncate(0)
            elif damage == "garbage":
                handle.write(os.urandom(len(data)))
            elif damage == "flipped":
                handle.seek(len(data) - 10)
                handle.write(bytes([data[-10] ^ 1]))
            elif damage == "huge":
                handle.truncate(64 * 1024 * 1024)  # sparse: no disk used, but over the entry size limit
            elif damage == "wrong-version":
                handle.write(data.replace(b"loralint-cache ", b"loralint-cache 9", 1))
    for _ in range(2):  # the miss, then whatever the miss rewrote
        run = check(project, process=process)
        assert run.stdout == fresh.stdout and run.stderr.strip() == ""


def test_only_directories_loralint_made_are_pruned(check, project, env):
    check(project)
    cache = project / ".loralint_cache"
    [version] = [p for p in cache.iterdir() if p.is_dir()]
    # A version directory loralint made, now stale: renamed as an older version would be named.
    stale = version.rename(cache / "0.0.1-2-000000000000")
    foreign = cache / "0.0.1-1-111111111111"
    forged = cache / "0.0.1-2-222222222222"
    for directory in (foreign, forged):
        directory.mkdir()
        (directory / "keep.txt").write_text("not loralint's\n")
    (forged / ".loralint-cache-dir").write_text("loralint cache directory\n" + "0" * 128 + "\n")
    (cache / "notes.txt").write_text("mine\n")
    check(project)  # makes the current version again, and prunes
    assert not stale.exists()
    assert (foreign / "keep.txt").exists() and (forged / "keep.txt").exists() and (cache / "notes.txt").exists()
    assert version.is_dir()


@pytest.mark.parametrize("problem", ["world-writable", "someone else's"])
def test_a_cache_directory_that_is_not_safely_ours_is_not_used(check, project, env, problem):
    if problem == "someone else's" and os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    fresh = check(project, "--no-cache")
    cache = project / ".loralint_cache"
    cache.mkdir()
    if problem == "world-writable":
        cache.chmod(0o777)
    else:
        os.chown(cache, 4242, 4242)
    run = check(project)
    assert run.stdout == fresh.stdout and run.stderr.strip() == ""
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("problem", ["a file in the way", "no place for the key"])
def test_a_cache_that_cannot_be_made_is_skipped_quietly(check, project, env, tmp_path, problem):
    fresh = check(project, "--no-cache")
    if problem == "a file in the way":
        (project / ".loralint_cache").write_text("a file where the cache directory would be\n")
    else:
        (tmp_path / "not-a-dir").write_text("")
        env = {**env, "XDG_CACHE_HOME": str(tmp_path / "not-a-dir")}
    for _ in range(2):
        run = check(project, environment=env)
        assert run.stdout == fresh.stdout and run.stderr.strip() == ""
    assert entries(project) == []


# -- the entry format: every kind of value round-trips exactly ----------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.binary(max_size=4), st.complex_numbers(allow_nan=False), st.just(Ellipsis), st.dates(), st.datetimes(),
    st.builds(Unknown, st.text(max_size=8)),
)
_hashable = st.recursive(_scalars, lambda inner: st.one_of(st.tuples(inner, inner), st.frozensets(inner, max_size=3)), max_leaves=6)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner), st.sets(_hashable, max_size=3), st.frozensets(_hashable, max_size=3),
        st.dictionaries(_hashable, inner, max_size=3),
    ),
    max_leaves=12,
)


def _same(a, b) -> bool:
    """Equal, of the same types all the way down (nan equals nan, 1 is not 1.0 nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, (set, frozenset)):
        return len(a) == len(b) and all(any(_same(x, y) for y in b) for x in a)
    if isinstance(a, dict):
        return _same(list(a.items()), list(b.items()))
    if hasattr(a, "__dataclass_fields__"):
        return all(_same(getattr(a, name), getattr(b, name)) for name in a.__dataclass_fields__)
    return a == b


def _rich_result(value) -> FileResult:
    span = Span("dir/t.py", 3, 5, 3, 12)
    field = Field("r", value, span, Span("t.py", 3, 1, 3, 12), "constant R (line 1)", "lora_r", [(value, span), ("q", span)])
    hints = Hints(dataset_size=field, quantization="4bit", quantization_span=span, bnb_config={"load_in_4bit": True, 1: (2, 3)},
                  applied=["get_peft_model"], applied_span=span, reapplied=[span], kbit_prepared_after=span,
                  calls=frozenset({"get_peft_model"}), model_class="AutoModelForCausalLM")
    site = ConfigSite(path="dir/t.py", span=span, origin="peft.LoraConfig", fields={"r": field}, unknown_args=[field],
                      defaults={"lora_alpha": value}, base_model=field, hints=hints, opaque="**kwargs",
                      extra_known=frozenset({"random_state"}), syntax="yaml", append_at=span)
    fix = Fix("rename", [TextEdit(span, "lora_alpha")], "unsafe")
    diagnostic = Diagnostic("LORA001", "unknown-argument", "error", "msg \x1b]0;x\x07", span, fix, [(span, "here")])
    return FileResult("dir/t.py", [site, site], [diagnostic], {3: (frozenset({"LORA101"}), span), 4: (None, span)})


@settings(max_examples=150, deadline=None)
@given(_values)
def test_every_value_round_trips_through_an_entry_exactly(value):
    result = _rich_result(value)
    assert _same(cache_format.loads(cache_format.dumps(result)), result)


def test_values_the_format_does_not_hold_are_not_cached():
    with pytest.raises(cache_format.FormatError):
        cache_format.dumps(_rich_result(object()))
    with pytest.raises((ValueError, TypeError)):
        cache_format.loads(b'{"FileResult":["t.py",[],[],{"d":[]}], "x": 1}')
    with pytest.raises((ValueError, TypeError)):
        cache_format.loads(b'{"Span":["t.py","1",1,1,2]}')


def test_a_frozenset_shared_by_sites_is_written_once_and_read_back_shared():
    # Extraction gives every site of a file one set of the names it calls: an entry holds it once.
    names = frozenset(f"call_{i}" for i in range(200))
    sites = [ConfigSite(path="t.py", span=Span("t.py", i, 1, i, 2), origin="peft.LoraConfig", hints=Hints(calls=names))
             for i in range(1, 30)]
    data = cache_format.dumps(FileResult("t.py", sites))
    assert data.count(b'"call_7"') == 1
    back = cache_format.loads(data)
    assert all(site.hints.calls == names for site in back.sites)
    assert len({id(site.hints.calls) for site in back.sites}) == 1


@pytest.mark.parametrize("reference", ['{"r":0}', '{"r":1}', '{"r":-1}', '{"r":"0"}', '{"r":0.0}', '{"r":true}'])
def test_a_reference_to_no_frozenset_written_before_it_is_refused(reference):
    valid = cache_format.dumps(FileResult("t.py", [ConfigSite(path="t.py", span=Span("t.py", 1, 1, 1, 2), origin="x",
                                                              hints=Hints(calls=frozenset({"a"})))]))
    assert b'{"f":["a"]}' in valid
    forged = valid.replace(b'{"f":["a"]}', reference.encode())  # the reference comes first: nothing to refer to
    with pytest.raises(cache_format.FormatError):
        cache_format.loads(forged)


def test_spans_of_one_file_write_its_path_once_and_read_back_exactly():
    sites = [ConfigSite(path="dir/t.py", span=Span("dir/t.py", i, 1, i, 9), origin="peft.LoraConfig",
                        base_model=Field("base", "m", Span("other.py", 2, 1, 2, 4) if i == 5 else Span("dir/t.py", i, 3, i, 5)))
             for i in range(1, 20)]
    result = FileResult("dir/t.py", sites)
    data = cache_format.dumps(result)
    # 38 spans: the sites' (the first names its file) and the fields' (bare, but the one in other.py)
    assert (data.count(b'{"Span":'), data.count(b'{"S":'), data.count(b'{"P":'), data.count(b'{"F":')) == (1, 18, 1, 19)
    assert _same(cache_format.loads(data), result)


def test_a_fields_spans_are_read_in_the_file_of_the_span_before_them_once_its_values_are():
    # The decoder meets a field after its values and items: their spans, in other files, must not move its own.
    items = [("q_proj", Span("b.py", 1, 1, 1, 2)), ("v_proj", Span("c.py", 2, 1, 2, 2)), ("k_proj", Span("c.py", 3, 1, 3, 2))]
    fields = {"target_modules": Field("target_modules", ["q_proj"], Span("a.py", 4, 1, 4, 9), Span("a.py", 4, 1, 4, 3),
                                      items=items),
              "r": Field("r", 8, Span("c.py", 5, 1, 5, 2), None, items=[(8, Span("a.py", 5, 3, 5, 4))]),
              "lora_alpha": Field("lora_alpha", Span("d.py", 1, 1, 1, 2), Span("d.py", 6, 1, 6, 2), Span("a.py", 6, 1, 6, 2))}
    result = FileResult("a.py", [ConfigSite(path="a.py", span=Span("a.py", 1, 1, 1, 2), origin="x", fields=fields)])
    data = cache_format.dumps(result)
    assert data.count(b'{"F":') == 3 and data.count(b'{"P":') >= 2
    assert _same(cache_format.loads(data), result)


@pytest.mark.parametrize("span", ['{"S":[1,1,1,2]}', '{"S":["t.py",1,1,1,2]}', '{"S":[1,1,1,"2"]}', '{"S":[1,1,1]}'])
def test_a_span_that_names_no_file_is_refused(span):
    # Only a span after a span with its path may leave the path out.
    valid = cache_format.dumps(FileResult("t.py", [ConfigSite(path="t.py", span=Span("t.py", 1, 1, 1, 2), origin="x")]))
    assert b'{"Span":["t.py",1,1,1,2]}' in valid
    forged = valid.replace(b'{"Span":["t.py",1,1,1,2]}', span.encode())
    with pytest.raises(cache_format.FormatError):
        cache_format.loads(forged)
