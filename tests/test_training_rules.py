"""LORA406-LORA415: the training around the adapter, a realistic trap and its clean twin each."""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import run_cli


def diagnostics(tmp_path, source: str, code: str) -> list[dict]:
    (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", code, "train.py"], cwd=tmp_path)
    return run.json["diagnostics"]


SFT = """
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

config = LoraConfig(r={r}, lora_alpha={alpha}, use_rslora={rs}, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="out", learning_rate={lr})
trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", args=args, train_dataset=None, peft_config=config)
trainer.train()
"""


def test_learning_rate_of_full_fine_tuning_is_flagged_and_lora_rate_is_not(tmp_path):
    [d] = diagnostics(tmp_path, SFT.format(r=16, alpha=32, rs=False, lr="2e-6"), "LORA406")
    assert d["line"] == 5 and "10x the full fine-tuning rate" in d["message"] and "2e-4" in d["message"]
    assert diagnostics(tmp_path, SFT.format(r=16, alpha=32, rs=False, lr="2e-4"), "LORA406") == []


def test_learning_rate_is_judged_with_the_scaling(tmp_path):
    # 2e-6 with rsLoRA at r=256, alpha=1024: scaling 64 (32x the usual 2), the adapter moves as at 6.4e-5
    assert diagnostics(tmp_path, SFT.format(r=256, alpha=1024, rs=True, lr="2e-6"), "LORA406") == []
    # the same without rsLoRA: scaling 4, as at 4e-6: too small
    assert diagnostics(tmp_path, SFT.format(r=256, alpha=1024, rs=False, lr="2e-6"), "LORA406") != []


def test_preference_trainer_has_its_own_band(tmp_path):
    source = SFT.replace("SFTConfig", "DPOConfig").replace("SFTTrainer", "DPOTrainer")
    [d] = diagnostics(tmp_path, source.format(r=16, alpha=32, rs=False, lr="2e-4"), "LORA406")
    assert "preference/RL" in d["message"] and d["message"].endswith("the usual LoRA value is 1e-6 to 5e-6 (DPO/GRPO)")
    assert diagnostics(tmp_path, source.format(r=16, alpha=32, rs=False, lr="5e-6"), "LORA406") == []


# The trainer is found however the script names its class: an import alias, the module's attribute, a
# variable, a class or instance attribute, a dataclass field, a helper's parameter.
TRAINER_SPELLINGS = {
    "import alias": "trainer = Alias({call})\n",
    "module attribute": "trainer = trl.SFTTrainer({call})\n",
    "variable": "cls = SFTTrainer\ntrainer = cls({call})\n",
    "class attribute": "class Run:\n    trainer_cls = SFTTrainer\n\n    def go(self):\n        return self.trainer_cls({call})\n",
    "self attribute": (
        "class Run:\n    def __init__(self):\n        self.trainer_cls = SFTTrainer\n\n"
        "    def go(self):\n        return self.trainer_cls({call})\n"
    ),
    "dataclass field": (
        "@dataclass\nclass Setup:\n    trainer_cls: type\n\n\n"
        "setup = Setup(trainer_cls=SFTTrainer)\ntrainer = setup.trainer_cls({call})\n"
    ),
    "parameter": "def build(cls):\n    return cls({call})\n\n\nbuild(SFTTrainer)\n",
}


@pytest.mark.parametrize("spelling", list(TRAINER_SPELLINGS))
def test_learning_rate_reaches_a_trainer_however_it_is_named(tmp_path, spelling):
    head = (
        "from dataclasses import dataclass\n\nimport trl\nfrom peft import LoraConfig\n"
        "from trl import SFTConfig, SFTTrainer\nfrom trl import SFTTrainer as Alias\n\n"
        'config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")\n'
        'args = SFTConfig(output_dir="out", learning_rate={lr})\n'
    )
    call = 'model="Qwen/Qwen2.5-0.5B", args=args, train_dataset=None, peft_config=config'
    source = head + TRAINER_SPELLINGS[spelling].format(call=call)
    [d] = diagnostics(tmp_path, source.replace("{lr}", "2e-6"), "LORA406")
    assert d["line"] == 9 and "SFTTrainer" in d["message"]
    assert diagnostics(tmp_path, source.replace("{lr}", "2e-4"), "LORA406") == []


UNSLOTH_LR = """
from unsloth import FastLanguageModel
from trl import SFTConfig, SFTTrainer

model, tokenizer = FastLanguageModel.from_pretrained("unsloth/Llama-3.2-3B-Instruct", max_seq_length=2048, load_in_4bit=True)
model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, lora_dropout=0, target_modules=["q_proj", "v_proj"])
args = SFTConfig(per_device_train_batch_size=2, max_steps=60, learning_rate={lr}, output_dir="outputs")
trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=None, args=args)
trainer.train()
"""


def test_learning_rate_of_an_unsloth_script(tmp_path):
    # Unsloth's get_peft_model is the LoRA site and returns the model the trainer gets
    [d] = diagnostics(tmp_path, UNSLOTH_LR.format(lr="2e-6"), "LORA406")
    assert d["line"] == 6 and "SFTTrainer" in d["message"]
    assert diagnostics(tmp_path, UNSLOTH_LR.format(lr="2e-4"), "LORA406") == []


RESUMED = """
from peft import PeftModel
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

base = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
model = PeftModel.from_pretrained(base, "out/checkpoint-500", is_trainable=True)
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out", learning_rate={lr}), train_dataset=None)
trainer.train()
"""


def saved_adapter(tmp_path, r: int, alpha: int) -> None:
    folder = tmp_path / "out" / "checkpoint-500"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": r, "lora_alpha": alpha, "target_modules": ["q_proj", "v_proj"],
              "task_type": "CAUSAL_LM", "base_model_name_or_path": "Qwen/Qwen2.5-0.5B"}
    (folder / "adapter_config.json").write_text(json.dumps(config))


