"""What a new user's trial left: LORA210's advice in the checked file's own syntax, LORA213 on axolotl
configs that add tokens, `--show-settings` output that pastes into pyproject.toml, and settings errors
in loralint's words."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
import yaml
from helpers import run_cli

LLAMA = "meta-llama/Llama-3.2-1B"


def diagnostics(tmp_path, name: str, *codes: str) -> list[dict]:
    run = run_cli(["check", "--no-cache", "--output-format", "json", "--select", ",".join(codes), name], cwd=tmp_path)
    return run.json["diagnostics"]


# --- LORA210: the advice in the format's own syntax ---------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str  # the file
    text: str  # with the mistaken setting on a line of its own
    line: str  # that line
    names_advice: str  # the names advice, as the message gives it


PY_HEAD = ("from peft import LoraConfig, get_peft_model\nfrom transformers import AutoModelForCausalLM\n"
           f"m = AutoModelForCausalLM.from_pretrained({LLAMA!r})\n"
           "c = LoraConfig(\n    r=16,\n    lora_alpha=32,\n    task_type='CAUSAL_LM',\n")
AXOLOTL_HEAD = f"base_model: {LLAMA}\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n"
LF_HEAD = f"model_name_or_path: {LLAMA}\nstage: sft\nfinetuning_type: lora\nlora_rank: 16\nlora_alpha: 32\n"
TRL_HEAD = f"model_name_or_path: {LLAMA}\nuse_peft: true\nlora_r: 16\nlora_alpha: 32\n"
ADAPTER_HEAD = json.dumps({"peft_type": "LORA", "base_model_name_or_path": LLAMA, "r": 16, "lora_alpha": 32,
                           "task_type": "CAUSAL_LM"})[:-1] + ",\n"
PY_LINE = "    target_modules=['.*q_proj', '.*v_proj'],"
YAML_LINE = "lora_target_modules: ['.*q_proj', '.*v_proj']"
JSON_LINE = '"target_modules": [".*q_proj", ".*v_proj"]'
REGEX_LISTS = {
    "python": Case("t.py", PY_HEAD + PY_LINE + "\n)\nm = get_peft_model(m, c)\n", PY_LINE,
                   'target_modules=["q_proj", "v_proj"]'),
    "axolotl": Case("axolotl.yml", AXOLOTL_HEAD + YAML_LINE + "\n", YAML_LINE, "lora_target_modules: [q_proj, v_proj]"),
    "llamafactory": Case("lf.yaml", LF_HEAD + "lora_target: .*q_proj,.*v_proj\n", "lora_target: .*q_proj,.*v_proj",
                         "lora_target: q_proj,v_proj"),
    "trl": Case("trl.yaml", TRL_HEAD + YAML_LINE + "\n", YAML_LINE, "lora_target_modules: [q_proj, v_proj]"),
    "adapter_config": Case("adapter/adapter_config.json", ADAPTER_HEAD + JSON_LINE + "}\n", JSON_LINE,
                           '"target_modules": ["q_proj", "v_proj"]'),
}


def _pasted(fmt: str, case: Case, setting: str) -> str:
    """The file with `setting` in place of the mistaken line."""
    return case.text.replace(case.line, f"    {setting}," if fmt == "python" else setting)


def _write(tmp_path, name: str, text: str) -> None:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("fmt", list(REGEX_LISTS))
def test_regex_in_a_list_is_answered_in_the_files_own_syntax_and_the_answer_works_there(tmp_path, fmt):
    case = REGEX_LISTS[fmt]
    _write(tmp_path, case.name, case.text)
    [d] = diagnostics(tmp_path, case.name, "LORA210")
    assert f"list the names themselves: {case.names_advice}" in d["message"]
    # Pasted in place of the mistaken line, the advice is clean: no LORA210, and the names match modules.
    _write(tmp_path, case.name, _pasted(fmt, case, case.names_advice))
    assert diagnostics(tmp_path, case.name, "LORA210", "LORA202", "LORA209", "LORA001") == []


@pytest.mark.parametrize("fmt", ["python", "axolotl", "adapter_config"])
def test_the_regex_string_advice_is_offered_where_the_format_passes_a_string_to_peft(tmp_path, fmt):
    case = REGEX_LISTS[fmt]
    _write(tmp_path, case.name, case.text)
    [d] = diagnostics(tmp_path, case.name, "LORA210")
    regex_advice = d["message"].split(", or use one regex string: ")[1]
    assert regex_advice == {"python": 'target_modules=r".*\\.(q_proj|v_proj)"',
                            "axolotl": "lora_target_modules: '.*\\.(q_proj|v_proj)'",
                            "adapter_config": '"target_modules": ".*\\\\.(q_proj|v_proj)"'}[fmt]
    _write(tmp_path, case.name, _pasted(fmt, case, regex_advice))
    assert diagnostics(tmp_path, case.name, "LORA210", "LORA202", "LORA209", "LORA001") == []
    if fmt == "axolotl":
        assert yaml.safe_load((tmp_path / case.name).read_text())["lora_target_modules"] == r".*\.(q_proj|v_proj)"


@pytest.mark.parametrize("fmt", ["llamafactory", "trl"])
def test_no_regex_string_is_offered_where_the_format_hands_peft_a_list(tmp_path, fmt):
    case = REGEX_LISTS[fmt]
    _write(tmp_path, case.name, case.text)
    [d] = diagnostics(tmp_path, case.name, "LORA210")
    assert "regex string" not in d["message"] and "r'" not in d["message"]


def test_a_regex_that_is_more_than_a_name_gets_no_invented_names(tmp_path):
    _write(tmp_path, "lf.yaml", f"model_name_or_path: {LLAMA}\nfinetuning_type: lora\nlora_target: layers\\.[0-3]\\.q_proj\n")
    [d] = diagnostics(tmp_path, "lf.yaml", "LORA210")
    assert d["message"].endswith("; list the module names themselves (LLaMA-Factory hands PEFT a list of names, never a regex)")


def test_all_linear_in_a_llamafactory_target_points_to_its_own_spelling(tmp_path):
    _write(tmp_path, "lf.yaml", f"model_name_or_path: {LLAMA}\nfinetuning_type: lora\nlora_target: all-linear\n")
    [d] = diagnostics(tmp_path, "lf.yaml", "LORA210")
    assert d["message"].endswith("every linear layer is lora_target: all") and d["fix"] is None
    _write(tmp_path, "lf.yaml", f"model_name_or_path: {LLAMA}\nfinetuning_type: lora\nlora_target: all\n")
    assert diagnostics(tmp_path, "lf.yaml", "LORA210", "LORA202") == []


def test_the_all_linear_fix_leaves_axolotl_yaml_that_axolotl_reads_as_the_string(tmp_path):
    text = f"base_model: {LLAMA}\nadapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_target_modules:\n  - all-linear\nlora_dropout: 0.05\n"
    _write(tmp_path, "axolotl.yml", text)
    [d] = diagnostics(tmp_path, "axolotl.yml", "LORA210")
    assert d["message"].startswith("'all-linear' only works as the plain string lora_target_modules: all-linear")
    run_cli(["check", "--no-cache", "--select", "LORA210", "--fix", "axolotl.yml"], cwd=tmp_path)
    fixed = yaml.safe_load((tmp_path / "axolotl.yml").read_text())
    assert fixed["lora_target_modules"] == "all-linear" and fixed["lora_dropout"] == 0.05
    assert diagnostics(tmp_path, "axolotl.yml", "LORA210", "LORA202", "LORA209") == []


def test_modules_to_save_is_never_offered_a_regex(tmp_path):
    _write(tmp_path, "axolotl.yml", f"base_model: {LLAMA}\nadapter: lora\nlora_target_linear: true\n"
                                    "lora_modules_to_save: ['.*lm_head']\n")
    [d] = diagnostics(tmp_path, "axolotl.yml", "LORA210")
    assert d["message"].startswith("lora_modules_to_save entries ['.*lm_head'] look like regular expressions")
    assert d["message"].endswith("; list the names themselves: lora_modules_to_save: [lm_head]")
    assert re.search(r"regex string", d["message"]) is None


# --- LORA213 on axolotl configs that add tokens ---------------------------------------------------

def _axolotl_saving(tmp_path, base: str, saved: str, tokens: str) -> list[dict]:
    _write(tmp_path, "axolotl.yml", f"base_model: {base}\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n"
                                    f"lora_target_linear: true\nlora_modules_to_save: [{saved}]\n{tokens}")
    return diagnostics(tmp_path, "axolotl.yml", "LORA213")


@pytest.mark.parametrize("tokens", [
    "tokens:\n  - <|tool_call|>\n",
    "special_tokens:\n  bos_token: <|im_start|>\n  eos_token: <|im_end|>\n",
])
def test_axolotl_demands_its_embedding_layers_when_tokens_are_added_so_their_size_is_not_flagged(tmp_path, tokens):
    # axolotl raises unless lora_modules_to_save holds both (loaders/utils.py, loaders/tokenizer.py).
    assert _axolotl_saving(tmp_path, LLAMA, "embed_tokens, lm_head", tokens) == []
    # For gpt_neox axolotl names them embed_in / embed_out: embed_in's 51M parameters are not flagged, but
    # embed_out, gone from transformers 5's GPTNeoXForCausalLM (its head is lm_head), still matches nothing.
    [d] = _axolotl_saving(tmp_path, "EleutherAI/pythia-410m", "embed_in, embed_out", tokens)
    assert d["message"].startswith("modules_to_save entry 'embed_out' matches no module of gpt_neox")
    [d] = _axolotl_saving(tmp_path, "EleutherAI/pythia-410m", "embed_in", "")
    assert d["message"].startswith("modules_to_save entry 'embed_in' trains a full copy of 51,511,296 parameters")


@pytest.mark.parametrize("tokens", ["", "special_tokens:\n  pad_token: <|end_of_text|>\n",
                                    "special_tokens:\n  additional_special_tokens: ['<|a|>']\n", "tokens: []\n"])
def test_axolotl_without_new_tokens_still_hears_about_the_full_copies_in_its_own_key(tmp_path, tokens):
    found = _axolotl_saving(tmp_path, LLAMA, "embed_tokens, lm_head", tokens)
    assert [d["message"].split(" trains")[0] for d in found] == ["modules_to_save entry 'embed_tokens'",
                                                                 "modules_to_save entry 'lm_head'"]
    assert all(d["message"].endswith("; for new tokens prefer peft_trainable_token_indices") for d in found)


# --- --show-settings prints TOML that pastes back -------------------------------------------------

SETTINGS = """[tool.loralint]
ignore = ["LORA102"]
per-file-ignores = { "recipes/**" = ["LORA101"] }
severity = { bias-trained = "error" }
params = { LORA103 = { max = 128.5, reason = "team policy" } }
exclude = ["a\\u001b]0;x\\u0007b", "\\u202eevil", "\\u0085next", "quote\\"back\\\\slash"]
dataset-size = 5000
max-file-size = "5 MB"

[[tool.loralint.rules]]
code = "ORG001"
name = "rank-cap"
check = "field_range"
severity = "error"
params = { field = "r", max = 64 }
summary = "r at most 64"
"""


def _values(shown: str) -> list[str]:
    """The settings lines of a --show-settings output, without the comments saying where each came from."""
    return [line.split("  #")[0].rstrip() for line in shown.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("paste_into", ["pyproject.toml", ".loralint.toml"])
def test_show_settings_pastes_into_a_settings_file_and_reads_back_the_same(tmp_path, paste_into):
    import tomllib

    from loralint.settings import load_settings

    _write(tmp_path, "first/pyproject.toml", SETTINGS)
    shown = run_cli(["check", "--show-settings", "--extend-select", "LORA2", "--model", "gpt2", "--online"],
                    cwd=tmp_path / "first")
    assert shown.exit_code == 0, shown.stderr
    table = tomllib.loads(shown.stdout)["tool"]["loralint"]
    assert table["extend-select"] == ["LORA2"] and table["model"] == "gpt2" and "online" not in table
    assert table["exclude"][:2] == ["a\x1b]0;x\x07b", "\u202eevil"] and table["rules"][0]["code"] == "ORG001"
    assert "\x1b" not in shown.stdout and "\u202e" not in shown.stdout and "\x85" not in shown.stdout

    _write(tmp_path, f"second/{paste_into}", shown.stdout)
    settings = load_settings(tmp_path / "second" / paste_into)
    assert settings.notes == []  # nothing in it that a repository may not set
    assert settings.exclude == ["a\x1b]0;x\x07b", "\u202eevil", "\x85next", 'quote"back\\slash']
    assert (settings.ignore, settings.extend_select, settings.model) == (["LORA102"], ["LORA2"], "gpt2")
    assert settings.params == {"LORA103": {"max": 128.5, "reason": "team policy"}} and settings.max_file_size == 5_000_000
    assert [(r.code, r.check, r.severity, r.params) for r in settings.rules] == [
        ("ORG001", "field_range", "error", {"field": "r", "max": 64})]
    again = run_cli(["check", "--show-settings"], cwd=tmp_path / "second")
    # All the same but `online`: --online is the user's alone, so the paste leaves it out (and it is off there).
    assert again.exit_code == 0 and "online = false" in _values(again.stdout)
    assert [v for v in _values(again.stdout) if v != "online = false"] == _values(shown.stdout)
    assert again.stdout.splitlines()[-1] == shown.stdout.splitlines()[-1]  # the same rules enabled


# --- settings errors in loralint's words ------------------------------------------------------------

@pytest.mark.parametrize(("name", "text", "message"), [
    ("pyproject.toml", '[tool.loralint]\nextend-selct = ["LORA1"]\n',
     "pyproject.toml: tool.loralint.extend-selct: unknown setting; did you mean `extend-select`?"),
    ("loralint.toml", 'per_file_ignore = {}\n',
     "loralint.toml: per_file_ignore: unknown setting; did you mean `per-file-ignores`?"),
    (".loralint.toml", '[tool.loralint]\nzebra = 1\n',
     ".loralint.toml: tool.loralint.zebra: unknown setting (`loralint check --show-settings` lists the settings)"),
    ("pyproject.toml", '[tool.loralint]\nmax-file-size = "big"\n',
     "pyproject.toml: tool.loralint.max-file-size: 'big' is not a size (a number of bytes, or with a unit: 10 MB, 512 KiB, 2 GB)"),
    ("pyproject.toml", '[tool.loralint]\nrespect-gitignore = [true]\n',
     "pyproject.toml: tool.loralint.respect-gitignore: must be true or false, not [true]"),
    ("pyproject.toml", '[tool.loralint]\ndataset-size = -5\n',
     "pyproject.toml: tool.loralint.dataset-size: must be at least 0, not -5"),
    ("pyproject.toml", '[tool.loralint]\nper-file-ignores = { "src/*.py" = "LORA101" }\n',
     'pyproject.toml: tool.loralint.per-file-ignores."src/*.py": must be a list, not "LORA101"'),
    ("pyproject.toml", '[[tool.loralint.rules]]\ncode = "ORG001"\nname = "cap"\ncheck = "field_range"\nsevrity = "info"\n',
     "pyproject.toml: tool.loralint.rules[0].sevrity: unknown setting; did you mean `severity`?"),
    ("pyproject.toml", "[tool]\nloralint = 3\n", "pyproject.toml: tool.loralint: must be a table, not 3"),
])
def test_a_settings_mistake_is_one_line_naming_the_file_the_key_and_what_is_wrong(tmp_path, name, text, message):
    _write(tmp_path, name, text)
    run = run_cli(["check", "--no-cache", "."], cwd=tmp_path)
    assert run.exit_code == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"loralint: error: {message}"]


def test_the_user_level_config_names_the_closest_key_too(tmp_path):
    _write(tmp_path, "home/loralint/loralint.toml", "max-filesize = 20000000\n")
    run = run_cli(["check", "--no-cache", "."], cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path / "home")})
    assert run.exit_code == 2
    where = tmp_path / "home" / "loralint" / "loralint.toml"
    assert run.stderr.splitlines() == [f"loralint: error: {where}: max-filesize: unknown setting; did you mean `max-file-size`?"]
