"""accelerate config files, tied to a script by an `accelerate launch --config_file X script.py` the
project writes down (a shell script, a Makefile, the script's own usage note): their ZeRO-3, FSDP and
multi-GPU facts reach LORA410, LORA307 and LORA416. Without such a command, nothing is assumed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from helpers import REPO, run_cli

SFT = '''
"""Supervised fine-tuning of Qwen2.5-7B with LoRA.{usage}"""
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer

config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
args = SFTConfig(output_dir="out", per_device_train_batch_size=2, gradient_accumulation_steps=8, bf16=True)
trainer = SFTTrainer(model="Qwen/Qwen2.5-7B", args=args, train_dataset=None, peft_config=config)
trainer.train()
trainer.save_model()
'''

ZERO3 = """
compute_environment: LOCAL_MACHINE
debug: false
deepspeed_config:
  deepspeed_multinode_launcher: standard
  offload_optimizer_device: none
  offload_param_device: none
  zero3_init_flag: true
{extra}  zero_stage: 3
distributed_type: DEEPSPEED
downcast_bf16: 'no'
machine_rank: 0
main_training_function: main
mixed_precision: bf16
num_machines: 1
num_processes: 8
rdzv_backend: static
same_network: true
tpu_env: []
tpu_use_cluster: false
tpu_use_sudo: false
use_cpu: false
"""

RUN = """
#!/bin/bash
set -euo pipefail
accelerate launch --config_file "configs/zero3.yaml" --num_processes 8 \\
    train.py \\
    --seed 42
"""


def write(tmp_path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def findings(tmp_path, code: str, *options: str) -> list[dict]:
    run = run_cli(["check", "--output-format", "json", *options, "--select", code, "."], cwd=tmp_path)
    assert run.exit_code in (0, 1), run.stderr
    return run.json["diagnostics"]


def test_zero3_accelerate_config_of_a_launch_script(tmp_path):
    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": ZERO3.format(extra=""), "run.sh": RUN})
    [d] = findings(tmp_path, "LORA410", "--no-cache")
    assert d["path"] == "train.py" and d["line"] == 7  # the trainer that saves the adapter
    assert "zero_stage: 3 in configs/zero3.yaml" in d["message"] and "run.sh:3" in d["message"]
    assert "set zero3_save_16bit_model: true under deepspeed_config in configs/zero3.yaml" in d["message"]


def test_zero3_accelerate_config_with_16bit_save_is_quiet(tmp_path):
    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": ZERO3.format(extra="  zero3_save_16bit_model: true\n"),
                     "run.sh": RUN})
    assert findings(tmp_path, "LORA410", "--no-cache") == []


def test_usage_note_in_the_script_launches_it(tmp_path):
    usage = "\n\nUsage:\n    accelerate launch --config_file configs/zero3.yaml train.py\n"
    write(tmp_path, {"train.py": SFT.format(usage=usage), "configs/zero3.yaml": ZERO3.format(extra="")})
    [d] = findings(tmp_path, "LORA410", "--no-cache")
    assert "(train.py:4)" in d["message"]


def test_a_config_nobody_launches_the_script_with_is_not_assumed(tmp_path):
    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": ZERO3.format(extra="")})
    assert findings(tmp_path, "LORA410", "--no-cache") == []
    for command in (
        "accelerate launch --config_file configs/zero3.yaml other.py",  # another script
        "accelerate launch --config_file $CONFIG train.py",  # a variable
        "accelerate launch --config_file configs/zero3.yaml --zero3_save_16bit_model true train.py",  # overridden
        "accelerate launch --config_file configs/missing.yaml train.py",  # no such file
        "my_accelerate launch --config_file configs/zero3.yaml train.py",  # another program
        "accelerate launcher --config_file configs/zero3.yaml train.py",  # another command
    ):
        (tmp_path / "run.sh").write_text(command + "\n")
        assert findings(tmp_path, "LORA410", "--no-cache") == [], command


def test_deepspeed_config_file_named_by_the_accelerate_config(tmp_path):
    config = ZERO3.format(extra="").replace("  zero_stage: 3\n", "  deepspeed_config_file: configs/ds_z3.json\n")
    ds = {"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto"}
    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": config, "run.sh": RUN,
                     "configs/ds_z3.json": json.dumps(ds)})
    [d] = findings(tmp_path, "LORA410", "--no-cache")
    assert "configs/ds_z3.json, the deepspeed_config_file of configs/zero3.yaml" in d["message"]
    ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = True
    (tmp_path / "configs/ds_z3.json").write_text(json.dumps(ds))
    assert findings(tmp_path, "LORA410", "--no-cache") == []


def test_a_changed_accelerate_config_is_seen_with_the_cache_on(tmp_path):
    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": ZERO3.format(extra=""), "run.sh": RUN})
    assert len(findings(tmp_path, "LORA410")) == 1
    assert len(findings(tmp_path, "LORA410")) == 1  # from the cache
    (tmp_path / "configs/zero3.yaml").write_text(ZERO3.format(extra="  zero3_save_16bit_model: true\n"))
    assert findings(tmp_path, "LORA410") == []


QLORA = """
import torch
from peft import LoraConfig, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from trl import SFTConfig, SFTTrainer

bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16{extra})
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.1-70B", quantization_config=bnb, dtype=torch.bfloat16)
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=SFTConfig(output_dir="out"), train_dataset=None, peft_config=config)
trainer.train()
"""

FSDP = """
compute_environment: LOCAL_MACHINE
debug: false
distributed_type: FSDP
downcast_bf16: 'no'
fsdp_config:
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_cpu_ram_efficient_loading: true
  fsdp_offload_params: true
  fsdp_sharding_strategy: FULL_SHARD
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_use_orig_params: false
machine_rank: 0
mixed_precision: 'no'
num_machines: 1
num_processes: 2
"""


def test_fsdp_accelerate_config_with_qlora_needs_quant_storage(tmp_path):
    run = "accelerate launch --config_file configs/fsdp.yaml train.py --output_dir out\n"
    write(tmp_path, {"train.py": QLORA.format(extra=""), "configs/fsdp.yaml": FSDP, "Makefile": f"train:\n\t{run}"})
    [d] = findings(tmp_path, "LORA307", "--no-cache")
    assert d["line"] == 6 and "distributed_type: FSDP in configs/fsdp.yaml:3" in d["message"]
    write(tmp_path, {"train.py": QLORA.format(extra=", bnb_4bit_quant_storage=torch.bfloat16")})
    assert findings(tmp_path, "LORA307", "--no-cache") == []


DEVICE_MAP = """
from peft import LoraConfig
from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B", device_map="auto")
config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = Trainer(model=model, args=TrainingArguments(output_dir="out"), train_dataset=None, peft_config=config)
"""

MULTI_GPU = """
compute_environment: LOCAL_MACHINE
distributed_type: MULTI_GPU
gpu_ids: all
mixed_precision: bf16
num_machines: 1
num_processes: {n}
"""


def test_device_map_auto_launched_on_several_gpus(tmp_path):
    write(tmp_path, {"train.py": DEVICE_MAP, "multi_gpu.yaml": MULTI_GPU.format(n=4),
                     "launch.sh": "accelerate launch --config_file multi_gpu.yaml train.py\n"})
    [d] = findings(tmp_path, "LORA416", "--no-cache")
    assert d["line"] == 4 and "distributed_type: MULTI_GPU in multi_gpu.yaml" in d["message"]
    # one process, in the config or on the command line: no DDP
    (tmp_path / "launch.sh").write_text("accelerate launch --config_file multi_gpu.yaml --num_processes 1 train.py\n")
    assert findings(tmp_path, "LORA416", "--no-cache") == []
    write(tmp_path, {"multi_gpu.yaml": MULTI_GPU.format(n=1),
                     "launch.sh": "accelerate launch --config_file multi_gpu.yaml train.py\n"})
    assert findings(tmp_path, "LORA416", "--no-cache") == []


def test_accelerate_configs_alone_are_not_lora_configurations(tmp_path):
    write(tmp_path, {"configs/zero3.yaml": ZERO3.format(extra=""), "configs/fsdp.yaml": FSDP,
                     "configs/multi_gpu.yaml": MULTI_GPU.format(n=8)})
    run = run_cli(["check", "--output-format", "json", "--no-cache", "."], cwd=tmp_path)
    assert run.exit_code == 0 and run.json["diagnostics"] == [] and run.json["configs"] == []


def test_unreadable_launch_files_are_skipped(tmp_path):
    import os

    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": ZERO3.format(extra=""),
                     "run.sh": RUN, "configs/broken.yaml": "distributed_type: [DEEPSPEED\n"})
    os.mkfifo(tmp_path / "a_fifo.sh")  # read first (sorted): a FIFO must not block the run
    os.symlink("loop.sh", tmp_path / "loop.sh")  # a link to itself
    (tmp_path / "broken.sh").write_text("accelerate launch --config_file configs/broken.yaml train.py\n")
    [d] = findings(tmp_path, "LORA410", "--no-cache")  # run.sh still counts; the broken config is not used
    assert "run.sh:3" in d["message"]


def test_a_warm_run_reads_the_accelerate_config_from_the_cache_and_sees_its_deepspeed_file_change(tmp_path):
    # The config's facts are kept in the cache (a warm run imports no YAML parser for it), with the
    # deepspeed_config_file it names: editing only that JSON is seen.
    config = ZERO3.format(extra="").replace("  zero_stage: 3\n", "  deepspeed_config_file: configs/ds_z3.json\n")
    ds = {"zero_optimization": {"stage": 3}}
    write(tmp_path, {"train.py": SFT.format(usage=""), "configs/zero3.yaml": config, "run.sh": RUN,
                     "configs/ds_z3.json": json.dumps(ds)})
    code = ("import sys\nfrom loralint.cli import main\nsys.argv = ['loralint', 'check', '-q', '--select', 'LORA410', '.']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('YAML', 'yaml' in sys.modules, file=sys.stderr)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "c"), "HOME": str(tmp_path)}

    def run() -> tuple[str, str]:
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                              check=False, env=env)
        return proc.stdout, proc.stderr.rpartition("YAML ")[2].strip()

    cold = run()
    assert "LORA410" in cold[0] and cold[1] == "True"
    assert run() == (cold[0], "False")
    ds["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = True
    (tmp_path / "configs/ds_z3.json").write_text(json.dumps(ds))
    assert run() == ("", "True")
    assert findings(tmp_path, "LORA410", "--no-cache") == []
