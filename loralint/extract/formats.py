"""Trainer configuration files → ConfigSites, one mapping per format, shared by YAML and JSON.

Each format's keys are mapped onto PEFT `LoraConfig` field names, with the values the trainer
will really pass (LLaMA-Factory splits `lora_target` on commas, TRL collapses a one-element
`lora_target_modules` list into a string, torchtune renames its module names, ...), so every rule
works unchanged. Sources read (research/trainer-formats.md §0 lists the commits):

* axolotl: src/axolotl/utils/schemas/peft.py (LoraConfig schema), src/axolotl/loaders/adapter.py
  (_build_peft_lora_config, _build_lora_config_kwargs).
* LLaMA-Factory v0: src/llamafactory/hparams/finetuning_args.py (LoraArguments, __post_init__),
  src/llamafactory/model/adapter.py (_setup_lora_tuning); v1:
  src/llamafactory/v1/plugins/model_plugins/peft.py (LoraParams).
* torchtune: torchtune/models/*/_model_builders.py (lora_* builders), torchtune/models/convert_weights.py
  (_TO_PEFT_TARGET_MODULES).
* TRL: trl/trainer/model_config.py (ModelConfig, __post_init__), trl/trainer/utils.py (get_peft_config).
* Unsloth CLI / Studio: unsloth_cli/config.py (LoraConfig, Config.model_kwargs),
  studio/backend/core/training/trainer.py (prepare_model_for_training).
* adapter_config.json: peft/config.py (PeftConfigMixin.from_peft_type), written by save_pretrained.

Provenance convention: "YAML key <name>" / "JSON key <name>" only when the value in the file is
exactly what PEFT receives, so a fix may rewrite it in place (see sites.Field.written_here).
A value the trainer transforms or derives gets a provenance that says how, and no in-place fix.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from loralint.datasets.yaml_refs import axolotl_refs, held_out, llamafactory_refs
from loralint.extract.bounds import MAX_SITES_PER_FILE, bound_pattern_keys, note
from loralint.extract.source import LINE_BREAK
from loralint.extract.yaml_positions import Node
from loralint.extract.yaml_training import (
    axolotl_training,
    llamafactory_training,
    torchtune_training,
    trl_training,
)
from loralint.peft_fields import LORA_FIELDS, TRL_DEFAULTS, TRL_MODEL_CONFIG_KEYS
from loralint.sites import ConfigSite, Field, Span, Unknown

# --- shared data -------------------------------------------------------------------------------

_SEVEN_PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# LoraConfig field names that are distinctly LoRA; written as a top-level key of a trainer
# format that does not have them, they are a mistake (the trainer drops or rejects them).
_PEFT_NAMES = frozenset(
    {
        "r",
        "target_modules",
        "modules_to_save",
        "use_rslora",
        "use_dora",
        "rank_pattern",
        "alpha_pattern",
        "layers_to_transform",
        "layers_pattern",
        "init_lora_weights",
        "fan_in_fan_out",
        "exclude_modules",
        "target_parameters",
        "lora_bias",
        "loftq_config",
        "task_type",
    }
)
# Every format's own LoRA key names: one format's key written in another is a likely mix-up.
_OTHER_FORMAT_NAMES = frozenset(
    {
        "lora_r",
        "lora_rank",
        "lora_alpha",
        "lora_dropout",
        "lora_target",
        "lora_target_modules",
        "lora_target_linear",
        "lora_modules_to_save",
        "lora_task_type",
        "additional_target",
        "peft_use_rslora",
        "peft_use_dora",
        "lora_attn_modules",
        "use_peft",
    }
)
_LORA_WORD = re.compile(r"lora|peft|dora", re.I)
_SPLIT_SLICE = re.compile(r"^\s*[\w.\-]+\s*\[\s*(\d*)\s*:\s*(\d+)\s*\]\s*$")
_TUNE_DOWNLOAD = re.compile(r"tune\s+download\s+([\w.\-]+/[\w.\-]+)(?:[^\n]*?--output-dir\s+(\S+))?")
_TORCHTUNE_BUILDER = re.compile(r"(?:^|\.)(q?lora)_\w+$")


@dataclass(slots=True, repr=False, eq=False)
class Document:
    """One YAML document or JSON file: the root node and how to point into the file."""

    path: str
    syntax: str  # "yaml" | "json"
    root: Node
    text: str
    lines: list[str] | None = None
    # Other files read for it (a DeepSpeed JSON it names): a cached result re-reads them (loralint/dependencies.py)
    reads: list[tuple[str, str | None]] | None = None

    @property
    def label(self) -> str:
        return "JSON" if self.syntax == "json" else "YAML"

    def span(self, node: Node) -> Span:
        return Span(self.path, node.start[0], node.start[1], node.end[0], node.end[1])

    def name_span(self, key: Node) -> Span:
        """A key's name without its quotes: what a rename fix replaces."""
        span = self.span(key)
        if key.kind == "scalar" and span.line == span.end_line and span.end_column - span.column >= 2:
            line = self.text_line(span.line)
            if line[span.column - 1 : span.column] in ("'", '"'):
                return Span(self.path, span.line, span.column + 1, span.end_line, span.end_column - 1)
        return span

    def text_line(self, number: int) -> str:
        if not self.lines:  # None, or the file's shared list not split yet (a split is never empty)
            if self.lines is None:
                self.lines = []
            self.lines.extend(LINE_BREAK.split(self.text))  # lines as every position counts them
        return self.lines[number - 1] if 0 < number <= len(self.lines) else ""


def _is_set(node: Node | None) -> bool:
    """A key written with a value (YAML `key:` with nothing after it is null: unset)."""
    return node is not None and not (node.kind == "scalar" and node.value is None)


def _truthy(node: Node | None) -> bool:
    return node is not None and node.kind == "scalar" and node.value is True


