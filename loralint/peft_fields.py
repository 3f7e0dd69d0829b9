"""PEFT's LoraConfig surface, as data (peft 0.21.2: `dataclasses.fields(peft.LoraConfig)`).

Mirrored here so the static path knows every field and default without importing peft.
A test in the verify group checks this table against the installed peft.
"""

from __future__ import annotations

from typing import Any

from loralint.sites import Unknown

# peft/tuners/lora/config.py: LoraConfig, plus peft/config.py: PeftConfigMixin / PeftConfig.
PEFT_DEFAULTS: dict[str, Any] = {
    "task_type": None,
    "peft_type": None,
    "auto_mapping": None,
    "peft_version": None,
    "base_model_name_or_path": None,
    "revision": None,
    "inference_mode": False,
    "r": 8,
    "target_modules": None,
    "exclude_modules": None,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "fan_in_fan_out": False,
    "bias": "none",
    "use_rslora": False,
    "modules_to_save": None,
    "init_lora_weights": True,
    "layers_to_transform": None,
    "layers_pattern": None,
    "rank_pattern": {},
    "alpha_pattern": {},
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "trainable_token_indices": None,
    "loftq_config": {},
    "eva_config": None,
    "corda_config": None,
    "lora_ga_config": None,
    "use_dora": False,
    "velora_config": None,
    "alora_invocation_tokens": None,
    "use_qalora": False,
    "qalora_group_size": 16,
    "monteclora_config": None,
    "layer_replication": None,
    "runtime_config": None,
    "lora_bias": False,
    "target_parameters": None,
    "use_bdlora": None,
    "arrow_config": None,
    "kasa_config": None,
    "ensure_weight_tying": False,
}
LORA_FIELDS: frozenset[str] = frozenset(PEFT_DEFAULTS)

# peft/utils/peft_types.py: TaskType. Matched case-sensitively (peft/config.py __post_init__).
TASK_TYPES: tuple[str, ...] = (
    "SEQ_CLS",
    "SEQ_2_SEQ_LM",
    "CAUSAL_LM",
    "TOKEN_CLS",
    "QUESTION_ANS",
    "FEATURE_EXTRACTION",
)

# Strings init_lora_weights accepts (peft/tuners/lora/layer.py: LoraLayer.update_layer dispatch).
# "pissa_niter_<int>" is accepted too; see checks/invalid.py.
INIT_METHODS: tuple[str, ...] = (
    "gaussian",
    "eva",
    "olora",
    "pissa",
    "corda",
    "loftq",
    "orthogonal",
    "lora_ga",
    "mica",
)

BIAS_VALUES: tuple[str, ...] = ("none", "all", "lora_only")

# Names people pass that are not LoraConfig fields, with what they meant (research §1.2, §1.5).
KNOWN_CONFUSIONS: dict[str, str] = {
    "lora_r": "r",
    "rank": "r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "lora_target_modules": "target_modules",
    "target_module": "target_modules",
    "lora_modules_to_save": "modules_to_save",
    "use_rs_lora": "use_rslora",
    "rslora": "use_rslora",
    "dora": "use_dora",
    "qdora": "use_dora",
}
# Fields PEFT removed: passing them raises TypeError today (research §1.5).
REMOVED_FIELDS: dict[str, str] = {
    "merge_weights": "removed in peft 0.3.0; merge with model.merge_and_unload() instead",
    "enable_lora": "removed in peft 0.3.0 (it configured the old MergedLinear)",
}

# Unsloth FastLanguageModel.get_peft_model (unsloth/models/llama.py) / FastBaseModel.get_peft_model
# (unsloth/models/vision.py): its own keywords, and defaults that differ from PEFT's.
UNSLOTH_EXTRA_KEYWORDS: frozenset[str] = frozenset(
    {
        "model",
        "use_gradient_checkpointing",
        "random_state",
        "max_seq_length",
        "finetune_last_n_layers",
        "qat_scheme",
        "temporary_location",
        "finetune_vision_layers",
        "finetune_language_layers",
        "finetune_attention_modules",
        "finetune_mlp_modules",
        "finetune_audio_layers",
        "use_exact_model_name",
    }
)
UNSLOTH_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "bias": "none",
    "task_type": "CAUSAL_LM",
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
# FastVisionModel / FastModel default target_modules=None and build a regex from finetune_* flags.
UNSLOTH_VISION_DEFAULTS: dict[str, Any] = {
    **UNSLOTH_DEFAULTS,
    "target_modules": Unknown("FastVisionModel builds target_modules from its finetune_* flags"),
}

# TRL's ModelConfig (trl/trainer/model_config.py): its lora_* keys and the LoraConfig field each
# feeds, shared by the Python extractor (ModelConfig(...)) and the YAML one (`trl sft --config`).
TRL_MODEL_CONFIG_KEYS: dict[str, str] = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "lora_target_modules": "target_modules",
    "lora_target_parameters": "target_parameters",
    "lora_modules_to_save": "modules_to_save",
    "lora_task_type": "task_type",
    "use_rslora": "use_rslora",
    "use_dora": "use_dora",
}
# ModelConfig's dataclass defaults for what get_peft_config reads (trl/trainer/model_config.py). use_peft
# defaults to False, and get_peft_config then returns None (trl/trainer/utils.py: get_peft_config).
TRL_MODEL_CONFIG_ATTR_DEFAULTS: dict[str, Any] = {
    "model_name_or_path": None,
    "use_peft": False,
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "lora_target_modules": None,
    "lora_target_parameters": None,
    "lora_modules_to_save": None,
    "lora_task_type": "CAUSAL_LM",
    "use_rslora": False,
    "use_dora": False,
    "load_in_8bit": False,
    "load_in_4bit": False,
}
# get_peft_config's LoraConfig under PEFT's names when ModelConfig (or TRL's YAML) leaves a field at
# its default (trl/trainer/model_config.py; bias is always "none" there).
TRL_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "task_type": "CAUSAL_LM",
    "bias": "none",
    "use_rslora": False,
    "use_dora": False,
}
