"""Rule behaviour beyond the documented examples: messages, parameters, edge cases, fixes."""

from __future__ import annotations

import textwrap

import pytest

from helpers import run_cli


def findings(tmp_path, source: str, *args: str, name: str = "t.py"):
    (tmp_path / name).write_text(textwrap.dedent(source).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", *args, name], cwd=tmp_path)
    return run.json["diagnostics"]


def messages(tmp_path, source, code, *args):
    return [d["message"] for d in findings(tmp_path, source, "--select", code, *args)]


def test_alpha_scaling_uses_rslora_and_defaults(tmp_path):
    [m] = messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(r=64, lora_alpha=128, use_rslora=True)\n", "LORA101")
    assert m.startswith("lora_alpha/sqrt(r) = 16 (alpha=128, r=64, use_rslora=True): updates are scaled up 16x")
    assert m.endswith("use lora_alpha=8 for scaling 1 or 16 for 2")
    # PEFT's default alpha (8) with r=32
    [m] = messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(r=32)\n", "LORA101")
    assert "alpha=8 (PEFT default)" in m and "= 0.25" in m
    # Unsloth's default alpha is 16, TRL's 32: no finding at their default ranks
    assert messages(tmp_path, "from unsloth import FastLanguageModel\nm = FastLanguageModel.get_peft_model(model)\n", "LORA101") == []
    assert messages(tmp_path, "from trl import ModelConfig\nc = ModelConfig(use_peft=True)\n", "LORA101") == []


def test_alpha_scaling_per_layer_patterns(tmp_path):
    [m] = messages(
        tmp_path,
        'from peft import LoraConfig\nc = LoraConfig(r=8, lora_alpha=16, rank_pattern={"down_proj": 64})\n',
        "LORA101",
    )
    assert m == (
        "layers matching 'down_proj': lora_alpha/r = 0.25 (alpha=16, r=64) (rank_pattern sets r but alpha_pattern has no"
        " matching key); outside [0.5, 4]"
    )


def test_alpha_scaling_fix_appends_when_alpha_is_defaulted(tmp_path):
    [d] = findings(tmp_path, "from peft import LoraConfig\nc = LoraConfig(r=32, target_modules=['q_proj'])\n", "--select", "LORA101")
    assert d["fix"]["applicability"] == "unsafe"
    assert d["fix"]["edits"][0]["content"] == ", lora_alpha=32"


def test_alpha_scaling_has_no_value_fix_for_a_constant(tmp_path):
    [d] = findings(tmp_path, "from peft import LoraConfig\nA = 4\nc = LoraConfig(r=32, lora_alpha=A)\n", "--select", "LORA101")
    assert d["fix"] is None
    assert "alpha=4 (A at line 2)" in d["message"]


def test_unknown_arguments_removed_fields_and_other_tools_names(tmp_path):
    found = messages(
        tmp_path,
        "from peft import LoraConfig\nc = LoraConfig(lora_r=8, merge_weights=True, target_modules=['q_proj'], rnk=3)\n",
        "LORA001",
    )
    assert found == [
        "lora_r is not an argument of LoraConfig; LoraConfig(...) raises TypeError: unexpected keyword argument 'lora_r';"
        " did you mean r?",
        "merge_weights is not an argument of LoraConfig: removed in peft 0.3.0; merge with model.merge_and_unload() instead",
        "rnk is not an argument of LoraConfig; LoraConfig(...) raises TypeError: unexpected keyword argument 'rnk'",
    ]


def test_invalid_rank_variants(tmp_path):
    src = "from peft import LoraConfig\nc = LoraConfig(r=8.0, rank_pattern={'q_proj': -2})\n"
    found = messages(tmp_path, src, "LORA002")
    assert found[0].startswith("r=8.0 is not a positive integer; LoRA builds nn.Linear(in, r)")
    assert found[1].startswith("rank_pattern['q_proj']=-2 is not a positive integer")
    assert messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(r=True)\n", "LORA002")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("'causal_lm'", "CAUSAL_LM"), ("'QUESTION_ANSWERING'", "QUESTION_ANS"), ("'seq2seq'", "SEQ_2_SEQ_LM"), ("'SEQ_CLASS'", "SEQ_CLS")],
)
def test_task_type_suggestions_and_fix(tmp_path, value, expected):
    [d] = findings(tmp_path, f"from peft import LoraConfig\nc = LoraConfig(task_type={value})\n", "--select", "LORA005")
    assert d["message"].endswith(f"did you mean {expected!r}?")
    assert d["fix"]["edits"][0]["content"] == f'"{expected}"'


def test_task_type_enum_member_that_does_not_exist(tmp_path):
    [m] = messages(tmp_path, "from peft import LoraConfig, TaskType\nc = LoraConfig(task_type=TaskType.CAUSAL)\n", "LORA005")
    assert m.startswith("task_type='CAUSAL' (TaskType.CAUSAL) is not a PEFT TaskType")