class _Builder:
    """Fills one ConfigSite from one format's section, with the provenance conventions above."""

    def __init__(
        self,
        doc: Document,
        origin: str,
        anchor: Node,
        defaults: dict[str, Any],
        extra_known: frozenset[str],
        applied: bool = True,
    ) -> None:
        self.doc = doc
        span = doc.span(anchor)
        self.site = ConfigSite(
            path=doc.path,
            span=span,
            origin=origin,
            defaults=dict(defaults),
            extra_known=extra_known,
            syntax=doc.syntax,
        )
        if applied:
            # The trainer always builds and applies the adapter it reads from its config.
            self.site.hints.applied = ["trainer"]
            self.site.hints.applied_span = span
            self.site.hints.task_chosen = True  # through get_peft_model

    def key(self, dotted: str) -> str:
        return f"{self.doc.label} key {dotted}"

    def put(
        self,
        name: str,
        key: Node,
        value: Node,
        dotted: str,
        *,
        converted: Any = None,
        how: str | None = None,
    ) -> Field:
        """A field written at `key`. With `how`, the trainer changes the value: `converted` is what
        PEFT receives and the provenance says why (no in-place fix then)."""
        raw = dotted.rsplit(".", 1)[-1]
        provenance = how if how is not None else self.key(dotted)
        span = self.doc.span(value)
        field = Field(
            name=name,
            value=bound_pattern_keys(name, value.value if how is None else converted, span.line, span.column),
            span=span,
            key_span=self.doc.span(key),
            provenance=provenance,
            raw_name=raw if raw != name else None,
        )
        if value.kind == "seq":
            # Entries of a list written in place, so a finding can point at one of them.
            field.items = [(item.value, self.doc.span(item)) for item in value.items if item.kind == "scalar"]
        elif how is not None and isinstance(converted, list):
            field.items = _comma_items(self.doc, value)  # `additional_target: lm_head,embed_tokens`
        self.site.fields[name] = field
        return field

    def derive(
        self, name: str, value: Any, where: Node | Span, provenance: str, key: Node | None = None
    ) -> Field:
        span = where if isinstance(where, Span) else self.doc.span(where)
        field = Field(name, value, span, self.doc.span(key) if key is not None else None, provenance)
        self.site.fields[name] = field
        return field

    def unknown(self, key: Node, value: Node, dotted: str) -> None:
        raw = dotted.rsplit(".", 1)[-1]
        span = self.doc.name_span(key)
        self.site.unknown_args.append(Field(raw, value.value, span, span, self.key(dotted)))

    def base_model(self, value: Node | None, dotted: str) -> None:
        if (
            value is not None
            and value.kind == "scalar"
            and isinstance(value.value, str)
            and value.value.strip()
        ):
            self.site.base_model = Field(
                "base_model", value.value, self.doc.span(value), provenance=self.key(dotted)
            )

    def quantization(self, bits: str, where: Node | Span, source: str | None = None, method: str = "bitsandbytes") -> None:
        hints = self.site.hints
        if hints.quantization is None:
            hints.quantization = bits
            hints.quantization_span = where if isinstance(where, Span) else self.doc.span(where)
            hints.quant_method = method
            hints.quantization_source = source

    def dataset_slices(self, entries: Iterable[Node | None]) -> None:
        """hints.dataset_size from split slices (`train[:5000]`) when every dataset has one."""
        total, first, texts = 0, None, []
        for split in entries:
            if split is None or split.kind != "scalar" or not isinstance(split.value, str):
                return
            match = _SPLIT_SLICE.match(split.value)
            if not match:
                return
            total += int(match.group(2)) - int(match.group(1) or 0)
            texts.append(split.value)
            first = first or split
        if first is None:
            return
        self.site.hints.dataset_size = Field(
            "dataset_size", total, self.doc.span(first), provenance=", ".join(f"split={t!r}" for t in texts)
        )

    def check_unknown(
        self,
        section: Node,
        prefix: str,
        known: frozenset[str],
        lora_keys: frozenset[str],
        strict: bool = False,
    ) -> None:
        """Report keys of `section` that look like LoRA settings but are not the format's.

        strict: every unknown key is an error (Unsloth's `lora:` section, LLaMA-Factory v1's
        peft_config). Otherwise the section also holds the trainer's many other options, so only
        keys that name a LoRA setting of PEFT or of another trainer, or a near miss of one of this
        format's LoRA keys, are reported (a misspelt `lora_aplha`, axolotl's `lora_rank`). `known`
        must hold the format's other keys that are near misses of its LoRA keys (LLaMA-Factory's
        `oft_target` is one letter pair away from `lora_target`)."""
        for name, key, value in section.entries():
            if name in known:
                continue
            if strict or name in _PEFT_NAMES or name in _OTHER_FORMAT_NAMES:
                self.unknown(key, value, prefix + name)
                continue
            if _near_miss(name, lora_keys):
                self.unknown(key, value, prefix + name)

    def done(self) -> ConfigSite:
        return self.site


@functools.lru_cache(maxsize=4096)
def _near_miss(name: str, lora_keys: frozenset[str]) -> bool:
    """`name` is a misspelling of one of `lora_keys` (cached: the same keys recur in every file)."""
    cutoff = 0.75 if _LORA_WORD.search(name) else 0.85  # `use_rslroa` has no "lora" left in it
    length, letters = len(name), None
    candidates = []
    for key, counts in _letter_counts(lora_keys):
        if abs(len(key) - length) > 4:
            continue
        # difflib's quick_ratio, the bound on ratio() it tests before computing it: 2 * (letters in common,
        # with their counts) / (both lengths). A key below the cutoff there is never a close match (most names
        # are far from every LoRA key), so difflib is asked about the others only.
        letters = letters or Counter(name)
        common = 0
        for letter, count in letters.items():
            other = counts.get(letter)
            if other:
                common += min(other, count)
        if 2.0 * common / (length + len(key)) >= cutoff:
            candidates.append(key)
    if not candidates:
        return False
    import difflib  # only here: a script's start-up does not pay for it

    return bool(difflib.get_close_matches(name, candidates, n=1, cutoff=cutoff))


@functools.lru_cache(maxsize=64)
def _letter_counts(keys: frozenset[str]) -> tuple[tuple[str, Counter[str]], ...]:
    """Each key with how often each letter is in it (see _near_miss)."""
    return tuple((key, Counter(key)) for key in sorted(keys))


def _first_key(root: Node, names: Iterable[str]) -> Node | None:
    """The key node of the first of `names` written in `root`, in document order."""
    wanted = set(names)
    for key, value in root.items:
        if key.kind == "scalar" and key.value in wanted:
            return key
    return None


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _comma_items(doc: Document, node: Node) -> list[tuple[Any, Span]]:
    """The entries of a comma-separated scalar, each with its own span, when the scalar is written on
    one line as it reads (plain, or quoted without escapes); else none (findings keep the value's span)."""
    span = doc.span(node)
    if node.kind != "scalar" or not isinstance(node.value, str) or span.line != span.end_line:
        return []
    raw = doc.text_line(span.line)[span.column - 1 : span.end_column - 1]
    shift = 1 if len(raw) >= 2 and raw[0] in "'\"" and raw[-1] == raw[0] else 0
    if raw[shift : len(raw) - shift] != node.value:
        return []
    items: list[tuple[Any, Span]] = []
    column = span.column + shift
    for piece in node.value.split(","):
        entry = piece.strip()
        if entry:
            start = column + len(piece) - len(piece.lstrip())
            items.append((entry, Span(doc.path, span.line, start, span.line, start + len(entry))))
        column += len(piece) + 1
    return items


