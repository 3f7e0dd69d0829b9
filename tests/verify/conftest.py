"""Shared by the verify tests: tiny base models (config.json only) and a PEFT reference count.

The verify tests run real torch / transformers / peft on the CPU (meta device): no weights, no
downloads. Everything here builds what PEFT itself would report, so the tests compare loralint's
output with PEFT's own numbers computed in the same process.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "models"

# Small configurations of real architectures: (config class, kwargs). Enough layers to fold.
TINY = {
    "llama": ("LlamaConfig", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
                                  "num_key_value_heads": 2, "vocab_size": 128}),
    "mistral": ("MistralConfig", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                      "num_key_value_heads": 2, "vocab_size": 128}),
    "qwen2": ("Qwen2Config", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                  "num_key_value_heads": 2, "vocab_size": 128}),
    "gemma2": ("Gemma2Config", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                    "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 128}),
    "phi3": ("Phi3Config", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                "num_key_value_heads": 2, "vocab_size": 128, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}),
    "gpt2": ("GPT2Config", {"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 128, "n_positions": 64,
                                "bos_token_id": 0, "eos_token_id": 0}),
    "gpt_neox": ("GPTNeoXConfig", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                       "vocab_size": 128, "bos_token_id": 0, "eos_token_id": 0}),
    "falcon": ("FalconConfig", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 128,
                                    "bos_token_id": 0, "eos_token_id": 0}),
    "opt": ("OPTConfig", {"hidden_size": 64, "ffn_dim": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 128,
                              "word_embed_proj_dim": 64, "max_position_embeddings": 64, "pad_token_id": 1, "bos_token_id": 2,
                              "eos_token_id": 2}),
    "bloom": ("BloomConfig", {"hidden_size": 64, "n_layer": 2, "n_head": 4, "vocab_size": 128, "bos_token_id": 0, "eos_token_id": 0}),
    "t5": ("T5Config", {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_heads": 4, "d_kv": 16, "vocab_size": 128,
                            "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1}),
    "bert": ("BertConfig", {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
                                "vocab_size": 128, "num_labels": 3, "pad_token_id": 0}),
    "qwen3_moe": ("Qwen3MoeConfig", {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32, "num_experts": 4,
                                         "num_experts_per_tok": 2, "num_hidden_layers": 2, "num_attention_heads": 4,
                                         "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 128}),
    # MoE models PEFT converts (mixtral, deepseek_v3) or does not (gpt_oss) under transformers 5
    "mixtral": ("MixtralConfig", {"hidden_size": 64, "intermediate_size": 96, "num_local_experts": 4, "num_experts_per_tok": 2,
                                      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                                      "vocab_size": 128}),
    "deepseek_v3": ("DeepseekV3Config", {"hidden_size": 64, "intermediate_size": 128, "moe_intermediate_size": 32,
                                             "n_routed_experts": 4, "n_shared_experts": 1, "num_experts_per_tok": 2,
                                             "n_group": 1, "topk_group": 1, "num_hidden_layers": 3, "first_k_dense_replace": 1,
                                             "num_attention_heads": 4, "num_key_value_heads": 4, "q_lora_rank": 32,
                                             "kv_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8,
                                             "v_head_dim": 16, "vocab_size": 128}),
    "gpt_oss": ("GptOssConfig", {"hidden_size": 64, "intermediate_size": 32, "num_local_experts": 4, "num_experts_per_tok": 2,
                                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
                                     "vocab_size": 128, "layer_types": ["sliding_attention", "full_attention"]}),
    "qwen2_vl": ("Qwen2VLConfig", {
        "text_config": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                         "num_key_value_heads": 2, "vocab_size": 256, "bos_token_id": 0, "eos_token_id": 1,
                         "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        "vision_config": {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 4, "mlp_ratio": 2, "patch_size": 14,
                           "spatial_merge_size": 2},
        "image_token_id": 250, "video_token_id": 251, "vision_start_token_id": 252, "vision_end_token_id": 253}),
}


@pytest.fixture
def tiny_model(tmp_path):
    """tiny_model("llama") → a folder holding only the config.json of a small model of that type."""

    def _make(arch: str, folder: str | None = None, **overrides) -> Path:
        import transformers

        class_name, kwargs = TINY[arch]
        config = getattr(transformers, class_name)(**{**kwargs, **overrides})
        path = tmp_path / (folder or arch)
        config.save_pretrained(path)
        return path

    return _make


@pytest.fixture
def script(tmp_path):
    """script(model_dir, "LoraConfig(...)", loader="AutoModelForCausalLM") → train.py that loads the
    model from the folder and applies the configuration with get_peft_model."""

    def _make(model: Path | str, config: str, loader: str = "AutoModelForCausalLM", name: str = "train.py",
              extra: str = "") -> Path:
        text = textwrap.dedent(
            f"""\
            from transformers import {loader}
            from peft import LoraConfig, get_peft_model
            {extra}
            model = {loader}.from_pretrained({str(model)!r})
            config = {config}
            model = get_peft_model(model, config)
            """
        )
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _make


def peft_reference(model_dir: Path, class_name: str, **lora_kwargs):
    """What PEFT itself says for this config.json and LoraConfig: (trainable, total, targeted names)."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    # transformers' own loading path (loralint builds the config from the dict instead).
    config = transformers.AutoConfig.from_pretrained(str(model_dir))
    cls = getattr(transformers, class_name)
    with torch.device("meta"):
        model = cls.from_config(config) if hasattr(cls, "from_config") else cls._from_config(config)
    peft_model = get_peft_model(model, LoraConfig(**lora_kwargs), low_cpu_mem_usage=True)
    trainable, total = peft_model.get_nb_trainable_parameters()
    return trainable, total, list(peft_model.base_model.targeted_module_names)
