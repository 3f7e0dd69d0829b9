"""False classes found by judging loralint on public LoRA code (benchmarks/precision): each stays fixed.

Every case has a twin where the same targets are a real mistake, so the fix cannot silence the rule.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import run_cli

TARGETS = '["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"{extra}]'

UNSLOTH = """
from unsloth import FastLanguageModel

model, tokenizer = FastLanguageModel.from_pretrained("{model}", load_in_4bit=True)
model = FastLanguageModel.get_peft_model(
    model,
    r=16,
    target_modules={targets},
    lora_alpha=16,
    lora_dropout=0,
    bias="none",
)
"""

PEFT = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("{model}")
config = LoraConfig(r=16, lora_alpha=16, target_modules={targets}, task_type="CAUSAL_LM")
model = get_peft_model(model, config)
"""


def codes(tmp_path, template: str, model: str, extra: str = "") -> list[str]:
    source = template.format(model=model, targets=TARGETS.format(extra=extra))
    (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
    return sorted(d["code"] for d in run.json["diagnostics"] if d["severity"] != "info")


def test_unsloth_adapts_gpt_oss_experts_through_the_mlp_names(tmp_path):
    # Unsloth maps gate/up/down_proj onto gpt-oss's fused experts; plain PEFT does not.
    assert codes(tmp_path, UNSLOTH, "unsloth/gpt-oss-20b") == []
    peft = codes(tmp_path, PEFT, "openai/gpt-oss-20b")
    assert peft.count("LORA201") == 3 and "LORA215" in peft


def test_unsloth_trains_listed_embeddings_in_full_not_as_lora(tmp_path):
    extra = ', "embed_tokens", "lm_head"'
    assert "LORA203" not in codes(tmp_path, UNSLOTH, "unsloth/mistral-7b-v0.3", extra)
    assert "LORA203" in codes(tmp_path, PEFT, "mistralai/Mistral-7B-v0.3", extra)


def test_unsloth_phi_4_is_llama_architecture(tmp_path):
    # Unsloth republishes Phi-4 converted to Llama (separate q/k/v_proj, gate/up_proj); Microsoft's is phi3.
    assert codes(tmp_path, UNSLOTH, "unsloth/Phi-4") == []
    assert codes(tmp_path, UNSLOTH, "unsloth/Phi-4-unsloth-bnb-4bit") == []
    assert codes(tmp_path, UNSLOTH, "unsloth/Phi-3.5-mini-instruct") == []
    assert "LORA201" in codes(tmp_path, PEFT, "microsoft/phi-4")
    assert "LORA201" in codes(tmp_path, PEFT, "microsoft/Phi-3.5-mini-instruct")


VISION = """
from {library} import {loader}

model, processor = {loader}.from_pretrained("google/gemma-3-4b-it")
model = {loader}.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0, target_modules="all-linear")
"""


def test_unsloth_all_linear_on_a_vlm_means_the_vision_layers_too(tmp_path):
    # Unsloth's "all-linear" turns every finetune_* flag on: the vision tower is asked for, not a surprise.
    def codes_for(library: str, loader: str) -> list[str]:
        source = VISION.format(library=library, loader=loader)
        (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
        return run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).codes()

    assert "LORA211" not in codes_for("unsloth", "FastVisionModel")
    peft = PEFT.format(model="google/gemma-3-4b-it", targets='"all-linear"')
    (tmp_path / "train.py").write_text(textwrap.dedent(peft).lstrip("\n"))
    assert "LORA211" in run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).codes()


