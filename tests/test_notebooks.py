"""Jupyter notebooks: code cells read as Python, positions named by cell, fixes inside the cells only."""

from __future__ import annotations

import json

from helpers import run_cli

CONFIG = 'c = LoraConfig(r=32, lora_aplha=2, task_type="CAUSAL_LM",\n'


def notebook(*cells: tuple[str, list[str] | str], **top) -> str:
    """An nbformat 4 notebook as Jupyter writes it (indent=1, one JSON string a source line)."""
    doc = {
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source,
             **({"execution_count": None, "outputs": []} if kind == "code" else {})}
            for kind, source in cells
        ],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
        **top,
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


MISTAKE = notebook(
    ("markdown", ["# Fine-tune ü\n"]),
    ("code", ["!pip install -q peft\n", "%matplotlib inline\n", "from peft import LoraConfig\n"]),
    ("code", [CONFIG, '               target_modules=["q_proj"])']),
)


def test_a_notebook_is_checked_by_name_and_in_a_directory_with_cell_positions(tmp_path):
    (tmp_path / "nb.ipynb").write_text(MISTAKE)
    for target in ("nb.ipynb", "."):
        run = run_cli(["check", target], cwd=tmp_path)
        assert run.exit_code == 1
        # cell 3 (the markdown cell counts), its first line, the column of `lora_aplha`
        assert "nb.ipynb:cell 3:1:22: LORA001" in run.stdout
        assert "1 | c = LoraConfig(r=32, lora_aplha=2" in run.stdout  # the cell's line, not JSON


def test_json_output_names_the_cell_and_the_line_inside_it(tmp_path):
    (tmp_path / "nb.ipynb").write_text(MISTAKE)
    (tmp_path / "train.py").write_text("from peft import LoraConfig\n" + CONFIG + ")\n")
    report = run_cli(["check", ".", "--output-format", "json"], cwd=tmp_path).json
    by_path = {(d["path"], d["code"]): d for d in report["diagnostics"]}
    nb = by_path[("nb.ipynb", "LORA001")]
    assert (nb["cell"], nb["line"], nb["column"]) == (3, 1, 22)
    assert "cell" not in by_path[("train.py", "LORA001")]  # other files keep the contract's keys
    assert [c["cell"] for c in report["configs"] if c["path"] == "nb.ipynb"] == [3]


def _json_line_of(text: str, needle: str) -> tuple[int, int]:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def _sarif_lora001(tmp_path) -> dict:
    """The SARIF result of the misspelt lora_alpha in nb.ipynb."""
    sarif = run_cli(["check", "nb.ipynb", "--output-format", "sarif"], cwd=tmp_path).json
    return next(r for r in sarif["runs"][0]["results"] if r["ruleId"] == "LORA001")


def _assert_in_cell_3(result: dict, line: int, column: int) -> None:
    """At (line, column) of the notebook's JSON, and in its third cell's first line, column 22."""
    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (line, column)
    assert region["properties"] == {"cell": 3, "cellLine": 1, "cellColumn": 22}


def test_sarif_github_and_lsp_point_into_the_notebook_json(tmp_path):
    (tmp_path / "nb.ipynb").write_text(MISTAKE)
    line, column = _json_line_of(MISTAKE, "lora_aplha")
    result = _sarif_lora001(tmp_path)
    _assert_in_cell_3(result, line, column)
    assert "fixes" not in result  # edits are in the cell's Python, not in the JSON
    github = run_cli(["check", "nb.ipynb", "--output-format", "github"], cwd=tmp_path).stdout
    assert f"file=nb.ipynb,line={line},col={column}," in github
    lsp = run_cli(["check", "nb.ipynb", "--output-format", "lsp"], cwd=tmp_path).json
    start = next(d for d in lsp[0]["diagnostics"] if d["code"] == "LORA001")["range"]["start"]
    assert start == {"line": line - 1, "character": column - 1}


def test_escaped_characters_before_a_finding_shift_its_json_column(tmp_path):
    text = notebook(("code", ['from peft import LoraConfig\n', 'x = "\\t\\"é"; ' + CONFIG, ")"]))
    (tmp_path / "nb.ipynb").write_text(text)
    line, column = _json_line_of(text, "lora_aplha")
    github = run_cli(["check", "nb.ipynb", "--output-format", "github"], cwd=tmp_path).stdout
    assert f"line={line},col={column}," in github


