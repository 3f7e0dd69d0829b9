"""The data every stage shares: where a configuration is, what it sets, and what was found.

Rules only ever see these objects, never libcst or YAML nodes, so one rule serves every format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True, slots=True, init=False)
class Span:
    """A region of a file. Lines and columns are 1-based; the end column is exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __init__(self, path: str, line: int, column: int, end_line: int, end_column: int) -> None:
        # What dataclasses' frozen __init__ does, through the slots' own setters: it calls object.__setattr__ by
        # name for each field, twice the time, and a warm run decodes ~6,000 spans on axolotl's tree.
        _SET_PATH(self, path)
        _SET_LINE(self, line)
        _SET_COLUMN(self, column)
        _SET_END_LINE(self, end_line)
        _SET_END_COLUMN(self, end_column)

    @classmethod
    def point(cls, path: str, line: int = 1, column: int = 1) -> Span:
        return cls(path, line, column, line, column + 1)

    def __reduce__(self) -> tuple[type[Span], tuple[str, int, int, int, int]]:
        # A worker process pickles each file's result back: ~10,000 spans on peft's tree. As its constructor's
        # arguments a span pickles in ~40% less time than through dataclasses' __getstate__/__setstate__.
        return Span, (self.path, self.line, self.column, self.end_line, self.end_column)


# The slots' setters (member descriptors), which a frozen class's own __setattr__ does not stand in front of.
_SET_PATH, _SET_LINE, _SET_COLUMN, _SET_END_LINE, _SET_END_COLUMN = (
    getattr(Span, name).__set__ for name in ("path", "line", "column", "end_line", "end_column"))


@dataclass(frozen=True, slots=True, repr=False)
class Unknown:
    """A value that cannot be known without running the code; rules skip it instead of guessing."""

    reason: str

    def __repr__(self) -> str:
        return f"Unknown({self.reason!r})"


# Values that hold nothing else (the usual field value): known without the isinstance tests below, which the
# checks ask tens of thousands of times a run.
_PLAIN = frozenset((str, int, float, bool, type(None)))


def is_known(value: Any) -> bool:
    """True when `value` holds no Unknown anywhere (containers included)."""
    if type(value) in _PLAIN:
        return True
    if isinstance(value, Unknown):
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return all(is_known(v) for v in value)
    if isinstance(value, dict):
        return all(is_known(k) and is_known(v) for k, v in value.items())
    return True


def effective(site: ConfigSite, name: str) -> tuple[Any, bool]:
    """(value, known): the value in force, set or defaulted; known=False when it cannot be read."""
    f = site.fields.get(name)
    if f is not None:
        value = f.value
        return value, is_known(value)
    if site.opaque:
        return None, False  # `**kwargs` we could not read might set it
    value = site.value(name)
    return value, is_known(value)


@dataclass(slots=True, repr=False, eq=False)
class Field:
    """One configuration argument under its canonical PEFT name.

    `span` covers the value (what an editor underlines); `key_span` covers `name=value` or the YAML
    key, for findings about the argument itself. `provenance` says where the value came from:
    "literal", "constant LORA_R (line 3)", "default of --lora_r", "YAML key lora_r", ...
    """

    name: str
    value: Any
    span: Span
    key_span: Span | None = None
    provenance: str = "literal"
    raw_name: str | None = None  # the name as written when it differs (axolotl's lora_r, ...)
    # For a list written in place: (item value, item span), so a finding can point at one entry.
    items: list[tuple[Any, Span]] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return is_known(self.value)

    @property
    def written_here(self) -> bool:
        """The value is written as is at this argument or key (not a constant, default or derivation)."""
        return self.provenance in ("literal", "") or self.provenance.startswith(("YAML key", "JSON key"))

    def describe(self) -> str:
        """`r=8` or `r=8 (default of --lora_r)`: how messages quote a value."""
        text = f"{self.raw_name or self.name}={format_value(self.value)}"
        if not self.written_here:
            text += f" ({self.provenance})"
        return text


def format_value(value: Any) -> str:
    if isinstance(value, float):
        text = repr(value)
        return text if len(text) <= 8 else f"{value:g}"
    if isinstance(value, (set, frozenset)):
        return repr(sorted(value, key=str))
    return repr(value)


Origin = Literal[
    "peft.LoraConfig",
    "unsloth.get_peft_model",
    "trl.ModelConfig",
    "axolotl",
    "llamafactory",
    "torchtune",
    "trl",
    "unsloth",
    "adapter_config",
]