def test_axolotl_target_linear_is_not_peft_all_linear_on_moe(tmp_path):
    # axolotl lists the nn.Linear names it finds; a transformers 5 router is none, so it is not adapted.
    (tmp_path / "config.yml").write_text(
        "base_model: mistralai/Mixtral-8x7B-v0.1\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n"
        "lora_dropout: 0.05\nlora_target_linear: true\n"
    )
    run = run_cli(["check", "--output-format", "json", "--no-cache", "config.yml"], cwd=tmp_path)
    assert run.json["configs"] and "LORA211" not in run.codes()
    source = PEFT.format(model="mistralai/Mixtral-8x7B-v0.1", targets='"all-linear"')
    (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
    assert "LORA211" in run.codes()


DEVICE_MAP = """
import os
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, Trainer

{launch}
model = AutoModelForCausalLM.from_pretrained("facebook/opt-350m", device_map="auto")
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
Trainer(model=model).train()
"""


def test_setting_local_rank_is_not_a_ddp_launch(tmp_path):
    # A test that sets up a worker process writes LOCAL_RANK; only reading it says torchrun launched the script.
    def codes_for(launch: str) -> list[str]:
        (tmp_path / "train.py").write_text(textwrap.dedent(DEVICE_MAP.format(launch=launch)).lstrip("\n"))
        return run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).codes()

    assert "LORA416" not in codes_for('os.environ["LOCAL_RANK"] = "0"')
    assert "LORA416" in codes_for('rank = int(os.environ["LOCAL_RANK"])')


TOKENIZER_KWARG = """
{loader}
from trl import SFTTrainer

trainer = SFTTrainer(model=model, tokenizer=tokenizer, train_dataset=data)
trainer.train()
"""


def test_unsloth_lets_trl_trainers_take_tokenizer(tmp_path):
    # Importing Unsloth patches TRL's trainers to move tokenizer= to processing_class.
    unsloth = (
        "from unsloth import FastLanguageModel\n"
        'model, tokenizer = FastLanguageModel.from_pretrained("unsloth/mistral-7b-v0.3")\n'
        "model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0)"
    )
    peft = (
        "from peft import LoraConfig, get_peft_model\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        'model = AutoModelForCausalLM.from_pretrained("mistralai/Mistral-7B-v0.3")\n'
        'tokenizer = AutoTokenizer.from_pretrained("mistralai/Mistral-7B-v0.3")\n'
        'model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, task_type="CAUSAL_LM"))'
    )
    for loader, expected in ((unsloth, False), (peft, True)):
        (tmp_path / "train.py").write_text(TOKENIZER_KWARG.format(loader=loader).lstrip("\n"))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert run.json["configs"] and ("LORA415" in run.codes()) is expected


COMPUTED_TARGETS = """
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM


def find_all_linear_names(model):
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            names.add(name.split(".")[-1])
    return list(names)


model = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")
config = LoraConfig(r=8, lora_alpha=16, target_modules={targets}, task_type="CAUSAL_LM")
model = get_peft_model(model, config)
"""


def test_target_list_computed_from_the_model_is_not_an_empty_list(tmp_path):
    # LLaVA's find_all_linear_names fills a set from named_modules() at run time: not the empty list PEFT rejects.
    for targets, expected in (("find_all_linear_names(model)", False), ("[]", True)):
        (tmp_path / "train.py").write_text(COMPUTED_TARGETS.format(targets=targets).lstrip("\n"))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert ("LORA202" in run.codes()) is expected


GUARDED_RANK = """
from dataclasses import dataclass, field
from typing import Optional

from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, HfArgumentParser


@dataclass
class Args:
    lora_r: Optional[int] = field(default=None)
    lora_alpha: int = 0


def train():
    args = HfArgumentParser(Args).parse_args_into_dataclasses()[0]
    model = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")
{guard}
    config = LoraConfig(r=args.lora_r, lora_alpha={alpha}, target_modules=["q_proj"], task_type="CAUSAL_LM")
    return get_peft_model(model, config)
"""


