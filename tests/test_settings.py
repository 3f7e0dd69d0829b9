"""[tool.loralint] / .loralint.toml: discovery, validation, selection, parameters, custom rules."""

from __future__ import annotations

from helpers import run_cli

BAD = (
    "from peft import LoraConfig\n"
    'c = LoraConfig(r=16, lora_alpha=2, bias="all", target_modules=["q_proj"], task_type="CAUSAL_LM")\n'  # LORA101
    'd = LoraConfig(r=128, lora_alpha=64, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'  # LORA102
)


def codes(run):
    return sorted(run.codes())


def test_settings_are_found_by_walking_up_from_the_checked_path(write, tmp_path):
    write("pyproject.toml", '[project]\nname = "x"\n[tool.loralint]\nignore = ["LORA106"]\n')
    write("src/deep/train.py", BAD)
    run = run_cli(["check", "--output-format", "json", "--no-cache", "src/deep/train.py"], cwd=tmp_path)
    assert codes(run) == ["LORA101", "LORA102"]
    # from inside the sub-directory too
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path / "src" / "deep")
    assert codes(run) == ["LORA101", "LORA102"]


def test_pyproject_without_a_loralint_table_is_skipped_and_dot_loralint_toml_wins(write, tmp_path):
    write("pyproject.toml", '[tool.loralint]\nignore = ["LORA101"]\n')
    write("pkg/pyproject.toml", '[project]\nname = "pkg"\n')  # no [tool.loralint]: keep walking
    write("pkg/train.py", BAD)
    run = run_cli(["check", "--output-format", "json", "--no-cache", "pkg"], cwd=tmp_path)
    assert "LORA101" not in codes(run)
    write("pkg/.loralint.toml", 'ignore = ["LORA106"]\n')
    run = run_cli(["check", "--output-format", "json", "--no-cache", "pkg"], cwd=tmp_path)
    assert codes(run) == ["LORA101", "LORA102"]


def test_a_loralint_table_is_found_however_toml_spells_its_key(write, tmp_path):
    write("train.py", BAD)
    for text in ('[tool.loralint]\nignore = ["LORA101"]\n', '[ tool . "loralint" ]\nignore = ["LORA101"]\n',
                 "tool.'loralint'.ignore = ['LORA101']\n", 'tool = { loralint = { ignore = ["LORA101"] } }\n',
                 '[tool."lora\\u006cint"]\nignore = ["LORA101"]\n', '[tool."\\U0000006Coralint"]\nignore = ["LORA101"]\n'):
        write("pyproject.toml", text + '[project]\nname = "x"\n')
        found = codes(run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path))
        assert "LORA101" not in found and "LORA102" in found, text


def test_a_pyproject_that_does_not_name_loralint_is_not_read_as_settings(write, tmp_path):
    # Not even when it is broken: it holds no settings of loralint's (the walk goes on up, as for any
    # pyproject.toml without a [tool.loralint] table).
    write("pyproject.toml", '[tool.loralint]\nignore = ["LORA101"]\n')
    write("pkg/pyproject.toml", '[project\nname = "pkg"\n')
    write("pkg/train.py", BAD)
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path / "pkg")
    assert run.exit_code == 1 and "LORA101" not in codes(run) and "LORA102" in codes(run)
    write("pkg/pyproject.toml", '[project\nname = "pkg"\n# loralint\n')  # may hold it: read, and reported
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path / "pkg")
    assert run.exit_code == 2 and run.stderr.startswith("loralint: error: pyproject.toml: invalid TOML: ")


def test_invalid_settings_are_a_clear_usage_error(write, tmp_path):
    write("pyproject.toml", '[tool.loralint]\nignor = ["LORA101"]\nfail-level = "fatal"\n')
    write("train.py", BAD)
    run = run_cli(["check", "train.py"], cwd=tmp_path)
    assert run.exit_code == 2
    assert run.stderr.splitlines() == [
        "loralint: error: pyproject.toml: tool.loralint.fail-level: must be 'error', 'warning' or 'info', not \"fatal\"",
        "loralint: error: pyproject.toml: tool.loralint.ignor: unknown setting; did you mean `ignore`?",
    ]
    write("pyproject.toml", "[tool.loralint\n")
    run = run_cli(["check", "train.py"], cwd=tmp_path)
    # named as the other settings errors name it: relative to where loralint runs
    assert run.exit_code == 2 and run.stderr.startswith("loralint: error: pyproject.toml: invalid TOML: ")


def test_select_extend_select_and_specific_beats_general(write, tmp_path):
    write("train.py", BAD)
    write(".loralint.toml", 'select = ["LORA1"]\nignore = ["LORA10"]\nextend-select = ["LORA106"]\n')
    assert codes(run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)) == ["LORA106"]
    # the command line replaces select and adds ignores
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "LORA101,LORA102", "."], cwd=tmp_path)
    assert codes(run) == ["LORA101", "LORA102"]


