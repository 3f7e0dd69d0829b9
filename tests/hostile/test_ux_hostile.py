"""Hostile input for the issue-13 features: noqa comments, wide characters, --output-file,
--show-settings and the keyword a fix inserts. Built on the fly; run through the real CLI."""

from __future__ import annotations

from conftest import run_bounded

IMPORT = "from peft import LoraConfig\n"


def test_many_noqa_comments_cost_little_beyond_the_file_itself(tmp_path):
    # 3,000 directives (every kind, some inside strings): each unused LORA code is reported once, and
    # memory stays near that of the same file without them.
    def source(directives: bool) -> str:
        lines = [IMPORT.rstrip(), "c = LoraConfig(r=16, lora_alpha=4)" + ("  # noqa: LORA101" if directives else "")]
        for k in range(750):
            if directives:
                lines += [f"a{k} = 1  # noqa: LORA101, E501", f"b{k} = 1  # noqa", f's{k} = "# noqa: LORA101"',
                          f"d{k} = 1  #NOQA:E501"]
            else:
                lines += [f"a{k} = 1", f"b{k} = 1", f's{k} = "x"', f"d{k} = 1"]
        return "\n".join(lines) + "\n"

    (tmp_path / "plain.py").write_text(source(False), encoding="utf-8")
    (tmp_path / "t.py").write_text(source(True), encoding="utf-8")
    plain = run_bounded(["check", "--no-cache", "--statistics", "plain.py"], tmp_path)
    result = run_bounded(["check", "--no-cache", "--statistics", "--output-format", "json", "t.py"], tmp_path)
    assert result.exit_code == 1 and not result.traceback, result.stderr
    assert '"code": "LORA903"' in result.stdout and '"count": 750' in result.stdout
    assert "LORA101" not in result.stdout  # the real finding is suppressed
    assert result.peak_rss_mb < plain.peak_rss_mb + 50


def test_a_noqa_in_an_unterminated_string_is_a_parse_error_not_a_crash(tmp_path):
    (tmp_path / "t.py").write_text(IMPORT + 'c = LoraConfig(r=16)\nx = """\n# noqa: LORA101\n', encoding="utf-8")
    result = run_bounded(["check", "--no-cache", "t.py"], tmp_path)
    assert result.exit_code == 1 and not result.traceback
    assert "LORA901" in result.stdout


def test_carets_under_combining_marks_zero_width_and_control_characters(tmp_path):
    # "e" + combining acute takes one cell; a zero-width joiner none; ESC is shown as \x1b (4 cells).
    (tmp_path / "t.py").write_text(IMPORT + 'c = LoraConfig(target_modules=["e\u0301\u200d\x1b"], r=16, lora_alpha=4)\n',
                                   encoding="utf-8")
    result = run_bounded(["check", "--no-cache", "--select", "LORA101", "t.py"], tmp_path)
    assert not result.traceback
    lines = result.stdout.splitlines()
    source = next(line for line in lines if line.startswith("2 | "))
    caret = lines[lines.index(source) + 1]
    assert source == '2 | c = LoraConfig(target_modules=["e\u0301\u200d\\x1b"], r=16, lora_alpha=4)'
    shown_before = len('c = LoraConfig(target_modules=["e') + 0 + 0 + len("\\x1b") + len('"], r=16, lora_alpha=')
    assert caret == "  | " + " " * shown_before + "^ LORA101"


def test_output_file_that_cannot_be_written_is_one_error_line(tmp_path):
    (tmp_path / "t.py").write_text(IMPORT + "c = LoraConfig(r=16, lora_alpha=4)\n", encoding="utf-8")
    (tmp_path / "a_file").write_text("", encoding="utf-8")
    result = run_bounded(["check", "--no-cache", "--output-file", "a_file/report.txt", "t.py"], tmp_path)
    assert result.exit_code == 2 and not result.traceback, result.stderr
    assert result.stderr.splitlines()[0].startswith("loralint: error: cannot write --output-file a_file/report.txt: ")
    folder = run_bounded(["check", "--no-cache", "--output-file", ".", "t.py"], tmp_path)  # a usage error (click's)
    assert folder.exit_code == 2 and not folder.traceback and "Invalid value for '-o' / '--output-file'" in folder.stderr


def test_show_settings_escapes_what_the_settings_file_holds(tmp_path):
    (tmp_path / ".loralint.toml").write_text('exclude = ["a\\u001b]0;owned\\u0007b", "\\u202eevil"]\n', encoding="utf-8")
    result = run_bounded(["check", "--show-settings"], tmp_path)
    assert result.exit_code == 0 and not result.traceback
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout and "\x07" not in result.stdout
    assert 'exclude = ["a\\u001b]0;owned\\u0007b", "\\u202eevil"]' in result.stdout


def test_a_keyword_after_a_very_long_last_argument_still_gets_a_line_of_its_own(tmp_path):
    # 300 lines of list: past what is scanned for the argument's first line; the last one's indentation is used.
    entries = "".join(f'        "m{k}",\n' for k in range(300))
    text = (IMPORT.replace("LoraConfig", "LoraConfig, get_peft_model") + "from transformers import AutoModelForCausalLM\n"
            "model = AutoModelForCausalLM.from_pretrained('gpt2')\n"
            f"cfg = LoraConfig(\n    r=16,\n    lora_alpha=32,\n    fan_in_fan_out=True,\n    target_modules=[\n{entries}    ],\n)\n"
            "model = get_peft_model(model, cfg)\n")
    path = tmp_path / "t.py"
    path.write_text(text, encoding="utf-8")
    result = run_bounded(["check", "--no-cache", "--fix", "--select", "LORA107", "t.py"], tmp_path)
    assert result.exit_code == 0 and not result.traceback, result.stderr
    assert path.read_text(encoding="utf-8") == text.replace('    ],\n)', '    ],\n    task_type="CAUSAL_LM",\n)')

