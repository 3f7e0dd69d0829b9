"""LORA30x quantization rules and LORA404/405: a realistic QLoRA script per trap, and its clean twin."""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import run_cli

HEAD = """\
import torch
from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, Trainer, TrainingArguments
from trl import SFTTrainer

BASE = "meta-llama/Llama-3.1-8B"
"""
NF4 = 'bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)\n'
LOAD = "model = AutoModelForCausalLM.from_pretrained(BASE, quantization_config=bnb)\n"
CONFIG = 'config = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")\n'
TRAIN = (
    'trainer = Trainer(model=model, args=TrainingArguments(output_dir="out", bf16=True), train_dataset=ds)\n'
    "trainer.train()\n"
)


def check(tmp_path, body: str, code: str, name: str = "train.py", fmt: str = "json"):
    (tmp_path / name).write_text(textwrap.dedent(body))
    run = run_cli(["check", "--no-cache", "--output-format", fmt, "--select", code, name], cwd=tmp_path)
    if fmt == "sarif":
        return json.loads(run.stdout)["runs"][0]["results"]
    return run.json["diagnostics"]


def related_lines(tmp_path, body: str, code: str) -> list[int]:
    [result] = check(tmp_path, body, code, fmt="sarif")
    return sorted(loc["physicalLocation"]["region"]["startLine"] for loc in result.get("relatedLocations", []))


# --- LORA304 bnb-quant-type ----------------------------------------------------------------------
def test_fp4_by_default_is_lora304_and_nf4_is_clean(tmp_path):
    fp4 = HEAD + "bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16)\n" + LOAD + CONFIG
    fp4 += "model = get_peft_model(prepare_model_for_kbit_training(model), config)\n"
    [d] = check(tmp_path, fp4, "LORA304")
    assert d["line"] == 7 and d["severity"] == "info" and "the default is 'fp4'" in d["message"]
    assert related_lines(tmp_path, fp4, "LORA304") == [10]
    assert check(tmp_path, fp4.replace("load_in_4bit=True,", 'load_in_4bit=True, bnb_4bit_quant_type="nf4",'), "LORA304") == []


def test_the_bnb_config_is_followed_through_a_helper_and_model_kwargs(tmp_path):
    src = HEAD + textwrap.dedent("""\
        def quant_config():
            return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_compute_dtype=torch.bfloat16)

        model_kwargs = dict(quantization_config=quant_config(), device_map="auto")
        model = AutoModelForCausalLM.from_pretrained(BASE, **model_kwargs)
        """) + CONFIG + "model = get_peft_model(model, config)\n"
    [d] = check(tmp_path, src, "LORA304")
    assert d["line"] == 8 and "bnb_4bit_quant_type='fp4'" in d["message"]
    # on the argument that says fp4, not on the whole BitsAndBytesConfig(...) call
    written = 'bnb_4bit_quant_type="fp4"'
    line = src.splitlines()[7]
    assert (d["column"], d["end_column"]) == (line.index(written) + 1, line.index(written) + len(written) + 1)


# --- LORA305 dora-on-quantized -------------------------------------------------------------------
def test_dora_on_a_4bit_base_is_lora305_and_on_bf16_is_clean(tmp_path):
    src = HEAD + NF4 + LOAD + CONFIG.replace("r=16,", "r=16, use_dora=True,") + "model = get_peft_model(model, config)\n"
    [d] = check(tmp_path, src, "LORA305")
    assert d["line"] == 9 and "about twice" in d["message"] and "(line 7)" in d["message"]
    assert related_lines(tmp_path, src, "LORA305") == [7]
    bf16 = src.replace("quantization_config=bnb", "dtype=torch.bfloat16")
    assert check(tmp_path, bf16, "LORA305") == []


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("axolotl.yml", "base_model: meta-llama/Llama-3.1-8B\nadapter: qlora\nlora_r: 16\nlora_alpha: 32\nlora_target_linear: true\npeft_use_dora: true\n", 6),
        ("llamafactory.yaml", "model_name_or_path: meta-llama/Llama-3.1-8B\nstage: sft\nfinetuning_type: lora\nlora_rank: 16\nlora_alpha: 32\nlora_target: all\nuse_dora: true\nquantization_bit: 4\n", 7),
        ("torchtune.yaml", "model:\n  _component_: torchtune.models.llama3_1.qlora_llama3_1_8b\n  lora_attn_modules: ['q_proj', 'v_proj']\n  lora_rank: 16\n  lora_alpha: 32\n  use_dora: true\n", 6),
    ],
)
def test_each_yaml_formats_qlora_form_is_quantized(tmp_path, name, text, line):
    [d] = check(tmp_path, text, "LORA305", name=name)
    assert d["line"] == line and "loaded in 4bit" in d["message"]
    # the same file without its QLoRA form is not quantized
    plain = text.replace("adapter: qlora", "adapter: lora").replace("quantization_bit: 4\n", "").replace("qlora_llama3_1_8b", "lora_llama3_1_8b")
    assert check(tmp_path, plain, "LORA305", name=name) == []