def test_a_guard_rules_out_none_and_falsy_defaults(tmp_path):
    # peft's corda example builds LoraConfig(r=args.lora_r) only under `elif args.lora_r is not None:`.
    def codes_for(guard: str, alpha: str = "args.lora_r") -> list[str]:
        source = GUARDED_RANK.format(guard=guard, alpha=alpha)
        (tmp_path / "train.py").write_text(source.lstrip("\n"))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert run.json["configs"]
        return run.codes()

    assert "LORA002" in codes_for("    pass")
    assert "LORA002" in codes_for("    if args.lora_r is None:\n        print('full fine-tuning')")
    for guard in (
        "    if args.lora_r is None:\n        return model",
        "    if not args.lora_r:\n        raise SystemExit('--lora_r is required')",
        "    assert args.lora_r is not None",
    ):
        assert not {"LORA002", "LORA012"} & set(codes_for(guard)), guard
    # the guard is about lora_r only: lora_alpha's default 0 is still reported, unless it is checked too
    assert "LORA012" in codes_for("    assert args.lora_r is not None", "args.lora_alpha")
    assert "LORA012" not in codes_for("    assert args.lora_r and args.lora_alpha", "args.lora_alpha")


def test_a_rebinding_ends_what_the_guard_said(tmp_path):
    source = (
        "from peft import LoraConfig\n"
        "def build(rank=None):\n"
        "    if rank is not None:\n"
        "{between}"
        "        return LoraConfig(r=rank, lora_alpha=16)\n"
    )
    for between, expected in (("", False), ("        rank = None\n", True)):
        (tmp_path / "train.py").write_text(source.format(between=between))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert ("LORA002" in run.codes()) is expected, between


HAND_PREPARED = """
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments

bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float16)
model = AutoModelForCausalLM.from_pretrained("facebook/opt-350m", quantization_config=bnb)
for name, param in model.named_parameters():
{cast}
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
Trainer(model=model, args=TrainingArguments(output_dir="out"{args}), train_dataset=None).train()
"""


def test_a_4bit_model_prepared_by_hand_without_checkpointing_is_ready(tmp_path):
    # peft's fp4 example casts the 1-D parameters to fp32 itself and does not checkpoint: nothing is missing.
    def lora404(cast: str, args: str = "") -> list[str]:
        (tmp_path / "train.py").write_text(HAND_PREPARED.format(cast=cast, args=args).lstrip("\n"))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        return [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA404"]

    by_hand = "    if param.ndim == 1:\n        param.data = param.data.to(torch.float32)"
    assert lora404(by_hand) == []
    assert lora404(by_hand.replace(".to(torch.float32)", ".float()")) == []
    assert lora404("    print(name)")  # nothing cast: the layer norms stay in 16-bit
    # with reentrant checkpointing the input gradients are still missing, and only that is said
    [message] = lora404(by_hand, ", gradient_checkpointing=True")
    assert "cast to fp32 by hand" in message and "layer norms stay in 16-bit" not in message


CLASSIFIER = """
from peft import LoraConfig, get_peft_model
from transformers import {loader}, Trainer, TrainingArguments

model = {loader}.from_pretrained("{model}")
config = LoraConfig(r=16, lora_alpha=16, target_modules=["query", "value"], modules_to_save=["classifier"])
model = get_peft_model(model, config)
Trainer(model=model, args=TrainingArguments(output_dir="out", learning_rate=5e-3), train_dataset=None).train()
"""


def test_the_llm_learning_rate_band_is_not_applied_to_an_image_classifier(tmp_path):
    # peft's ViT example trains the adapter and a new head at 5e-3; the band is LLM fine-tuning's.
    def lora406(loader: str, model: str) -> list[str]:
        (tmp_path / "train.py").write_text(CLASSIFIER.format(loader=loader, model=model).lstrip("\n"))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "LORA406", "train.py"], cwd=tmp_path)
        return run.codes()

    assert lora406("AutoModelForImageClassification", "google/vit-base-patch16-224-in21k") == []
    assert lora406("AutoModelForCausalLM", "facebook/opt-350m") == ["LORA406"]