def test_learning_rate_of_a_resumed_adapter_without_its_saved_config(tmp_path):
    # no LoraConfig in the file and no adapter_config.json: the rate is judged as written, no rank is assumed
    [d] = diagnostics(tmp_path, RESUMED.format(lr="2e-6"), "LORA406")
    assert d["line"] == 6 and "the loaded adapter's rank and lora_alpha are not known" in d["message"]
    assert diagnostics(tmp_path, RESUMED.format(lr="2e-4"), "LORA406") == []
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
    assert run.json["configs"] == []  # the loaded adapter is not a configuration the file builds


def test_learning_rate_of_a_resumed_adapter_uses_its_saved_scaling(tmp_path):
    saved_adapter(tmp_path, r=8, alpha=512)  # scaling 64: 2e-6 moves the adapter as 6.4e-5 would at alpha=2r
    assert diagnostics(tmp_path, RESUMED.format(lr="2e-6"), "LORA406") == []
    saved_adapter(tmp_path, r=8, alpha=16)
    [d] = diagnostics(tmp_path, RESUMED.format(lr="2e-6"), "LORA406")
    assert "judged with the rank and lora_alpha of out/checkpoint-500/adapter_config.json" in d["message"]


def test_explain_a_resumed_adapter(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(RESUMED.format(lr="2e-4")).lstrip("\n"))
    run = run_cli(["explain", "--no-cache", "train.py"], cwd=tmp_path)
    assert "settings        not known: the saved adapter_config.json of 'out/checkpoint-500'" in run.stdout
    assert "r / lora_alpha  unknown / unknown" in run.stdout
    saved_adapter(tmp_path, r=8, alpha=16)
    run = run_cli(["explain", "--no-cache", "--output-format", "json", "train.py"], cwd=tmp_path)
    [entry] = run.json["configs"]
    assert entry["r"] == 8 and entry["lora_alpha"] == 16 and entry["trainable_params"] == 540_672
    assert entry["settings_from"] == "out/checkpoint-500/adapter_config.json"


RESUME = """
from peft import PeftModel
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

base = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
model = PeftModel.from_pretrained(base, "out/checkpoint-500"{extra})
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out"), train_dataset=None)
trainer.train()
"""


def test_resumed_adapter_loaded_frozen(tmp_path):
    [d] = diagnostics(tmp_path, RESUME.format(extra=""), "LORA407")
    assert d["severity"] == "error" and d["line"] == 5 and "is_trainable=True" in d["message"]
    assert diagnostics(tmp_path, RESUME.format(extra=", is_trainable=True"), "LORA407") == []
    # is_trainable from a flag nobody can read: quiet
    assert diagnostics(tmp_path, RESUME.format(extra=", is_trainable=TRAIN"), "LORA407") == []