def _split_commas(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


# --- axolotl ---------------------------------------------------------------------------------

# axolotl key → LoraConfig field (src/axolotl/loaders/adapter.py)
AXOLOTL_KEYS: dict[str, str] = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "lora_target_modules": "target_modules",
    "lora_target_parameters": "target_parameters",
    "lora_modules_to_save": "modules_to_save",
    "lora_fan_in_fan_out": "fan_in_fan_out",
    "lora_exclude_modules": "exclude_modules",
    "lora_rank_pattern": "rank_pattern",
    "lora_alpha_pattern": "alpha_pattern",
    "peft_layers_to_transform": "layers_to_transform",
    "peft_layers_pattern": "layers_pattern",
    "peft_use_rslora": "use_rslora",
    "peft_use_dora": "use_dora",
    "peft_init_lora_weights": "init_lora_weights",
    "peft_layer_replication": "layer_replication",
    "peft_trainable_token_indices": "trainable_token_indices",
    "peft_ensure_weight_tying": "ensure_weight_tying",
}
AXOLOTL_LORA_KEYS = frozenset({*AXOLOTL_KEYS, "adapter", "lora_target_linear", "peft"})
AXOLOTL_KNOWN = frozenset(
    {
        *AXOLOTL_LORA_KEYS,
        "lora_model_dir",
        "lora_on_cpu",
        "lora_mlp_kernel",
        "lora_qkv_kernel",
        "lora_o_kernel",
        "lora_embedding_kernel",
        "lora_alpha_override",
        "loraplus_lr_ratio",
        "loraplus_lr_embedding",
        "merge_lora",
        "merge_method",
        "peft_autocast_adapter_dtype",
        "qlora_sharded_model_loading",
        "relora",
        "relora_prune_ratio",
        "relora_prune_method",
        "relora_cpu_offload",
        "vllm_lora_sync",
        "base_model",
        "load_in_4bit",
        "load_in_8bit",
        "datasets",
    }
)
# Keys only axolotl writes: enough to recognise an axolotl file without `adapter`/`base_model`.
_AXOLOTL_ONLY = frozenset(
    {"lora_target_linear", "peft_use_rslora", "peft_use_dora", "lora_model_dir", "lora_fan_in_fan_out"}
)
AXOLOTL_DEFAULTS: dict[str, Any] = {
    "lora_dropout": 0.0,  # validate_lora_dropout fills 0.0 when an adapter is set
    "target_modules": [],  # `cfg.lora_target_modules or []`: PEFT then raises (no target modules)
    "bias": "none",
    "task_type": "CAUSAL_LM",  # _get_peft_task_type, from the model class
    "use_rslora": False,
    "use_dora": False,
}


def _axolotl(doc: Document) -> list[ConfigSite]:
    root = doc.root
    adapter = root.get("adapter")
    adapter_value = adapter.value if _is_set(adapter) else None
    if adapter_value is not None and adapter_value not in ("lora", "qlora"):
        return []  # llama-adapter or a plugin's adapter: not LoRA
    if adapter is not None and (adapter_value is None or adapter_value == ""):
        # `adapter:` written empty: full fine-tuning (axolotl's examples leave the lora_* keys in place,
        # and axolotl ignores them). Not a LoRA configuration.
        return []
    written = [k for k in AXOLOTL_KEYS if _is_set(root.get(k))] + (
        ["lora_target_linear"] if _is_set(root.get("lora_target_linear")) else []
    )
    if adapter_value is None and not written:
        return []
    anchor = _first_key(root, ["adapter", *AXOLOTL_KEYS, "lora_target_linear"])
    assert anchor is not None
    defaults = dict(AXOLOTL_DEFAULTS)
    model_class = root.get("type_of_model") or root.get("model_type")
    if model_class is not None and isinstance(model_class.value, str):
        name = model_class.value
        if "SequenceClassification" in name:
            defaults["task_type"] = "SEQ_CLS"
        elif "TokenClassification" in name:
            defaults["task_type"] = "TOKEN_CLS"
    b = _Builder(doc, "axolotl", anchor, defaults, AXOLOTL_KNOWN, applied=adapter_value is not None)
    if (
        model_class is not None
        and isinstance(model_class.value, str)
        and model_class.value.startswith("Auto")
    ):
        b.site.hints.model_class = model_class.value
    for key_name, field_name in AXOLOTL_KEYS.items():
        entry = root.entry(key_name)
        if entry is None:
            continue
        key, value = entry
        if not _is_set(value) and field_name not in ("r", "lora_alpha"):
            continue  # a null value is "unset" for axolotl (pydantic default None)
        b.put(field_name, key, value, key_name)
    # lora_target_linear: axolotl adds every linear layer's name (find_all_linear_names) to the list.
    linear = root.entry("lora_target_linear")
    if linear is not None and _truthy(linear[1]):
        listed = b.site.fields.get("target_modules")
        extra = f", united with lora_target_modules {listed.value!r}" if listed is not None else ""
        b.derive(
            "target_modules",
            "all-linear",
            linear[1],
            f"axolotl lora_target_linear: true adds every linear layer except the output layer"
            f" (find_all_linear_names){extra}",
            key=linear[0],
        )
    # A missing lora_r / lora_alpha reaches PEFT as None (no axolotl default), unless an adapter is loaded.
    if adapter_value is not None and not _is_set(root.get("lora_model_dir")):
        for key_name, field_name in (("lora_r", "r"), ("lora_alpha", "lora_alpha")):
            if field_name not in b.site.fields:
                b.derive(
                    field_name,
                    None,
                    b.site.span,
                    f"axolotl default: {key_name} is not set, so axolotl passes {field_name}=None",
                )
    # peft: {loftq_config: {loftq_bits: 4}} → LoftQConfig(loftq_bits), init_lora_weights="loftq".
    peft = root.get("peft")
    loftq = peft.get("loftq_config") if peft is not None else None
    bits = loftq.get("loftq_bits") if loftq is not None else None
    if bits is not None and bits.value:
        b.derive(
            "loftq_config",
            {"loftq_bits": bits.value},
            loftq,
            f"axolotl builds LoftQConfig(loftq_bits) from {b.key('peft.loftq_config')}",
        )
        if "init_lora_weights" not in b.site.fields:
            b.derive(
                "init_lora_weights",
                "loftq",
                loftq,
                "axolotl sets init_lora_weights='loftq' when peft.loftq_config is given",
            )
    b.base_model(root.get("base_model"), "base_model")
    for key_name, bits_name in (("load_in_4bit", "4bit"), ("load_in_8bit", "8bit")):
        value = root.get(key_name)
        if _truthy(value):
            b.quantization(bits_name, value, f"axolotl {key_name}: true")
    if adapter_value == "qlora":  # axolotl validates that qlora comes with load_in_4bit: true
        b.quantization("4bit", adapter, "axolotl adapter: qlora")
    b.site.hints.kbit_prepared_by = "axolotl"  # axolotl's model loader prepares a k-bit model itself
    datasets = root.get("datasets")
    if datasets is not None and datasets.kind == "seq" and datasets.items:
        b.dataset_slices(item.get("split") if item.kind == "map" else None for item in datasets.items)
        b.site.hints.datasets = axolotl_refs(datasets, doc.span)  # sized by loralint.datasets
        b.site.hints.held_out = held_out(root.get("val_set_size"), "val_set_size", 0.0, doc.span)
        shards = root.get("dataset_shard_num")
        if _truthy(root.get("dataset_exact_deduplication")) or (shards is not None and shards.value is not None):
            # axolotl drops duplicates or keeps one shard before it trains: how many remain is not known
            b.site.hints.datasets, b.site.hints.dataset_size, b.site.hints.held_out = None, None, None
    b.site.hints.config_adds_tokens = _axolotl_new_tokens(doc)
    if adapter_value is not None:  # trained by axolotl: its batch, sequence length, learning rate, DeepSpeed
        b.site.hints.training = axolotl_training(doc, b.site.span)
    b.check_unknown(root, "", AXOLOTL_KNOWN, AXOLOTL_LORA_KEYS)
    return [b.done()]


