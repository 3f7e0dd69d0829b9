"""The program model follows objects through a script, not variable names (issue 10).

Each case is a minimal script run through the CLI; the assertions are on what a user sees:
codes, severities, lines and the `configs` of the JSON report."""

from __future__ import annotations

import textwrap

import pytest

from helpers import run_cli

HEAD = """
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
"""
LLAMA = "meta-llama/Llama-3.2-3B"


def check(tmp_path, source: str, *args: str, name: str = "train.py", head: str = HEAD):
    body = textwrap.dedent(head).lstrip("\n") + textwrap.dedent(source).lstrip("\n")
    (tmp_path / name).write_text(body)
    return run_cli(["check", "--output-format", "json", "--no-cache", "--fail-level", "info", *args, name], cwd=tmp_path)


def found(run, code: str) -> list[dict]:
    return [d for d in run.json["diagnostics"] if d["code"] == code]


def lines(run, code: str) -> list[int]:
    return [d["line"] for d in found(run, code)]


# --- object identity and flow: LORA401 -----------------------------------------------------------


def test_preparing_another_model_after_get_peft_model_is_not_lora401(tmp_path):
    run = check(
        tmp_path,
        """
        policy = AutoModelForCausalLM.from_pretrained("gpt2", load_in_8bit=True)
        reward = AutoModelForSequenceClassification.from_pretrained("gpt2", load_in_8bit=True)
        policy = prepare_model_for_kbit_training(policy)
        policy = get_peft_model(policy, LoraConfig(task_type="CAUSAL_LM"))
        reward = prepare_model_for_kbit_training(reward)
        """,
    )
    assert found(run, "LORA401") == []


def test_preparing_the_same_model_after_get_peft_model_is_lora401(tmp_path):
    run = check(
        tmp_path,
        """
        model = AutoModelForCausalLM.from_pretrained("gpt2", load_in_8bit=True)
        peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
        peft_model = prepare_model_for_kbit_training(peft_model)
        """,
    )
    assert lines(run, "LORA401") == [5]
    # the base model itself, prepared after it was wrapped, is the same object
    run = check(
        tmp_path,
        """
        model = AutoModelForCausalLM.from_pretrained("gpt2", load_in_8bit=True)
        peft_model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
        prepare_model_for_kbit_training(model)
        """,
    )
    assert lines(run, "LORA401") == [5]


def test_two_functions_each_preparing_their_own_model_are_not_lora401(tmp_path):
    run = check(
        tmp_path,
        """
        def train_adapter():
            model = AutoModelForCausalLM.from_pretrained("gpt2")
            return get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))

        def quantized_baseline():
            model = AutoModelForCausalLM.from_pretrained("gpt2", load_in_8bit=True)
            return prepare_model_for_kbit_training(model)
        """,
    )
    assert found(run, "LORA401") == []


# --- LORA402: one config object really reaching two applications ---------------------------------


def test_a_rebound_config_name_is_a_new_object_not_lora402(tmp_path):
    run = check(
        tmp_path,
        """
        m1 = AutoModelForCausalLM.from_pretrained("gpt2")
        m2 = AutoModelForCausalLM.from_pretrained("gpt2")
        config = LoraConfig(r=8, task_type="CAUSAL_LM")
        a = get_peft_model(m1, config)
        config = LoraConfig(r=8, task_type="CAUSAL_LM")
        b = get_peft_model(m2, config)
        """,
    )
    assert found(run, "LORA402") == []


def test_exclusive_branches_and_early_returns_are_not_lora402(tmp_path):
    run = check(
        tmp_path,
        """
        def build(kind, m):
            config = LoraConfig(r=8, task_type="CAUSAL_LM")
            if kind == "a":
                return get_peft_model(m, config)
            if kind == "b":
                model = get_peft_model(m, config)
            elif kind == "c":
                model = get_peft_model(m, config)
            else:
                model = get_peft_model(m, config)
            return model
        """,
    )
    assert found(run, "LORA402") == []


