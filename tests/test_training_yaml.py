"""The training facts of trainer YAML (axolotl, LLaMA-Factory, torchtune): the context rules and
`explain --gpu-memory` read the batch, sequence length, learning rate and DeepSpeed config a YAML sets."""

from __future__ import annotations

import json
import textwrap

from helpers import run_cli


def check(tmp_path, name: str, text: str, code: str) -> list[dict]:
    (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", code, name], cwd=tmp_path)
    assert run.exit_code in (0, 1), run.stderr
    return run.json["diagnostics"]


AXOLOTL = """
base_model: meta-llama/Llama-3.2-3B
load_in_4bit: true
adapter: qlora
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_linear: true
{rl}
datasets:
  - path: mhenrichsen/alpaca_2k_test
    type: alpaca
sequence_len: 4096
sample_packing: true
gradient_accumulation_steps: 4
micro_batch_size: 2
num_epochs: 1
optimizer: paged_adamw_32bit
lr_scheduler: cosine
learning_rate: {lr}
bf16: auto
gradient_checkpointing: true
"""


def test_axolotl_learning_rate_points_at_its_key(tmp_path):
    # `2e-2` without a dot is a string to YAML 1.1; axolotl reads it as a number, and so does loralint
    [d] = check(tmp_path, "qlora.yml", AXOLOTL.format(rl="", lr="2e-2"), "LORA406")
    assert (d["line"], d["column"]) == (19, 16) and "learning_rate=0.02 for axolotl is above" in d["message"]
    assert check(tmp_path, "qlora.yml", AXOLOTL.format(rl="", lr="0.0002"), "LORA406") == []


def test_axolotl_preference_training_has_the_preference_band(tmp_path):
    [d] = check(tmp_path, "dpo.yml", AXOLOTL.format(rl="rl: dpo", lr="0.0002"), "LORA406")
    assert "axolotl (rl: dpo)" in d["message"] and "preference/RL" in d["message"]
    assert check(tmp_path, "dpo.yml", AXOLOTL.format(rl="rl: dpo", lr="5e-6"), "LORA406") == []
    # a trainer type loralint does not know: no band to judge the rate in
    assert check(tmp_path, "dpo.yml", AXOLOTL.format(rl="rl: something_new", lr="0.0002"), "LORA406") == []


def test_axolotl_qlora_is_prepared_by_axolotl(tmp_path):
    assert check(tmp_path, "qlora.yml", AXOLOTL.format(rl="", lr="0.0002"), "LORA404") == []


LLAMAFACTORY = """
### model
model_name_or_path: Qwen/Qwen2.5-7B-Instruct

### method
stage: sft
do_train: true
finetuning_type: lora
lora_rank: 8
lora_target: all
deepspeed: ds_z3_config.json

### dataset
dataset: identity,alpaca_en_demo
template: qwen
cutoff_len: 2048

### train
per_device_train_batch_size: 1
gradient_accumulation_steps: 8
learning_rate: 1.0e-4
num_train_epochs: 3.0
bf16: true
"""

ZERO3 = {"train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto",
         "zero_optimization": {"stage": 3, "overlap_comm": False, "contiguous_gradients": True}}


def test_llamafactory_zero3_without_gather_on_save(tmp_path):
    (tmp_path / "ds_z3_config.json").write_text(json.dumps(ZERO3))
    [d] = check(tmp_path, "lora_sft_ds3.yaml", LLAMAFACTORY, "LORA410")
    assert (d["line"], d["column"]) == (10, 12) and "ds_z3_config.json" in d["message"]


def test_llamafactory_zero3_with_gather_is_quiet_under_each_spelling(tmp_path):
    # DeepSpeed's own name (deepspeed/runtime/zero/config.py) and its stage3_ alias
    for key in ("stage3_gather_16bit_weights_on_model_save", "gather_16bit_weights_on_model_save"):
        config = json.loads(json.dumps(ZERO3))
        config["zero_optimization"][key] = True
        (tmp_path / "ds_z3_config.json").write_text(json.dumps(config))
        assert check(tmp_path, "lora_sft_ds3.yaml", LLAMAFACTORY, "LORA410") == []


def test_llamafactory_deepspeed_file_that_is_missing_is_quiet(tmp_path):
    assert check(tmp_path, "lora_sft_ds3.yaml", LLAMAFACTORY, "LORA410") == []


TORCHTUNE = """
# tune download meta-llama/Llama-3.2-1B-Instruct --output-dir /tmp/Llama-3.2-1B-Instruct
model:
  _component_: torchtune.models.llama3_2.lora_llama3_2_1b
  lora_attn_modules: ['q_proj', 'v_proj', 'output_proj']
  apply_lora_to_mlp: True
  lora_rank: 64
  lora_alpha: 128
  lora_dropout: 0.0

tokenizer:
  _component_: torchtune.models.llama3.llama3_tokenizer
  path: /tmp/Llama-3.2-1B-Instruct/original/tokenizer.model
  max_seq_len: 2048

optimizer:
  _component_: torch.optim.AdamW
  fused: True
  weight_decay: 0.01
  lr: {lr}
{loss}
batch_size: 4
epochs: 1
gradient_accumulation_steps: 8
enable_activation_checkpointing: False
"""
CE_LOSS = "loss:\n  _component_: torchtune.modules.loss.LinearCrossEntropyLoss"


def test_torchtune_learning_rate_of_the_optimizer(tmp_path):
    [d] = check(tmp_path, "1B_lora.yaml", TORCHTUNE.format(lr="3e-6", loss=CE_LOSS), "LORA406")
    assert d["line"] == 19 and d["message"].startswith("lr=3e-06 for torchtune is below 1e-05")
    assert check(tmp_path, "1B_lora.yaml", TORCHTUNE.format(lr="3e-4", loss=CE_LOSS), "LORA406") == []
    # without the loss the recipe (SFT or DPO) is only named on the command line: quiet
    assert check(tmp_path, "1B_lora.yaml", TORCHTUNE.format(lr="3e-6", loss=""), "LORA406") == []


def fit_of(tmp_path, name: str, text: str) -> dict:
    (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"))
    run = run_cli(["explain", "--output-format", "json", "--no-cache", "--gpu-memory", "24GB", name], cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    [entry] = json.loads(run.stdout)["configs"]
    return entry["fit"]


def test_explain_gpu_memory_uses_the_yaml_batch_and_sequence_length(tmp_path):
    fit = fit_of(tmp_path, "qlora.yml", AXOLOTL.format(rl="", lr="0.0002"))
    whats = [item["what"] for item in fit["items"]]
    assert "activations, batch 2 × 4096 tokens, gradient checkpointing" in whats
    assert fit["total_bytes"] is not None and fit["fits"] is True
    # torchtune: batch_size and tokenizer.max_seq_len
    fit = fit_of(tmp_path, "1B_lora.yaml", TORCHTUNE.format(lr="3e-4", loss=CE_LOSS))
    assert "activations, batch 4 × 2048 tokens, no gradient checkpointing" in [item["what"] for item in fit["items"]]


def test_explain_gpu_memory_knows_the_trainer_defaults(tmp_path):
    # LLaMA-Factory checkpoints unless disable_gradient_checkpointing: true (the estimate counts it)
    fit = fit_of(tmp_path, "lora_sft.yaml", LLAMAFACTORY.replace("deepspeed: ds_z3_config.json\n", ""))
    assert fit["total_bytes"] is not None
    assert any("batch 1 × 2048 tokens" in item["what"] for item in fit["items"])
    assert any(note.startswith("with gradient checkpointing as configured (LLaMA-Factory default") for note in fit["notes"])
    # axolotl without micro_batch_size / sequence_len: its defaults, 1 and 512
    text = AXOLOTL.format(rl="", lr="0.0002").replace("sequence_len: 4096\n", "").replace("micro_batch_size: 2\n", "")
    fit = fit_of(tmp_path, "qlora.yml", text)
    assert any("batch 1 × 512 tokens" in item["what"] for item in fit["items"])


def test_python_deepspeed_dict_with_deepspeeds_own_gather_name_is_quiet(tmp_path):
    source = """
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    ds = {{"zero_optimization": {{"stage": 3{extra}}}}}
    args = SFTConfig(output_dir="out", deepspeed=ds)
    trainer = SFTTrainer(model="Qwen/Qwen2.5-7B", args=args, train_dataset=None, peft_config=config)
    """
    assert check(tmp_path, "train.py", source.format(extra=""), "LORA410") != []
    assert check(tmp_path, "train.py", source.format(extra=', "gather_16bit_weights_on_model_save": True'), "LORA410") == []


TRL = """
# trl sft --config sft_lora.yaml
model_name_or_path: Qwen/Qwen2.5-0.5B
dataset_name: trl-lib/Capybara
use_peft: true
lora_r: 32
lora_alpha: 16
lora_target_modules: all-linear
learning_rate: 2.0e-4
per_device_train_batch_size: 4
gradient_accumulation_steps: 4
max_length: 1024
gradient_checkpointing: true
bf16: true
output_dir: Qwen2.5-0.5B-SFT-LoRA
"""


def test_trl_cli_config_gives_explain_its_batch_and_length(tmp_path):
    fit = fit_of(tmp_path, "sft_lora.yaml", TRL)
    assert "activations, batch 4 × 1024 tokens, gradient checkpointing" in [item["what"] for item in fit["items"]]
    assert any(note.startswith("with gradient checkpointing as configured;") for note in fit["notes"])
    # which trainer reads it is named on the command line (trl sft / trl dpo): no learning-rate band
    assert check(tmp_path, "sft_lora.yaml", TRL.replace("2.0e-4", "2.0e-2"), "LORA406") == []


def test_trl_cli_config_zero3(tmp_path):
    (tmp_path / "zero3.json").write_text(json.dumps(ZERO3))
    text = TRL + "deepspeed: zero3.json\n"
    [d] = check(tmp_path, "sft_lora.yaml", text, "LORA410")
    assert d["line"] == 15  # the deepspeed key's value


def test_explain_with_a_huge_batch_answers_at_once(tmp_path):
    text = AXOLOTL.format(rl="", lr="0.0002").replace("micro_batch_size: 2", "micro_batch_size: 1e15")
    fit = fit_of(tmp_path, "qlora.yml", text)
    assert fit["fits"] is False and fit["changes"][0].startswith("per-device batch ")
    assert "gradient_accumulation_steps" in fit["changes"][0]