def _axolotl_new_tokens(doc: Document) -> tuple[Span, str] | None:
    """`tokens:` (always new tokens), or `special_tokens:` setting a token other than the pad token (new
    unless the tokenizer has it already, which only the tokenizer knows). axolotl raises unless
    lora_modules_to_save holds both embedding layers then: loaders/utils.py check_model_config for
    `tokens`, loaders/tokenizer.py load_tokenizer for `special_tokens` (pad_token and
    additional_special_tokens exempt)."""
    root = doc.root
    tokens = root.entry("tokens")
    if tokens is not None and tokens[1].kind == "seq" and tokens[1].items:
        return doc.span(tokens[0]), "axolotl tokens:"
    special = root.entry("special_tokens")
    if special is not None and special[1].kind == "map":
        for name, _, value in special[1].entries():
            if name not in ("pad_token", "additional_special_tokens") and _is_set(value):
                return doc.span(special[0]), f"axolotl special_tokens: {name}"
    return None


# --- LLaMA-Factory ---------------------------------------------------------------------------

LLAMAFACTORY_KEYS: dict[str, str] = {
    "lora_rank": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "lora_target": "target_modules",
    "additional_target": "modules_to_save",
    "use_rslora": "use_rslora",
    "use_dora": "use_dora",
}
LLAMAFACTORY_LORA_KEYS = frozenset(
    {*LLAMAFACTORY_KEYS, "finetuning_type", "pissa_init", "pissa_iter", "pissa_convert"}
)
# src/llamafactory/hparams/finetuning_args.py: every field (several are near misses of LoRA keys).
_LLAMAFACTORY_FINETUNING_ARGS = frozenset(
    """additional_target apollo_layerwise apollo_proj apollo_proj_type apollo_rank apollo_scale
    apollo_scale_front apollo_scale_type apollo_target apollo_update_interval asft_alpha badam_mask_mode
    badam_mode badam_start_block badam_switch_interval badam_switch_mode badam_update_ratio badam_verbose
    compute_accuracy create_new_adapter disable_shuffling dpo_label_smoothing eaft_alpha early_stopping_steps
    finetuning_type freeze_extra_modules freeze_language_model freeze_multi_modal_projector
    freeze_trainable_layers freeze_trainable_modules freeze_vision_tower galore_layerwise galore_proj_type
    galore_rank galore_scale galore_target galore_update_interval hyper_parallel_args hyper_parallel_cp_size
    include_effective_tokens_per_second kto_chosen_weight kto_rejected_weight ld_alpha lora_alpha
    lora_dropout lora_rank lora_target loraplus_lr_embedding loraplus_lr_ratio megatron_bridge_args
    module_dropout oft_block_size oft_rank oft_target pissa_convert pissa_init pissa_iter plot_loss
    ppo_buffer_size ppo_epochs ppo_score_norm ppo_target ppo_whiten_rewards pref_bco_weight pref_beta
    pref_ftx pref_loss pure_bf16 ref_model ref_model_adapters ref_model_quantization_bit reward_model
    reward_model_adapters reward_model_quantization_bit reward_model_type simpo_gamma stage use_adam_mini
    use_apollo use_asft_loss use_badam use_dft_loss use_dora use_eaft_loss use_galore use_hyper_parallel
    use_llama_pro use_mca use_megatron_bridge use_muon use_rslora use_swanlab""".split()
)
LLAMAFACTORY_KNOWN = frozenset(
    {
        *LLAMAFACTORY_LORA_KEYS,
        "loraplus_lr_ratio",
        "loraplus_lr_embedding",
        "create_new_adapter",
        "adapter_name_or_path",
        "adapter_folder",
        "kt_lora_expert_intermediate_size",
        "kt_lora_expert_num",
        "kt_use_lora_experts",
        "sglang_lora_backend",
        "vllm_max_lora_rank",
        "ref_model_adapters",
        "reward_model_adapters",
        "model_name_or_path",
        "quantization_bit",
    }
)
_LLAMAFACTORY_ONLY = frozenset(
    {"finetuning_type", "lora_rank", "lora_target", "additional_target", "pissa_init"}
)
LLAMAFACTORY_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "lora_alpha": 16,  # lora_rank * 2
    "lora_dropout": 0.0,
    "target_modules": "all-linear",  # lora_target: all → find_all_linear_modules
    "bias": "none",
    "task_type": "CAUSAL_LM",
    "use_rslora": False,
    "use_dora": False,
}
_LF_ALL = (
    "LLaMA-Factory lora_target: all adapts every linear layer except the output layer"
    " (find_all_linear_modules, which leaves out the vision tower while freeze_vision_tower is true, the default)"
)