AUTO_RESUME = """
from peft import AutoPeftModelForCausalLM
from transformers import Trainer, TrainingArguments

model = AutoPeftModelForCausalLM.from_pretrained("out/checkpoint-500"{extra})
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out"), train_dataset=None)
trainer.train()
"""


def test_auto_peft_model_loaded_frozen(tmp_path):
    # peft/auto.py: AutoPeftModel.from_pretrained(..., is_trainable=False) passes it on to PeftModel.from_pretrained
    [d] = diagnostics(tmp_path, AUTO_RESUME.format(extra=""), "LORA407")
    assert d["line"] == 4 and d["message"].startswith("AutoPeftModelForCausalLM.from_pretrained(...) loads the adapter frozen")
    assert diagnostics(tmp_path, AUTO_RESUME.format(extra=", is_trainable=True"), "LORA407") == []


def test_resumed_adapter_unfrozen_by_the_script_is_quiet(tmp_path):
    source = RESUME.format(extra="").replace("trainer = ", 'model.set_adapter("default")\ntrainer = ')
    assert diagnostics(tmp_path, source, "LORA407") == []


EOS = """
from peft import LoraConfig
from transformers import AutoTokenizer, DataCollatorForLanguageModeling, Trainer, TrainingArguments

tokenizer = AutoTokenizer.from_pretrained("meta-llama/Llama-3.2-1B")
tokenizer.pad_token = {pad}
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
trainer = Trainer(model=None, args=TrainingArguments(output_dir="out"), data_collator=collator, peft_config=config)
"""


def test_eos_masked_by_the_collator(tmp_path):
    [d] = diagnostics(tmp_path, EOS.format(pad="tokenizer.eos_token"), "LORA408")
    assert d["line"] == 5 and "never learns to stop" in d["message"]
    assert diagnostics(tmp_path, EOS.format(pad='"<pad>"'), "LORA408") == []


TOKENS = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("Qwen/Qwen2.5-0.5B")
tokenizer.add_special_tokens({added})
model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
model.resize_token_embeddings(len(tokenizer))
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"]{extra}, task_type="CAUSAL_LM"))
"""


def test_new_tokens_untrained(tmp_path):
    tools = '{"additional_special_tokens": ["<tool>"]}'
    [d] = diagnostics(tmp_path, TOKENS.format(added=tools, extra=""), "LORA409")
    assert d["line"] == 5
    assert diagnostics(tmp_path, TOKENS.format(added=tools, extra=', modules_to_save=["embed_tokens", "lm_head"]'), "LORA409") == []
    # only a pad token: masked out of the loss, its random row is harmless
    assert diagnostics(tmp_path, TOKENS.format(added='{"pad_token": "<pad>"}', extra=""), "LORA409") == []


ZERO3 = """
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="out", deepspeed="ds_z3.json")
trainer = SFTTrainer(model="Qwen/Qwen2.5-7B", args=args, train_dataset=None, peft_config=config)
"""


def test_zero3_json_next_to_the_script(tmp_path):
    (tmp_path / "ds_z3.json").write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    [d] = diagnostics(tmp_path, ZERO3, "LORA410")
    assert d["line"] == 5 and "ds_z3.json" in d["message"]
    (tmp_path / "ds_z3.json").write_text(
        json.dumps({"zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": True}})
    )
    assert diagnostics(tmp_path, ZERO3, "LORA410") == []
    (tmp_path / "ds_z3.json").unlink()  # a file we cannot read: quiet
    assert diagnostics(tmp_path, ZERO3, "LORA410") == []


CLS = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained("FacebookAI/roberta-base", num_labels=2)
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type={task!r}))
"""


def test_task_type_mismatch(tmp_path):
    [d] = diagnostics(tmp_path, CLS.format(task="CAUSAL_LM"), "LORA411")
    assert d["severity"] == "error" and "SEQ_CLS" in d["message"]
    assert diagnostics(tmp_path, CLS.format(task="SEQ_CLS"), "LORA411") == []


REWARD_MODEL_CONFIG = """
from datasets import load_dataset
from trl import ModelConfig, RewardConfig, RewardTrainer, get_peft_config

model_args = ModelConfig(model_name_or_path="Qwen/Qwen2.5-0.5B-Instruct", use_peft=True, lora_r=16{task})
trainer = RewardTrainer(
    model=model_args.model_name_or_path,
    args=RewardConfig(output_dir="Qwen2.5-0.5B-Reward"),
    train_dataset=load_dataset("trl-lib/ultrafeedback_binarized", split="train"),
    peft_config=get_peft_config(model_args),
)
"""


