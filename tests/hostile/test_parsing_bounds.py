"""Parsing and static evaluation stay bounded in depth, size and time, whatever a file holds.

Each test builds hostile Python, YAML and JSON on the fly next to an ordinary file, runs the real
CLI in a subprocess under an address-space limit (`bounded`), and checks what a user sees: a
LORA901 (what Python or the YAML/JSON parser itself rejects) or a LORA906 (a bound of loralint's),
never a segfault, a traceback or LORA904, and the ordinary file's finding still reported. The
tests go through the CLI only, so they hold for any Python front end.
"""

from __future__ import annotations

import json

# One line that makes each file a LoRA file (a name read, not only imported: a file that only imports
# LoraConfig holds nothing to check, and is not parsed).
HEAD = "import peft; LoraConfig = peft.LoraConfig\n"
# An ordinary file whose finding must survive every hostile neighbour: alpha/r = 0.25 is LORA101.
ORDINARY = HEAD + 'cfg = LoraConfig(r=16, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'
# Far more than a bounded run needs (~50-150 MB); far less than any of these inputs takes unbounded.
PEAK_MB = 600


def check(bounded, tmp_path, files: dict[str, str], *args: str) -> tuple[dict[str, list[dict]], dict]:
    """Write `files` and ordinary.py, run `check`, and return (path → diagnostics, the report)."""
    (tmp_path / "ordinary.py").write_text(ORDINARY)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    run = bounded(["check", "--no-cache", "--output-format", "json", *args, "."], tmp_path)
    assert not run.traceback, run.stderr[-3000:]
    assert run.exit_code == 1, (run.exit_code, run.stderr[-3000:])  # a segfault is negative, a crash 2
    assert run.peak_rss_mb < PEAK_MB, run.peak_rss_mb
    report = json.loads(run.stdout)
    by_path: dict[str, list[dict]] = {}
    for diag in report["diagnostics"]:
        by_path.setdefault(diag["path"], []).append(diag)
    assert [d["code"] for d in by_path.pop("ordinary.py")] == ["LORA101"]
    assert not [d for ds in by_path.values() for d in ds if d["code"] == "LORA904"], by_path
    return by_path, report


def codes(diagnostics: list[dict]) -> list[str]:
    return [d["code"] for d in diagnostics]


def test_deep_python_is_a_parse_error_or_an_analysis_limit_never_a_crash(bounded, tmp_path):
    deep_calls = "x = " + "f(" * 150 + "1" + ")" * 150  # valid Python (under CPython's 200 brackets)
    files = {
        # What CPython's own parser rejects: LORA901 with its position.
        "brackets.py": HEAD + "x = " + "[" * 1500 + "]" * 1500 + "\n",
        "parens.py": HEAD + "x = " + "(" * 1500 + "1" + ")" * 1500 + "\n",
        "braces.py": HEAD + "x = " + "{1: " * 1500 + "1" + "}" * 1500 + "\n",
        "calls.py": HEAD + "x = " + "f(" * 1500 + "1" + ")" * 1500 + "\n",
        "nots.py": HEAD + "x = " + "not " * 100_000 + "1\n",
        "minus.py": HEAD + "x = " + "-" * 100_000 + "1\n",
        "dots.py": HEAD + "x = a" + ".b" * 100_000 + "\n",
        "sum.py": HEAD + "x = 1" + "+1" * 100_000 + "\n",
        "defs.py": HEAD + "".join(" " * i + "def f():\n" for i in range(101)) + " " * 101 + "pass\n",
        # 99 nested functions is valid Python, and checked like any other file.
        "defs99.py": HEAD
        + "".join(" " * i + "def f():\n" for i in range(99))
        + " " * 99
        + ORDINARY.splitlines()[1]
        + "\n",
        # Invalid early, then deep: libcst must never see the rest (it segfaults on it).
        "py2_then_deep.py": HEAD + 'print "x"\nx = ' + "-" * 100_000 + "1\n",
        "py2_then_wide.py": HEAD + 'print "x"\nx = [' + ",".join(["0"] * 150_000) + "]\n",
        # Valid Python, deep or long: checked like any other file, within the program model's bounds.
        "deep_calls.py": HEAD + deep_calls + "\ncfg = LoraConfig(r=x, lora_alpha=0)\n",
        "and_chain.py": HEAD + "x = 1" + " and 1" * 20_000 + "\ncfg = LoraConfig(r=8, lora_alpha=0)\n",
        "elifs.py": HEAD + "if a: pass\n" + "elif a: pass\n" * 300 + "cfg = LoraConfig(r=8, lora_alpha=0)\n",
        "concatenated.py": HEAD + "x = " + "'a' " * 5000 + "\ncfg = LoraConfig(r=8, lora_alpha=0)\n",
    }
    found, _ = check(bounded, tmp_path, files)
    assert set(found) == set(files), set(files) - set(found)
    for name in ("brackets.py", "parens.py", "braces.py", "calls.py"):
        [diag] = found[name]
        assert (diag["code"], diag["line"]) == ("LORA901", 2), diag
        assert "too many nested parentheses" in diag["message"]
    for name in (
        "nots.py",
        "minus.py",
        "dots.py",
        "sum.py",
        "defs.py",
        "py2_then_deep.py",
        "py2_then_wide.py",
    ):
        assert codes(found[name]) == ["LORA901"], (name, found[name])
    for name in ("py2_then_deep.py", "py2_then_wide.py"):
        assert found[name][0]["line"] == 2, found[name]  # Python's own message and position
    for name in ("deep_calls.py", "and_chain.py", "elifs.py", "concatenated.py"):
        # The configuration after the deep or long code is still found (lora_alpha=0 is LORA012).
        assert "LORA012" in codes(found[name]), (name, found[name])
    assert codes(found["defs99.py"]) == ["LORA101"]