def test_a_form_feed_in_an_earlier_cell_moves_no_position_and_no_fix(tmp_path):
    # Only "\n" ends a line for Python and for the report; str.splitlines also breaks at a form feed, which put
    # every later cell's findings a line off (and a fix's cell bounds with them).
    text = notebook(("code", ["from peft import LoraConfig  # page\x0cbreak\n", "x = 1\n"]),
                    ("code", [CONFIG, '               target_modules=["q_proj"])']))
    path = tmp_path / "nb.ipynb"
    path.write_text(text)
    assert "nb.ipynb:cell 2:1:22: LORA001" in run_cli(["check", "nb.ipynb"], cwd=tmp_path).stdout
    region = _sarif_lora001(tmp_path)["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == _json_line_of(text, "lora_aplha")
    assert region["properties"] == {"cell": 2, "cellLine": 1, "cellColumn": 22}
    run_cli(["check", "nb.ipynb", "--fix"], cwd=tmp_path)
    assert path.read_text() == text.replace("lora_aplha=2", "lora_alpha=2")


def test_fix_rewrites_only_the_cell_source(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(MISTAKE)
    run = run_cli(["check", "nb.ipynb", "--fix"], cwd=tmp_path)
    assert "LORA001" not in run.stdout
    expected = MISTAKE.replace("lora_aplha=2", "lora_alpha=2")
    assert path.read_text() == expected  # every other byte (outputs, metadata, layout, ü) as it was


def test_a_source_written_as_one_string_is_read_and_fixed(tmp_path):
    text = notebook(("code", "from peft import LoraConfig\n" + CONFIG + '  target_modules=["q_proj"])'))
    path = tmp_path / "nb.ipynb"
    path.write_text(text)
    run = run_cli(["check", "nb.ipynb"], cwd=tmp_path)
    assert "nb.ipynb:cell 1:2:22: LORA001" in run.stdout
    run_cli(["check", "nb.ipynb", "--fix"], cwd=tmp_path)
    assert path.read_text() == text.replace("lora_aplha", "lora_alpha")


def test_a_config_in_one_cell_applied_in_another_is_one_story(tmp_path):
    text = notebook(
        ("code", ["from peft import LoraConfig, get_peft_model\n", "from transformers import AutoModelForCausalLM\n"]),
        ("code", ['model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")\n']),
        ("markdown", ["Now the adapter.\n"]),
        ("code", ['config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")\n']),
        ("code", ["model = get_peft_model(model, config)\n"]),
    )
    (tmp_path / "nb.ipynb").write_text(text)
    config = run_cli(["check", "nb.ipynb", "--output-format", "json"], cwd=tmp_path).json["configs"][0]
    assert config["base_model"] == "meta-llama/Llama-3.2-3B"
    assert config["trainable_params"] == 24_313_856
    assert (config["cell"], config["line"]) == (4, 1)


def test_a_cell_that_does_not_parse_is_one_finding_and_the_rest_is_checked(tmp_path):
    text = notebook(
        ("code", ["from peft import LoraConfig\n"]),
        ("code", ["def broken(:\n"]),
        ("code", [CONFIG, ")"]),
    )
    (tmp_path / "nb.ipynb").write_text(text)
    run = run_cli(["check", "nb.ipynb"], cwd=tmp_path)
    assert "nb.ipynb:cell 2:1:" in run.stdout and "LORA901" in run.stdout
    assert "nb.ipynb:cell 3:1:22: LORA001" in run.stdout


def test_positions_after_blanked_and_unparsable_cells_and_a_late_future_import(tmp_path):
    # a blanked shell line and a cell left out keep their lines; `from __future__` in a later cell is
    # not the notebook's syntax error (each cell runs on its own)
    text = notebook(
        ("code", ["from peft import LoraConfig\n", "a = 1\n", "\n"]),
        ("code", ["!pip install peft\n", "x = 1\n"]),
        ("code", ["def broken(:\n", "    pass\n"]),
        ("code", ["from __future__ import annotations\n", "\n", CONFIG, ")"]),
    )
    (tmp_path / "nb.ipynb").write_text(text)
    report = run_cli(["check", "nb.ipynb", "--output-format", "json"], cwd=tmp_path).json
    found = {(d["code"], d["cell"], d["line"], d["column"]) for d in report["diagnostics"]}
    assert ("LORA001", 4, 3, 22) in found and ("LORA901", 3, 1, 12) in found


def test_a_cell_magic_cell_is_skipped_and_help_lines_are_not_code(tmp_path):
    text = notebook(
        ("code", ["%%bash\n", "pip install peft\n"]),
        ("code", ["from peft import LoraConfig\n", "LoraConfig?\n"]),
        ("code", ["%%time\n", CONFIG, ")"]),
    )
    (tmp_path / "nb.ipynb").write_text(text)
    run = run_cli(["check", "nb.ipynb", "--output-format", "json"], cwd=tmp_path)
    assert run.codes().count("LORA901") == 0
    assert "LORA001" in run.codes()  # %%time's body is Python and is checked


def test_malformed_notebooks_are_diagnostics_not_crashes(tmp_path):
    cases = {
        "bad_json.ipynb": '{"cells": [LoraConfig',
        "v3.ipynb": json.dumps({"nbformat": 3, "worksheets": [{"cells": []}], "metadata": {}, "x": "LoraConfig"}),
        "no_cells.ipynb": json.dumps({"nbformat": 4, "metadata": {}, "x": "LoraConfig"}),
        "bad_source.ipynb": json.dumps({"nbformat": 4, "metadata": {}, "x": "LoraConfig",
                                         "cells": [{"cell_type": "code", "source": 3}]}),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "empty.ipynb").write_text(notebook(("markdown", ["LoraConfig is explained here\n"])))
    run = run_cli(["check", ".", "--output-format", "json"], cwd=tmp_path)
    assert run.exit_code == 1
    found = {d["path"]: d["code"] for d in run.json["diagnostics"]}
    assert found == {name: "LORA901" for name in cases}  # an empty (markdown only) notebook is fine
    text_run = run_cli(["check", "."], cwd=tmp_path)  # positions of an unreadable one are in its raw text
    assert "bad_json.ipynb:1:" in text_run.stdout


def test_another_kernels_notebook_is_not_read_as_python(tmp_path):
    text = json.loads(notebook(("code", ['LoraConfig <- list(r = 8)\n'])))
    text["metadata"] = {"kernelspec": {"language": "R", "name": "ir", "display_name": "R"}}
    (tmp_path / "nb.ipynb").write_text(json.dumps(text))
    run = run_cli(["check", "nb.ipynb"], cwd=tmp_path)
    assert run.exit_code == 0


def test_colab_first_cell_capture_with_shell_lines_is_not_a_parse_error(tmp_path):
    # The first cell of most Colab and Unsloth notebooks: %%capture, then shell and magic lines.
    text = notebook(
        ("code", ["%%capture\n", "!pip install -q peft trl\n", "%env WANDB_DISABLED=true\n", "import os\n"]),
        ("code", ["from peft import LoraConfig\n", CONFIG, ")"]),
    )
    (tmp_path / "nb.ipynb").write_text(text)
    run = run_cli(["check", "nb.ipynb", "--output-format", "json", "--no-cache"], cwd=tmp_path)
    assert "LORA901" not in run.codes(), run.stdout
    assert "LORA001" in run.codes()


def test_a_cell_in_python_312_f_string_syntax_is_a_limit_of_ours_not_a_parse_error(tmp_path):
    # unsloth's Gemma3 Vision GRPO notebooks reuse quotes inside f-strings, which Colab's Python 3.12 runs.
    import sys

    text = notebook(
        ("code", ["from peft import LoraConfig\n"]),
        ("code", ['row = {"a": 1}\n', 'print(f"{row["a"]}")\n']),
        ("code", [CONFIG, ")"]),
    )
    (tmp_path / "nb.ipynb").write_text(text)
    run = run_cli(["check", "--output-format", "json", "nb.ipynb"], cwd=tmp_path)
    codes = run.codes()
    assert "LORA901" not in codes and "LORA001" in codes
    if sys.version_info < (3, 12):
        [limit] = [d for d in run.json["diagnostics"] if d["code"] == "LORA906"]
        assert limit["severity"] == "warning" and "cell 2" in limit["message"] and "Python 3.12" in limit["message"]
    else:
        assert "LORA906" not in codes


def _with_outputs(outputs: list) -> dict:
    doc = json.loads(MISTAKE)
    doc["cells"][1]["outputs"] = outputs  # the code cell before the one with the config
    return doc


def test_large_outputs_before_a_config_keep_its_positions(tmp_path):
    # Outputs are skipped without being composed: brackets, quotes and escapes inside them must not
    # move the positions of the sources after them.
    outputs = [{"output_type": "display_data", "metadata": {"x": [[{"y": None}], 1.5e3, True]},
                "data": {"image/png": "iVBORw0KGgo" * 5000, "text/plain": ['{"a": [1, 2]}\n', ']}\\"\n', "\u00e9\u2028"]}}]
    text = json.dumps(_with_outputs(outputs), indent=1)
    (tmp_path / "nb.ipynb").write_text(text)
    line, column = _json_line_of(text, "lora_aplha")
    _assert_in_cell_3(_sarif_lora001(tmp_path), line, column)


def _values(value) -> int:
    """JSON values as the reader counts them (a key is one)."""
    if isinstance(value, dict):
        return 1 + sum(1 + _values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(_values(v) for v in value)
    return 1


def _limit_finding(tmp_path, doc: dict) -> list[str]:
    (tmp_path / "nb.ipynb").write_text(json.dumps(doc))
    run = run_cli(["check", "nb.ipynb", "--output-format", "json"], cwd=tmp_path)
    return [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA906"]


def test_a_notebook_is_analysed_up_to_the_json_value_limit_and_no_further(tmp_path):
    from loralint.extract.bounds import MAX_DATA_NODES

    padding = MAX_DATA_NODES - _values(_with_outputs([[]]))
    assert _limit_finding(tmp_path, _with_outputs([list(range(padding))])) == []
    # at the limit, the cells' JSON positions (composed only when output asks) are found all the same
    _assert_in_cell_3(_sarif_lora001(tmp_path), *_json_line_of((tmp_path / "nb.ipynb").read_text(), "lora_aplha"))
    over = _limit_finding(tmp_path, _with_outputs([list(range(padding + 1))]))
    assert len(over) == 1 and f"more than {MAX_DATA_NODES:,} values" in over[0]


def test_a_notebook_is_analysed_up_to_the_json_depth_limit_and_no_further(tmp_path):
    from loralint.extract.bounds import MAX_DATA_DEPTH

    def nested(levels: int) -> list:
        value: list = []
        for _ in range(levels - 1):
            value = [value]
        return value

    # root {} > "cells" [] > cell {} > "outputs" []: the outputs' items are containers at depth 4
    assert _limit_finding(tmp_path, _with_outputs([nested(MAX_DATA_DEPTH - 4)])) == []
    over = _limit_finding(tmp_path, _with_outputs([nested(MAX_DATA_DEPTH - 3)]))
    assert len(over) == 1 and f"deeper than {MAX_DATA_DEPTH} levels" in over[0]


RESUMED_FROZEN = notebook(
    ("code", ["!pip install -q peft\n"]),
    ("code", ["import torch\n", "from peft import PeftModel\n",
              "from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer\n",
              "from datasets import load_dataset\n"]),
    ("code", [('base = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.1-8B",'
               ' quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16))')]),
    ("code", ['model = PeftModel.from_pretrained(base, "out/adapter")']),
    ("code", ['ds = load_dataset("json", data_files="train.jsonl", split="train")']),
    ("code", ["trainer = Trainer(model=model, train_dataset=ds)\n", "trainer.train()"]),
    ("code", ["merged = model.merge_and_unload()"]),
)


def test_lines_a_message_names_are_given_as_the_notebook_shows_them(tmp_path):
    (tmp_path / "nb.ipynb").write_text(RESUMED_FROZEN)
    out = run_cli(["check", "--no-cache", "--no-show-source", "nb.ipynb"], cwd=tmp_path).stdout
    # the trainer is the first line of cell 6, the 4-bit load the first of cell 3 (not lines 9 and 6 of the cells' text)
    assert "nb.ipynb:cell 4:1:9: LORA407" in out and "Trainer at cell 6, line 1 trains it" in out
    assert "loaded in 4bit (cell 3, line 1)" in out
    sarif = run_cli(["check", "--no-cache", "--output-format", "sarif", "nb.ipynb"], cwd=tmp_path).json
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert any("Trainer at cell 6, line 1" in m for m in messages)


def test_explain_names_the_data_set_line_by_cell(tmp_path):
    (tmp_path / "nb.ipynb").write_text(notebook(
        ("code", ["from datasets import load_dataset\n", "from peft import LoraConfig, get_peft_model\n",
                  "from transformers import AutoModelForCausalLM\n"]),
        ("code", ['ds = load_dataset("json", data_files="train.jsonl", split="train")']),
        ("code", ['model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")\n',
                  'model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.1, task_type="CAUSAL_LM"))']),
    ))
    (tmp_path / "train.jsonl").write_text('{"text": "x"}\n' * 3)
    [entry] = run_cli(["explain", "--no-cache", "--output-format", "json", "nb.ipynb"], cwd=tmp_path).json["configs"]
    assert entry["dataset_size"] == 3 and "load_dataset at cell 2, line 1" in entry["dataset_size_source"]


def test_values_hidden_behind_a_repeated_key_still_count_against_the_limit(tmp_path):
    # json.loads keeps only the last of two "outputs": the values of the first are read all the same.
    from loralint.extract.bounds import MAX_DATA_NODES

    text = json.dumps(_with_outputs([]))
    hidden = '"outputs": [' + ", ".join(["0"] * MAX_DATA_NODES) + '], "outputs": []'
    (tmp_path / "nb.ipynb").write_text(text.replace('"outputs": []', hidden, 1))
    run = run_cli(["check", "nb.ipynb", "--output-format", "json"], cwd=tmp_path)
    over = [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA906"]
    assert len(over) == 1 and f"more than {MAX_DATA_NODES:,} values" in over[0]
    assert "LORA001" not in {d["code"] for d in run.json["diagnostics"]}


def test_a_text_report_of_many_notebooks_reads_none_of_them_again(tmp_path, monkeypatch):
    # The report maps positions to cells and shows each finding's line from what extraction kept (the cells
    # and the cell text, cached with the rest): no notebook's JSON is decoded again, cold or warm, whatever
    # the format, however many notebooks the report names.
    for i in range(12):
        (tmp_path / f"nb{i:02d}.ipynb").write_text(MISTAKE.replace("Fine-tune", f"Fine-tune {i}"))
    from loralint.extract import notebook as reader

    read = []
    real = reader.read_notebook
    monkeypatch.setattr(reader, "read_notebook", lambda raw, **how: read.append(how) or real(raw, **how))
    reader.cached_notebook.cache_clear()
    cold = run_cli(["check", "--no-cache", "."], cwd=tmp_path)
    assert "nb11.ipynb:cell 3:1:22: LORA001" in cold.stdout and "1 | c = LoraConfig(r=32, lora_aplha=2" in cold.stdout
    assert read == [{}] * 12  # extraction's own reading, once each
    run_cli(["check", "."], cwd=tmp_path)  # fills the cache
    read.clear()
    warm = run_cli(["check", "."], cwd=tmp_path)
    quiet, report = run_cli(["check", "-q", "."], cwd=tmp_path), run_cli(["check", "--output-format", "json", "."], cwd=tmp_path)
    assert warm.stdout == cold.stdout
    assert quiet.stdout.splitlines() == [line for line in cold.stdout.splitlines() if ": LORA" in line]
    assert {(d["path"], d["cell"], d["line"]) for d in report.json["diagnostics"]} >= {("nb11.ipynb", 3, 1)}
    assert read == []


def test_output_reads_a_cells_lines_as_the_whole_cell_text_gives_them():
    # Output parses only the cells whose lines it shows (read_notebook(lazy=True)): every line, cell and
    # JSON position must be what reading the whole notebook gives, whatever the cells hold.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.extract import extract_source
    from loralint.extract.notebook import CellMap, read_notebook
    from loralint.report import split_lines

    lines = st.sampled_from(["x = 1\n", "!pip install peft\n", "%%capture\n", "%time y = 2\n", "def f(:\n", "  z\n",
                             "a = 'é\x0c'\n", "b = 3", "\n", "", "s = '''\n", "'''\n", "await g()\n", "c = 1\r\n"])
    cell = st.lists(lines, max_size=5).map("".join)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["code", "markdown"]), cell), max_size=5))
    def same(cells) -> None:
        raw = notebook(*cells)
        whole, lazy = read_notebook(raw), read_notebook(raw, lazy=True)
        expected = split_lines(whole.python)
        for number in range(len(expected) + 3):
            assert lazy.text_line(number) == (expected[number - 1] if 0 < number <= len(expected) else None)
            assert lazy.cell_position(number, 1) == whole.cell_position(number, 1)
            assert lazy.json_position(number, 2) == whole.json_position(number, 2)
        assert lazy.python == whole.python and lazy.problems == whole.problems
        # What extraction keeps of the cells (FileResult.cells) places every line as the notebook does.
        kept = CellMap(extract_source("nb.ipynb", raw.encode(), "notebook").cells)
        for number in range(len(expected) + 3):
            found, placed = whole.cell_of(number), kept.cell_of(number)
            assert (found and (found[0].number, found[1])) == (placed and (placed[0].number, placed[1]))

    same()