def test_task_type_mismatch_from_trl_model_config_default(tmp_path):
    # get_peft_config passes ModelConfig.lora_task_type, "CAUSAL_LM" unless set; RewardTrainer loads the id
    # with AutoModelForSequenceClassification: the reward head would stay random and frozen.
    [d] = diagnostics(tmp_path, REWARD_MODEL_CONFIG.format(task=""), "LORA411")
    assert d["line"] == 4 and "TRL's ModelConfig default lora_task_type" in d["message"]
    assert "lora_task_type='SEQ_CLS'" in d["message"] and d["severity"] == "error"
    fixed = REWARD_MODEL_CONFIG.format(task=', lora_task_type="SEQ_CLS"')
    assert diagnostics(tmp_path, fixed, "LORA411") == []
    assert diagnostics(tmp_path, fixed, "LORA107") == []


REWARD_PARSED = """
from trl import ModelConfig, RewardConfig, RewardTrainer, ScriptArguments, TrlParser, get_peft_config

script_args, training_args, model_args = TrlParser((ScriptArguments, RewardConfig, ModelConfig)).parse_args_and_config()
trainer = RewardTrainer(model=model_args.model_name_or_path, args=training_args, peft_config=get_peft_config(model_args))
"""


def test_task_type_from_the_command_line_is_not_assumed(tmp_path):
    # TRL's own reward script is run with --lora_task_type SEQ_CLS: the flag's default decides nothing here
    assert diagnostics(tmp_path, REWARD_PARSED, "LORA411") == []


REWARD_LORA = """
from peft import LoraConfig
from trl import RewardConfig, RewardTrainer

config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear"{extra})
trainer = RewardTrainer(model="Qwen/Qwen2.5-0.5B-Instruct", args=RewardConfig(output_dir="out"), peft_config=config)
"""


def test_trl_trainer_sets_no_task_type_but_a_saved_head_needs_none(tmp_path):
    # TRL passes the LoraConfig to get_peft_model as it is: no task_type, a plain PeftModel, the head untrained
    [d] = diagnostics(tmp_path, REWARD_LORA.format(extra=""), "LORA107")
    assert "SEQ_CLS" in d["message"] and "AutoModelForSequenceClassification" in d["message"]
    # the head in modules_to_save (as TRL's RewardTrainer docs advise) is trained and saved without task_type
    assert diagnostics(tmp_path, REWARD_LORA.format(extra=', modules_to_save=["score"]'), "LORA107") == []
    assert diagnostics(tmp_path, REWARD_LORA.format(extra=""), "LORA411") == []


