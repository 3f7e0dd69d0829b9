"""Untrusted regular expressions, pattern dicts and absurd model configs.

PEFT puts the user's text into Python's backtracking `re` (target_modules, exclude_modules,
modules_to_save, rank/alpha keys, layers_pattern) and a model folder's config.json decides how many
modules loralint models. Every input here is built on the fly and checked with the real CLI in a
subprocess under an address-space limit (`bounded`): a catastrophic pattern or 10**9 layers fails by
the harness's limits, never by a timing assertion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128}
IMPORT = "from peft import LoraConfig\n"
MEMORY_MB = 400  # peak RSS any of these runs may take (a clean run takes about 40 MB)


def model_dir(root: Path, name: str = "tiny", **overrides) -> str:
    folder = root / name
    folder.mkdir()
    config = {**TINY, **overrides}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return name


def check(bounded, cwd: Path, *args: str, **kwargs):
    run = bounded(["check", "--no-cache", "--output-format", "json", *args], cwd, **kwargs)
    assert not run.traceback, run.stderr
    assert run.exit_code in (0, 1), (run.exit_code, run.stderr)
    assert "LORA904" not in run.stdout, run.stdout
    assert run.peak_rss_mb < MEMORY_MB, run.peak_rss_mb
    return run


def by_line(run, path: str) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for d in json.loads(run.stdout)["diagnostics"]:
        if d["path"] == path:
            out.setdefault(d["line"], []).append((d["code"], d["message"]))
    return out


def codes(found: list[tuple[str, str]]) -> set[str]:
    return {code for code, _ in found}


# --- catastrophic backtracking ------------------------------------------------------------------

# Each takes exponential (or degree-20 polynomial) time in `re` on a module name with enough of its
# letters, or on a key such as "xxxx…": loralint refuses to run them.
HOSTILE_TARGETS = ["(a+)+$", "(.*a){20}", "(.*)*x", ".*.*.*.*.*.*x", "(xx|x)*y", "(?:.*?){30}z"]


def test_catastrophic_patterns_are_not_run_and_ordinary_ones_still_are(bounded, tmp_path):
    model = model_dir(tmp_path)
    lines = [IMPORT]
    for pattern in HOSTILE_TARGETS:
        lines.append(f"c = LoraConfig(r=8, lora_alpha=16, target_modules={pattern!r})\n")
    lines.append("c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], exclude_modules='(.*)*x')\n")
    lines.append("c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], rank_pattern={'(aa|a)*q_proj': 4})\n")
    lines.append("c = LoraConfig(r=8, lora_alpha=16, target_modules='(x+x+)+y')\n")  # harmless on these names
    lines.append("c = LoraConfig(r=8, lora_alpha=16, target_modules=r'.*\\.(q_proj|v_proj)')\n")
    (tmp_path / "train.py").write_text("".join(lines), encoding="utf-8")

    run = check(bounded, tmp_path, "--model", model, "train.py")
    found = by_line(run, "train.py")
    refused = range(2, 2 + len(HOSTILE_TARGETS) + 2)
    for line in refused:
        assert "LORA906" in codes(found.get(line, [])), (line, found.get(line))
        message = next(m for c, m in found[line] if c == "LORA906")
        assert "not evaluated" in message and "exponential" in message, message
    # Evaluated, with PEFT's meaning: the first matches nothing on llama, the second q_proj and v_proj.
    harmless, ordinary = refused.stop, refused.stop + 1
    assert "LORA202" in codes(found.get(harmless, [])) and "LORA906" not in codes(found.get(harmless, []))
    assert not codes(found.get(ordinary, [])) & {"LORA906", "LORA202"}, found.get(ordinary)
    assert run.exit_code == 1


def test_a_key_that_backtracks_on_another_key_is_not_run(bounded, tmp_path):
    # LORA109 matches each key against the keys after it, with no model at all: a key of 40 x's
    # makes "(x+x+)+y" take 2**40 steps in `re`.
    (tmp_path / "train.py").write_text(
        IMPORT + f"c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], rank_pattern={{'(x+x+)+y': 4, {'x' * 40!r}: 8}})\n",
        encoding="utf-8")
    run = check(bounded, tmp_path, "train.py")
    found = by_line(run, "train.py")[2]
    assert any(c == "LORA906" and "'(x+x+)+y'" in m and "not evaluated" in m for c, m in found), found


def test_deeply_nested_and_huge_patterns_are_not_parsed(bounded, tmp_path):
    deep = "(" * 1500 + "q_proj" + ")" * 1500
    huge = "q_proj|" * 3000
    (tmp_path / "train.py").write_text(
        IMPORT + f"c = LoraConfig(target_modules={deep!r})\nc = LoraConfig(target_modules=['q_proj'], exclude_modules={huge!r})\n",
        encoding="utf-8")
    run = check(bounded, tmp_path, "--model", model_dir(tmp_path), "train.py")
    found = by_line(run, "train.py")
    assert any(c == "LORA906" and "nested deeper" in m for c, m in found[2]), found[2]
    assert any(c == "LORA906" and "characters" in m for c, m in found[3]), found[3]


# --- invalid patterns ---------------------------------------------------------------------------


def test_invalid_patterns_are_errors_and_the_other_file_still_reports(bounded, tmp_path):
    (tmp_path / "a.py").write_text(
        IMPORT
        + "c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], rank_pattern={'q_proj[': 4})\n"
        + "c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], exclude_modules='(?P<')\n"
        + "c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], modules_to_save=['lm_head('])\n"
        + "c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], layers_to_transform=[0], layers_pattern='lay(ers')\n"
        + "c = LoraConfig(r=8, lora_alpha=16, target_modules='q_proj[')\n",
        encoding="utf-8")
    (tmp_path / "b.py").write_text(IMPORT + "c = LoraConfig(r=8, lora_alpha=64, target_modules=['q_proj'])\n",
                                   encoding="utf-8")
    run = check(bounded, tmp_path, "--model", model_dir(tmp_path), ".")
    a = by_line(run, "a.py")
    for line, what in ((2, "rank_pattern key 'q_proj['"), (3, "exclude_modules"), (4, "modules_to_save entry 'lm_head('"),
                       (5, "layers_pattern 'lay(ers'")):
        messages = [m for c, m in a[line] if c == "LORA014"]
        assert messages and messages[0].startswith(what) and "raises re.error" in messages[0], a[line]
        # PEFT stops at the invalid pattern: nothing is said about what the config would match.
        assert not codes(a[line]) & {"LORA202", "LORA207", "LORA213", "LORA906"}, a[line]
    assert [c for c, _ in a[6]] == ["LORA209"], a[6]
    assert "LORA101" in codes(by_line(run, "b.py")[2])
    assert {d["severity"] for d in json.loads(run.stdout)["diagnostics"] if d["code"] == "LORA014"} == {"error"}
    assert run.exit_code == 1


# --- many keys, many entries ----------------------------------------------------------------------


def test_thousands_of_pattern_keys_and_entries_stay_bounded(bounded, tmp_path):
    # As many as the Python front end reads (1,000 keys; more are LORA906 there), short enough for its
    # size bound; an adapter_config.json below has 5,000.
    keys = {f"{i}.*q_proj": 4 for i in range(1000)}
    entries = [f"q{i}" for i in range(2000)] + ["q_proj"]
    saved = [f"s{i}" for i in range(2000)]
    (tmp_path / "train.py").write_text(
        IMPORT
        + f"c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], rank_pattern={keys!r})\n"
        + f"c = LoraConfig(r=8, lora_alpha=16, target_modules={entries!r})\n"
        + f"c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], modules_to_save={saved!r})\n",
        encoding="utf-8")
    run = check(bounded, tmp_path, "--model", model_dir(tmp_path), "train.py")
    found = by_line(run, "train.py")
    assert any(c == "LORA906" and "1,000 keys" in m and "first 300" in m for c, m in found[2]), found[2]
    counts = {c["line"]: c["trainable_params"] for c in json.loads(run.stdout)["configs"]}
    # Still PEFT's answer: q_proj (64→64) at r=4 from the keys that match, v_proj (64→32) at r=8, 2 layers.
    assert counts[2] == 2 * (4 * (64 + 64) + 8 * (64 + 32))
    assert counts[3] == 2 * 8 * (64 + 64)
    assert sum(1 for c, _ in found.get(4, []) if c == "LORA213") == 2000  # each entry matches nothing


@pytest.mark.parametrize("n", [1000, 5000])
def test_an_adapter_config_with_thousands_of_full_name_keys(bounded, tmp_path, n):
    keys = {f"model.layers.{i}.self_attn.q_proj": 4 for i in range(n)}
    (tmp_path / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": 8, "lora_alpha": 16, "task_type": "CAUSAL_LM",
        "target_modules": ["q_proj", "v_proj"], "rank_pattern": keys, "alpha_pattern": keys}), encoding="utf-8")
    run = check(bounded, tmp_path, "--model", model_dir(tmp_path), "adapter_config.json")
    report = json.loads(run.stdout)
    [config] = report["configs"]
    limits = [d["message"] for d in report["diagnostics"] if d["code"] == "LORA906"]
    assert any(f"{n:,} keys" in m for m in limits), limits
    if n == 1000:  # matched against every module: still PEFT's answer, and each unmatched key reported
        assert config["trainable_params"] == 2 * (4 * (64 + 64) + 8 * (64 + 32))
        assert sum(1 for d in report["diagnostics"] if d["code"] == "LORA207") == 2 * (n - 2)
    else:  # more keys than loralint reads: not evaluated, never guessed
        assert config["trainable_params"] is None


# --- absurd model configs -------------------------------------------------------------------------

TRAIN = IMPORT + "c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM')\n"


@pytest.mark.parametrize(("key", "value"), [
    ("num_hidden_layers", 1e9), ("num_hidden_layers", 10**9), ("hidden_size", 10**300),
    ("intermediate_size", 1e300), ("num_hidden_layers", 10**11),
])
def test_a_model_beyond_any_real_one_is_not_built(bounded, tmp_path, key, value):
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    run = check(bounded, tmp_path, "--model", model_dir(tmp_path, **{key: value}), "train.py")
    [(code, message)] = by_line(run, "train.py")[2]
    assert code == "LORA906" and key in message and "not analysed" in message, message
    assert run.exit_code == 1


@pytest.mark.parametrize(("value", "note"), [
    ("many", "is not an integer"), ([1, 2], "is not an integer"), ({"n": 2}, None), (True, "is not an integer"),
    (-5, "is negative"),
])
def test_a_layer_count_of_the_wrong_type_is_noted_not_fatal(bounded, tmp_path, value, note):
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    run = check(bounded, tmp_path, "--model", model_dir(tmp_path, num_hidden_layers=value), "train.py")
    [config] = json.loads(run.stdout)["configs"]
    if note is not None:
        assert any(f"num_hidden_layers={value!r}" in n and note in n for n in config["model_notes"]), config
    if value == -5:  # as transformers builds it: no layers, so nothing to adapt (PEFT raises)
        assert "LORA202" in codes(by_line(run, "train.py")[2])


@pytest.mark.parametrize("model_type", [["llama"], {"a": 1}])
def test_a_model_type_that_is_not_a_string_is_a_clear_message(bounded, tmp_path, model_type):
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    model = model_dir(tmp_path, "weird", model_type=model_type)
    run = bounded(["check", "--no-cache", "--model", model, "train.py"], tmp_path)
    assert run.exit_code == 2 and not run.traceback, run.stderr
    assert "weird/config.json: model_type must be a string" in run.stderr

    # Named by the script instead: the model stays unresolved, the file is still checked.
    (tmp_path / "script.py").write_text(
        "from transformers import AutoModelForCausalLM\nfrom peft import LoraConfig, get_peft_model\n"
        "model = AutoModelForCausalLM.from_pretrained('./weird')\n"
        "model = get_peft_model(model, LoraConfig(r=8, lora_alpha=64, target_modules=['q_proj'], task_type='CAUSAL_LM'))\n",
        encoding="utf-8")
    run = check(bounded, tmp_path, "script.py")
    assert "model_type must be a string" in run.stderr
    assert "LORA101" in {d["code"] for d in json.loads(run.stdout)["diagnostics"]}


def test_modules_command_refuses_an_absurd_model(bounded, tmp_path):
    run = bounded(["modules", model_dir(tmp_path, num_hidden_layers=10**9)], tmp_path)
    assert run.exit_code == 2 and not run.traceback, run.stderr
    assert "num_hidden_layers = 1,000,000,000 makes more than 50,000 modules" in run.stderr
    assert run.peak_rss_mb < MEMORY_MB


@pytest.mark.verify
def test_verify_refuses_an_absurd_model_before_building_it(bounded, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    (tmp_path / "train.py").write_text(TRAIN, encoding="utf-8")
    for name, overrides in (("layers", {"num_hidden_layers": 10**9}), ("wide", {"hidden_size": 10**8})):
        model_dir(tmp_path, name, **overrides)
    script = ("from transformers import AutoModelForCausalLM\nfrom peft import LoraConfig, get_peft_model\n"
              "model = AutoModelForCausalLM.from_pretrained('./{}')\n"
              "model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj'], task_type='CAUSAL_LM'))\n")
    for name in ("layers", "wide"):
        (tmp_path / f"{name}.py").write_text(script.format(name), encoding="utf-8")
    # torch reserves far more address space than it uses; the bound is on what is built.
    run = bounded(["verify", "--no-cache", "--output-format", "json", "layers.py", "wide.py"], tmp_path,
                  address_space_mb=int(os.environ.get("LORALINT_TEST_VERIFY_AS_MB", "16384")))
    assert not run.traceback, run.stderr
    text = run.stdout
    assert text.count("LORA256") >= 2, text
    assert "num_hidden_layers=1,000,000,000 is beyond any real model" in text
    assert "hidden_size=100,000,000 is beyond any real model" in text