@dataclass(slots=True)
class DatasetRef:
    """A data set a configuration trains on, as the file names it; loralint.datasets turns it into a
    size after extraction (counting a local file, a Hub index, the datasets cache)."""

    span: Span
    # "files" (local data files) | "hub" (a Hub id) | "llamafactory" (a dataset_info.json name)
    # | "disk" (a save_to_disk folder given to load_from_disk: `files` holds its path)
    kind: str
    name: str  # the Hub id or LLaMA-Factory name; for "files" the builder ("json", "csv", ...) or ""
    files: list[str] = field(default_factory=list)  # local paths as written
    config: str | None = None  # the Hub data set's configuration (load_dataset's `name`)
    split: str | None = None  # "train", "train[:10%]", ...
    cap: int | None = None  # at most this many (LLaMA-Factory max_samples)
    exact: int | None = None  # exactly this many (`.select(range(N))`)
    dataset_dir: str | None = None  # LLaMA-Factory's dataset_dir
    where: str = ""  # how the file names it: "axolotl datasets[0]", "load_dataset at line 4"
    # "disk": the folder may hold a DatasetDict, which then stands for its train split (the file's
    # only data set, not followed to a trainer); otherwise a DatasetDict folder is not sized.
    or_train: bool = False


@dataclass(slots=True, repr=False, eq=False)
class Hints:
    """What the extractor saw around a configuration that rules may use."""

    dataset_size: Field | None = None
    # The data sets the configuration trains on (None: not known which), sized by loralint.datasets.
    datasets: list[DatasetRef] | None = None
    # Examples held out of the training set for evaluation (axolotl val_set_size, LLaMA-Factory
    # val_size): a fraction (<= 1) or a count, as datasets' train_test_split(test_size=...) takes it.
    held_out: Field | None = None
    quantization: str | None = None  # "4bit" / "8bit" when the base model is loaded quantized
    quantization_span: Span | None = None
    bnb_config: dict[str, Any] | None = None  # BitsAndBytesConfig(...) arguments when statically known
    bnb_spans: dict[str, Span] = field(default_factory=dict)  # each of those arguments' `name=value`, where written
    # How the base is quantized: "bitsandbytes" | "gptq" | "awq" | "hqq" | ...; None: not known or not quantized.
    quant_method: str | None = None
    # How messages say where the quantization comes from: "BitsAndBytesConfig(load_in_4bit=True)",
    # "Unsloth's default load_in_4bit=True", "the checkpoint name (-bnb-4bit)", "axolotl adapter: qlora", ...
    quantization_source: str | None = None
    kbit_kwarg: Span | None = None  # from_pretrained(load_in_4bit=/load_in_8bit=) on a transformers class
    kbit_kwarg_written: str = ""  # that keyword as messages quote it: "load_in_8bit=True", "load_in_4bit=..." when not known
    # The quantized base is made ready for training before the adapter: prepare_model_for_kbit_training
    # or enable_input_require_grads on it (Python), or a trainer/framework that does it itself.
    kbit_prepared: Span | None = None
    kbit_prepared_by: str | None = None  # "prepare_model_for_kbit_training", "trl.SFTTrainer", "axolotl", ...
    # The script casts the base model's own parameters to fp32 itself (`for p in model.parameters():
    # p.data = p.data.to(torch.float32)`): the layer-norm half of prepare_model_for_kbit_training, by hand.
    kbit_cast_by_hand: Span | None = None
    # A trainer that trains the PEFT model wrapped by the script itself (not given peft_config).
    peft_model_trainer: tuple[str, Span] | None = None
    merged_quantized: Span | None = None  # merge_and_unload()/merge_adapter() on the PEFT model of a quantized base
    fsdp: Span | None = None  # FSDP sharding set in the training arguments the script builds
    applied: list[str] = field(default_factory=list)  # "get_peft_model", "trainer", "unsloth", "add_adapter"
    applied_span: Span | None = None
    reapplied: list[Span] = field(default_factory=list)  # the same config object applied again
    kbit_prepared_after: Span | None = None  # prepare_model_for_kbit_training after get_peft_model
    calls: frozenset[str] | None = None  # functions called in the file (Python only; EVA/CorDA set-up)
    model_class: str | None = None  # the class that loads the base model: "AutoModelForCausalLM", ...
    # Where the model a config is applied to comes from: "transformers", "unsloth", "diffusers",
    # "custom" (an nn.Module class of the file); None when not known.
    model_library: str | None = None
    # The file defines its own torch modules (an nn.Module subclass): a model it cannot follow (a fixture,
    # a parameter) may be one of them, whose top-level children have bare full names ("lin0").
    defines_modules: bool = False
    # An application where PEFT picks a PeftModelFor<task> class from task_type (get_peft_model, a
    # TRL trainer's peft_config), as opposed to add_adapter / inject_adapter_in_model / PeftModel(...).
    task_chosen: bool = False
    # Unsloth FastVisionModel / FastModel.get_peft_model: its finetune_* flags (all statically known),
    # from which the resolve stage builds the target regex Unsloth builds (loralint/knowledge/unsloth.py).
    unsloth_finetune: dict[str, bool] | None = None
    # The trainer, its arguments, tokenizer edits and what happens after training (Python only).
    training: TrainingContext | None = None
    # A trainer config that may add tokens to the vocabulary (axolotl `tokens:`, or `special_tokens:` that
    # set more than the pad token): where, and the key in words. axolotl then demands its embedding layers
    # in lora_modules_to_save.
    config_adds_tokens: tuple[Span, str] | None = None
    # A site for an adapter the script loads to train again (extract/loaded.py): the saved
    # adapter_config.json its fields come from, when it is in the repository.
    loaded_from: str | None = None
    # Built inside `with pytest.raises(...)` / `pytest.warns` / `self.assertRaises(...)`: a test that
    # makes this configuration wrong on purpose. Set to where; rules do not run on it.
    expected_to_fail: str | None = None