def _llamafactory(doc: Document) -> list[ConfigSite]:
    root = doc.root
    method = root.get("finetuning_type")
    if _is_set(method) and method.value != "lora":
        return []
    written = [k for k in LLAMAFACTORY_KEYS if _is_set(root.get(k))]
    if (
        _is_set(root.get("adapter_name_or_path"))
        and not written
        and not _truthy(root.get("create_new_adapter"))
    ):
        return []  # loads (or merges) an adapter trained elsewhere: its adapter_config.json governs
    anchor = _first_key(root, ["finetuning_type", *LLAMAFACTORY_KEYS, "pissa_init"])
    if anchor is None:
        return []
    b = _Builder(doc, "llamafactory", anchor, LLAMAFACTORY_DEFAULTS, LLAMAFACTORY_KNOWN, applied=True)
    for key_name, field_name in LLAMAFACTORY_KEYS.items():
        entry = root.entry(key_name)
        if entry is None or not _is_set(entry[1]):
            continue
        key, value = entry
        if key_name in ("lora_target", "additional_target") and isinstance(value.value, str):
            parts = _split_commas(value.value)
            if key_name == "lora_target" and parts == ["all"]:
                b.put(field_name, key, value, key_name, converted="all-linear", how=_LF_ALL)
            else:
                b.put(
                    field_name,
                    key,
                    value,
                    key_name,
                    converted=parts,
                    how=f"LLaMA-Factory splits {b.key(key_name)} on commas: {parts!r}",
                )
        elif key_name == "lora_alpha" and value.value in (0, None):
            continue  # `lora_alpha or lora_rank * 2`: handled below
        else:
            b.put(field_name, key, value, key_name)
    # lora_alpha defaults to 2 × lora_rank (FinetuningArguments.__post_init__); 0 counts as unset.
    rank = b.site.fields.get("r")
    if "lora_alpha" not in b.site.fields and rank is not None:
        alpha_entry = root.entry("lora_alpha")
        r = rank.value
        value = (
            r * 2
            if isinstance(r, int) and not isinstance(r, bool)
            else Unknown("2 × lora_rank, and lora_rank is not an integer")
        )
        why = "LLaMA-Factory default (2 × lora_rank)"
        if alpha_entry is not None:
            why += f"; {b.key('lora_alpha')} is {alpha_entry[1].value!r}, which LLaMA-Factory treats as unset"
        b.derive("lora_alpha", value, rank.span, why, key=alpha_entry[0] if alpha_entry else None)
    if _truthy(root.get("pissa_init")):
        iterations = root.get("pissa_iter")
        n = iterations.value if iterations is not None else 16
        init = "pissa" if n == -1 else f"pissa_niter_{n}"
        b.derive(
            "init_lora_weights",
            init,
            root.get("pissa_init"),
            f"LLaMA-Factory pissa_init: true (pissa_iter={n})",
        )
    if not _truthy(root.get("use_kt")):
        # use_kt: true trains on KTransformers' AMX MoE backend (hparams/model_args.py), which runs the
        # experts in its own CPU kernels: the module tree PEFT meets is not the one loralint knows for
        # the checkpoint, so the model is left unknown and the rules about its modules stay quiet.
        b.base_model(root.get("model_name_or_path"), "model_name_or_path")
    bits = root.get("quantization_bit")
    if bits is not None and isinstance(bits.value, int) and not isinstance(bits.value, bool):
        method = root.get("quantization_method")
        name = method.value if method is not None and isinstance(method.value, str) else "bnb"
        b.quantization(f"{bits.value}bit", bits, f"LLaMA-Factory quantization_bit: {bits.value}",
                       "bitsandbytes" if name == "bnb" else name)
    b.site.hints.kbit_prepared_by = "llamafactory"  # LLaMA-Factory prepares a quantized model itself
    b.site.hints.datasets = llamafactory_refs(root, doc.span)  # sized by loralint.datasets
    b.site.hints.held_out = held_out(root.get("val_size"), "val_size", 1e-6, doc.span)
    b.site.hints.training = llamafactory_training(doc, b.site.span)
    b.check_unknown(root, "", LLAMAFACTORY_KNOWN | _LLAMAFACTORY_FINETUNING_ARGS, LLAMAFACTORY_LORA_KEYS)
    return [b.done()]


# LLaMA-Factory v1: peft_config: {name: lora, ...} with PEFT's own names (LoraParams).
LLAMAFACTORY_V1_KEYS = frozenset(
    {"r", "lora_alpha", "lora_dropout", "target_modules", "use_rslora", "use_dora", "modules_to_save"}
)
LLAMAFACTORY_V1_KNOWN = frozenset(
    {
        *LLAMAFACTORY_V1_KEYS,
        "name",
        "adapter_name_or_path",
        "export_dir",
        "export_size",
        "export_hub_model_id",
        "infer_dtype",
        "export_legacy_format",
    }
)
LLAMAFACTORY_V1_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "target_modules": "all-linear",
    "bias": "none",
    "task_type": "CAUSAL_LM",
    "use_rslora": False,
    "use_dora": False,
}


def _llamafactory_v1(doc: Document) -> list[ConfigSite]:
    root = doc.root
    entry = root.entry("peft_config")
    if entry is None or entry[1].kind != "map":
        return []
    key, section = entry
    name = section.get("name")
    if name is None or name.value != "lora":
        return []
    written = [k for k in LLAMAFACTORY_V1_KEYS if _is_set(section.get(k))]
    if _is_set(section.get("adapter_name_or_path")) and not written:
        return []  # exports or merges an adapter trained elsewhere
    b = _Builder(doc, "llamafactory", key, LLAMAFACTORY_V1_DEFAULTS, LLAMAFACTORY_V1_KNOWN, applied=True)
    for field_name in sorted(LLAMAFACTORY_V1_KEYS):
        sub = section.entry(field_name)
        if sub is None or not _is_set(sub[1]):
            continue
        k, v = sub
        dotted = f"peft_config.{field_name}"
        if field_name == "target_modules" and isinstance(v.value, str):
            if v.value == "all":
                b.put(
                    field_name,
                    k,
                    v,
                    dotted,
                    converted="all-linear",
                    how=_LF_ALL.replace("lora_target", "target_modules"),
                )
            else:  # peft.py: `elif isinstance(target_modules, str): target_modules = [target_modules]`
                b.put(
                    field_name,
                    k,
                    v,
                    dotted,
                    converted=[v.value],
                    how=f"LLaMA-Factory v1 wraps {b.key(dotted)} in a list: {[v.value]!r}",
                )
        else:
            b.put(field_name, k, v, dotted)
    model = root.entry("model")
    if model is not None:
        b.base_model(model[1], "model")
    else:
        b.site.base_model = Field(
            "base_model",
            "Qwen/Qwen3-4B-Instruct-2507",
            b.site.span,
            provenance="LLaMA-Factory v1 default model",
        )
    quant = root.get("quant_config")
    bits = quant.get("quantization_bit") if quant is not None else None
    if bits is not None and isinstance(bits.value, int) and not isinstance(bits.value, bool):
        b.quantization(f"{bits.value}bit", bits)
    b.check_unknown(section, "peft_config.", LLAMAFACTORY_V1_KNOWN, LLAMAFACTORY_V1_KEYS, strict=True)
    return [b.done()]