def test_one_config_applied_twice_in_one_run_is_lora402(tmp_path):
    run = check(
        tmp_path,
        """
        config = LoraConfig(r=8, task_type="CAUSAL_LM")
        a = get_peft_model(AutoModelForCausalLM.from_pretrained("gpt2"), config)
        b = get_peft_model(AutoModelForCausalLM.from_pretrained("gpt2"), config)
        for name in ["gpt2", "distilgpt2"]:
            c = get_peft_model(AutoModelForCausalLM.from_pretrained(name), LoraConfig(r=8, task_type="CAUSAL_LM"))
        """,
    )
    [d] = found(run, "LORA402")
    assert d["line"] == 5 and d["severity"] == "info"
    # the same object again on each pass of a loop it was built outside of
    run = check(
        tmp_path,
        """
        config = LoraConfig(r=8, task_type="CAUSAL_LM")
        for name in ["gpt2", "distilgpt2"]:
            model = get_peft_model(AutoModelForCausalLM.from_pretrained(name), config)
        """,
    )
    assert lines(run, "LORA402") == [5]


# --- the base model of a config -----------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        # rebound later, in an unrelated branch: the application saw only the first model
        """
        model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM"))
        if debug:
            model = AutoModelForCausalLM.from_pretrained("gpt2")
        """,
        # rebound earlier in a dead branch
        """
        model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
        if False:
            model = AutoModelForCausalLM.from_pretrained("gpt2")
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM"))
        """,
    ],
)
def test_the_base_model_survives_a_rebinding_in_a_dead_or_unrelated_branch(tmp_path, source):
    [config] = check(tmp_path, source).json["configs"]
    assert config["base_model"] == LLAMA


def test_two_models_reaching_one_application_are_not_guessed(tmp_path):
    [config] = check(
        tmp_path,
        """
        model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
        if small:
            model = AutoModelForCausalLM.from_pretrained("gpt2")
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM"))
        """,
    ).json["configs"]
    assert config["base_model"] is None


def test_a_config_built_in_a_helper_gets_the_model_it_is_applied_to(tmp_path):
    [config] = check(
        tmp_path,
        """
        def lora_config():
            return LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj"], task_type="CAUSAL_LM")

        model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
        model = get_peft_model(model, lora_config())
        """,
    ).json["configs"]
    assert config["base_model"] == LLAMA


def test_helpers_are_followed_through_call_sites_and_parameter_defaults(tmp_path):
    configs = check(
        tmp_path,
        """
        def add_lora(model, r=16, alpha=None):
            config = LoraConfig(r=r, lora_alpha=alpha or 2 * r, target_modules=["q_proj"], task_type="CAUSAL_LM")
            return get_peft_model(model, config)

        def make_config(rank):
            return LoraConfig(r=rank, lora_alpha=rank, target_modules=["q_proj"], task_type="CAUSAL_LM")

        base = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
        model = add_lora(base)
        other = make_config(8)
        """,
    ).json["configs"]
    assert configs[0]["base_model"] == LLAMA
    assert configs[0]["fields"]["r"] == 16 and configs[0]["fields"]["lora_alpha"] == 32
    assert configs[1]["fields"]["r"] == 8


def test_values_that_differ_between_call_sites_are_not_guessed(tmp_path):
    [config] = check(
        tmp_path,
        """
        def make_config(rank):
            return LoraConfig(r=rank, lora_alpha=16, target_modules=["q_proj"])

        small, big = make_config(8), make_config(64)
        """,
    ).json["configs"]
    assert config["fields"]["r"] is None


# --- LORA107: only where PEFT picks a PeftModelFor* class from task_type --------------------------

NO_TASK = 'LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"])'


def test_missing_task_type_on_get_peft_model_and_trl_trainers(tmp_path):
    run = check(
        tmp_path,
        f"""
        model = AutoModelForSequenceClassification.from_pretrained("meta-llama/Llama-3.2-3B", num_labels=2)
        model = get_peft_model(model, {NO_TASK})
        """,
        "--select", "LORA107",
    )
    [d] = found(run, "LORA107")
    assert d["severity"] == "warning" and "task_type='SEQ_CLS'" in d["message"] and d["fix"] is not None
    run = check(
        tmp_path,
        f"""
        from trl import SFTTrainer
        trainer = SFTTrainer(model="meta-llama/Llama-3.2-3B", peft_config={NO_TASK})
        """,
        "--select", "LORA107",
    )
    [d] = found(run, "LORA107")
    assert d["severity"] == "warning" and "task_type='CAUSAL_LM'" in d["message"]


