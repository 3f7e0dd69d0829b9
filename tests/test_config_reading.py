"""config.json read the way transformers reads it (legacy and alias keys, the flat multimodal layout), the
class a script loads naming its model type, and the index's mirrors and pre-quantized copies.

The numbers are PEFT's own (tests/verify/test_config_reading_vs_peft.py rebuilds them with torch)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import run_cli

from loralint.knowledge.models import load_model_info, lookup_checkpoint, quantization_of_id
from loralint.knowledge.targeting import analyze_lora
from loralint.resolve import Resolver

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"


def _config(name: str) -> dict:
    return json.loads((FIXTURES / name / "config.json").read_text())


# --------------------------------------------------------------------------------------------------
# legacy and alias keys
# --------------------------------------------------------------------------------------------------


def test_bloom_560m_reads_n_embed_as_the_hidden_size():
    info = load_model_info("bloom", _config("bloom-560m"), "CAUSAL_LM")
    assert (info.config["hidden_size"], info.num_layers, info.config["n_head"]) == (1024, 24, 16)
    assert info.exact
    res = analyze_lora(info, r=8, target_modules=None, task_type="CAUSAL_LM")  # PEFT's default: query_key_value
    assert (res.trainable_params, res.total_params) == (786_432, 560_001_024)


def test_legacy_key_wins_over_the_field_as_in_transformers():
    # BloomConfig.__post_init__: hidden_size = n_embed when n_embed is given
    info = load_model_info("bloom", {"n_embed": 128, "hidden_size": 256, "n_layer": 2, "n_head": 4, "vocab_size": 64})
    assert info.config["hidden_size"] == 128


def test_modules_command_on_the_real_bloom_config(tmp_path):
    out = run_cli(["modules", str(FIXTURES / "bloom-560m"), "--rank", "8", "--output-format", "json"], cwd=tmp_path)
    assert out.exit_code == 0, out.stdout
    data = json.loads(out.stdout)
    assert (data["num_layers"], data["total_params"], data["exact"]) == (24, 559_214_592, True)


# --------------------------------------------------------------------------------------------------
# the flat multimodal layout
# --------------------------------------------------------------------------------------------------


def test_qwen2_vl_flat_text_fields_go_into_text_config():
    info = load_model_info("qwen2_vl", _config("qwen2-vl-7b-instruct"), "CAUSAL_LM")
    assert info.config["text_config.hidden_size"] == 3584
    assert info.config["text_config.num_hidden_layers"] == 28
    assert info.num_layers == 28
    assert info.exact
    q = info.get("model.language_model.layers.27.self_attn.q_proj")
    assert (q.in_features, q.out_features) == (3584, 3584)
    assert info.get("model.language_model.layers.28.self_attn.q_proj") is None


def test_a_present_text_config_section_keeps_the_top_level_keys_out():
    # Qwen2VLConfig moves the top-level text fields only when config.json has no text_config
    cfg = {**_config("qwen2-vl-7b-instruct"), "text_config": {"hidden_size": 1024, "num_hidden_layers": 2,
                                                              "num_attention_heads": 8, "num_key_value_heads": 2,
                                                              "intermediate_size": 2048}}
    info = load_model_info("qwen2_vl", cfg, "CAUSAL_LM")
    assert (info.config["text_config.hidden_size"], info.num_layers) == (1024, 2)


def test_modules_command_on_qwen2_vl_reports_28_layers(tmp_path):
    out = run_cli(["modules", str(FIXTURES / "qwen2-vl-7b-instruct"), "--output-format", "json"], cwd=tmp_path)
    assert out.exit_code == 0, out.stdout
    data = json.loads(out.stdout)
    assert (data["num_layers"], data["exact"]) == (28, True)  # not the text_config defaults: 80 layers, hidden 8192
    assert "model.language_model.layers.{i}.self_attn.q_proj" in out.stdout
    assert "8192" not in out.stdout


# --------------------------------------------------------------------------------------------------
# the class a script loads names the model type
# --------------------------------------------------------------------------------------------------


def test_class_in_script_resolves_model_type_instead_of_a_name_guess(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""\
        from peft import LoraConfig, get_peft_model
        from transformers import Qwen2VLForConditionalGeneration

        model = Qwen2VLForConditionalGeneration.from_pretrained("my-org/my-private-vl-finetune")
        config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
    """))
    out = run_cli(["explain", str(script), "--output-format", "json"], cwd=tmp_path)
    assert out.exit_code == 0, out.stdout
    assert "qwen2_vl" in out.stdout
    assert "Qwen2VLForConditionalGeneration" in out.stdout


