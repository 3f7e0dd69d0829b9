"""Inline suppressions and the report of unused ones (LORA903)."""

from __future__ import annotations

from helpers import run_cli


def check(tmp_path):
    return run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)


def test_suppression_on_the_finding_line_with_codes(write, tmp_path):
    write(
        "t.py",
        """
        from peft import LoraConfig
        c = LoraConfig(
            r=16,
            lora_alpha=4,  # loralint: ignore[LORA101]
            bias="all",  # loralint: ignore[LORA106, LORA003]
        )
        """,
    )
    found = [(d["code"], d["line"]) for d in check(tmp_path).json["diagnostics"]]
    assert found == [("LORA903", 5)]
    [unused] = check(tmp_path).json["diagnostics"]
    assert unused["message"] == "unused suppression for LORA003 (no LORA003 finding on this line)"


def test_suppression_on_the_first_line_of_the_call_covers_the_whole_config(write, tmp_path):
    write(
        "t.py",
        """
        from peft import LoraConfig
        c = LoraConfig(  # loralint: ignore[LORA101]
            r=16,
            lora_alpha=4,
        )
        """,
    )
    assert check(tmp_path).json["diagnostics"] == []


def test_blanket_suppression_and_unused_blanket(write, tmp_path):
    write(
        "t.py",
        """
        from peft import LoraConfig
        c = LoraConfig(r=16, lora_alpha=4, bias="all")  # loralint: ignore
        x = 1  # loralint: ignore
        """,
    )
    found = [(d["code"], d["line"], d["message"]) for d in check(tmp_path).json["diagnostics"]]
    assert found == [("LORA903", 3, "unused suppression: nothing to ignore on this line")]


def test_unknown_codes_in_suppressions_are_reported_and_903_can_be_ignored(write, tmp_path):
    write("t.py", 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=32)  # loralint: ignore[LORA777]\n')
    [d] = check(tmp_path).json["diagnostics"]
    assert d["code"] == "LORA903" and "LORA777 (unknown rule code)" in d["message"]
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--ignore", "LORA903", "."], cwd=tmp_path)
    assert run.json["diagnostics"] == []


def test_suppressions_work_in_yaml_comments(write, tmp_path):
    from loralint.suppressions import find_suppressions

    found = find_suppressions("c.yaml", "lora_r: 64\nlora_alpha: 16  # loralint: ignore[LORA101]\n")
    assert list(found) == [2] and found[2][0] == frozenset({"LORA101"})