def test_huge_values_are_refused_before_they_are_built(bounded, tmp_path):
    # 2**60 characters if each use of a name were evaluated again.
    doubling = "".join(f"s{i + 1} = s{i} + s{i}\n" for i in range(60))
    hostile = (
        HEAD
        + (
            'a = LoraConfig(target_modules=["q_proj"] * 10**9)\n'
            'b = LoraConfig(target_modules="q" * 10**9)\n'
            "c = LoraConfig(r=10**10**10)\n"
            "d = LoraConfig(r=2**100000)\n"
            "e = LoraConfig(target_modules=list(range(10**9)))\n"
            "N = 10**9\n"
            'f = LoraConfig(target_modules="x" * N)\n'
            "g = LoraConfig(target_modules=f\"{'q' * 10**9}\")\n"
            'h = LoraConfig(target_modules="%0999999999d" % 1)\n'
            'i = LoraConfig(target_modules="{:>999999999}".format(1))\n'
            'j = LoraConfig(target_modules=str(int("9" * 5000)))\n'
            'k = LoraConfig(target_modules=",".join(str(n) for n in range(10**9)))\n'
            's0 = "q"\n' + doubling + "l = LoraConfig(target_modules=s60)\n"
            "n = LoraConfig(r=10**400, lora_alpha=16, use_rslora=True)\n"  # no float holds it: rules would fail
            'm = LoraConfig(r=8, target_modules=["q_proj"] * 2 + ["v_proj"])\n'
        )
    )
    found, report = check(bounded, tmp_path, {"huge.py": hostile})
    # LORA906 at each argument whose value was refused (the value stays unknown), none elsewhere.
    limited = sorted({d["line"] for d in found["huge.py"] if d["code"] == "LORA906"})
    last = len(hostile.splitlines())
    assert 2 in limited and 4 in limited and last not in limited, limited
    assert all("analysis limit" in d["message"] for d in found["huge.py"] if d["code"] == "LORA906")
    configs = [c for c in report["configs"] if c["path"] == "huge.py"]
    assert len(configs) == 14
    by_line = {c["line"]: c["fields"] for c in configs}
    assert by_line[2]["target_modules"] is None and by_line[4]["r"] is None  # unknown, not built
    assert by_line[last]["target_modules"] == ["q_proj", "q_proj", "v_proj"]  # ordinary values still known


def test_too_many_configurations_are_capped_and_the_rest_still_checked(bounded, tmp_path):
    files = {
        "many.py": HEAD + "LoraConfig()\n" * 10_001,
        "many.yaml": "---\nadapter: lora\n" * 10_001,
    }
    found, report = check(bounded, tmp_path, files, "--select", "LORA906,LORA101")
    for name in files:
        [diag] = found[name]
        assert diag["code"] == "LORA906", diag
        assert (
            "more than 10,000 configurations in one file; only the first 10,000 are checked"
            in diag["message"]
        )
        assert sum(1 for c in report["configs"] if c["path"] == name) == 10_000