SERVE = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
model = get_peft_model(model, LoraConfig(r={r}, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
{after}
"""


def test_serving_limits_only_for_a_saved_unmerged_adapter(tmp_path):
    [d] = diagnostics(tmp_path, SERVE.format(r=64, after='model.save_pretrained("out")'), "LORA412")
    assert d["severity"] == "info" and "max_lora_rank" in d["message"]
    # on the rank it is about, and worded as what happens if served (the script only saves the adapter)
    assert (d["line"], d["column"], d["end_column"]) == (5, 44, 46)
    assert d["message"].startswith("if the adapter saved at line 6 is served with vLLM: r=64 is above")
    assert diagnostics(tmp_path, SERVE.format(r=16, after='model.save_pretrained("out")'), "LORA412") == []
    merged = 'model = model.merge_and_unload()\nmodel.save_pretrained("out")'
    assert diagnostics(tmp_path, SERVE.format(r=64, after=merged), "LORA412") == []


SERVE_TARGETS = """
from peft import LoraConfig, get_peft_model
from transformers import {cls}

model = {cls}.from_pretrained({model!r})
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules={targets!r}, bias={bias!r}, task_type="CAUSAL_LM"))
model.save_pretrained("out/adapter")
"""


def serve(cls="AutoModelForCausalLM", model="Qwen/Qwen2.5-0.5B", targets=("q_proj", "v_proj"), bias="none"):
    return SERVE_TARGETS.format(cls=cls, model=model, targets=list(targets) if not isinstance(targets, str) else targets,
                                bias=bias)


def test_serving_limits_targets_vllm_does_not_serve(tmp_path):
    [d] = diagnostics(tmp_path, serve(targets=("q_proj", "v_proj", "embed_tokens", "lm_head"), bias="all"), "LORA412")
    assert "bias='all' trains biases that vLLM does not apply" in d["message"]
    assert "vLLM has no embedding LoRA for qwen2 and refuses an adapter with LoRA on lm_head, model.embed_tokens" in d["message"]
    # Llama's vLLM class lists embed_tokens and lm_head as embedding modules: served
    llama = serve(model="meta-llama/Llama-3.2-1B", targets=("q_proj", "v_proj", "embed_tokens", "lm_head"))
    assert diagnostics(tmp_path, llama, "LORA412") == []
    assert diagnostics(tmp_path, serve(), "LORA412") == []


def test_serving_limits_vision_tower_and_conv_of_a_vl_model(tmp_path):
    vl = {"cls": "Qwen2VLForConditionalGeneration", "model": "Qwen/Qwen2-VL-2B-Instruct"}
    [d] = diagnostics(tmp_path, serve(**vl, targets="all-linear"), "LORA412")
    assert "vLLM applies LoRA to the language model only, so the 130 adapted layers of the vision/audio tower" in d["message"]
    [d] = diagnostics(tmp_path, serve(**vl, targets=("q_proj", "v_proj", "patch_embed.proj")), "LORA412")
    assert "vLLM has LoRA only for linear layers, so the LoRA on model.visual.patch_embed.proj" in d["message"]
    assert "vision/audio tower" not in d["message"]  # the conv is said once
    # the language model's attention only (Qwen2-VL's tower names its projections qkv/proj): served as is
    assert diagnostics(tmp_path, serve(**vl), "LORA412") == []


def test_serving_limits_targets_of_an_unknown_model_are_not_guessed(tmp_path):
    source = serve(model="my-org/private-model", targets=("embed_tokens", "lm_head"))
    assert diagnostics(tmp_path, source, "LORA412") == []


PEFT_AND_CONFIG = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from trl import SFTConfig, SFTTrainer

config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")
{wrap}
trainer = SFTTrainer(model=model, args=SFTConfig(output_dir="out"), train_dataset=None, peft_config=config)
"""


def test_peft_model_with_peft_config(tmp_path):
    [d] = diagnostics(tmp_path, PEFT_AND_CONFIG.format(wrap="model = get_peft_model(model, config)"), "LORA414")
    assert d["line"] == 8 and "ValueError" in d["message"]
    assert diagnostics(tmp_path, PEFT_AND_CONFIG.format(wrap=""), "LORA414") == []


def test_renamed_trl_arguments(tmp_path):
    source = SFT.format(r=16, alpha=32, rs=False, lr="2e-4")
    bad = source.replace('learning_rate=2e-4', 'learning_rate=2e-4, max_seq_length=2048').replace(
        "train_dataset=None", "train_dataset=None, tokenizer=None"
    )
    found = diagnostics(tmp_path, bad, "LORA415")
    assert [d["message"].split("=")[0] for d in found] == ["max_seq_length", "tokenizer"]
    good = source.replace('learning_rate=2e-4', 'learning_rate=2e-4, max_length=2048').replace(
        "train_dataset=None", "train_dataset=None, processing_class=None"
    )
    assert diagnostics(tmp_path, good, "LORA415") == []


CHECKPOINTING = """
from peft import LoraConfig, get_peft_model
from transformers import {cls}, Trainer, TrainingArguments

model = {cls}.from_pretrained("{model}")
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
{extra}args = TrainingArguments(output_dir="out", gradient_checkpointing=True, gradient_checkpointing_kwargs={{"use_reentrant": {reentrant}}})
trainer = Trainer(model=model, args=args, train_dataset=None)
"""


def test_reentrant_checkpointing_on_a_frozen_vision_base(tmp_path):
    vit = dict(cls="ViTForImageClassification", model="google/vit-base-patch16-224-in21k", extra="")
    [d] = diagnostics(tmp_path, CHECKPOINTING.format(reentrant=True, **vit), "LORA413")
    assert d["line"] == 6 and "pixel_values" in d["message"] and "use_reentrant=False" in d["message"]
    assert diagnostics(tmp_path, CHECKPOINTING.format(reentrant=False, **vit), "LORA413") == []
    fixed = dict(vit, extra="model.enable_input_require_grads()\n")
    assert diagnostics(tmp_path, CHECKPOINTING.format(reentrant=True, **fixed), "LORA413") == []