# --- torchtune -------------------------------------------------------------------------------

TORCHTUNE_KEYS: dict[str, str] = {
    "lora_rank": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "use_dora": "use_dora",
}
TORCHTUNE_LORA_KEYS = frozenset(
    {*TORCHTUNE_KEYS, "lora_attn_modules", "apply_lora_to_mlp", "apply_lora_to_output", "quantize_base"}
)
TORCHTUNE_KNOWN = frozenset({*TORCHTUNE_LORA_KEYS, "_component_"})
# torchtune/models/convert_weights.py: _TO_PEFT_TARGET_MODULES
TORCHTUNE_ATTN_TO_PEFT = {"q_proj": "q_proj", "k_proj": "k_proj", "v_proj": "v_proj", "output_proj": "o_proj"}
TORCHTUNE_MLP_TO_PEFT = ["gate_proj", "down_proj", "up_proj"]  # w1, w2, w3
TORCHTUNE_DEFAULTS: dict[str, Any] = {
    "r": 8,  # every lora_* model builder: lora_rank=8, lora_alpha=16, lora_dropout=0.0
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "target_modules": Unknown("torchtune's LoRA builders require lora_attn_modules"),
    "bias": "none",  # LoRALinear trains no base biases
    "task_type": "CAUSAL_LM",
    "use_rslora": False,
    "use_dora": False,
}
# Families whose Hugging Face layout fuses what torchtune keeps separate (Phi-3's qkv_proj and
# gate_up_proj): torchtune's names have no PEFT equivalent (its checkpointer skips the adapter config).
_TORCHTUNE_FUSED_FAMILIES = ("phi3", "phi4")


def _torchtune(doc: Document) -> list[ConfigSite]:
    sites = []
    for section_name, key, section in doc.root.entries():
        if section_name.startswith("teacher"):
            continue  # knowledge distillation: the teacher is loaded, not trained
        component = section.get("_component_") if section.kind == "map" else None
        if component is None or not isinstance(component.value, str):
            continue
        match = _TORCHTUNE_BUILDER.search(component.value)
        if not match:
            continue
        sites.append(
            _torchtune_section(doc, section_name, key, section, component, match.group(1) == "qlora")
        )
    return sites


def _torchtune_section(
    doc: Document, section_name: str, key: Node, section: Node, component: Node, qlora: bool
) -> ConfigSite:
    # Suggestions for unknown keys come from extra_known; use_dora is left out so that PEFT's
    # use_rslora, which torchtune lacks, is not "corrected" into DoRA.
    b = _Builder(doc, "torchtune", key, TORCHTUNE_DEFAULTS, TORCHTUNE_KNOWN - {"use_dora"}, applied=True)
    prefix = f"{section_name}."
    for key_name, field_name in TORCHTUNE_KEYS.items():
        entry = section.entry(key_name)
        if entry is not None and _is_set(entry[1]):
            b.put(field_name, entry[0], entry[1], prefix + key_name)
    attn = section.entry("lora_attn_modules")
    if attn is not None:
        family = component.value.split(".")[-2] if component.value.count(".") >= 1 else ""
        names = attn[1].value
        if family.startswith(_TORCHTUNE_FUSED_FAMILIES):
            b.derive(
                "target_modules",
                Unknown(
                    f"torchtune's {family} keeps q/k/v and gate/up separate; Hugging Face fuses them (qkv_proj, gate_up_proj)"
                ),
                attn[1],
                f"torchtune {prefix}lora_attn_modules",
                key=attn[0],
            )
        elif _str_list(names):
            targets = [TORCHTUNE_ATTN_TO_PEFT[n] for n in names if n in TORCHTUNE_ATTN_TO_PEFT]
            ignored = [n for n in names if n not in TORCHTUNE_ATTN_TO_PEFT]
            parts = [f"{prefix}lora_attn_modules {names!r}"]
            if _truthy(section.get("apply_lora_to_mlp")):
                targets += TORCHTUNE_MLP_TO_PEFT
                parts.append("apply_lora_to_mlp (w1, w2, w3)")
            if _truthy(section.get("apply_lora_to_output")):
                targets.append("lm_head")
                parts.append("apply_lora_to_output")
            how = (
                f"torchtune {' + '.join(parts)}, under the PEFT names torchtune's checkpointer gives them"
                " (output_proj→o_proj, w1→gate_proj, w2→down_proj, w3→up_proj, output→lm_head)"
            )
            if ignored:
                how += (
                    f"; {ignored!r} {'is' if len(ignored) == 1 else 'are'} not torchtune attention names"
                    " (q_proj, k_proj, v_proj, output_proj), so torchtune silently adapts nothing there"
                )
            b.derive("target_modules", list(dict.fromkeys(targets)), attn[1], how, key=attn[0])
        else:
            b.put(
                "target_modules",
                attn[0],
                attn[1],
                prefix + "lora_attn_modules",
                converted=Unknown("lora_attn_modules is not a list of names"),
                how=f"torchtune {prefix}lora_attn_modules",
            )
    # torchtune quantizes the base to torchao's NF4Tensor itself (not bitsandbytes).
    if qlora:
        b.quantization("4bit", component, f"torchtune {component.value}", "torchao")
    elif _truthy(section.get("quantize_base")):
        b.quantization("4bit", section.get("quantize_base"), "torchtune quantize_base: true", "torchao")
    b.site.base_model = _torchtune_base_model(doc, section_name)
    dataset = doc.root.get("dataset")
    if dataset is not None and dataset.kind in ("map", "seq"):
        entries = dataset.items if dataset.kind == "seq" else [dataset]
        b.dataset_slices(e.get("split") if e.kind == "map" else None for e in entries)
    if section_name == "model":  # the model trained (other sections: a teacher or reference model)
        b.site.hints.training = torchtune_training(doc, b.site.span)
    b.check_unknown(section, prefix, TORCHTUNE_KNOWN, TORCHTUNE_LORA_KEYS)
    return b.done()


@functools.lru_cache(maxsize=1)
def _tune_downloads(text: str) -> tuple[tuple[str, str | None, int, int], ...]:
    """(repo, output dir, line, column) of each `tune download` comment; once per file, not once per
    configuration (a stream of many documents shares one text)."""
    if "tune" not in text:
        return ()
    found: list[tuple[str, str | None, int, int]] = []
    for number, line in enumerate(LINE_BREAK.split(text), start=1):
        if "#" not in line:
            continue
        match = _TUNE_DOWNLOAD.search(line)
        if match and line.lstrip().startswith("#"):
            found.append((match.group(1), match.group(2), number, match.start(1) + 1))
    return tuple(found)