# --------------------------------------------------------------------------------------------------
# the index: mirrors and pre-quantized copies
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model_id", "family", "quantized"), [
    ("TheBloke/Llama-2-7B-Chat-GPTQ", "meta-llama/Llama-2-7b-chat-hf", "gptq"),
    ("TheBloke/Mistral-7B-Instruct-v0.2-AWQ", "mistralai/Mistral-7B-Instruct-v0.2", "awq"),
    ("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", "mistralai/Mistral-7B-Instruct-v0.2", "gguf"),
    ("unsloth/Qwen2.5-7B-Instruct-bnb-4bit", "unsloth/Qwen2.5-7B-Instruct-bnb-4bit", "bnb-4bit"),
    ("unsloth/Meta-Llama-3.1-8B-Instruct-unsloth-bnb-4bit", "meta-llama/Meta-Llama-3.1-8B-Instruct", "bnb-4bit"),
    ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-7B-Instruct", "gptq"),
    ("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4", "meta-llama/Meta-Llama-3.1-8B-Instruct", "awq"),
    ("NousResearch/Llama-2-7b-chat-hf", "NousResearch/Llama-2-7b-chat-hf", None),
    ("unsloth/Qwen2-VL-7B-Instruct", "unsloth/Qwen2-VL-7B-Instruct", None),
])
def test_mirrors_and_quantized_copies_resolve_to_their_family(model_id, family, quantized):
    entry = lookup_checkpoint(model_id)
    expected = lookup_checkpoint(family)
    assert entry is not None and expected is not None
    assert (entry["model_type"], entry["config"]) == (expected["model_type"], expected["config"])
    assert entry["quantized"] == quantized
    resolution = Resolver(cwd=FIXTURES).resolve(model_id)
    assert resolution.source == "loralint index" and resolution.quantized == quantized


def test_an_unknown_org_with_a_known_name_is_not_taken_for_the_original():
    # a fine-tune under someone's own name may change the shapes: only mirrors and quantized copies match
    assert lookup_checkpoint("someone/Llama-2-7b-chat-hf") is None
    assert quantization_of_id("someone/llama-gptq-experiments") is None


def test_quantization_config_in_a_local_config_json(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    cfg = {**_config("bloom-560m"), "quantization_config": {"quant_method": "gptq", "bits": 4}}
    (folder / "config.json").write_text(json.dumps(cfg))
    resolution = Resolver(cwd=tmp_path).resolve("ckpt")
    assert resolution.quantized == "gptq"


@pytest.mark.parametrize("model_id", [
    "Qwen/Qwen2-VL-7B-Instruct", "Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct",
    "Qwen/Qwen2.5-VL-3B-Instruct", "llava-hf/llava-1.5-7b-hf", "google/paligemma-3b-pt-224",
    "bigscience/bloom-560m",
])
def test_vision_language_checkpoints_are_in_the_index_and_exact(model_id):
    entry = lookup_checkpoint(model_id)
    assert entry is not None
    info = load_model_info(entry["model_type"], entry["config"], "CAUSAL_LM")
    assert info is not None and info.exact, info.notes if info else None


def test_mllama_index_entry_has_the_published_layer_counts():
    entry = lookup_checkpoint("unsloth/Llama-3.2-11B-Vision-Instruct")
    info = load_model_info(entry["model_type"], entry["config"], model_class="MllamaForConditionalGeneration")
    assert info.num_layers == 40  # cross-attention layers 3, 8, ... 38 among them, as MllamaTextConfig counts


def test_modules_text_lines_up_the_presets_of_a_fused_moe_model(tmp_path):
    # "N modules + M parameters" is wider than "N modules": the counts stay in one column all the same
    out = run_cli(["modules", str(FIXTURES / "tiny-mixtral")], cwd=tmp_path).stdout
    rows = [line for line in out.splitlines() if line.startswith(("  attention only", "  all-linear"))]
    assert len(rows) == 2 and "parameters" in rows[-1] and "parameters" not in rows[0]
    ends = {line.index(" (") for line in rows}  # where each row's trainable count ends
    assert len(ends) == 1, rows