def test_a_huge_python_file_is_refused_before_it_is_parsed(bounded, tmp_path):
    # 100,000 LoraConfig calls (~2 MB) took over ten minutes and gigabytes.
    found, _ = check(bounded, tmp_path, {"calls.py": HEAD + "c = LoraConfig(r=8)\n" * 100_000})
    assert codes(found["calls.py"]) == ["LORA906"]
    dense = HEAD + "x = [" + ",".join(["0"] * 200_000) + "]\ncfg = LoraConfig(target_modules=x)\n"
    found, _ = check(bounded, tmp_path, {"calls.py": "", "dense.py": dense})
    # 200,000 list items parse in bounded memory; the evaluator refuses to build the list.
    assert codes(found["dense.py"]) == ["LORA906"] and "too large" in found["dense.py"][0]["message"]


def test_thousands_of_pattern_keys_are_read_up_to_a_bound(bounded, tmp_path):
    keys = [f"{i}.q" for i in range(5000)]  # short: the whole dict stays under the bound on one value
    files = {
        "patterns.py": HEAD + f"cfg = LoraConfig(r=8, rank_pattern={ {k: 4 for k in keys}!r})\n",
        "patterns.yaml": "adapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_rank_pattern:\n"
        + "".join(f"  {k}: 4\n" for k in keys),
        "adapter_config.json": json.dumps(
            {"peft_type": "LORA", "r": 8, "alpha_pattern": {k: 4 for k in keys}}
        ),
    }
    found, report = check(bounded, tmp_path, files)
    for name, field in (
        ("patterns.py", "rank_pattern"),
        ("patterns.yaml", "rank_pattern"),
        ("adapter_config.json", "alpha_pattern"),
    ):
        limits = [d for d in found[name] if d["code"] == "LORA906"]
        assert len(limits) == 1, found[name]
        assert f"{field} has 5,000 keys; loralint reads at most 1,000" in limits[0]["message"]
        [config] = [c for c in report["configs"] if c["path"] == name]
        assert config["fields"][field] is None


def test_deep_or_exploding_yaml_and_json(bounded, tmp_path):
    laughs = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    merges = ["a: &a {" + ", ".join(f"k{j}: 1" for j in range(10)) + "}"]
    for previous, name in zip("abcdefgh", "bcdefghi"):
        laughs.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 10) + "]")
        merges.append(f"{name}: &{name} {{<<: [" + ", ".join([f"*{previous}"] * 10) + "]}")
    files = {
        "flow.yaml": "adapter: lora\nlora_r: 8\nx: " + "[" * 1500 + "]" * 1500 + "\n",  # libyaml's own limit
        "block.yaml": "adapter: lora\nlora_r: 8\nx:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(300)),
        # "Billion laughs": 10**9 elements once expanded; read as unknown, the rest of the file checked.
        "laughs.yaml": "adapter: lora\nlora_r: 8\nlora_alpha: 64\n"
        + "\n".join(laughs)
        + "\nlora_target_modules: *i\n",
        "merges.yaml": "adapter: lora\nlora_r: 8\n" + "\n".join(merges) + "\n",
        "cycle.yaml": "adapter: lora\nlora_r: 8\nlora_alpha: 64\nlora_target_modules: &t [q_proj, *t]\n",
        "undefined.yaml": "adapter: lora\nlora_r: 8\nlora_target_modules: *nowhere\n",
        "deep.json": '{"peft_type": "LORA", "r": 8, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "deep300.json": '{"peft_type": "LORA", "r": 8, "x": ' + "[" * 300 + "]" * 300 + "}",
        "wide.json": '{"peft_type": "LORA", "r": 8, "x": [' + ",".join(["0"] * 300_000) + "]}",
        "digits.json": '{"peft_type": "LORA", "r": ' + "9" * 5000 + "}",
        "bigint.yaml": "adapter: lora\nlora_r: 1" + "0" * 400 + "\nlora_alpha: 16\npeft_use_rslora: true\n",
    }
    found, report = check(bounded, tmp_path, files)
    assert codes(found["flow.yaml"]) == ["LORA901"] and codes(found["undefined.yaml"]) == ["LORA901"]
    for name in ("block.yaml", "merges.yaml", "deep.json", "deep300.json", "wide.json", "digits.json"):
        assert codes(found[name]) == ["LORA906"], (name, found[name])
        assert found[name][0]["message"].endswith("not checked"), found[name]
    assert "LORA906" in codes(found["bigint.yaml"]), found["bigint.yaml"]  # read as unknown, not a crash
    for name in ("laughs.yaml", "cycle.yaml"):
        # the exploding value is unknown and reported once; alpha/r = 8 is still found (LORA101)
        assert codes(found[name]).count("LORA906") == 1 and "LORA101" in codes(found[name]), found[name]
        [config] = [c for c in report["configs"] if c["path"] == name]
        assert config["fields"]["target_modules"] is None