def test_alpha_read_from_the_same_missing_flag_as_r_is_one_mistake(tmp_path):
    # peft's corda preprocess.py: `r=args.r, lora_alpha=args.r` without --r is LORA002's, not LORA012's as well.
    source = (
        "import argparse\n"
        "from peft import LoraConfig\n"
        "parser = argparse.ArgumentParser()\n"
        'parser.add_argument("--r", type=int)\n'
        'parser.add_argument("--alpha", type=int)\n'
        "args = parser.parse_args()\n"
        "config = LoraConfig(r=args.r, lora_alpha={alpha})\n"
    )
    for alpha, expected in (("args.r", ["LORA002"]), ("args.alpha", ["LORA002", "LORA012"])):
        (tmp_path / "train.py").write_text(source.format(alpha=alpha))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert sorted(run.codes()) == expected, alpha


NEW_TOKENS = """
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer
from trl import SFTConfig, SFTTrainer, setup_chat_format

model = AutoModelForCausalLM.from_pretrained({model})
tokenizer = AutoTokenizer.from_pretrained({model})
{edit}
config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
{train}
"""
SFT_TRAIN = 'SFTTrainer(model=model, args=SFTConfig(output_dir="o"), train_dataset=None, peft_config=config).train()'
PEFT_TRAIN = "model = get_peft_model(model, config)\nTrainer(model=model, train_dataset=None).train()"


def lora409(tmp_path, edit: str, model: str = '"meta-llama/Llama-3.1-8B"', train: str = PEFT_TRAIN) -> bool:
    source = NEW_TOKENS.format(model=model, edit=edit, train=train)
    (tmp_path / "train.py").write_text(source.lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "LORA409", "train.py"], cwd=tmp_path)
    assert run.json["configs"]
    return "LORA409" in run.codes()


def test_setup_chat_format_adds_rows_only_where_the_vocabulary_lacks_chatml(tmp_path):
    # SmolLM2 and Qwen tokenizers already hold <|im_start|>/<|im_end|>; Llama 3.1's does not.
    chat = "model, tokenizer = setup_chat_format(model, tokenizer)"
    assert lora409(tmp_path, chat, train=SFT_TRAIN)
    for model in ('"HuggingFaceTB/SmolLM2-135M"', '"Qwen/Qwen2.5-0.5B"'):
        assert not lora409(tmp_path, chat, model, SFT_TRAIN), model
    # a model read from the command line: which tokenizer it is cannot be known
    assert not lora409(tmp_path, "import sys\n" + chat, "sys.argv[1]", SFT_TRAIN)


def test_re_registering_existing_special_tokens_adds_no_row(tmp_path):
    resize = "\nmodel.resize_token_embeddings(len(tokenizer))"
    again = 'tokenizer.add_special_tokens({"eos_token": tokenizer.convert_ids_to_tokens(model.config.eos_token_id)})'
    assert not lora409(tmp_path, again + resize)
    assert lora409(tmp_path, 'tokenizer.add_special_tokens({"eos_token": "<|end|>"})' + resize)
    assert lora409(tmp_path, 'tokenizer.add_tokens(["<tool>", "</tool>"])' + resize)


def test_a_helper_nothing_calls_adds_nothing_known(tmp_path):
    helper = "def resize(tokens, tokenizer, model):\n    tokenizer.add_special_tokens(tokens)\n"
    assert not lora409(tmp_path, helper + "    model.resize_token_embeddings(len(tokenizer))")
    called = helper + "    model.resize_token_embeddings(len(tokenizer))\n" + 'resize({"additional_special_tokens": ["<a>"]}, tokenizer, model)'
    assert lora409(tmp_path, called)


def test_new_token_rows_trained_by_the_script_itself(tmp_path):
    # diffusers' pivotal tuning: the script unfreezes the token embeddings and saves them itself.
    added = 'tokenizer.add_tokens(["<s0>", "<s1>"])\nmodel.resize_token_embeddings(len(tokenizer))\n'
    assert lora409(tmp_path, added)
    assert not lora409(tmp_path, added + "model.get_input_embeddings().requires_grad_(True)")
    loop = 'for name, p in model.named_parameters():\n    if "embed_tokens" in name:\n        p.requires_grad = True'
    assert not lora409(tmp_path, added + loop)