# --- LORA306 deprecated-kbit-kwarg ---------------------------------------------------------------
def test_load_in_4bit_keyword_is_lora306_but_not_unslothS_own(tmp_path):
    src = HEAD + "model = AutoModelForCausalLM.from_pretrained(BASE, load_in_4bit=True, device_map='auto')\n" + CONFIG
    src += "model = get_peft_model(prepare_model_for_kbit_training(model), config)\n"
    [d] = check(tmp_path, src, "LORA306")
    assert d["line"] == 7 and d["severity"] == "warning" and "TypeError" in d["message"] and "transformers 5" in d["message"]
    assert check(tmp_path, HEAD + NF4 + LOAD + CONFIG + "model = get_peft_model(model, config)\n", "LORA306") == []
    unsloth = textwrap.dedent("""\
        from unsloth import FastLanguageModel
        model, tok = FastLanguageModel.from_pretrained("unsloth/Llama-3.2-3B-Instruct", load_in_4bit=True)
        model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16, target_modules=["q_proj", "v_proj"])
        """)
    assert check(tmp_path, unsloth, "LORA306") == []


def test_load_in_8bit_on_the_base_of_a_loaded_adapter_is_lora306(tmp_path):
    # a merge-only script and a resumed adapter make no LoraConfig, but their from_pretrained raises the same
    load = "base = AutoModelForCausalLM.from_pretrained(BASE, load_in_8bit=True)\n"
    merge = HEAD + load + 'model = PeftModel.from_pretrained(base, "out/adapter")\nmodel = model.merge_and_unload()\n'
    [d] = check(tmp_path, merge, "LORA306")
    assert (d["line"], d["column"]) == (7, 51) and d["severity"] == "warning" and "TypeError" in d["message"]
    resume = HEAD + load + 'model = PeftModel.from_pretrained(base, "out/adapter", is_trainable=True)\n' + TRAIN
    assert [d["line"] for d in check(tmp_path, resume, "LORA306")] == [7]
    bnb = merge.replace("load_in_8bit=True", "quantization_config=BitsAndBytesConfig(load_in_8bit=True)")
    assert check(tmp_path, bnb, "LORA306") == []
    # the message names the keyword written, and what to do with it: an 8-bit config, or (for False) nothing
    assert "Pass quantization_config=BitsAndBytesConfig(load_in_8bit=True) instead" in d["message"]
    [d] = check(tmp_path, merge.replace("load_in_8bit=True", "load_in_8bit=False"), "LORA306")
    assert d["message"].startswith("from_pretrained(load_in_8bit=False) quantizes nothing, yet transformers 5 passes")
    assert d["message"].endswith("Remove the keyword")


# --- LORA404 kbit-without-preparation ------------------------------------------------------------
def test_a_quantized_peft_model_trained_without_preparation_is_lora404(tmp_path):
    src = HEAD + NF4 + LOAD + CONFIG + "model = get_peft_model(model, config)\n" + TRAIN
    [d] = check(tmp_path, src, "LORA404")
    assert d["line"] == 10 and "Trainer (line 11)" in d["message"]
    assert related_lines(tmp_path, src, "LORA404") == [7, 11]
    prepared = src.replace("model = get_peft_model(model, config)", "model = get_peft_model(prepare_model_for_kbit_training(model), config)")
    assert check(tmp_path, prepared, "LORA404") == []
    input_grads = src.replace(TRAIN, "model.enable_input_require_grads()\n" + TRAIN)
    assert check(tmp_path, input_grads, "LORA404") == []
    bf16 = src.replace("quantization_config=bnb", "dtype=torch.bfloat16")
    assert check(tmp_path, bf16, "LORA404") == []


def test_trl_with_peft_config_and_a_prequantized_checkpoint(tmp_path):
    # TRL prepares a quantized model given with peft_config itself: quiet.
    trl = HEAD + NF4 + LOAD + CONFIG + "trainer = SFTTrainer(model=model, peft_config=config, train_dataset=ds)\ntrainer.train()\n"
    assert check(tmp_path, trl, "LORA404") == []
    # A -bnb-4bit checkpoint is loaded in 4 bits by its own config.json.
    named = HEAD.replace('"meta-llama/Llama-3.1-8B"', '"unsloth/llama-3-8b-bnb-4bit"') + "model = AutoModelForCausalLM.from_pretrained(BASE)\n"
    named += CONFIG + "model = get_peft_model(model, config)\n" + TRAIN
    [d] = check(tmp_path, named, "LORA404")
    assert "published quantized" in d["message"]