def test_reentrant_checkpointing_on_a_text_model_is_quiet(tmp_path):
    # transformers 5 enables input grads itself when checkpointing an input_ids model
    llama = dict(cls="AutoModelForCausalLM", model="meta-llama/Llama-3.2-1B", extra="")
    assert diagnostics(tmp_path, CHECKPOINTING.format(reentrant=True, **llama), "LORA413") == []


DDP = """
import os
from peft import LoraConfig
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

{signal}
model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B", device_map={device_map})
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out"), train_dataset=None, peft_config=config)
"""


def test_device_map_auto_in_a_ddp_script(tmp_path):
    [d] = diagnostics(tmp_path, DDP.format(signal='rank = int(os.environ["LOCAL_RANK"])', device_map='"auto"'), "LORA416")
    assert d["line"] == 6 and "distributed mode" in d["message"]
    accelerate = "from accelerate import Accelerator\naccelerator = Accelerator()"
    assert diagnostics(tmp_path, DDP.format(signal=accelerate, device_map='"auto"'), "LORA416") != []
    # no sign of DDP, or a map that follows the launch (alpaca-lora's pattern): quiet
    assert diagnostics(tmp_path, DDP.format(signal="", device_map='"auto"'), "LORA416") == []
    launch = 'dm = "auto"\nif int(os.environ.get("WORLD_SIZE", 1)) > 1:\n    dm = {"": int(os.environ["LOCAL_RANK"])}'
    assert diagnostics(tmp_path, DDP.format(signal=launch, device_map="dm"), "LORA416") == []


def test_ddp_environment_read_in_a_decorator_or_an_f_string(tmp_path):
    # the read is found wherever it sits: a decorator above its def line, an f-string in a function body
    decorated = ('import functools\n\n\ndef first():\n    return 1\n\n\n@functools.lru_cache(maxsize=int(os.environ["WORLD_SIZE"]))\n'
                 'def cached():\n    return 2')
    [d] = diagnostics(tmp_path, DDP.format(signal=decorated, device_map='"auto"'), "LORA416")
    assert "reads WORLD_SIZE" in d["message"]
    logged = "def log():\n    x = 1\n    print(f\"rank {os.environ['RANK']}\")"
    [d] = diagnostics(tmp_path, DDP.format(signal=logged, device_map='"auto"'), "LORA416")
    assert "reads RANK" in d["message"]
    # a module that names no launcher's variable: quiet
    other = "def log():\n    print(os.environ['HOME'])"
    assert diagnostics(tmp_path, DDP.format(signal=other, device_map='"auto"'), "LORA416") == []


FP16 = """
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="out", {precision}=True)
trainer = SFTTrainer(model="{model}", args=args, train_dataset=None, peft_config=config)
"""


def test_fp16_on_a_bf16_only_family(tmp_path):
    [d] = diagnostics(tmp_path, FP16.format(precision="fp16", model="google/gemma-3-4b-it"), "LORA417")
    assert d["line"] == 5 and "Gemma 3" in d["message"] and "bf16=True" in d["message"]
    assert diagnostics(tmp_path, FP16.format(precision="bf16", model="google/gemma-3-4b-it"), "LORA417") == []
    # a family nobody documents as fp16-unsafe: quiet
    assert diagnostics(tmp_path, FP16.format(precision="fp16", model="Qwen/Qwen2.5-0.5B"), "LORA417") == []


TIED = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("{model}")
config = LoraConfig(r=16, lora_alpha=32, target_modules={targets}, task_type="CAUSAL_LM")
model = get_peft_model(model, config)
model.merge_and_unload().save_pretrained("merged")
"""


def test_adapted_lm_head_of_tied_embeddings_merged(tmp_path):
    [d] = diagnostics(tmp_path, TIED.format(model="Qwen/Qwen2.5-0.5B", targets='["q_proj", "lm_head"]'), "LORA418")
    assert d["line"] == 5 and "tie_word_embeddings" in d["message"]
    assert diagnostics(tmp_path, TIED.format(model="Qwen/Qwen2.5-0.5B", targets='["q_proj", "v_proj"]'), "LORA418") == []
    # a model nobody can resolve: its tying is not known, quiet
    assert diagnostics(tmp_path, TIED.format(model="./my-local-ckpt", targets='["q_proj", "lm_head"]'), "LORA418") == []