def test_a_config_applied_only_inside_pytest_raises_is_wrong_on_purpose(tmp_path):
    # peft's test_initialization.py builds LoraConfig(init_lora_weights="orthogonal", r=7) and applies it
    # inside `with pytest.raises(ValueError)`: the test's intent, not a mistake.
    source = (
        "import pytest\n"
        "from peft import LoraConfig, get_peft_model\n\n"
        "def test_odd_rank(model, other):\n"
        '    config = LoraConfig(target_modules=["linear"], init_lora_weights="orthogonal", r=7)\n'
        "{use}"
    )
    inside = "    with pytest.raises(ValueError):\n        get_peft_model(model, config)\n"
    outside = "    get_peft_model(other, config)\n"
    for use, expected in ((inside, []), (inside + outside, ["LORA007"]), (outside, ["LORA007"])):
        (tmp_path / "test_init.py").write_text(source.format(use=use))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "test_init.py"], cwd=tmp_path)
        assert run.json["configs"] and [c for c in run.codes() if c == "LORA007"] == expected, use


def test_pytest_raises_in_a_decorated_test_method_written_over_several_lines(tmp_path):
    # the block is found wherever the test sits: a class, a decorator above the def, `raises` on its own line
    source = (
        "import pytest\n"
        "from peft import LoraConfig, get_peft_model\n\n"
        "class TestInit:\n"
        "    def test_other(self):\n"
        "        return 1\n\n"
        "    @pytest.mark.parametrize(\n"
        '        "seed", [0, 1]\n'
        "    )\n"
        "    def test_odd_rank(self, model, seed):\n"
        '        config = LoraConfig(target_modules=["linear"], init_lora_weights="orthogonal", r=7)\n'
        "        with (\n"
        "            {manager}\n"
        "        ):\n"
        "            get_peft_model(model, config)\n"
    )
    for manager, expected in (("pytest.raises(ValueError)", []), ("open('log.txt')", ["LORA007"])):
        (tmp_path / "test_init.py").write_text(source.format(manager=manager))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "test_init.py"], cwd=tmp_path)
        assert run.json["configs"] and [c for c in run.codes() if c == "LORA007"] == expected, manager


def test_a_bare_string_target_on_a_model_that_may_be_the_files_own_module(tmp_path):
    # peft's tests pass their own nn.Module classes through fixtures: "lin0" is a full name there.
    module = "import torch.nn as nn\n\nclass Small(nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
             "        self.lin0 = nn.Linear(10, 10)\n\n"
    source = (
        "from peft import LoraConfig, get_peft_model\n{module}"
        "def build(model_cls):\n"
        '    return get_peft_model(model_cls(), LoraConfig(target_modules="lin0"))\n'
    )
    for extra, expected in ((module, False), ("", True)):
        (tmp_path / "train.py").write_text(source.format(module=extra))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert ("LORA209" in run.codes()) is expected, extra


TRANSFORMERS_TRAINER = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

model = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")
tokenizer = AutoTokenizer.from_pretrained("facebook/opt-125m")
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM"))
trainer = Trainer(model=model, tokenizer=tokenizer, args=TrainingArguments(output_dir="out"), train_dataset=data)
"""


def _notebook(*cells: str) -> str:
    doc = {
        "cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
                  for c in cells],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(doc)


def test_a_notebook_that_installs_transformers_4_keeps_trainer_tokenizer(tmp_path):
    # Unsloth's Whisper / DeepSeek-OCR notebooks pin transformers 4.x, whose Trainer still takes tokenizer=.
    cases = (
        ("%%capture\n!pip install unsloth\n!pip install transformers==4.56.2\n", False),
        ('!uv pip install --system -qqq "transformers<5" datasets\n', False),
        ("!pip install transformers==4.56.2\n!pip install -U transformers\n", True),  # upgraded after the pin
        ("!pip install transformers>=4.46 sentence-transformers==2.2.2\n", True),
        ("!pip install unsloth\n", True),
    )
    for install, expected in cases:
        (tmp_path / "train.ipynb").write_text(_notebook(install, TRANSFORMERS_TRAINER.lstrip("\n")))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.ipynb"], cwd=tmp_path)
        assert run.json["configs"] and ("LORA415" in run.codes()) is expected, install


@pytest.mark.parametrize("install", [
    # nbconvert writes `!pip` as get_ipython().system(...)
    "get_ipython().system('pip install \"{pin}\"')",
    # and a %%bash cell as one string, its lines joined by escaped line breaks: the text runs on into `pip`
    # ("...\\npip install"), which starts a line of the cell all the same
    "get_ipython().run_cell_magic('bash', '', 'set -e\\npip install \"{pin}\"\\n')",
], ids=["system", "bash-cell"])
def test_a_script_exported_from_such_a_notebook_keeps_its_pins(tmp_path, install):
    # The TRL pin is what matters for TRL's trainers.
    for pin, expected in (("trl==0.11.4", False), ("trl==0.22.2", True)):
        source = install.format(pin=pin) + "\n" + TOKENIZER_KWARG.format(
            loader=(
                "from peft import LoraConfig, get_peft_model\n"
                "from transformers import AutoModelForCausalLM\n"
                'model = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")\n'
                'model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, task_type="CAUSAL_LM"))'
            )
        ).lstrip("\n")
        (tmp_path / "train.py").write_text(source)
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert run.json["configs"] and ("LORA415" in run.codes()) is expected, pin


LLAMAFACTORY_MOE = (
    "model_name_or_path: mistralai/Mixtral-8x7B-v0.1\nstage: sft\ndo_train: true\nfinetuning_type: lora\n"
    "lora_rank: 8\nlora_target: {targets}\n{extra}"
)


def test_llamafactory_target_all_is_not_peft_all_linear_on_moe(tmp_path):
    # LLaMA-Factory's find_all_linear_modules lists nn.Linear names; a transformers 5 router is none.
    (tmp_path / "sft.yaml").write_text(LLAMAFACTORY_MOE.format(targets="all", extra=""))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "sft.yaml"], cwd=tmp_path)
    assert run.json["configs"] and "LORA211" not in run.codes()


def test_llamafactory_on_ktransformers_leaves_the_moe_layout_unknown(tmp_path):
    # use_kt: true runs the experts in KTransformers' own kernels: PEFT's MoE conversion facts do not hold there.
    for extra, expected in (("use_kt: true\n", False), ("", True)):
        (tmp_path / "sft.yaml").write_text(LLAMAFACTORY_MOE.format(targets="gate_proj,up_proj,down_proj", extra=extra))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "sft.yaml"], cwd=tmp_path)
        assert run.json["configs"] and ("LORA215" in run.codes()) is expected, extra


PEFT_MODEL_AND_CONFIG = """
{install}
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
model = get_peft_model(AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B"), config)
trainer = SFTTrainer(model=model, args=SFTConfig(output_dir="out"), train_dataset=None, peft_config=config)
"""


def test_an_old_trl_pin_takes_a_peft_model_with_its_config(tmp_path):
    # TRL raises for a PeftModel plus peft_config only since 0.27 (huggingface/trl#4713); 0.4.7 keeps the PeftModel.
    for pin, expected in (('"trl==0.4.7"', False), ("trl>=0.8", True)):
        install = f"get_ipython().system('pip install {pin} peft')"
        (tmp_path / "train.py").write_text(PEFT_MODEL_AND_CONFIG.format(install=install).lstrip("\n"))
        run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
        assert run.json["configs"] and ("LORA414" in run.codes()) is expected, pin