def test_conflicting_options_each_condition(tmp_path):
    cases = {
        "target_modules='.*q_proj', layers_to_transform=[0]": "layers_to_transform cannot be used when target_modules is a string",
        "use_dora=True, lora_bias=True": "lora_bias=True is not supported with DoRA",
        "lora_bias=True, init_lora_weights='gaussian'": "lora_bias=True works only with init_lora_weights=True or False",
        "use_dora=True, alora_invocation_tokens=[1, 2]": "use_dora and alora_invocation_tokens are separate LoRA variants",
        "target_parameters=['experts.gate_up_proj'], lora_dropout=0.1": "does not work with lora_dropout != 0",
        "init_lora_weights='orthogonal', r=7": "orthogonal initialisation needs an even rank, not r=7",
        "use_dora=True, megatron_config={'a': 1}": "DoRA does not support megatron_core",
    }
    for args, expected in cases.items():
        found = messages(tmp_path, f"from peft import LoraConfig\nc = LoraConfig({args})\n", "LORA007")
        assert any(expected in m for m in found), (args, found)
    assert messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(target_modules=['q_proj'], layers_to_transform=[0], layers_pattern='layers')\n", "LORA007") == []


def test_wrong_types(tmp_path):
    found = messages(
        tmp_path,
        "from peft import LoraConfig\nc = LoraConfig(fan_in_fan_out='false', target_modules=['q_proj', 3], layers_to_transform='0')\n",
        "LORA010",
    )
    assert len(found) == 3
    assert any("every target_modules entry must be a string" in m for m in found)
    assert any("layers_to_transform='0' must be an int or a list of ints" in m for m in found)
    assert any("fan_in_fan_out='false' should be True or False; PEFT only tests its truth, so 'false' means True" in m for m in found)


@pytest.mark.parametrize(
    ("target", "fragment", "fixed"),
    [
        ("'q_proj'", "matches nothing; use a list ['q_proj']", '["q_proj"]'),
        ("'all_linear'", "is not the special value 'all-linear'", '"all-linear"'),
        ("'ALL-LINEAR'", None, None),
        ("'q_proj, v_proj'", "not a comma-separated list", '["q_proj", "v_proj"]'),
        ("r'.*\\.(q_proj'", "is not a valid regular expression", None),
        ("r'.*\\.(q_proj|v_proj)'", None, None),
    ],
)
def test_string_targets(tmp_path, target, fragment, fixed):
    found = findings(tmp_path, f"from peft import LoraConfig\nc = LoraConfig(target_modules={target})\n", "--select", "LORA209")
    if fragment is None:
        assert found == []
        return
    [d] = found
    assert fragment in d["message"]
    assert (d["fix"]["edits"][0]["content"] if d["fix"] else None) == fixed


def test_regex_in_lists_and_all_linear_in_a_list(tmp_path):
    found = messages(
        tmp_path,
        "from peft import LoraConfig\nc = LoraConfig(target_modules=['all-linear'], exclude_modules=['.*vision.*'], modules_to_save=['lm_head'])\n",
        "LORA210",
    )
    assert found[0].startswith("'all-linear' only works as the plain string")
    assert found[1].startswith("exclude_modules entries ['.*vision.*'] look like regular expressions")
    assert len(found) == 2


def test_missing_task_type_for_classification_is_specific_and_fixable(tmp_path):
    src = """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained("bert-base-uncased")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16))
    """
    [d] = findings(tmp_path, src, "--select", "LORA107")
    assert "the new, randomly initialised head is neither trained nor saved" in d["message"]
    assert d["message"].endswith("set task_type='SEQ_CLS'")
    assert d["fix"] == {
        "description": "Add task_type='SEQ_CLS'",
        "applicability": "unsafe",  # it makes PEFT train and save the new head: training changes
        "edits": [{"line": 4, "column": 60, "end_line": 4, "end_column": 60, "content": ', task_type="SEQ_CLS"'}],
    }
    # Not applied anywhere: nothing to say. Opaque kwargs: cannot know.
    assert messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(r=8)\n", "LORA107") == []
    assert messages(tmp_path, "from peft import LoraConfig, get_peft_model\nm = get_peft_model(x, LoraConfig(**kw))\n", "LORA107") == []


def test_dropout_rules_boundaries(tmp_path):
    def codes(dropout):
        return sorted(d["code"] for d in findings(tmp_path, f"from peft import LoraConfig\nc = LoraConfig(lora_dropout={dropout})\n", "--select", "LORA003,LORA105"))

    assert codes(0.3) == []
    assert codes(0.31) == ["LORA105"]
    assert codes(0.99) == ["LORA105"]
    assert codes(1) == ["LORA003"]
    assert codes(-0.1) == ["LORA003"]
    assert codes("'0.1'") == ["LORA003"]


def test_bnb_both_bits_is_an_error_message(tmp_path):
    src = """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    q = BitsAndBytesConfig(load_in_4bit=True, load_in_8bit=True)
    m = get_peft_model(AutoModelForCausalLM.from_pretrained("gpt2", quantization_config=q), LoraConfig(task_type="CAUSAL_LM"))
    """
    assert messages(tmp_path, src, "LORA302") == [
        "BitsAndBytesConfig sets both load_in_4bit and load_in_8bit: transformers raises ValueError"
    ]