def test_per_file_ignores_severity_and_fail_level(write, tmp_path):
    write("recipes/a.py", BAD)
    write("scripts/b.py", BAD)
    write(
        ".loralint.toml",
        'fail-level = "error"\n[per-file-ignores]\n"recipes/**" = ["LORA101", "LORA102"]\n[severity]\nbias-trained = "error"\n',
    )
    run = run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)
    found = sorted((d["path"], d["code"], d["severity"]) for d in run.json["diagnostics"])
    assert found == [
        ("recipes/a.py", "LORA106", "error"),
        ("scripts/b.py", "LORA101", "warning"),
        ("scripts/b.py", "LORA102", "info"),
        ("scripts/b.py", "LORA106", "error"),
    ]
    assert run.exit_code == 1  # an error at fail-level "error"
    write(".loralint.toml", 'fail-level = "error"\n')
    assert run_cli(["check", "--no-cache", "."], cwd=tmp_path).exit_code == 0


def test_rule_parameters_from_settings(write, tmp_path):
    write("train.py", BAD)
    write(".loralint.toml", "[params.alpha-scaling]\nmin = 0.1\n[params.LORA102]\nmin_rank = 256\n")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)
    assert codes(run) == ["LORA106"]
    write(".loralint.toml", "[params.no-such-rule]\nmin = 1\n")
    bad = run_cli(["check", "."], cwd=tmp_path)
    assert bad.exit_code == 2 and "no-such-rule" in bad.stderr


def test_custom_rules_use_the_shipped_checks(write, tmp_path):
    write("train.py", BAD)
    write(
        ".loralint.toml",
        'select = ["ORG"]\n'
        "[[rules]]\n"
        'code = "ORG001"\nname = "max-serving-rank"\ncheck = "field_range"\nseverity = "error"\n'
        'params = { field = "r", max = 32 }\n'
        'message = "r={value} is above {limit}, the largest rank we serve"\n'
        "[[rules]]\n"
        'code = "ORG002"\nname = "dropout-required"\ncheck = "field_required"\nparams = { field = "lora_dropout" }\n',
    )
    run = run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)
    messages = {d["code"]: (d["severity"], d["message"]) for d in run.json["diagnostics"]}
    assert messages == {
        "ORG001": ("error", "r=128 is above 32, the largest rank we serve"),
        "ORG002": ("warning", "lora_dropout is not set (required by this project's settings)"),
    }
    write(".loralint.toml", '[[rules]]\ncode = "ORG001"\nname = "x"\ncheck = "no_such_check"\n')
    bad = run_cli(["check", "."], cwd=tmp_path)
    assert bad.exit_code == 2 and "unknown check 'no_such_check'" in bad.stderr


def test_dataset_size_from_settings_and_the_command_line(write, tmp_path):
    write("train.py", 'from peft import LoraConfig\nc = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.1)\n')
    assert "LORA104" not in codes(run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path))
    write(".loralint.toml", "dataset-size = 500000\n")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)
    [diag] = [d for d in run.json["diagnostics"] if d["code"] == "LORA104"]
    assert "500,000 training examples (dataset-size in .loralint.toml)" in diag["message"]
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--dataset-size", "1000", "."], cwd=tmp_path)
    assert "LORA104" not in codes(run)
    # the command line beats per-file settings too, and says where the number came from
    write(".loralint.toml", 'per-file-dataset-size = { "train.py" = 1000 }\n')
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--dataset-size", "500000", "."], cwd=tmp_path)
    [diag] = [d for d in run.json["diagnostics"] if d["code"] == "LORA104"]
    assert "500,000 training examples (--dataset-size)" in diag["message"]


def test_rule_parameters_are_checked_before_any_file(write, tmp_path):
    write("train.py", BAD)
    for table, error in [
        ('[tool.loralint.params.alpha-scaling]\nmin = "x"\n', "params of LORA101 (alpha-scaling): min = 'x' should be a number"),
        ("[tool.loralint.params.LORA103]\nmxa = 64\n", "unknown parameter 'mxa' (did you mean 'max'?)"),
        ('[[tool.loralint.rules]]\ncode = "ORG001"\nname = "max-rank"\ncheck = "field_range"\nparams = { field = "rr", max = 3 }\n',
         "custom rule ORG001: field 'rr' is not a LoraConfig field (did you mean 'r'?)"),
        ('[[tool.loralint.rules]]\ncode = "ORG001"\nname = "max-rank"\ncheck = "field_range"\nparams = { field = "r", max = "3" }\n',
         "custom rule ORG001: max = '3' should be a number"),
    ]:
        write("pyproject.toml", table)
        run = run_cli(["check", "train.py"], cwd=tmp_path)
        assert run.exit_code == 2 and error in run.stderr, run.stderr
    write("pyproject.toml", "[tool.loralint.params.LORA103]\nmax = 32\n")
    assert "LORA103" in codes(run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path))


def test_explicit_config_option(write, tmp_path):
    write("train.py", BAD)
    write("ci/strict.toml", '[tool.loralint]\nselect = ["LORA106"]\n')
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--config", "ci/strict.toml", "."], cwd=tmp_path)
    assert codes(run) == ["LORA106"]
    assert run_cli(["check", "--config", "nope.toml", "."], cwd=tmp_path).exit_code == 2
