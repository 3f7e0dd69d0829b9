"""TRL's get_peft_config / ModelConfig and Unsloth's finetune_* flags, as a user sees them."""

from __future__ import annotations

import textwrap

import pytest
from helpers import run_cli


def check(tmp_path, source: str):
    (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
    assert run.exit_code in (0, 1), run.stderr
    return run.json


def codes(report) -> list[tuple[str, int]]:
    return [(d["code"], d["line"]) for d in report["diagnostics"]]


# --- TRL -------------------------------------------------------------------------------------

TRL_SCRIPT = """
from datasets import load_dataset
from trl import ModelConfig, ScriptArguments, SFTConfig, SFTTrainer, TrlParser, get_peft_config

parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
script_args, training_args, model_args = parser.parse_args_and_config()
trainer = SFTTrainer(
    model="Qwen/Qwen2.5-0.5B",
    args=training_args,
    train_dataset=load_dataset(script_args.dataset_name)["train"],
    peft_config=get_peft_config(model_args),
)
"""


def test_the_trl_script_form_is_a_site_at_the_parse_call_and_stays_quiet(tmp_path):
    report = check(tmp_path, TRL_SCRIPT)
    [config] = report["configs"]
    assert (config["origin"], config["line"]) == ("trl.ModelConfig", 5)
    assert config["base_model"] == "Qwen/Qwen2.5-0.5B"  # the model of the trainer it is given to
    # --use_peft and the lora_* flags come from the command line: nothing about what is absent
    assert report["diagnostics"] == []


def test_hfargumentparser_dataclasses_read_the_same_way(tmp_path):
    report = check(
        tmp_path,
        """
        from transformers import HfArgumentParser
        from trl import ModelConfig, SFTTrainer, get_peft_config
        model_args = HfArgumentParser((ModelConfig,)).parse_args_into_dataclasses()[0]
        model_args.lora_r = 8
        trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=get_peft_config(model_args))
        """,
    )
    [config] = report["configs"]
    assert config["line"] == 3 and config["fields"] == {"r": None}  # changed at line 4: not TRL's default


def test_use_peft_false_is_no_lora_at_all(tmp_path):
    report = check(
        tmp_path,
        """
        from trl import ModelConfig, SFTTrainer, get_peft_config
        args = ModelConfig(model_name_or_path="Qwen/Qwen2.5-0.5B", lora_target_modules=["q_proj"])
        trainer = SFTTrainer(model=args.model_name_or_path, peft_config=get_peft_config(args))
        """,
    )
    assert report["configs"] == [] and report["diagnostics"] == []


def test_a_one_element_target_list_becomes_a_string_and_the_trainer_model_is_linked(tmp_path):
    report = check(
        tmp_path,
        """
        from trl import ModelConfig, SFTTrainer, get_peft_config
        args = ModelConfig(use_peft=True, lora_target_modules=["q_proj"])
        trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=get_peft_config(args))
        """,
    )
    [config] = report["configs"]
    assert config["fields"] == {"target_modules": "q_proj"}  # ModelConfig.__post_init__
    assert config["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert ("LORA209", 2) in codes(report)


@pytest.mark.parametrize("use_peft, quiet", [("True", False), ('os.environ.get("PEFT") == "1"', True)])
def test_rules_about_absence_stay_quiet_when_use_peft_is_not_known(tmp_path, use_peft, quiet):
    report = check(
        tmp_path,
        f"""
        import os
        from trl import ModelConfig, SFTTrainer, get_peft_config
        args = ModelConfig(use_peft={use_peft}, lora_r=16)
        trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=get_peft_config(args))
        """,
    )
    [config] = report["configs"]
    assert config["fields"] == {"r": 16}
    assert (("LORA208", 3) in codes(report)) is not quiet  # target_modules not set


def test_each_get_peft_config_call_is_a_fresh_config_but_one_result_reused_is_not(tmp_path):
    fresh = check(
        tmp_path,
        """
        from trl import ModelConfig, SFTTrainer, get_peft_config
        m = ModelConfig(use_peft=True, lora_target_modules=["q_proj", "v_proj"])
        a = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=get_peft_config(m))
        b = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=get_peft_config(m))
        """,
    )
    assert len(fresh["configs"]) == 1
    assert "LORA402" not in [c for c, _ in codes(fresh)]
    reused = check(
        tmp_path,
        """
        from trl import ModelConfig, SFTTrainer, get_peft_config
        m = ModelConfig(use_peft=True, lora_target_modules=["q_proj", "v_proj"])
        peft_config = get_peft_config(m)
        a = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=peft_config)
        b = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=peft_config)
        """,
    )
    assert ("LORA402", 5) in codes(reused)


# --- Unsloth ---------------------------------------------------------------------------------

UNSLOTH = """
import os
from unsloth import FastVisionModel
model, tokenizer = FastVisionModel.from_pretrained("unsloth/Qwen2-VL-2B-Instruct", load_in_4bit=True)
model = FastVisionModel.get_peft_model(model, r=16, lora_alpha=16{flags})
"""


def unsloth(tmp_path, flags: str) -> dict:
    [config] = check(tmp_path, UNSLOTH.format(flags=flags))["configs"]
    return config


def test_finetune_flags_become_the_targets_unsloth_selects(tmp_path):
    language = unsloth(tmp_path, ", finetune_vision_layers=False")
    modules = language["matched_modules"]["modules"]
    assert all(name.startswith("model.language_model.layers.") for name in modules)
    assert len(modules) == 7 and language["matched_modules"]["count"] == 7 * 28
    # 28 layers x (q, o: 16*(1536+1536); k, v: 16*(1536+256); gate, up, down: 16*(1536+8960))
    assert language["trainable_params"] == 18_464_768
    both = unsloth(tmp_path, "")  # Unsloth's defaults: vision and language, attention and MLP
    assert "model.visual.blocks.{i}.attn.qkv" in both["matched_modules"]["modules"]
    assert both["trainable_params"] > language["trainable_params"]


def test_an_explicit_list_is_filtered_by_the_flags(tmp_path):
    config = unsloth(tmp_path, ', target_modules=["q_proj", "v_proj", "fc1"], finetune_mlp_modules=False')
    assert sorted(config["matched_modules"]["modules"]) == [
        "model.language_model.layers.{i}.self_attn.q_proj",
        "model.language_model.layers.{i}.self_attn.v_proj",
    ]


def test_a_flag_that_is_not_known_leaves_the_targets_unknown(tmp_path):
    config = unsloth(tmp_path, ', finetune_vision_layers=os.environ.get("V") == "1"')
    assert config["matched_modules"] is None and config["trainable_params"] is None