# --- LORA405 merge-into-quantized-base -----------------------------------------------------------
def test_merging_into_the_4bit_base_is_lora405_and_a_bf16_reload_is_clean(tmp_path):
    src = HEAD + NF4 + LOAD + CONFIG + "model = get_peft_model(prepare_model_for_kbit_training(model), config)\n" + TRAIN
    merged = src + "merged = model.merge_and_unload()\n"
    [d] = check(tmp_path, merged, "LORA405")
    assert d["line"] == 13 and "reload the base in bf16" in d["message"]
    assert related_lines(tmp_path, merged, "LORA405") == [7, 10]
    reload = src + textwrap.dedent("""\
        model.save_pretrained("adapter")
        base = AutoModelForCausalLM.from_pretrained(BASE, dtype=torch.bfloat16)
        merged = PeftModel.from_pretrained(base, "adapter").merge_and_unload()
        """)
    assert check(tmp_path, reload, "LORA405") == []


MERGE_ONLY = HEAD + NF4 + """\
base = AutoModelForCausalLM.from_pretrained(BASE, {load}device_map="auto")
model = PeftModel.from_pretrained(base, "outputs/checkpoint-500")
model = model.merge_and_unload()
model.save_pretrained("merged")
"""


def test_a_merge_only_script_onto_a_4bit_base_is_lora405_at_the_merge(tmp_path):
    # no LoraConfig in the file: the finding is anchored at the merge call and no configuration is invented
    src = MERGE_ONLY.format(load="quantization_config=bnb, ")
    [d] = check(tmp_path, src, "LORA405")
    assert d["line"] == 10 and d["column"] == 9 and "loaded in 4bit (line 7)" in d["message"]
    assert related_lines(tmp_path, src, "LORA405") == [7, 9]
    (tmp_path / "train.py").write_text(src)
    run = run_cli(["check", "--no-cache", "--output-format", "json", "train.py"], cwd=tmp_path)
    assert run.json["configs"] == []
    assert check(tmp_path, MERGE_ONLY.format(load="dtype=torch.bfloat16, "), "LORA405") == []


def test_auto_peft_model_loaded_in_8bit_and_merged(tmp_path):
    src = textwrap.dedent("""\
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained("outputs/final", {load})
        merged = model.merge_and_unload()
        merged.save_pretrained("merged")
        """)
    [d] = check(tmp_path, src.format(load="load_in_8bit=True"), "LORA405")
    assert d["line"] == 4 and "loaded in 8bit (line 3) by load_in_8bit=True" in d["message"]
    assert check(tmp_path, src.format(load="low_cpu_mem_usage=True"), "LORA405") == []


# --- LORA301 as PEFT decides it; LORA307 FSDP-QLoRA ----------------------------------------------
@pytest.mark.parametrize(("init", "fires"), [("olora", False), ("pissa", True), ("pissa_niter_4", True), ("corda", True), ("loftq", True)])
def test_init_methods_on_a_4bit_base_as_peft_decides(tmp_path, init, fires):
    src = HEAD + NF4 + LOAD + CONFIG.replace("r=16,", f"r=16, init_lora_weights={init!r},") + "model = get_peft_model(model, config)\n"
    found = check(tmp_path, src, "LORA301")
    assert bool(found) == fires
    if fires:
        assert related_lines(tmp_path, src, "LORA301") == [7]


def test_fsdp_with_uint8_quant_storage_is_lora307(tmp_path):
    src = HEAD + NF4 + LOAD + CONFIG + "model = get_peft_model(prepare_model_for_kbit_training(model), config)\n"
    src += 'args = TrainingArguments(output_dir="out", bf16=True, fsdp="full_shard auto_wrap")\n'
    src += "trainer = Trainer(model=model, args=args, train_dataset=ds)\n"
    [d] = check(tmp_path, src, "LORA307")
    assert d["line"] == 7 and "(line 11)" in d["message"]
    stored = src.replace("bnb_4bit_compute_dtype=torch.bfloat16)", "bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)")
    assert check(tmp_path, stored, "LORA307") == []
    assert check(tmp_path, src.replace(', fsdp="full_shard auto_wrap"', ""), "LORA307") == []