def _torchtune_base_model(doc: Document, section_name: str) -> Field | None:
    """torchtune names no hub id: recipes say `tune download <id> --output-dir <dir>` in a comment.
    With several downloads (distillation), the one whose directory the checkpointer reads wins."""
    found = _tune_downloads(doc.text)
    if not found:
        return None
    checkpointer = (
        "checkpointer" if section_name == "model" else f"{section_name.removesuffix('model')}checkpointer"
    )
    ckpt = doc.root.get(checkpointer)
    ckpt_dir = ckpt.get("checkpoint_dir") if ckpt is not None else None
    choice = None
    if ckpt_dir is not None and isinstance(ckpt_dir.value, str):
        # `tune download` writes to --output-dir, by default /tmp/<model name>.
        wanted = ckpt_dir.value.rstrip("/").rsplit("/", 1)[-1]
        matching = [f for f in found if (f[1] or f[0]).rstrip("/").rsplit("/", 1)[-1] == wanted]
        if len({f[0] for f in matching}) == 1:
            choice = matching[0]
    if choice is None and len({f[0] for f in found}) == 1:
        choice = found[0]
    if choice is None:
        return None
    repo, _, line, column = choice
    span = Span(doc.path, line, column, line, column + len(repo))
    return Field("base_model", repo, span, provenance=f"`tune download {repo}` in a comment (line {line})")


# --- TRL -------------------------------------------------------------------------------------

TRL_KEYS = TRL_MODEL_CONFIG_KEYS
TRL_LORA_KEYS = frozenset({*TRL_KEYS, "use_peft"})
TRL_KNOWN = frozenset({*TRL_LORA_KEYS, "model_name_or_path", "load_in_4bit", "load_in_8bit"})


def _trl(doc: Document) -> list[ConfigSite]:
    root = doc.root
    use_peft = root.get("use_peft")
    if use_peft is not None and use_peft.value is False:
        return []  # full fine-tuning: TRL ignores every lora_* key
    anchor = _first_key(root, ["use_peft", *TRL_KEYS])
    if anchor is None:
        return []
    # Without use_peft: true TRL builds no adapter unless --use_peft is given on the command line.
    b = _Builder(doc, "trl", anchor, TRL_DEFAULTS, TRL_KNOWN, applied=_truthy(use_peft))
    for key_name, field_name in TRL_KEYS.items():
        entry = root.entry(key_name)
        if entry is None or not _is_set(entry[1]):
            continue
        key, value = entry
        if key_name == "lora_target_modules" and isinstance(value.value, list) and len(value.value) == 1:
            # ModelConfig.__post_init__: a one-element list becomes its only element, a plain string
            # that PEFT re.fullmatch-es against full module names.
            only = value.value[0]
            b.put(
                field_name,
                key,
                value,
                key_name,
                converted=only,
                how=f"TRL's ModelConfig turns the one-element list {b.key(key_name)} into the plain string {only!r}",
            )
        elif key_name == "lora_target_modules" and isinstance(value.value, str) and value.value != "all-linear":
            # Verbatim, but not fixable in place: the usual fix for a bare name, a one-element list,
            # is collapsed back into the same string by TRL.
            b.put(
                field_name,
                key,
                value,
                key_name,
                converted=value.value,
                how=f"TRL passes {b.key(key_name)} to PEFT as one string (a one-element list would become it too)",
            )
        else:
            b.put(field_name, key, value, key_name)
    b.base_model(root.get("model_name_or_path"), "model_name_or_path")
    for key_name, bits_name in (("load_in_4bit", "4bit"), ("load_in_8bit", "8bit")):
        value = root.get(key_name)
        if _truthy(value):
            b.quantization(bits_name, value)
    model_class = root.get("model_class")
    if (
        model_class is not None
        and isinstance(model_class.value, str)
        and model_class.value.startswith("AutoModel")
    ):
        b.site.hints.model_class = model_class.value
    datasets = root.get("datasets")
    mixture = root.get("dataset_mixture")
    if mixture is not None and mixture.kind == "map":
        datasets = mixture.get("datasets")
    if datasets is not None and datasets.kind == "seq" and datasets.items:
        b.dataset_slices(item.get("split") if item.kind == "map" else None for item in datasets.items)
    if b.site.hints.applied:  # use_peft: true: the training arguments of the same file train this adapter
        b.site.hints.training = trl_training(doc, b.site.span)
    b.check_unknown(root, "", TRL_KNOWN, TRL_LORA_KEYS)
    return [b.done()]


# --- Unsloth CLI / Studio --------------------------------------------------------------------

UNSLOTH_KEYS: dict[str, str] = {
    "lora_r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
    "use_rslora": "use_rslora",
    "use_dora": "use_dora",
}
# unsloth_cli/config.py: LoraConfig (extra="forbid": any other key is an error)
UNSLOTH_SECTION_KNOWN = frozenset(
    {
        *UNSLOTH_KEYS,
        "vision_all_linear",
        "use_loftq",
        "finetune_vision_layers",
        "finetune_language_layers",
        "finetune_attention_modules",
        "finetune_mlp_modules",
    }
)
UNSLOTH_CLI_DEFAULTS: dict[str, Any] = {
    "r": 64,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "target_modules": list(_SEVEN_PROJ),
    "bias": "none",
    "task_type": "CAUSAL_LM",
    "use_rslora": False,
    "use_dora": False,
}


def _is_unsloth(root: Node) -> bool:
    section = root.get("lora")
    if section is None or section.kind != "map":
        return False
    # Unsloth's own key names, not PEFT's: a project's own `lora: {r, alpha, target_modules}` is not Unsloth.
    return bool(section.keys() & (UNSLOTH_SECTION_KNOWN - {"target_modules", "use_rslora", "use_dora"}))


