"""config.json read as transformers reads it, checked against transformers + PEFT on the meta device:
BLOOM's legacy n_embed, Qwen2-VL's flat layout, and the vision-language checkpoints of the index."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.verify

import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from loralint.knowledge.models import load_model_info, lookup_checkpoint
from loralint.knowledge.targeting import analyze_lora

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name / "config.json").read_text())


def _real(cfg: dict, model_class: str, lora: dict) -> tuple[int, int, set[str]]:
    d = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
    config = CONFIG_MAPPING[cfg["model_type"]](**d)  # what AutoConfig.from_pretrained does with the file
    with torch.device("meta"):
        model = getattr(transformers, model_class)._from_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = get_peft_model(model, LoraConfig(**lora), low_cpu_mem_usage=True)
    trainable, total = pm.get_nb_trainable_parameters()
    return trainable, total, set(pm.base_model.targeted_module_names)


def _static(cfg: dict, model_class: str, lora: dict) -> tuple[int, int, set[str]]:
    info = load_model_info(cfg["model_type"], cfg, lora.get("task_type"), model_class=model_class)
    assert info is not None and info.exact, info.notes if info else None
    res = analyze_lora(info, dict(lora))
    return res.trainable_params, res.total_params, set(res.targeted_names)


def test_bloom_560m_fixture_reads_like_transformers():
    cfg = _fixture("bloom-560m")
    config = transformers.BloomConfig(**cfg)
    assert (config.hidden_size, config.n_layer, config.n_head) == (1024, 24, 16)
    info = load_model_info("bloom", cfg, "CAUSAL_LM")
    assert (info.config["hidden_size"], info.num_layers) == (config.hidden_size, config.n_layer)


def test_bloom_560m_default_target_matches_peft():
    lora = {"r": 8, "task_type": "CAUSAL_LM"}  # target_modules=None: PEFT's default for bloom, query_key_value
    real = _real(_fixture("bloom-560m"), "BloomForCausalLM", lora)
    assert real[:2] == (786_432, 560_001_024)
    assert _static(_fixture("bloom-560m"), "BloomForCausalLM", lora) == real


def test_qwen2_vl_flat_fixture_reads_like_transformers():
    cfg = _fixture("qwen2-vl-7b-instruct")
    config = transformers.Qwen2VLConfig(**cfg)
    info = load_model_info("qwen2_vl", cfg, "CAUSAL_LM")
    assert info.num_layers == config.text_config.num_hidden_layers == 28
    assert info.config["text_config.hidden_size"] == config.text_config.hidden_size == 3584
    with torch.device("meta"):
        model = transformers.Qwen2VLForConditionalGeneration._from_config(config)
    real_linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(info.linear_names) == real_linear
    assert info.total_params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("lora", [
    {"r": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "task_type": "CAUSAL_LM"},
    {"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"},
])
def test_qwen2_vl_flat_fixture_matches_peft(lora):
    cfg = _fixture("qwen2-vl-7b-instruct")
    cls = "Qwen2VLForConditionalGeneration"
    assert _static(cfg, cls, lora) == _real(cfg, cls, lora)


@pytest.mark.parametrize(("model_id", "cls"), [
    ("Qwen/Qwen2-VL-2B-Instruct", "Qwen2VLForConditionalGeneration"),
    ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen2_5_VLForConditionalGeneration"),
    ("Qwen/Qwen2.5-VL-7B-Instruct", "Qwen2_5_VLForConditionalGeneration"),
    ("llava-hf/llava-1.5-7b-hf", "LlavaForConditionalGeneration"),
    ("google/paligemma-3b-pt-224", "PaliGemmaForConditionalGeneration"),
    ("bigscience/bloom-7b1", "BloomForCausalLM"),
])
def test_index_vision_language_entries_match_peft(model_id, cls):
    entry = lookup_checkpoint(model_id)
    cfg = {**entry["config"], "model_type": entry["model_type"]}
    lora = {"r": 8, "target_modules": ["q_proj", "v_proj"] if "bloom" not in model_id else None,
            "task_type": "CAUSAL_LM"}
    assert _static(cfg, cls, lora) == _real(cfg, cls, lora)