@pytest.mark.parametrize(
    "source",
    [
        f'model = AutoModelForCausalLM.from_pretrained("gpt2")\nmodel.add_adapter({NO_TASK})\n',
        f'from peft import inject_adapter_in_model\nmodel = inject_adapter_in_model({NO_TASK}, AutoModelForCausalLM.from_pretrained("gpt2"))\n',
        f'from peft import PeftModelForCausalLM\nmodel = PeftModelForCausalLM(AutoModelForCausalLM.from_pretrained("gpt2"), {NO_TASK})\n',
        f'from diffusers import UNet2DConditionModel\nunet = UNet2DConditionModel.from_pretrained("sd", subfolder="unet")\nunet = get_peft_model(unet, {NO_TASK})\n',
        f'from diffusers import UNet2DConditionModel\nunet = UNet2DConditionModel.from_pretrained("sd", subfolder="unet")\nunet.add_adapter({NO_TASK})\n',
        (
            "import torch.nn as nn\n"
            "class MLP(nn.Module):\n"
            "    def __init__(self):\n"
            "        super().__init__()\n"
            "        self.q_proj = nn.Linear(8, 8)\n"
            f"model = get_peft_model(MLP(), {NO_TASK})\n"
        ),
    ],
    ids=["add_adapter", "inject_adapter_in_model", "PeftModelForCausalLM", "diffusers", "diffusers-add_adapter", "nn.Module"],
)
def test_no_missing_task_type_where_task_type_is_never_read(tmp_path, source):
    assert found(check(tmp_path, source, "--select", "LORA107"), "LORA107") == []


def test_missing_task_type_on_a_model_of_unknown_class_says_less_at_a_lower_severity(tmp_path):
    run = check(
        tmp_path,
        f"""
        def wrap(model):
            return get_peft_model(model, {NO_TASK})
        """,
        "--select", "LORA107",
    )
    [d] = found(run, "LORA107")
    assert d["severity"] == "info" and d["fix"] is None
    assert "set task_type to match it" in d["message"] and "loaded with" not in d["message"]


# --- architecture rules only on architectures loralint knows --------------------------------------


def test_a_bare_name_string_target_on_the_scripts_own_module_is_not_lora209(tmp_path):
    custom = """
    import torch.nn as nn
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin0 = nn.Linear(8, 8)
    model = get_peft_model(MLP(), LoraConfig(target_modules="lin0"))
    """
    assert found(check(tmp_path, custom, "--select", "LORA209"), "LORA209") == []
    hub = 'model = get_peft_model(AutoModelForCausalLM.from_pretrained("gpt2"), LoraConfig(target_modules="c_attn"))\n'
    assert lines(check(tmp_path, hub, "--select", "LORA209"), "LORA209") == [3]


# --- scaling advice that agrees with itself -------------------------------------------------------


def test_the_qlora_recipe_is_advice_not_a_failing_warning(tmp_path):
    source = 'c = LoraConfig(r=64, lora_alpha=16, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'
    (tmp_path / "qlora.py").write_text(textwrap.dedent(HEAD).lstrip("\n") + source)
    run = run_cli(["check", "--output-format", "json", "--no-cache", "qlora.py"], cwd=tmp_path)
    assert run.exit_code == 0
    [d] = run.json["diagnostics"]
    assert (d["code"], d["severity"]) == ("LORA102", "info")
    assert "set use_rslora=True, which keeps lora_alpha=16 at a scaling of lora_alpha/sqrt(r) = 2" in d["message"]
    # its (unsafe) fix turns rsLoRA on, after which nothing is left to say
    fixed = run_cli(["check", "--no-cache", "--fix", "--unsafe-fixes", "qlora.py"], cwd=tmp_path)
    assert "use_rslora=True" in (tmp_path / "qlora.py").read_text()
    assert fixed.exit_code == 0 and "All checks passed!" in fixed.stdout


@pytest.mark.parametrize(
    ("r", "alpha", "expected"),
    [
        (64, 16, ["LORA102"]),  # rsLoRA with the same alpha: scaling 2
        (128, 64, ["LORA102"]),  # 0.5 is in range, but the update shrinks with the rank
        (256, 1, ["LORA101"]),  # too small either way: LORA101's alpha=r advice, alone
        (32, 8, ["LORA101"]),  # not a high rank
        (128, 256, []),  # the update does not shrink: no rsLoRA advice
        (64, 64, []),
    ],
)
def test_lora101_and_lora102_never_both_speak_for_one_config(tmp_path, r, alpha, expected):
    run = check(tmp_path, f'c = LoraConfig(r={r}, lora_alpha={alpha}, target_modules=["q_proj"], task_type="CAUSAL_LM")\n')
    assert sorted(d["code"] for d in run.json["diagnostics"] if d["code"] in ("LORA101", "LORA102")) == expected