@dataclass(slots=True, repr=False, eq=False)
class TrainingContext:
    """What the script does around the adapter (loralint/extract/training.py); None: not seen."""

    trainer: str | None = None  # the trainer class that trains this configuration: "SFTTrainer", "Trainer"
    trainer_span: Span | None = None
    args_class: str | None = None  # "SFTConfig", "TrainingArguments", ...
    # "sft" | "rl" where a trainer YAML says which (axolotl rl:, LLaMA-Factory stage:, torchtune's loss);
    # in Python the trainer class says it.
    stage: str | None = None
    args: dict[str, Field] = field(default_factory=dict)  # the training arguments the trainer gets
    trainer_kwargs: dict[str, Span] = field(default_factory=dict)  # keywords written in the trainer call
    # The sequence length given to the trainer call itself (max_seq_length / max_length): TRL's SFTTrainer took it
    # before SFTConfig did, and Unsloth's notebooks still pass it there. explain reads it where `args` has none.
    trainer_args: dict[str, Field] = field(default_factory=dict)
    deepspeed: dict[str, Any] | None = None  # {"stage": int, "gather": bool | None, "source": str}
    deepspeed_span: Span | None = None
    pad_is_eos: Span | None = None  # tokenizer.pad_token = tokenizer.eos_token
    masking_collator: Span | None = None  # transformers' DataCollatorForLanguageModeling(mlm=False) given to the trainer
    tokens_added: Span | None = None  # add_tokens / add_special_tokens (beyond a pad token) / setup_chat_format
    # The only tokens added come from trl's setup_chat_format: ChatML's <|im_start|>/<|im_end|>, new only
    # where the base model's vocabulary lacks them.
    tokens_by_chat_format: bool = False
    # The script makes embedding rows trainable itself (`....embeddings.requires_grad_(True)`, or
    # `param.requires_grad = True` under an `if` about an embedding's name): pivotal tuning, textual inversion.
    embeddings_trained: Span | None = None
    embeddings_resized: Span | None = None
    peft_model_to_trainer: Span | None = None  # a PeftModel given to a trainer together with peft_config
    saved: Span | None = None  # save_pretrained / save_model / push_to_hub of the adapter
    merged: Span | None = None  # merge_and_unload / merge_adapter
    # use_reentrant=True written for the checkpointing of this adapter's model (trainer args or an enable call)
    reentrant_checkpointing: Span | None = None
    # enable_input_require_grads / prepare_model_for_kbit_training / requires_grad edits, or checkpointing
    # switched on before get_peft_model (PEFT then enables input grads itself): inputs get gradients
    input_grads: bool = False
    # What turns gradient checkpointing on for this adapter's model outside the training arguments:
    # (where, in words) — an enable call, prepare_model_for_kbit_training, Unsloth's get_peft_model.
    checkpointing: tuple[Span, str] | None = None
    device_map_auto: Span | None = None  # from_pretrained(device_map="auto") of this adapter's base model
    ddp_signal: tuple[Span, str] | None = None  # what says the script runs under DDP (LOCAL_RANK, Accelerator(), ddp_*)
    # library -> version specifiers of every `pip install` of it the file runs (extract/pins.py): a notebook
    # pinning transformers 4.x still has Trainer(tokenizer=).
    installs: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(slots=True, repr=False, eq=False)
