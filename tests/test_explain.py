"""loralint explain: the advisor's table and guidance."""

from __future__ import annotations

import json
import textwrap

from helpers import run_cli

SCRIPT = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
"""


def test_explain_json_has_exact_counts_and_memory(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    run = run_cli(["explain", "--output-format", "json", "train.py"], cwd=tmp_path)
    assert run.exit_code == 0
    [entry] = json.loads(run.stdout)["configs"]
    assert entry["trainable_params"] == 24_313_856 and entry["total_params"] == 3_237_063_680
    assert entry["scaling"] == 2.0 and entry["counted_by"] == "loralint"
    memory = entry["memory"]
    assert memory["adapter_bf16_bytes"] == 24_313_856 * 2
    assert memory["adamw_state_bytes"] == 24_313_856 * 8
    assert memory["base_bf16_bytes"] == (3_237_063_680 - 24_313_856) * 2
    assert memory["base_4bit_bytes"] < memory["base_8bit_bytes"] < memory["base_bf16_bytes"]
    assert any(t.startswith("rank band: r=16 is standard") for t in entry["guidance"])


def test_explain_text_table(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    out = run_cli(["explain", "train.py"], cwd=tmp_path).stdout
    assert "meta-llama/Llama-3.2-3B → llama (LlamaForCausalLM), from loralint's index of popular checkpoints" in out
    assert "24,313,856 of 3,237,063,680 (0.751%) — exact, loralint's knowledge base" in out
    assert "model.layers.{i}.mlp.down_proj ×28" in out
    assert "46.4 MiB bf16/fp16" in out
    assert "estimates" in out and "under-fitting" in out


def test_explain_unknown_values_are_said_to_be_unknown(tmp_path):
    (tmp_path / "t.py").write_text("from peft import LoraConfig\nc = LoraConfig(r=get_rank())\n")
    out = run_cli(["explain", "t.py"], cwd=tmp_path).stdout
    assert "r / lora_alpha  unknown / 8" in out
    assert "trainable       unknown" in out


def test_explain_shows_the_scaling_rank_and_alpha_patterns_give(tmp_path):
    (tmp_path / "train.py").write_text(
        "from peft import LoraConfig\n"
        "c = LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'o_proj'], rank_pattern={'q_proj': 64},"
        " alpha_pattern={'o_proj': 512}, task_type='CAUSAL_LM')\n"
    )
    run = run_cli(["explain", "--output-format", "json", "train.py"], cwd=tmp_path)
    [entry] = json.loads(run.stdout)["configs"]
    assert entry["scaling"] == 2 and entry["scaling_by_pattern"] == {"q_proj": 0.25, "o_proj": 64}
    assert any("per-module scaling outside 0.5–4" in tip for tip in entry["guidance"])


TRAINING = """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, TrainingArguments, Trainer
model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir="out", per_device_train_batch_size=8, max_length=2048{extra})
trainer = Trainer(model=model, args=args)
"""


def fit_of(tmp_path, extra: str = "", *options: str) -> dict:
    (tmp_path / "train.py").write_text(TRAINING.format(extra=extra))
    run = run_cli(["explain", "--output-format", "json", "--no-cache", *options, "train.py"], cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    [entry] = json.loads(run.stdout)["configs"]
    return entry["fit"]


def test_explain_training_memory_against_gpu_memory_and_the_change_that_fits(tmp_path):
    fit = fit_of(tmp_path, "", "--gpu-memory", "24GB")
    kinds = {item["what"]: item["kind"] for item in fit["items"]}
    assert kinds["adapter weights, fp32"] == "exact" and kinds["AdamW state (2 fp32 moments)"] == "exact"
    assert kinds["base weights, bf16"] == "exact"
    assert kinds["activations, batch 8 × 2048 tokens, no gradient checkpointing"] == "estimate"
    by_what = {item["what"]: item["bytes"] for item in fit["items"]}
    assert by_what["AdamW state (2 fp32 moments)"] == 24_313_856 * 8
    assert by_what["activations, batch 8 × 2048 tokens, gradient checkpointing"] < by_what[
        "activations, batch 8 × 2048 tokens, no gradient checkpointing"]
    assert fit["gpu_memory_bytes"] == 24_000_000_000 and fit["fits"] is False
    assert fit["changes"][0].startswith("enable gradient checkpointing")
    assert fit["checked_on_gpu"] is False
    # with checkpointing on and a large GPU, it fits and nothing is proposed
    fit = fit_of(tmp_path, ", gradient_checkpointing=True", "--gpu-memory", "80GB")
    assert fit["fits"] is True and fit["changes"] == []


def test_explain_text_says_which_figures_are_estimates(tmp_path):
    (tmp_path / "train.py").write_text(TRAINING.format(extra=""))
    out = run_cli(["explain", "--no-cache", "--gpu-memory", "24GB", "train.py"], cwd=tmp_path).stdout
    assert "adapter gradients, fp32: 92.8 MiB (exact)" in out
    assert "does not fit" in out and "to fit: enable gradient checkpointing" in out
    assert "not yet checked against a GPU" in out


def test_explain_without_batch_and_length_says_activations_are_unknown(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    run = run_cli(["explain", "--output-format", "json", "--no-cache", "--gpu-memory", "24GB", "train.py"], cwd=tmp_path)
    [entry] = json.loads(run.stdout)["configs"]
    assert entry["fit"]["total_bytes"] is None and entry["fit"]["fits"] is None
    assert any("activations: unknown (batch size and sequence length not found" in note for note in entry["fit"]["notes"])
    # a batch size without a sequence length (Trainer has none): the note names what is missing, and where it looked
    (tmp_path / "train.py").write_text(TRAINING.format(extra="").replace(", max_length=2048", ""))
    [entry] = run_cli(["explain", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json["configs"]
    assert ("activations: unknown (sequence length not found in the training arguments; looked for max_length,"
            " max_seq_length") in " ".join(entry["fit"]["notes"])


def test_explain_rejects_a_gpu_memory_that_is_not_a_size(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(SCRIPT))
    run = run_cli(["explain", "--gpu-memory", "lots", "train.py"], cwd=tmp_path)
    assert run.exit_code == 2 and "--gpu-memory" in run.stderr


def test_a_bare_gpu_memory_number_is_gigabytes(tmp_path):
    # "--gpu-memory 24" is a 24 GB card: read as "24GB", never as 24 bytes (which nothing fits in)
    assert fit_of(tmp_path, "", "--gpu-memory", "24")["gpu_memory_bytes"] == 24_000_000_000
    assert fit_of(tmp_path, ", gradient_checkpointing=True", "--gpu-memory", "80")["fits"] is True


def _guidance(tmp_path, source: str) -> list[str]:
    (tmp_path / "train.py").write_text(textwrap.dedent(source))
    [entry] = run_cli(["explain", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json["configs"]
    return entry["guidance"]


def test_guidance_does_not_propose_what_the_configuration_already_does(tmp_path):
    mlp_and_checkpointing = TRAINING.replace('target_modules="all-linear"', 'target_modules=["q_proj", "v_proj", "up_proj"]')
    tips = " ".join(_guidance(tmp_path, mlp_and_checkpointing.format(extra=", gradient_checkpointing=True")))
    assert "adapt the MLP as well" not in tips and "enable gradient checkpointing" not in tips
    # attention only, checkpointing off: both are advice that applies
    attention = TRAINING.replace('target_modules="all-linear"', 'target_modules=["q_proj", "v_proj"]')
    tips = " ".join(_guidance(tmp_path, attention.format(extra="")))
    assert "adapt the MLP as well" in tips and "enable gradient checkpointing" in tips


def test_guidance_reads_the_mlp_in_a_target_list_of_an_unknown_model(tmp_path):
    for mlp, advised in (("True", False), ("False", True)):
        (tmp_path / "tt.yaml").write_text(textwrap.dedent(f"""\
            model:
              _component_: torchtune.models.llama3_1.lora_llama3_1_8b
              lora_attn_modules: ['q_proj', 'v_proj']
              apply_lora_to_mlp: {mlp}
              lora_rank: 8
              lora_alpha: 16
            """))
        [entry] = run_cli(["explain", "--output-format", "json", "--no-cache", "tt.yaml"], cwd=tmp_path).json["configs"]
        assert ("adapt the MLP as well" in " ".join(entry["guidance"])) is advised, entry["target_modules"]


def test_explain_says_which_fact_a_missing_count_lacks(tmp_path):
    (tmp_path / "resume.py").write_text(textwrap.dedent("""\
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, Trainer
        base = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-3B")
        model = PeftModel.from_pretrained(base, "out/checkpoint-500", is_trainable=True)
        Trainer(model=model).train()
        """))
    out = run_cli(["explain", "--no-cache", "resume.py"], cwd=tmp_path).stdout
    # the base model is known (llama): what is missing is the saved adapter_config.json
    assert "trainable       unknown (the loaded adapter's settings are not known)" in out
    (tmp_path / "unknown.py").write_text(SCRIPT.replace("meta-llama/Llama-3.2-3B", "my-org/private-model"))
    out = run_cli(["explain", "--no-cache", "unknown.py"], cwd=tmp_path).stdout
    assert "unknown (the base model is not known)" in out


def test_explain_says_zero3_figures_are_one_gpu_holding_everything(tmp_path):
    (tmp_path / "ds_z3.json").write_text(json.dumps(
        {"zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": True}}))
    notes = fit_of(tmp_path, ', deepspeed="ds_z3.json"', "--gpu-memory", "24GB")["notes"]
    assert any(n.startswith("DeepSpeed ZeRO stage 3 (ds_z3.json) splits the base weights") for n in notes), notes
    assert not any("ZeRO" in n for n in fit_of(tmp_path, "", "--gpu-memory", "24GB")["notes"])


UNSLOTH = """
from unsloth import FastLanguageModel
from trl import SFTTrainer
from transformers import TrainingArguments
max_seq_length = 2048
model, tokenizer = FastLanguageModel.from_pretrained("unsloth/Llama-3.2-3B", max_seq_length=max_seq_length)
model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"])
trainer = SFTTrainer(model=model, tokenizer=tokenizer, {length}args=TrainingArguments(per_device_train_batch_size=2))
"""


def test_explain_reads_the_sequence_length_given_to_the_trainer_itself(tmp_path):
    # Unsloth's notebooks (and TRL before SFTConfig held it) pass max_seq_length to SFTTrainer, not to its arguments
    (tmp_path / "train.py").write_text(UNSLOTH.format(length="max_seq_length=max_seq_length, "))
    [entry] = run_cli(["explain", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json["configs"]
    whats = [item["what"] for item in entry["fit"]["items"]]
    assert "activations, batch 2 × 2048 tokens, no gradient checkpointing" in whats
    # without it, the length is unknown again, and the note says so
    (tmp_path / "train.py").write_text(UNSLOTH.format(length=""))
    [entry] = run_cli(["explain", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path).json["configs"]
    assert not any(w.startswith("activations, batch") for w in (i["what"] for i in entry["fit"]["items"]))
    assert "activations: unknown (sequence length not found" in " ".join(entry["fit"]["notes"])


def test_explain_says_why_a_file_it_cannot_parse_has_no_configuration(tmp_path):
    (tmp_path / "train.py").write_text("from peft import LoraConfig\ncfg = LoraConfig(r=8, lora_alpha=16\n")
    run = run_cli(["explain", "--no-cache", "train.py"], cwd=tmp_path)
    assert run.exit_code == 0 and run.stdout.strip() == "No LoRA configuration found."
    assert run.stderr.splitlines() == [
        ("loralint: warning: train.py:2:17: LORA901 [error] cannot parse: invalid Python syntax ('(' was never closed);"
         " not checked")]
    as_json = run_cli(["explain", "--no-cache", "--output-format", "json", "train.py"], cwd=tmp_path)
    assert json.loads(as_json.stdout)["configs"] == [] and "LORA901" in as_json.stderr  # stdout stays JSON