def test_a_wrong_target_list_is_one_error(tmp_path):
    run = check(
        tmp_path,
        """
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        model = get_peft_model(model, LoraConfig(target_modules=["q_proj", "k_proj", "v_proj"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
        """,
    )
    errors = [d["code"] for d in run.json["diagnostics"] if d["severity"] == "error"]
    assert errors == ["LORA202"]


# --- YAML ---------------------------------------------------------------------------------------


def test_axolotl_with_an_empty_adapter_is_full_fine_tuning_not_a_lora_site(tmp_path):
    source = "base_model: meta-llama/Llama-3.2-3B\nadapter:\nlora_r: 8\nlora_alpha: 2\nlora_target_linear: true\n"
    run = check(tmp_path, source, name="config.yml", head="")
    assert run.json["configs"] == [] and run.json["diagnostics"] == []
    lora = check(tmp_path, source.replace("adapter:\n", "adapter: lora\n"), name="config.yml", head="")
    assert [c["origin"] for c in lora.json["configs"]] == ["axolotl"]


# --- reading values without running anything -----------------------------------------------------


def test_control_flow_gives_alternatives_and_a_rebinding_ends_the_old_value(tmp_path):
    configs = check(
        tmp_path,
        """
        r = 8
        r = 16
        a = LoraConfig(r=r)
        rank = 8 if small else 64
        b = LoraConfig(r=rank)
        if small:
            alpha = 32
        else:
            alpha = 32
        c = LoraConfig(r=16, lora_alpha=alpha)
        """,
    ).json["configs"]
    assert configs[0]["fields"]["r"] == 16
    assert configs[1]["fields"]["r"] is None
    assert configs[2]["fields"]["lora_alpha"] == 32  # both branches agree


def test_kwargs_edited_by_key_and_update_are_followed(tmp_path):
    configs = check(
        tmp_path,
        """
        kw = dict(r=16, lora_alpha=32, target_modules=["q_proj"])
        kw["use_dora"] = True
        kw.update(lora_dropout=0.1)
        a = LoraConfig(**kw)
        other = {"r": 8}
        if big:
            other["r"] = 64
        b = LoraConfig(**other)
        """,
    ).json["configs"]
    assert configs[0]["fields"] == {"r": 16, "lora_alpha": 32, "target_modules": ["q_proj"], "use_dora": True, "lora_dropout": 0.1}
    assert configs[1]["fields"] == {"r": None}


@pytest.mark.parametrize(
    "import_line",
    [
        'peft = pytest.importorskip("peft")',
        'peft = importlib.import_module("peft")',
    ],
)
def test_a_module_bound_by_assignment_is_followed(tmp_path, import_line):
    run = check(tmp_path, f"import importlib, pytest\n{import_line}\nc = peft.LoraConfig(r=0)\n", head="")
    assert [d["code"] for d in run.json["diagnostics"]] == ["LORA002"]


def test_huge_or_deep_values_stay_unknown_and_the_file_is_still_checked(tmp_path):
    deep = "+".join(["1"] * 1500)  # parses, but nests far deeper than the evaluator follows
    run = check(
        tmp_path,
        f"""
        a = LoraConfig(r=10**10**10, target_modules=["q_proj"] * 10**9)
        b = LoraConfig(r={deep})
        c = LoraConfig(r=0)
        """,
    )
    found = [(d["code"], d["line"]) for d in run.json["diagnostics"]]
    assert found == [("LORA906", 3), ("LORA906", 3), ("LORA906", 4), ("LORA002", 5)]  # each bound where it was hit
    assert [c["fields"]["r"] for c in run.json["configs"]] == [None, None, 0]


# --- recall: configurations real code builds --------------------------------------------------------

ARGS = """
from dataclasses import dataclass, field
from transformers import HfArgumentParser
from peft import LoraConfig

@dataclass
class ModelArguments:
    model_name_or_path: str = "meta-llama/Llama-3.2-3B"

@dataclass
class LoraArguments:
    lora_r: int = field(default=32)
    lora_alpha: int = 64
"""