class ConfigSite:
    """A place where one LoRA configuration is built."""

    path: str
    span: Span
    origin: str
    fields: dict[str, Field] = field(default_factory=dict)
    # Arguments that are not fields of the origin's API (LORA001), keyed by the name as written.
    unknown_args: list[Field] = field(default_factory=list)
    # Origin-specific defaults that differ from PEFT's (Unsloth r=16, TRL lora_alpha=32, ...).
    defaults: dict[str, Any] = field(default_factory=dict)
    base_model: Field | None = None
    hints: Hints = field(default_factory=Hints)
    # Set when part of the call cannot be read (`**kwargs` we cannot resolve): rules about an
    # argument's absence must not fire then.
    opaque: str | None = None
    # Extra keyword names the origin accepts besides LoraConfig fields (Unsloth's random_state, ...).
    extra_known: frozenset[str] = frozenset()
    # "python" | "yaml" | "json": how a fix writes a literal into this file.
    syntax: str = "python"
    # Where a new argument can be appended (after the last argument of a call); None: no insertion fixes.
    append_at: Span | None = None
    # The resolved base model (loralint.resolve.Resolution), filled in by the resolve stage.
    model: Any = None

    def get(self, name: str) -> Field | None:
        return self.fields.get(name)

    def value(self, name: str, default: Any = None) -> Any:
        """The value set in the source, else the origin's default, else PEFT's, else `default`."""
        f = self.fields.get(name)
        if f is not None:
            return f.value
        if name in self.defaults:
            return self.defaults[name]
        from loralint.peft_fields import PEFT_DEFAULTS

        return PEFT_DEFAULTS.get(name, default)

    def is_set(self, name: str) -> bool:
        return name in self.fields

    def describe(self, name: str) -> str:
        """How a message quotes a field, set or defaulted: `r=64` or `lora_alpha=16 (Unsloth default)`."""
        f = self.fields.get(name)
        if f is not None:
            return f.describe()
        where = "Unsloth default" if self.origin.startswith("unsloth") else f"{self.origin} default"
        if name not in self.defaults:
            where = "PEFT default"
        return f"{name}={format_value(self.value(name))} ({where})"

    def span_of(self, name: str) -> Span:
        """Where a finding about `name` points: its value if set, else the whole call."""
        f = self.fields.get(name)
        return f.span if f is not None else self.span


@dataclass(slots=True, repr=False, eq=False)
class TextEdit:
    """Replace the text at `span` with `new_text`."""

    span: Span
    new_text: str
    # The text the edit replaces, when the fix knows it (a rename knows the old name): the fixer
    # refuses the fix if the span holds anything else, so a wrong span never edits the wrong text.
    expected: str | None = None


@dataclass(slots=True, repr=False, eq=False)
class Fix:
    """A finding's fix: edits applied together."""

    description: str
    edits: list[TextEdit]
    applicability: Literal["safe", "unsafe"] = "safe"


@dataclass(slots=True, repr=False, eq=False)
class Diagnostic:
    """One finding, as reporters show it."""

    code: str
    name: str
    severity: str
    message: str
    span: Span
    fix: Fix | None = None
    related: list[tuple[Span, str]] = field(default_factory=list)

    def sort_key(self) -> tuple:
        s = self.span
        return (s.path, s.line, s.column, self.code)


@dataclass(slots=True, repr=False, eq=False)
class FileResult:
    """What extraction produced for one file: sites, plus diagnostics about the file itself."""

    path: str
    sites: list[ConfigSite] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # LORA9xx from reading/parsing
    # line -> (codes or None for all, span of the comment); filled from the source text.
    suppressions: dict[int, tuple[frozenset[str] | None, Span]] = field(default_factory=dict)
    # Adapters the file loads to train again (extract/loaded.py): checked by the training rules only,
    # never listed among the configurations the file builds.
    loaded: list[ConfigSite] = field(default_factory=list)
    # Other files the extraction read, with a digest of what it found (None: missing): loralint/dependencies.py.
    depends_on: list[tuple[str, str | None]] = field(default_factory=list)
    # A notebook's code cells, three numbers each (its number in the notebook, its first line in the cell
    # text, its line count), flat: what output needs to name a position by cell without reading the
    # notebook again (extract/notebook.py CellMap). None for every other file.
    cells: list[int] | None = None
    # A notebook's cell text (its code cells' Python as extraction read it, IPython lines blanked): the lines
    # output shows, so a report does not decode the notebook's JSON again. None for every other file.
    cell_text: str | None = None

    def iter_fields(self) -> Iterator[Field]:
        for site in self.sites:
            yield from site.fields.values()
