"""What the libraries' calls make: which call creates a model, a LoRA config, a PEFT model, a
trainer, a data set or an argument parser, and which calls act on a model or apply a config.

Pure tables over import paths (`qualname`s such as "transformers.AutoModelForCausalLM.from_pretrained");
the evaluator asks `call_kind`, extraction asks `application_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

# transformers classes whose from_pretrained does not load a model
NOT_MODELS = ("Tokenizer", "Processor", "Config", "FeatureExtractor", "GenerationConfig", "PeftModel", "ImageProcessor")
_TOKENIZERS = ("Tokenizer", "Processor", "FeatureExtractor", "ImageProcessor")
_SAME_OBJECT_METHODS = frozenset(
    {"to", "cuda", "cpu", "half", "float", "bfloat16", "eval", "train", "requires_grad_", "to_empty"}
)


def call_kind(qualname: str) -> str | None:
    """What calling `qualname` returns, as the evaluator models it (None: nothing followed)."""
    parts = qualname.split(".")
    root, last = parts[0], parts[-1]
    if root == "builtins":
        return "builtin"
    if root == "peft":
        if last == "LoraConfig":
            return "lora_config"
        if last == "get_peft_model":
            return "peft_model"
        if last in ("prepare_model_for_kbit_training", "prepare_model_for_int8_training"):
            return "prepare"
        if last == "inject_adapter_in_model":
            return "inject"
        # PeftModel(.For*).from_pretrained(base, adapter) and AutoPeftModel(.For*).from_pretrained(adapter),
        # which loads the base itself (peft/auto.py) and passes is_trainable on to PeftModel.from_pretrained
        if len(parts) >= 3 and parts[-2].startswith(("PeftModel", "AutoPeftModel")) and last == "from_pretrained":
            return "peft_loaded"
        if last in ("PeftModel", "PeftMixedModel") or last.startswith("PeftModelFor"):
            return "peft_wrapper"
        if last.endswith("Config"):
            return "sub_config"
        return None
    if root == "unsloth":
        if last == "from_pretrained":
            return "unsloth_load"
        if last == "get_peft_model":
            return "peft_model"
        return None
    if last in ("from_pretrained", "from_config", "from_single_file") and len(parts) >= 3:
        cls = parts[-2]
        if root == "transformers":
            if any(word in cls for word in _TOKENIZERS):
                return "tokenizer"
            if any(word in cls for word in NOT_MODELS):
                return None
            return "model"
        if root == "diffusers":
            return "model"
        return None
    if root == "transformers":
        if last == "BitsAndBytesConfig":
            return "sub_config"
        if last in ("Trainer", "Seq2SeqTrainer"):
            return "trainer"
        if last == "HfArgumentParser":
            return "hf_parser"
        return None
    if root == "trl":
        if last.endswith("Trainer"):
            return "trainer"
        if last == "TrlParser":
            return "hf_parser"
        if last == "ModelConfig":  # trl/trainer/model_config.py: a dataclass get_peft_config reads
            return "trl_model_config"
        if last == "get_peft_config":  # trl/trainer/utils.py: a LoraConfig from a ModelConfig, or None
            return "trl_peft_config"
        if last in ("setup_chat_format", "clone_chat_template"):  # return the model and tokenizer they edit
            return "chat_template"
        return None
    if root == "datasets" and last in ("load_dataset", "load_from_disk"):
        return "dataset"
    if qualname == "argparse.ArgumentParser":
        return "parser"
    if qualname in ("importlib.import_module", "pytest.importorskip"):
        return "import"
    return None


def is_trl_model_config(obj: object) -> bool:
    """An instance of TRL's ModelConfig: built here, or parsed by TrlParser / HfArgumentParser."""
    cls = getattr(obj, "cls", None)
    qual = getattr(cls, "qualname", None)
    return (
        getattr(obj, "kind", None) == "instance"
        and isinstance(qual, str)
        and qual.startswith("trl.")
        and qual.rsplit(".", 1)[-1] == "ModelConfig"
    )


def model_library(qualname: str) -> str | None:
    root = qualname.split(".", 1)[0]
    return root if root in ("transformers", "unsloth", "diffusers") else None


def same_object_method(name: str) -> bool:
    """`model.to(device)`, `model.cuda()`, ...: the call returns the object it was called on."""
    return name in _SAME_OBJECT_METHODS


@dataclass(frozen=True, slots=True, eq=False)
class ApplicationKind:
    """How a call applies a LoRA config to a model.

    kind: get_peft_model | trainer | unsloth | add_adapter | inject | wrapper
    chooses_task: PEFT picks a PeftModelFor<task> class from the config's task_type here."""

    kind: str
    config_keyword: str | None
    config_position: int | None
    model_keyword: str | None
    model_position: int | None
    chooses_task: bool


_GET_PEFT_MODEL = ApplicationKind("get_peft_model", "peft_config", 1, "model", 0, True)
_WRAPPER = ApplicationKind("wrapper", "peft_config", 1, "model", 0, False)
_INJECT = ApplicationKind("inject", "peft_config", 0, "model", 1, False)
_TRL_TRAINER = ApplicationKind("trainer", "peft_config", None, "model", 0, True)
_OTHER_TRAINER = ApplicationKind("trainer", "peft_config", None, "model", 0, False)
_ADD_ADAPTER = ApplicationKind("add_adapter", "adapter_config", None, None, None, False)


def application_of(qualname: str | None, method: str | None, keywords: frozenset[str]) -> ApplicationKind | None:
    """The application a call makes, from its import path (or, for a method call on anything, its
    method name) and its keyword names."""
    if qualname:
        parts = qualname.split(".")
        if parts[0] == "peft":
            last = parts[-1]
            if last == "get_peft_model":
                return _GET_PEFT_MODEL
            if last in ("PeftModel", "PeftMixedModel") or last.startswith("PeftModelFor"):
                return _WRAPPER
            if last == "inject_adapter_in_model":
                return _INJECT
    if "peft_config" in keywords:
        if qualname and qualname.startswith("trl."):
            return _TRL_TRAINER
        return _OTHER_TRAINER
    if method == "add_adapter":
        return _ADD_ADAPTER
    return None


def trl_model_class(qualname: str) -> str:
    """The class a TRL trainer loads a model id with."""
    last = qualname.rsplit(".", 1)[-1]
    return {"RewardTrainer": "AutoModelForSequenceClassification", "PRMTrainer": "AutoModelForTokenClassification"}.get(
        last, "AutoModelForCausalLM"
    )