@pytest.mark.parametrize(
    "parse",
    [
        "model_args, lora_args = HfArgumentParser((ModelArguments, LoraArguments)).parse_args_into_dataclasses()",
        "lora_args = HfArgumentParser((ModelArguments, LoraArguments)).parse_args_into_dataclasses()[1]",
        "parser = HfArgumentParser((ModelArguments, LoraArguments))\n(model_args, lora_args, *rest) = parser.parse_args_into_dataclasses(return_remaining_strings=True)",
        (
            "parser = HfArgumentParser((ModelArguments, LoraArguments))\n"
            "if len(sys.argv) == 2:\n"
            "    model_args, lora_args = parser.parse_json_file(json_file=sys.argv[1])\n"
            "else:\n"
            "    model_args, lora_args = parser.parse_args_into_dataclasses()"
        ),
    ],
    ids=["unpacked", "indexed", "starred", "json-or-command-line"],
)
def test_argument_dataclasses_read_through_hfargumentparser(tmp_path, parse):
    source = ARGS + "import sys\n" + parse + "\nc = LoraConfig(r=lora_args.lora_r, lora_alpha=lora_args.lora_alpha)\n"
    [config] = check(tmp_path, source, head="").json["configs"]
    assert config["fields"] == {"r": 32, "lora_alpha": 64}


def test_an_argument_changed_after_parsing_is_not_its_default(tmp_path):
    source = ARGS + (
        "model_args, lora_args = HfArgumentParser((ModelArguments, LoraArguments)).parse_args_into_dataclasses()\n"
        "lora_args.lora_r = 8\n"
        "c = LoraConfig(r=lora_args.lora_r, lora_alpha=lora_args.lora_alpha)\n"
    )
    [config] = check(tmp_path, source, head="").json["configs"]
    assert config["fields"] == {"r": None, "lora_alpha": 64}


def test_mmengine_style_registry_dicts_are_configurations(tmp_path):
    run = check(
        tmp_path,
        """
        from peft import LoraConfig
        lora = dict(type=LoraConfig, r=64, lora_alpha=16, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM")
        other = dict(type=SomethingElse, r=0)
        """,
        head="",
    )
    assert [(c["origin"], c["fields"]["r"]) for c in run.json["configs"]] == [("peft.LoraConfig", 64)]


def test_a_suppression_inside_a_string_is_not_a_comment(tmp_path):
    run = check(
        tmp_path,
        """
        from peft import LoraConfig
        c = LoraConfig(r=0, target_modules=["# loralint: ignore"])
        d = LoraConfig(r=0)  # loralint: ignore[LORA002]
        """,
        "--select", "LORA002,LORA903",
        head="",
    )
    assert [(d["code"], d["line"]) for d in run.json["diagnostics"]] == [("LORA002", 2)]


def test_python_312_f_strings_are_not_called_a_syntax_error_on_an_older_interpreter(tmp_path):
    import sys

    (tmp_path / "train.py").write_text(
        'from peft import LoraConfig\nrow = {"a": 1}\nprint(f"{row["a"]}")\nconfig = LoraConfig(r=8, lora_alpha=16)\n'
    )
    run = run_cli(["check", "--no-cache", "--output-format", "json", "train.py"], cwd=tmp_path)
    assert "LORA901" not in run.codes(), run.stdout
    if sys.version_info < (3, 12):  # PEP 701 syntax this interpreter cannot parse: said, not blamed
        [diag] = run.json["diagnostics"]
        assert diag["code"] == "LORA906" and "Python 3.12" in diag["message"], diag


def test_a_config_a_test_builds_wrong_on_purpose_is_not_reported(tmp_path):
    (tmp_path / "test_config.py").write_text(
        "import pytest\nimport unittest\nfrom peft import LoraConfig\n\n"
        "def test_rejects_bad_dropout():\n"
        "    with pytest.raises(ValueError):\n"
        "        LoraConfig(r=8, lora_dropout=1.5)\n\n"
        "class T(unittest.TestCase):\n"
        "    def test_warns(self):\n"
        "        with self.assertWarns(UserWarning):\n"
        "            LoraConfig(r=0)\n\n"
        "def test_outside():\n"
        "    LoraConfig(r=8, lora_dropout=1.5)\n"
    )
    run = run_cli(["check", "--no-cache", "--output-format", "json", "test_config.py"], cwd=tmp_path)
    lines = sorted({d["line"] for d in run.json["diagnostics"]})
    assert lines == [15], run.stdout  # only the config outside the expecting blocks
    assert len(run.json["configs"]) == 3  # still found and described