def _unsloth(doc: Document) -> list[ConfigSite]:
    root = doc.root
    key, section = root.entry("lora")  # type: ignore[misc]
    training = root.get("training")
    training_type = training.get("training_type") if training is not None else None
    if (
        training_type is not None
        and isinstance(training_type.value, str)
        and training_type.value.strip().lower() == "full"
    ):
        return []
    b = _Builder(doc, "unsloth", key, UNSLOTH_CLI_DEFAULTS, UNSLOTH_SECTION_KNOWN, applied=True)
    vision_all_linear = _truthy(section.get("vision_all_linear"))
    for key_name, field_name in UNSLOTH_KEYS.items():
        entry = section.entry(key_name)
        if entry is None or not _is_set(entry[1]):
            continue
        k, v = entry
        dotted = f"lora.{key_name}"
        if key_name != "target_modules":
            b.put(field_name, k, v, dotted)
            continue
        value = v.value
        if isinstance(value, str):
            # Config.model_kwargs: split on commas, drop empty parts; nothing left → Unsloth's default.
            parts = [p.strip() for p in value.split(",") if p and p.strip()]
            if parts:
                b.put(
                    field_name,
                    k,
                    v,
                    dotted,
                    converted=parts,
                    how=f"Unsloth splits {b.key(dotted)} on commas: {parts!r}",
                )
        elif _str_list(value) and "all-linear" in value:
            # Studio: ["all-linear"] → "all-linear"; with other names "all-linear" is dropped.
            rest = [m for m in value if m != "all-linear"]
            converted = "all-linear" if not rest else rest
            b.put(
                field_name,
                k,
                v,
                dotted,
                converted=converted,
                how=f"Unsloth Studio turns {b.key(dotted)} {value!r} into {converted!r}",
            )
        elif value == []:
            continue
        else:
            b.put(field_name, k, v, dotted)
    if vision_all_linear:
        flag = section.entry("vision_all_linear")
        assert flag is not None
        b.derive(
            "target_modules",
            Unknown(
                "Unsloth uses 'all-linear' for a vision model (vision_all_linear: true) and target_modules otherwise"
            ),
            flag[1],
            "Unsloth lora.vision_all_linear",
            key=flag[0],
        )
    if _truthy(section.get("use_loftq")):
        flag = section.entry("use_loftq")
        assert flag is not None
        b.derive(
            "loftq_config",
            {"loftq_bits": 4, "loftq_iter": 1},
            flag[1],
            "Unsloth use_loftq: true passes loftq_config={'loftq_bits': 4, 'loftq_iter': 1} but leaves init_lora_weights=True",
            key=flag[0],
        )
    b.base_model(root.get("model"), "model")
    load = training.get("load_in_4bit") if training is not None else None
    if load is None:
        b.quantization("4bit", b.site.span)  # training.load_in_4bit defaults to true
    elif _truthy(load):
        b.quantization("4bit", load)
    b.check_unknown(section, "lora.", UNSLOTH_SECTION_KNOWN, frozenset(UNSLOTH_KEYS), strict=True)
    return [b.done()]


# --- adapter_config.json ---------------------------------------------------------------------

# Written by save_pretrained next to the fields; they describe the adapter, they are not settings.
_ADAPTER_META = frozenset(
    {"peft_type", "peft_version", "base_model_name_or_path", "revision", "auto_mapping"}
)


def _adapter_config(doc: Document) -> list[ConfigSite]:
    root = doc.root
    peft_type = root.entry("peft_type")
    if peft_type is None or peft_type[1].value != "LORA":
        return []
    b = _Builder(doc, "adapter_config", peft_type[0], {}, frozenset(), applied=False)
    for name, key, value in root.entries():
        if name in _ADAPTER_META:
            continue
        if name in LORA_FIELDS:
            field = b.put(name, key, value, name)
            if name in (
                "target_modules",
                "modules_to_save",
                "fan_in_fan_out",
                "rank_pattern",
                "alpha_pattern",
            ):
                # research §3.1: the saved config is the one get_peft_model mutated.
                field.provenance += " (as saved, after get_peft_model resolved it for the trained model)"
        else:
            b.unknown(key, value, name)
    b.base_model(root.get("base_model_name_or_path"), "base_model_name_or_path")
    mapping = root.get("auto_mapping")
    cls = mapping.get("base_model_class") if mapping is not None else None
    if cls is not None and isinstance(cls.value, str):
        b.site.hints.model_class = cls.value
    return [b.done()]


# --- dispatch --------------------------------------------------------------------------------


def detect(root: Node, syntax: str) -> Callable[[Document], list[ConfigSite]] | None:
    """Which format a document is, from the keys it holds (None: not a LoRA configuration)."""
    if root.kind != "map":
        return None
    keys = root.keys()
    if "peft_type" in keys and syntax == "json":
        return _adapter_config
    for value in root.values():
        if value.kind == "map":
            component = value.get("_component_")
            if (
                component is not None
                and isinstance(component.value, str)
                and _TORCHTUNE_BUILDER.search(component.value)
            ):
                return _torchtune
    peft_config = root.get("peft_config")
    if peft_config is not None and peft_config.kind == "map" and "name" in peft_config.keys():
        return _llamafactory_v1
    if _is_unsloth(root):
        return _unsloth
    # axolotl's `adapter`/`base_model` win over a LLaMA-Factory key written by mistake (lora_rank).
    if "finetuning_type" in keys:
        return _llamafactory
    if "adapter" in keys or "base_model" in keys or keys & _AXOLOTL_ONLY:
        return _axolotl
    if keys & _LLAMAFACTORY_ONLY:
        return _llamafactory
    if (
        "use_peft" in keys
        or "lora_task_type" in keys
        or ("model_name_or_path" in keys and keys & set(TRL_KEYS))
    ):
        return _trl
    return None


def extract_documents(path: str, syntax: str, text: str, roots: Iterable[Node],
                      reads: list[tuple[str, str | None]] | None = None) -> list[ConfigSite]:
    sites: list[ConfigSite] = []
    lines: list[str] = []  # split once per file when a document first asks (Document.text_line), shared by its documents
    for root in roots:
        extractor = detect(root, syntax)
        if extractor is None:
            continue
        found = extractor(Document(path, syntax, root, text, lines, reads))
        room = MAX_SITES_PER_FILE - len(sites)
        if len(found) > room:
            over = found[room].span
            note("sites", f"more than {MAX_SITES_PER_FILE:,} configurations in one file; only the first "
                 f"{MAX_SITES_PER_FILE:,} are checked", over.line, over.column)
            sites.extend(found[:room])
            break  # the documents after it are not even read
        sites.extend(found)
    return sites


def format_keys(value: Any) -> bool:
    """For JSON: whether a parsed document's top level could be a configuration we extract."""
    if not isinstance(value, dict):
        return False
    keys = set(value)
    if (
        "peft_type" in keys
        or "peft_config" in keys
        or keys & (_LLAMAFACTORY_ONLY | _AXOLOTL_ONLY | set(TRL_KEYS))
    ):
        return True
    if keys & {"adapter", "base_model", "use_peft", "lora_task_type"}:
        return True
    if isinstance(value.get("lora"), dict):
        return True
    return any(isinstance(v, dict) and "_component_" in v for v in value.values())