def test_unsloth_default_4bit_load_makes_loftq_an_error(tmp_path):
    src = """
    from unsloth import FastLanguageModel
    model, tok = FastLanguageModel.from_pretrained(model_name="unsloth/Qwen2.5-7B")
    model = FastLanguageModel.get_peft_model(model, init_lora_weights="loftq", loftq_config={"loftq_bits": 4})
    """
    [m] = messages(tmp_path, src, "LORA301")
    assert m.startswith("init_lora_weights='loftq' but the base model is loaded in 4bit (line 2)")


def test_corda_without_preprocessing(tmp_path):
    [m] = messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(init_lora_weights='corda')\n", "LORA403")
    assert "preprocess_corda(...)" in m and "`eigens` attribute not found" in m


def test_dataset_size_threshold_parameter(tmp_path):
    src = 'from datasets import load_dataset\nfrom peft import LoraConfig\nd = load_dataset("x", split="train[:50000]")\nc = LoraConfig(lora_dropout=0.1)\n'
    assert messages(tmp_path, src, "LORA104") == []
    (tmp_path / ".loralint.toml").write_text("[params.dropout-on-large-dataset]\nmin_examples = 10000\n")
    [m] = messages(tmp_path, src, "LORA104")
    assert "50,000 training examples (split='train[:50000]')" in m


def test_sub_config_types_and_construction_warnings(tmp_path):
    found = messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(use_bdlora=True)\n", "LORA010")
    assert found == ["use_bdlora=True must be BdLoraConfig(...), a dict or None: LoraConfig raises TypeError"
                     " (BD-LoRA is enabled with a BdLoraConfig, not a flag)"]
    assert messages(tmp_path, "from peft import LoraConfig, EvaConfig\nc = LoraConfig(init_lora_weights='eva', eva_config=EvaConfig(rho=2))\n", "LORA010") == []
    [m] = messages(
        tmp_path,
        "from peft import LoraConfig\nc = LoraConfig(init_lora_weights='pissa_niter_4', use_rslora=True, rank_pattern={'q_proj': 16})\n",
        "LORA013",
    )
    assert "cannot be restored with save_pretrained" in m


def test_unknown_key_suggests_only_the_close_ones_and_then_renames(tmp_path):
    # difflib's cutoff also lets lora_on_cpu (0.73) and lora_r (0.71) through for lora_droput (lora_dropout: 0.96)
    (tmp_path / "config.yml").write_text("base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nlora_r: 16\n"
                                         "lora_alpha: 32\nlora_droput: 0.05\nlora_target_linear: true\n")
    run = run_cli(["check", "--no-cache", "--output-format", "json", "--select", "LORA001", "config.yml"], cwd=tmp_path)
    [d] = run.json["diagnostics"]
    assert d["message"].endswith("so the setting has no effect; did you mean lora_dropout?")
    assert d["fix"]["applicability"] == "safe" and d["fix"]["edits"][0]["content"] == "lora_dropout"
    # two candidates about as close stay a choice, and nothing is renamed
    found = messages(tmp_path, "from peft import LoraConfig\nc = LoraConfig(use_rsdora=True)\n", "LORA001")
    assert found == [("use_rsdora is not an argument of LoraConfig; LoraConfig(...) raises TypeError: unexpected keyword"
                      " argument 'use_rsdora'; did you mean use_rslora or use_dora or use_bdlora?")]


@pytest.mark.parametrize("typo, field", [("lora_alpah", "lora_alpha"), ("lora_rr", "r")])
def test_a_misspelt_axolotl_rank_or_alpha_is_one_error_with_its_rename(tmp_path, typo, field):
    # axolotl has no default for lora_r / lora_alpha: the misspelt key leaves None, which fails in PEFT. One mistake:
    # LORA001 says both and renames the key (LORA002 / LORA012 stay quiet); the key simply missing is still LORA002/012.
    key = "lora_r" if field == "r" else "lora_alpha"
    text = "base_model: meta-llama/Llama-3.2-1B\nadapter: lora\nlora_r: 16\nlora_alpha: 32\nlora_target_linear: true\n"
    config = tmp_path / "config.yml"
    config.write_text(text.replace(f"{key}:", f"{typo}:"))
    run = run_cli(["check", "--no-cache", "--output-format", "json", "config.yml"], cwd=tmp_path)
    [d] = run.json["diagnostics"]
    assert d["code"] == "LORA001" and d["message"].endswith(
        f"did you mean {key}? Without it, axolotl passes {field}=None, which fails when PEFT injects the adapter")
    assert d["fix"]["applicability"] == "safe" and d["fix"]["edits"][0]["content"] == key
    assert run_cli(["check", "--no-cache", "--fix", "config.yml"], cwd=tmp_path).exit_code == 0
    assert config.read_text() == text
    config.write_text(text.replace(f"{key}: {16 if field == 'r' else 32}\n", ""))
    missing = run_cli(["check", "--no-cache", "--output-format", "json", "config.yml"], cwd=tmp_path).json["diagnostics"]
    assert [m["code"] for m in missing] == ["LORA002" if field == "r" else "LORA012"]
