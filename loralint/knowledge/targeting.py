"""What PEFT would do with a LoraConfig on a known architecture -- without torch.

This mirrors peft 0.21.2 (the version the knowledge base was generated against) step by step:

* ``peft_model.py``: ``PeftModelForSequenceClassification`` / ``...TokenClassification`` extend
  ``modules_to_save`` with ``["classifier", "score"]`` before injection;
  ``PeftModelForQuestionAnswering`` adds ``"qa_outputs"`` after it;
* ``peft/utils/transformers_weight_conversion.py: _convert_peft_config_moe`` (transformers v5 MoE
  models: v4-style expert targets become ``target_parameters`` + rank/alpha patterns);
* ``tuners/lora/model.py: LoraModel._prepare_adapter_config`` (``target_modules=None``);
* ``tuners/tuners_utils.py: _maybe_include_all_linear_layers`` ("all-linear"),
  ``_find_minimal_target_modules`` (lists of >= 20 entries), ``check_target_module_exists``,
  ``BaseTuner.inject_adapter`` (its error and warning analysis), ``BaseTuner._inject_parameters``,
  ``BaseTuner._mark_only_adapters_as_trainable`` (``bias``);
* ``peft/utils/other.py: get_pattern_key`` (rank/alpha patterns), ``_set_trainable``
  (``modules_to_save``), ``set_additional_trainable_modules`` (``trainable_token_indices``);
* ``tuners/lora/layer.py``: the parameters each LoRA layer adds (Linear/Conv1D ``r*(in+out)``,
  Embedding ``r*(num+dim)``, ConvNd, MultiheadAttention, ParamWrapper ``r*E*(in+out)``, ``lora_bias``,
  DoRA magnitude);
* ``peft_model.py: PeftModel.get_nb_trainable_parameters`` (tied weights counted once).

The counting is done on a small torch-free model of the module tree after injection, so shared
(tied) tensors, ``ModulesToSaveWrapper`` copies and frozen originals behave as in PEFT.
Stdlib only.

Patterns from the checked code (string targets, exclude_modules, modules_to_save entries, rank/alpha
keys, layers_pattern) run through :mod:`loralint.safe_regex`: PEFT's exact forms, a bound on each
match, one budget for the analysis. List entries are matched through dotted-suffix sets, so
thousands of entries cost no more than a few. A bound reached raises
:class:`~loralint.limits.AnalysisLimit` (LORA906): the analysis is not evaluated rather than wrong.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping

from loralint.knowledge.models import LORA_KINDS, ModelInfo, Module, peft_facts
from loralint.limits import Budget
from loralint.safe_regex import FULLMATCH, LAYERS, PATTERN_KEY, SAVED_MODULE, Matcher, Prepared, Profile

__all__ = ["TargetedModule", "TargetedParameter", "TargetingResult", "analyze_lora", "check_target_module_exists",
           "get_pattern_key"]

ALL_LINEAR = "all-linear"  # peft/utils/constants.py: INCLUDE_LINEAR_LAYERS_SHORTHAND
MIN_TARGET_MODULES_FOR_OPTIMIZATION = 20  # peft/utils/constants.py
SEQ_CLS_HEAD_NAMES = ("score", "classifier")  # peft/utils/constants.py
# Work allowed for the untrusted patterns of one analysis (units ≈ ns of `re`, see safe_regex): a
# second or two at worst, hundreds of times what a real configuration needs.
ANALYSIS_BUDGET = 2_000_000_000


class _Excluded:
    """peft/tuners/tuners_utils.py: _ExcludedModule (falsy)."""

    def __bool__(self) -> bool:
        return False


EXCLUDED = _Excluded()


# --------------------------------------------------------------------------------------------------
# result types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class TargetedModule:
    """A module PEFT gives a LoRA layer: its shape, rank, alpha, scaling and parameter count."""

    name: str
    folded: str
    cls: str
    kind: str
    in_features: int | None
    out_features: int | None
    r: Any
    lora_alpha: Any
    scaling: float | None
    lora_params: int  # parameters LoRA adds on this module (A, B, lora_bias, DoRA magnitude)
    matched_by: str  # the target_modules entry (or "regex" / "all-linear" / "default") that matched
    layer_index: int | None


class _TargetedInit:
    """``_TargetedInit(...)`` is ``TargetedModule(...)`` with the fields in order, faster: a plain __init__ on the same
    slots, then the object becomes a TargetedModule (as models._ModuleInit: a frozen dataclass's __init__ was a
    sixth of an analysis)."""

    __slots__ = TargetedModule.__slots__

    def __init__(self, name: str, folded: str, cls: str, kind: str, in_features: int | None,
                 out_features: int | None, r: Any, lora_alpha: Any, scaling: float | None, lora_params: int,
                 matched_by: str, layer_index: int | None) -> None:
        self.name = name
        self.folded = folded
        self.cls = cls
        self.kind = kind
        self.in_features = in_features
        self.out_features = out_features
        self.r = r
        self.lora_alpha = lora_alpha
        self.scaling = scaling
        self.lora_params = lora_params
        self.matched_by = matched_by
        self.layer_index = layer_index
        self.__class__ = TargetedModule  # type: ignore[assignment]


assert _TargetedInit.__slots__ == tuple(TargetedModule.__dataclass_fields__)  # the order __init__ takes them in
_targeted_module: Any = _TargetedInit


@dataclass(frozen=True, slots=True, eq=False)
class TargetedParameter:
    """A parameter PEFT adapts through target_parameters (or its MoE conversion), with its shape."""

    name: str  # "model.layers.0.mlp.experts.gate_up_proj"
    module: str
    shape: tuple[int, ...]
    r: Any
    lora_alpha: Any
    scaling: float | None
    lora_params: int
    matched_by: str


@dataclass(repr=False, eq=False)
class TargetingResult:
    """PEFT's view of one LoraConfig on one ModelInfo."""

    model_type: str
    model_class: str
    task_type: str | None
    target_modules: Any  # what PEFT ends up matching with (resolved all-linear set, default mapping, ...)
    target_parameters: list[str]
    rank_pattern: dict[str, Any]
    alpha_pattern: dict[str, Any]
    modules_to_save: Any
    targeted: list[TargetedModule] = field(default_factory=list)
    targeted_parameters: list[TargetedParameter] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # module names excluded (exclude_modules / modules_to_save)
    entry_matches: dict[str, int] = field(default_factory=dict)  # list entry -> targeted modules it matched
    unmatched_target_entries: list[str] = field(default_factory=list)
    unmatched_exclude_entries: list[str] = field(default_factory=list)
    unmatched_rank_pattern_keys: list[str] = field(default_factory=list)
    unmatched_alpha_pattern_keys: list[str] = field(default_factory=list)
    unmatched_target_parameters: list[str] = field(default_factory=list)
    containers_hit: list[str] = field(default_factory=list)  # targeted non-adaptable modules (PEFT raises)
    modules_to_save_wrapped: list[tuple[str, int]] = field(default_factory=list)  # (name, params of the copy)
    unmatched_modules_to_save: list[str] = field(default_factory=list)
    all_linear_excluded: list[str] = field(default_factory=list)  # output layer / SEQ_CLS head left out
    moe_converted: bool = False
    # PEFT's transformers-v5 MoE conversion (utils/transformers_weight_conversion.py): each target_modules
    # entry it rewrote -> the target_parameters name it became ("w1" -> "gate_up_proj", "gate" -> "gate.weight")
    moe_converted_entries: dict[str, str] = field(default_factory=dict)
    # fused parameter -> (the v4 entries fused into it, r, lora_alpha): the rank/alpha PEFT doubles for w1+w3
    moe_fused: dict[str, tuple[list[str], Any, Any]] = field(default_factory=dict)
    # adaptable modules the converted entries named before the conversion and that it leaves frozen: dense MLP
    # layers (DeepSeek's first_k_dense_replace) and shared experts keep gate_proj/up_proj/down_proj as nn.Linear,
    # but those names now go to target_parameters, which only match the routed experts' fused tensors
    moe_left_frozen: list[str] = field(default_factory=list)
    default_targets_used: bool = False
    errors: list[str] = field(default_factory=list)  # what PEFT would raise (the first one stops it)
    warnings: list[str] = field(default_factory=list)
    lora_params: int = 0
    bias_params: int = 0  # base biases made trainable by bias="all"/"lora_only"
    modules_to_save_params: int = 0
    trainable_token_params: int = 0
    trainable_params: int = 0  # get_nb_trainable_parameters()[0]
    total_params: int = 0  # get_nb_trainable_parameters()[1]
    base_params: int = 0
    exact: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def targeted_names(self) -> list[str]:
        return [t.name for t in self.targeted]

    def folded_summary(self) -> dict[str, dict[str, Any]]:
        """Folded name -> {"count", "lora_params", "r", "cls", "in", "out"} (r/in/out None when they vary)."""
        out: dict[str, dict[str, Any]] = {}
        for t in self.targeted:
            e = out.setdefault(t.folded, {"count": 0, "lora_params": 0, "r": t.r, "cls": t.cls,
                                          "in": t.in_features, "out": t.out_features})
            e["count"] += 1
            e["lora_params"] += t.lora_params
            for k, v in (("r", t.r), ("in", t.in_features), ("out", t.out_features)):
                if e[k] != v:
                    e[k] = None
        for p in self.targeted_parameters:
            folded = _fold_like(p.name)
            e = out.setdefault(folded, {"count": 0, "lora_params": 0, "r": p.r, "cls": "nn.Parameter",
                                        "in": None, "out": None})
            e["count"] += 1
            e["lora_params"] += p.lora_params
            if e["r"] != p.r:
                e["r"] = None
        return out


def _fold_like(name: str) -> str:
    parts = name.split(".")
    out = []
    used = 0
    for p in parts:
        if p.isdigit() and used < 4:
            out.append("{" + "ijkl"[used] + "}")
            used += 1
        else:
            out.append(p)
    return ".".join(out)


# --------------------------------------------------------------------------------------------------
# PEFT matching primitives
# --------------------------------------------------------------------------------------------------


def get_pattern_key(pattern_keys: Iterable[str], key_to_match: str, rx: Matcher | None = None,
                    field_name: str = "rank_pattern") -> str:
    """peft/utils/other.py: get_pattern_key -- first key (insertion order) with ``re.match(rf"(.*\\.)?({key})$", name)``.

    Raises re.error for an invalid key (as PEFT does) and AnalysisLimit for one loralint will not run."""
    rx = rx or _matcher(Profile([key_to_match]))
    return _pattern_key(rx.prepare_all(pattern_keys, PATTERN_KEY, field_name), key_to_match, rx, field_name)


def _pattern_key(prepared: list, key_to_match: str, rx: Matcher, field_name: str) -> Any:
    """get_pattern_key over keys prepared once for the whole analysis."""
    if not prepared:
        return key_to_match
    found = rx.first(prepared, key_to_match, field_name)
    return key_to_match if found is None else prepared[found][0]


def _profile(info: ModelInfo) -> Profile:
    """Every string PEFT matches the patterns against on this model: module and parameter names, and the
    expert names the MoE conversion tries. Computed once per model."""
    if info._match_profile is None:
        names = [m.name for m in info.modules]
        params = [p.name for m in info.modules for p in m.params]
        extra: list[str] = []
        if info.moe_conversion:
            mapping = peft_facts().get("moe_target_module_mapping", {}).get(info.moe_conversion) or {}
            containers = {n.rpartition(".")[0] for n in params}
            extra = [f"{c}.{old}" for c in containers for old in mapping]
        info._match_profile = Profile([*names, *params, *extra])
    return info._match_profile


def _matcher(profile: Profile) -> Matcher:
    return Matcher(profile, Budget(ANALYSIS_BUDGET, "matching the patterns of this configuration"))


def dotted_suffixes(name: str) -> list[str]:
    """The strings ``t`` with ``name.endswith("." + t)``: what a list entry matches besides the full name."""
    out = []
    i = name.find(".")
    while i != -1:
        out.append(name[i + 1:])
        i = name.find(".", i + 1)
    return out


class _SuffixTable(dict):
    """name -> ``tuple(dotted_suffixes(name))``, filled on first use. One per ModelInfo: the module names are
    the same in every analysis of the model, so each is split once, not once per query."""

    def __missing__(self, name: str) -> tuple[str, ...]:
        got = self[name] = tuple(dotted_suffixes(name))
        return got


_SUFFIXES_MEMO = "targeting:suffixes"  # key in ModelInfo._analyses (advice's keys are reprs of lists)


def _suffix_table(info: ModelInfo) -> _SuffixTable:
    table = info._analyses.get(_SUFFIXES_MEMO)
    if table is None:
        table = info._analyses[_SUFFIXES_MEMO] = _SuffixTable()
    return table


@dataclass(repr=False, eq=False)
class _Cfg:
    """The LoraConfig fields targeting reads, as PEFT holds them after __post_init__."""

    target_modules: Any
    exclude_modules: Any
    modules_to_save: Any
    layers_to_transform: Any
    layers_pattern: Any
    target_parameters: Any
    rx: Matcher = field(default_factory=lambda: _matcher(Profile(())))
    suffixes: _SuffixTable = field(default_factory=_SuffixTable)  # the model's (see _suffix_table)
    _order: tuple[Any, dict[Any, int]] | None = None  # (target_modules, entry -> position in its iteration order)
    _dotted: tuple[str, ...] = ()  # "." + each entry, in order (for the str entries of _order's target_modules)
    _dotless: bool = False  # no entry of _order's target_modules has a dot

    _prepared: dict[tuple[str, str], Any] = field(default_factory=dict)

    def pattern(self, text: Any, form: str, field_name: str) -> Prepared:
        """A single pattern (a str target_modules / exclude_modules) prepared on first use; an invalid one
        raises its re.error every time, as PEFT does at the first module."""
        key = (form, str(text))
        got = self._prepared.get(key)
        if got is None:
            try:
                got = self.rx.prepare(key[1], form, field_name)
            except re.error as exc:
                got = exc
            self._prepared[key] = got
        if isinstance(got, re.error):
            raise got
        return got

    def patterns(self, entries: Any, form: str, field_name: str) -> list:
        """A list of patterns (modules_to_save entries, layers_pattern), prepared once, in order."""
        key = (form, field_name)
        got = self._prepared.get(key)
        if got is None or got[0] is not entries:
            got = (entries, self.rx.prepare_all(entries, form, field_name))
            self._prepared[key] = got
        return got[1]

    def first_suffix_entry(self, key: str) -> Any:
        """``next(t for t in target_modules if key.endswith(f".{t}"))`` through a suffix lookup: the same
        entry (the first in the collection's iteration order), in time independent of its size."""
        tm = self.target_modules
        if self._order is None or self._order[0] is not tm:
            order: dict[Any, int] = {}
            if _all_str(tm):
                for k, t in enumerate(tm):
                    order.setdefault(t, k)  # a list may hold an entry twice: its first place counts
            self._order = (tm, order)
            self._dotted = tuple(f".{t}" for t in self._order[1])
            self._dotless = all("." not in t for t in self._order[1])
        if not self._order[1] and tm:
            return next((t for t in tm if key.endswith(f".{t}")), None)  # TypeError for a non-str entry, as in PEFT
        order = self._order[1]
        if self._dotless and order:
            # Entries without a dot: key ends with "." + t only for t the part after its last dot (one entry).
            cut = key.rfind(".")
            return key[cut + 1:] if cut >= 0 and key[cut + 1:] in order else None
        if not key.endswith(self._dotted):  # no entry matches (one C call, the usual answer)
            return None
        if len(order) <= 8:  # the matching entries by a scan, else by the name's suffixes
            hits = [t for t, dotted in zip(order, self._dotted) if key.endswith(dotted)]
        else:
            hits = [t for t in self.suffixes[key] if t in order]
        return min(hits, key=order.__getitem__) if hits else None


_UNSEEN = object()


def _invariant_width(cfg: _Cfg) -> int:
    """A width w such that check_target_module_exists(cfg, name) is the same for names with the same last w
    characters (0: none), modules_to_save left aside. That holds when the answer only asks ``name == e`` and
    ``name.endswith("." + e)`` of str entries e of target_modules and exclude_modules (no regex, no
    layers_to_transform): with w > len(e), a name of w characters or more is never e, and ``"." + e`` lies
    within its last w; a shorter name is its own last w characters. A 28-layer model's per-layer names are
    then matched once."""
    tm, ex = cfg.target_modules, cfg.exclude_modules
    collections = (set, frozenset, list, tuple)
    if not isinstance(tm, collections) or not _all_str(tm):
        return 0
    if ex and (not isinstance(ex, collections) or not _all_str(ex)):
        return 0
    layers = cfg.layers_to_transform
    if layers is not None and (len(layers) != 0 if isinstance(layers, list) else True):
        return 0
    return max(map(len, (*tm, *(ex or ()))), default=0) + 1


class _TailHits(dict):
    """name[-w:] -> check_target_module_exists(cfg, name), for a width w = _invariant_width(cfg) > 0 and cfg without
    modules_to_save. The tail itself is asked: a name of w characters or more ends with the same w characters as
    its tail, so has the same answer, and a shorter name is its own tail."""

    def __init__(self, cfg: _Cfg) -> None:
        super().__init__()
        self.cfg = cfg

    def __missing__(self, tail: str) -> Any:
        got = self[tail] = check_target_module_exists(self.cfg, tail)
        return got


_NAMED_MEMO = "targeting:named"  # key in ModelInfo._analyses (advice's keys are reprs of lists)


def _named(info: ModelInfo) -> tuple[list[str], list[Module]]:
    """The names and modules the injection visits (all but the root, whose name is empty), once per ModelInfo."""
    got = info._analyses.get(_NAMED_MEMO)
    if got is None:
        modules = [m for m in info.modules if m.name]
        got = info._analyses[_NAMED_MEMO] = ([m.name for m in modules], modules)
    return got


_WORD = re.compile(r"[A-Za-z_]+\Z")


def _plain_words(entries: Any) -> bool:
    """A list of modules_to_save entries that are words of ASCII letters and underscores (no digit, no dot, nothing
    a regex reads otherwise): see _saved_hits."""
    return isinstance(entries, list) and all(isinstance(e, str) and _WORD.match(e) for e in entries)


def _saved_hits(cfg: _Cfg, saved: list[str], modules: list[Module], hits: list[Any]) -> list[Any]:
    r"""`hits` with EXCLUDED for each module the loop of analyze_lora finds in modules_to_save (``rx.first`` of the
    SAVED_MODULE patterns, asked of the modules not excluded already), and the budget charged what those matches
    cost (each match the pattern's cost, as Matcher.match: the names are the profile's). For a plain word w
    (_plain_words), ``(^|.*\.)w($|\..*)`` matches a name just when w is one of its dot-separated parts; and w
    is a part of a name just when it is one of its folded name's (a number replaces only a "{...}" part or piece,
    and w has no digit, no brace): the first entry that matches is found once per folded name."""
    if all(hit is EXCLUDED for hit in hits):
        return hits  # the loop never prepares the patterns
    prepared = cfg.patterns(saved, SAVED_MODULE, "modules_to_save")
    spent = [0]  # the cost of trying the first k entries
    for _, p in prepared:
        spent.append(spent[-1] + p.cost)
    words = [entry for entry, _ in prepared]
    first: dict[str, int] = {}  # folded name -> the index of the entry that matches, or -1
    for folded in {m.folded for m in modules}:
        parts = set(folded.split("."))
        first[folded] = next((j for j, w in enumerate(words) if w in parts), -1)
    found = [first[m.folded] for m in modules]
    total = sum([spent[k + 1] if k >= 0 else spent[-1] for hit, k in zip(hits, found) if hit is not EXCLUDED])
    out = [EXCLUDED if k >= 0 else hit for hit, k in zip(hits, found)]  # (an EXCLUDED hit stays EXCLUDED)
    budget = cfg.rx.budget
    budget.left -= total
    if budget.left < 0:
        budget.charge(0, "modules_to_save")  # raises AnalysisLimit, as the loop's match would have
    return out


def _all_str(entries: Any) -> bool:
    return all(isinstance(t, str) for t in entries)


def check_target_module_exists(cfg: _Cfg, key: str) -> Any:
    """peft/tuners/tuners_utils.py: check_target_module_exists (0.21.2), returning the matched entry.

    Returns EXCLUDED (falsy), False/None, or a truthy value: the list entry that matched, the full
    name for an exact hit, or the regex match for a string target.
    """
    rx = cfg.rx
    ex = cfg.exclude_modules
    if ex:
        if isinstance(ex, str):
            if rx.fullmatch(cfg.pattern(ex, FULLMATCH, "exclude_modules"), key, "exclude_modules"):
                return EXCLUDED
        elif key in ex or _any_suffix_in(key, ex, cfg.suffixes):
            return EXCLUDED
    mts = cfg.modules_to_save
    if mts:
        # any(re.match(rf"(^|.*\.){m}($|\..*)", key) for m in modules_to_save)
        if rx.first(cfg.patterns(mts, SAVED_MODULE, "modules_to_save"), key, "modules_to_save") is not None:
            return EXCLUDED
    if cfg.target_modules is None and cfg.target_parameters is not None:
        return False
    tm = cfg.target_modules
    if isinstance(tm, str):  # utils/other.py: match_target_against_key
        return rx.fullmatch(cfg.pattern(tm, FULLMATCH, "target_modules"), key, "target_modules")
    if key in tm:
        return key
    found = cfg.first_suffix_entry(key)
    layer_indexes = cfg.layers_to_transform
    layers_pattern = cfg.layers_pattern
    using = layer_indexes is not None and (len(layer_indexes) != 0 if isinstance(layer_indexes, list) else True)
    if using and found is not None:
        layer_index = None
        if layers_pattern is None or len(layers_pattern) == 0:
            match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
        else:
            pats = [layers_pattern] if isinstance(layers_pattern, str) else layers_pattern
            match = None
            for _, pattern in cfg.patterns(pats, LAYERS, "layers_pattern"):
                if isinstance(pattern, re.error):
                    raise pattern
                match = rx.match(pattern, key, "layers_pattern")
                if match is not None:
                    break
        if match:
            layer_index = match.groupdict().get("idx")
        if layer_index is None:
            return False
        layer_index = int(layer_index)
        if isinstance(layer_indexes, int):
            return found if layer_index == layer_indexes else False
        return found if layer_index in layer_indexes else False
    return found if found is not None else False


def _any_suffix_in(key: str, entries: Any, suffixes: _SuffixTable) -> bool:
    """``any(key.endswith(f".{e}") for e in entries)`` for a set or list of strings, by suffix lookup."""
    if isinstance(entries, (set, frozenset, list, tuple)) and _all_str(entries):
        pool = entries if isinstance(entries, (set, frozenset)) else set(entries)
        return not pool.isdisjoint(suffixes[key])
    return any(key.endswith(f".{e}") for e in entries)


def _find_minimal_target_modules(target_modules: set[str], other_module_names: Iterable[str],
                                 table: _SuffixTable | None = None) -> set[str]:
    """peft/tuners/tuners_utils.py: _find_minimal_target_modules (same result; `table` caches the names' suffixes).

    PEFT's generate_suffixes(s) (shortest first, s itself last) is ``(*reversed(dotted_suffixes(s)), s)``."""
    if "" in target_modules:
        raise ValueError("target_modules should not contain an empty string.")
    if not _all_str(target_modules):  # PEFT's own steps, so that a non-str entry fails the same way
        return _find_minimal_target_modules_any(target_modules, other_module_names)
    table = _SuffixTable() if table is None else table
    other = set(other_module_names)
    # Every suffix of a target ends with the target's last part, so PEFT's steps for the targets of one last part
    # only meet suffixes of that last part (in required_suffixes and in other_module_suffixes), and in its sorted
    # order those targets come together: each last part is a problem of its own. One that no other name ends
    # with is required as such by the first of its targets (its shortest suffix), and the others end with it:
    # only the rest ("all-linear": usually none) need PEFT's steps.
    other_lasts = {n.rpartition(".")[2] for n in other}
    required: set[str] = set()
    rest: list[str] = []
    for t in target_modules:
        last = t.rpartition(".")[2]
        if last in other_lasts:
            rest.append(t)
        else:
            required.add(last)
    if not rest:
        return required
    # PEFT's other_module_suffixes is only asked about suffixes of the targets, which end with a target's last
    # part: the other names that end otherwise add nothing it is asked about (and need no splitting).
    lasts = {t.rpartition(".")[2] for t in rest}
    other_suffixes = set(other)
    for item in other:
        if item.rpartition(".")[2] in lasts:
            other_suffixes.update(table[item])
    for item, sufs in sorted(((t, (*reversed(table[t]), t)) for t in rest), key=lambda tup: tup[1]):
        # PEFT tries each suffix not yet required and not one of another module's, and adds it unless the item
        # already ends with a required suffix, which does not change during the item's loop: when it does,
        # nothing is added for this item
        if not required.isdisjoint(table[item]):
            continue
        for suf in sufs:
            if suf in required or suf in other_suffixes:
                continue
            required.add(suf)
            break
    return required


def _find_minimal_target_modules_any(target_modules: set[Any], other_module_names: Iterable[str]) -> set[str]:
    """_find_minimal_target_modules for entries that are not all strings, step by step as PEFT does."""
    other = set(other_module_names)

    def suffixes(s: str) -> list[str]:
        parts = s.split(".")
        return [".".join(parts[i:]) for i in range(len(parts))][::-1]

    other_suffixes = {suf for item in other for suf in suffixes(item)}
    required: set[str] = set()
    for item, sufs in sorted(((t, suffixes(t)) for t in target_modules), key=lambda tup: tup[1]):
        for suf in sufs:
            if suf in required or suf in other_suffixes:
                continue
            if not any(s in required for s in dotted_suffixes(item)):
                required.add(suf)
                break
    return required


# --------------------------------------------------------------------------------------------------
# a torch-free module tree, to count parameters like get_nb_trainable_parameters
# --------------------------------------------------------------------------------------------------


class _P:
    __slots__ = ("numel", "requires_grad", "is_bias", "shape")

    def __init__(self, numel: int, is_bias: bool = False, requires_grad: bool = True, shape: tuple = ()) -> None:
        self.numel = numel
        self.requires_grad = requires_grad
        self.is_bias = is_bias
        self.shape = shape


class _N:
    """A module: own parameters (name -> _P, shared objects for tied tensors) and ordered children."""

    __slots__ = ("cls", "kind", "params", "children", "module", "lora", "wrapper")

    def __init__(self, cls: str, kind: str, module: Module | None = None) -> None:
        self.cls = cls
        self.kind = kind
        self.params: dict[str, _P] = {}
        self.children: dict[str, _N] = {}
        self.module = module
        self.lora = False  # a LoRA tuner layer (BaseTunerLayer)
        self.wrapper = False  # a ModulesToSaveWrapper

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True):
        """torch's Module.named_modules: pre-order, children in insertion order, shared modules once.

        Iterative: a model has hundreds of thousands of nodes and recursive generators cost ~4x more."""
        if not remove_duplicate:
            return iter(self.module_names(prefix))
        return self._named_modules(prefix)

    def module_names(self, prefix: str = "") -> list[tuple[str, _N]]:
        """``list(named_modules(prefix, remove_duplicate=False))``, built at once."""
        out: list[tuple[str, _N]] = []
        stack: list[tuple[str, _N]] = [(prefix, self)]
        pop, push, visit = stack.pop, stack.extend, out.append
        while stack:
            item = pop()
            visit(item)
            name, node = item
            if node.children:
                if name:
                    dotted = name + "."
                    push([(dotted + k, c) for k, c in reversed(node.children.items())])
                else:
                    push(list(reversed(node.children.items())))
        return out

    def _named_modules(self, prefix: str = ""):
        memo: set[int] = set()
        stack: list[tuple[str, _N]] = [(prefix, self)]
        while stack:
            name, node = stack.pop()
            if id(node) in memo:
                continue
            memo.add(id(node))
            yield name, node
            stack.extend((f"{name}.{k}" if name else k, c) for k, c in reversed(node.children.items()))

    def named_parameters(self):
        seen: set[int] = set()
        for mname, mod in self.named_modules():
            for pname, p in mod.params.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mname}.{pname}" if mname else pname), p

    def parameters(self) -> Iterator[_P]:
        """named_parameters() without the names (tied tensors once)."""
        return iter(_walk(self)[1])

    parameters_of_subtree = parameters

    def get(self, path: str) -> _N | None:
        node: _N | None = self
        if not path:
            return node
        for part in path.split("."):
            if node is None:
                return None
            if part in node.children:
                node = node.children[part]
            elif node.wrapper and part in node.children["modules_to_save"].children["default"].children:
                # AuxiliaryTrainingWrapper.__getattr__ -> ModulesToSaveWrapper._getattr_wrapped: with the adapter
                # active (get_peft_model activates it), attributes come from modules_to_save[active adapter].
                node = node.children["modules_to_save"].children["default"].children[part]
            else:
                return None
        return node

    def deepcopy(self, memo: dict[int, Any] | None = None) -> _N:
        memo = {} if memo is None else memo
        if id(self) in memo:
            return memo[id(self)]
        n = _N(self.cls, self.kind, self.module)
        memo[id(self)] = n
        n.lora, n.wrapper = self.lora, self.wrapper
        for k, p in self.params.items():
            if id(p) not in memo:
                memo[id(p)] = _P(p.numel, p.is_bias, p.requires_grad, p.shape)
            n.params[k] = memo[id(p)]
        for k, c in self.children.items():
            n.children[k] = c.deepcopy(memo)
        return n


def _walk(root: _N) -> tuple[list[_N], list[_P]]:
    """The distinct nodes in named_modules() order, and their distinct parameters (tied tensors once)."""
    nodes: list[_N] = []
    params: list[_P] = []
    memo: set[int] = set()
    seen: set[int] = set()
    stack: list[_N] = [root]
    pop, push, visit = stack.pop, stack.extend, nodes.append
    while stack:
        node = pop()
        if id(node) in memo:
            continue
        memo.add(id(node))
        visit(node)
        if node.params:
            for p in node.params.values():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
        if node.children:
            push(reversed(node.children.values()))
    return nodes, params


def _build_tree(info: ModelInfo) -> tuple[_N, dict[str, _N]]:
    root = _N(info.model_class, "container")
    nodes: dict[str, _N] = {"": root}
    params_by_name: dict[str, _P] = {}
    for m in info.modules:
        if m.name == "":
            node = root
            node.module = m
        else:
            node = _N(m.cls, m.kind, m)
            parent, _, leaf = m.name.rpartition(".")
            pnode = nodes.get(parent)
            if pnode is None:  # should not happen: named_modules is pre-order
                pnode = root
            pnode.children[leaf] = node
            nodes[m.name] = node
        for p in m.params:
            if p.tied_to is not None and p.tied_to in params_by_name:
                obj = params_by_name[p.tied_to]
            else:
                obj = _P(p.numel, p.local_name == "bias", True, p.shape)
            node.params[p.local_name] = obj
            params_by_name[p.name] = obj
    for alias, canon in info.aliases:
        parent, _, leaf = alias.rpartition(".")
        if parent in nodes and canon in nodes and leaf not in nodes[parent].children:
            nodes[parent].children[leaf] = nodes[canon]
    return root, nodes


# --------------------------------------------------------------------------------------------------
# the analysis
# --------------------------------------------------------------------------------------------------


def _as_list(v: Any) -> Any:
    if isinstance(v, (list, tuple, set, frozenset)):
        return list(v)
    return v


def _scaling(alpha: Any, r: Any, rslora: bool) -> float | None:
    try:
        if not r or r <= 0:
            return None
        return float(alpha) / (math.sqrt(r) if rslora else r)
    except (TypeError, ValueError):
        return None


def analyze_lora(info: ModelInfo, fields: Mapping[str, Any] | None = None, **kwargs: Any) -> TargetingResult:
    """Apply PEFT 0.21.2's targeting and counting to ``info`` for LoraConfig ``fields``.

    ``fields`` (or keyword arguments) are plain values under LoraConfig's own names: target_modules,
    exclude_modules, layers_to_transform, layers_pattern, modules_to_save, rank_pattern, alpha_pattern,
    r, lora_alpha, use_rslora, bias, use_dora, lora_bias, task_type, target_parameters,
    trainable_token_indices, inference_mode. Missing ones take LoraConfig's defaults. The result carries what PEFT
    would raise in ``errors`` (counts are still computed as far as they are meaningful).
    """
    f: dict[str, Any] = dict(fields or {})
    f.update(kwargs)
    r = f.get("r", 8)
    lora_alpha = f.get("lora_alpha", 8)
    use_rslora = bool(f.get("use_rslora", False))
    bias = f.get("bias", "none")
    use_dora = bool(f.get("use_dora", False))
    lora_bias = bool(f.get("lora_bias", False))
    task_type = f.get("task_type")
    rank_pattern = dict(f.get("rank_pattern") or {})
    alpha_pattern = dict(f.get("alpha_pattern") or {})
    target_modules = _as_list(f.get("target_modules"))
    exclude_modules = _as_list(f.get("exclude_modules"))
    layers_to_transform = f.get("layers_to_transform")
    layers_pattern = f.get("layers_pattern")
    target_parameters = f.get("target_parameters")
    tti = f.get("trainable_token_indices")
    mts_in = f.get("modules_to_save")
    res = TargetingResult(
        model_type=info.model_type, model_class=info.model_class, task_type=task_type,
        target_modules=None, target_parameters=[], rank_pattern=rank_pattern, alpha_pattern=alpha_pattern,
        modules_to_save=None, exact=info.exact)
    if not info.exact:
        res.notes.append("architecture shapes are default-config only for this model type; counts may differ")

    # ---- LoraConfig.__post_init__ (tuners/lora/config.py) ----
    if isinstance(target_parameters, str):
        res.errors.append("TypeError: `target_parameters` must be a list of strings or None.")
        target_parameters = [target_parameters]
    if isinstance(target_modules, list):
        target_modules = set(target_modules)
    if isinstance(exclude_modules, list):
        exclude_modules = set(exclude_modules)
    if isinstance(target_modules, str) and layers_to_transform is not None:
        res.errors.append("ValueError: `layers_to_transform` cannot be used when `target_modules` is a str.")
    if isinstance(target_modules, str) and layers_pattern is not None:
        res.errors.append("ValueError: `layers_pattern` cannot be used when `target_modules` is a str.")
    if layers_pattern and layers_to_transform is None:
        res.errors.append("ValueError: When `layers_pattern` is specified, `layers_to_transform` must also be "
                          "specified. ")

    # ---- task-type side effects (peft_model.py) ----
    modules_to_save: Any = mts_in if not isinstance(mts_in, (tuple, set)) else list(mts_in)
    if isinstance(modules_to_save, list):
        modules_to_save = list(modules_to_save)  # PEFT mutates the caller's list; we do not
    # PeftModelForSequenceClassification extends modules_to_save *before* injection (so the head is not
    # LoRA-targeted); PeftModelForTokenClassification and ...QuestionAnswering do it *after* (see _count).
    if task_type == "SEQ_CLS":
        if modules_to_save is None:
            modules_to_save = ["classifier", "score"]
        elif isinstance(modules_to_save, list):
            modules_to_save.extend(["classifier", "score"])
        else:
            res.errors.append(f"AttributeError: '{type(modules_to_save).__name__}' object has no attribute 'extend' "
                              "(modules_to_save must be a list)")
    if isinstance(modules_to_save, str):
        res.warnings.append("modules_to_save is a str: PEFT iterates it character by character")

    rx = _matcher(_profile(info))
    suffixes = _suffix_table(info)
    cfg = _Cfg(target_modules, exclude_modules, modules_to_save, layers_to_transform, layers_pattern,
               target_parameters, rx, suffixes)

    # ---- transformers v5 MoE conversion (utils/transformers_weight_conversion.py) ----
    if info.moe_conversion:
        try:
            _convert_moe(info, cfg, rank_pattern, alpha_pattern, r, lora_alpha, task_type, res)
        except ValueError as exc:
            res.errors.append(f"ValueError: {exc}")
        except re.error as exc:
            res.errors.append(f"re.error: {exc}")

    # ---- _prepare_adapter_config (tuners/lora/model.py) ----
    if cfg.target_modules is None:
        default = peft_facts()["default_target_modules"].get(info.model_type)
        if default is not None:
            cfg.target_modules = default if isinstance(default, str) else set(default)
            res.default_targets_used = True
        elif not cfg.target_parameters:
            res.errors.append("ValueError: Please specify `target_modules` or `target_parameters`in `peft_config`")

    # ---- "all-linear" (tuners_utils.py: _maybe_include_all_linear_layers) ----
    matched_by_default = "default" if res.default_targets_used else None
    all_linear = isinstance(cfg.target_modules, str) and cfg.target_modules.lower() == ALL_LINEAR
    if all_linear:
        resolved, excluded_heads = _all_linear(info, task_type)
        cfg.target_modules = resolved
        res.all_linear_excluded = excluded_heads
    # ---- >= 20 list entries are condensed to a minimal suffix set ----
    if isinstance(cfg.target_modules, (set, list)) and len(cfg.target_modules) >= MIN_TARGET_MODULES_FOR_OPTIMIZATION:
        tms = set(cfg.target_modules)
        # The same model and entries give the same minimal set: sites that differ only in r, alpha, ... (or
        # LORA205's "all-linear" comparison) compute it once (the memo holds the set, or PEFT's error).
        memo_key = ("minimal_target_modules", frozenset(tms)) if _all_str(tms) else None
        minimal = info._analyses.get(memo_key) if memo_key is not None else None
        if minimal is None:
            minimal = _minimal_target_modules(tms, [m.name for m in info.modules], suffixes)
            if memo_key is not None:
                info._analyses[memo_key] = minimal
        if isinstance(minimal, str):
            res.errors.append(minimal)
        elif len(minimal) < len(tms):
            cfg.target_modules = set(minimal)
    res.target_modules = sorted(cfg.target_modules) if isinstance(cfg.target_modules, (set, list)) else cfg.target_modules
    res.modules_to_save = modules_to_save

    # ---- matching (inject_adapter) ----
    targeted: list[tuple[Module, str]] = []
    excluded: list[str] = []
    unmatched: list[str] = []
    exclude_hits: dict[str, int] = {}
    anything = cfg.target_modules is not None or cfg.target_parameters is not None
    width = _invariant_width(cfg) if anything else 0
    by_tail: dict[str, Any] = {}  # name[-width:] -> check_target_module_exists (see _invariant_width)
    # modules_to_save (SEQ_CLS's classifier/score) is matched name by name, where PEFT checks it: after
    # exclude_modules, before the targets (which raise nothing and run no pattern: the same work and errors)
    saved = cfg.modules_to_save if width else None
    unsaved = replace(cfg, modules_to_save=None) if saved else cfg
    # The usual case (an invariant width; modules_to_save, if any, a list of plain words) takes every module at
    # once (below): nothing in it can raise re.error or TypeError, and it gives the loop's lists.
    fast = bool(width) and (not saved or _plain_words(saved))
    for m in () if fast else info.modules:
        key = m.name
        if not key:
            continue
        try:
            if width:
                tail = key[-width:]
                hit = by_tail.get(tail, _UNSEEN)
                if hit is _UNSEEN:
                    hit = by_tail[tail] = check_target_module_exists(unsaved, key)
                if saved and hit is not EXCLUDED and rx.first(
                        cfg.patterns(saved, SAVED_MODULE, "modules_to_save"), key, "modules_to_save") is not None:
                    hit = EXCLUDED
            else:
                hit = check_target_module_exists(cfg, key) if anything else False
        except re.error as exc:
            res.errors.append(f"re.error: invalid regular expression: {exc}")
            break
        except TypeError as exc:  # e.g. a non-str entry in a list
            res.errors.append(f"TypeError: {exc}")
            break
        if hit is EXCLUDED:
            excluded.append(key)
            _count_exclude_hits(exclude_modules, key, exclude_hits, cfg)
        elif not hit:
            unmatched.append(key)
        else:
            if all_linear:
                entry = "all-linear"
            elif isinstance(cfg.target_modules, str):
                entry = matched_by_default or "regex"
            else:
                entry = hit if isinstance(hit, str) else str(hit)
            targeted.append((m, entry))
    if fast:
        named, named_modules = _named(info)
        tails = _TailHits(unsaved)
        hits = [tails[key[-width:]] for key in named]
        if saved:
            hits = _saved_hits(cfg, saved, named_modules, hits)
        # a truthy hit of str entries is the entry (or the name) that matched, a str: the loop's entry
        if all_linear:
            targeted = [(m, "all-linear") for m, hit in zip(named_modules, hits) if hit]
        else:
            targeted = [(m, hit) for m, hit in zip(named_modules, hits) if hit]
        if EXCLUDED in hits:
            excluded = [key for key, hit in zip(named, hits) if hit is EXCLUDED]
            for key in excluded:
                _count_exclude_hits(exclude_modules, key, exclude_hits, cfg)
        # whether some module is neither targeted nor excluded is all that is asked of `unmatched` below
        unmatched = [""] if len(targeted) + len(excluded) < len(named) else []
    res.excluded = excluded

    # ---- per-entry bookkeeping for list targets ----
    if isinstance(target_modules, (set, list)) and not all_linear:
        counts = {t: 0 for t in sorted(target_modules)}
        if _all_str(counts):
            # every entry t with m.name == t or m.name.endswith("." + t), by suffix lookup: the same entries for
            # names that end alike over one character more than the longest entry (see _invariant_width); each tail
            # is asked itself: it ends with "." + t just when such a name does, and is t only when it is the name
            entry_width = max(map(len, counts), default=0) + 1
            for tail, n in Counter([m.name[-entry_width:] for m, _ in targeted]).items():
                for t in (tail, *suffixes[tail]):
                    if t in counts:
                        counts[t] += n
        else:
            for m, _ in targeted:
                for t in counts:
                    if m.name == t or m.name.endswith(f".{t}"):
                        counts[t] += 1
        res.entry_matches = counts
        res.unmatched_target_entries = [t for t, c in counts.items() if c == 0]
    if isinstance(exclude_modules, (set, list)):
        res.unmatched_exclude_entries = sorted(e for e in exclude_modules if not exclude_hits.get(e))
    elif isinstance(exclude_modules, str) and exclude_modules and not exclude_hits:
        res.unmatched_exclude_entries = [exclude_modules]

    # ---- LoRA layers ----
    rank_keys = rx.prepare_all(rank_pattern.keys(), PATTERN_KEY, "rank_pattern")
    alpha_keys = rx.prepare_all(alpha_pattern.keys(), PATTERN_KEY, "alpha_pattern")
    # Without rank/alpha patterns every layer has r and lora_alpha: the scaling is computed once, and the
    # parameters once per shape (but where _lora_layer_params reports an error: an Embedding with lora_bias).
    patterned = bool(rank_keys or alpha_keys)
    plain_scaling = _scaling(lora_alpha, r, use_rslora)
    params_of: dict[tuple[Any, ...], int] = {}
    for m, entry in targeted:
        if patterned:
            try:
                rk = _pattern_key(rank_keys, m.name, rx, "rank_pattern")
                ak = _pattern_key(alpha_keys, m.name, rx, "alpha_pattern")
            except re.error as exc:  # get_pattern_key raises it at this module in PEFT too
                res.errors.append(f"re.error: invalid regular expression in rank_pattern/alpha_pattern: {exc}")
                break
            rr = rank_pattern.get(rk, r)
            aa = alpha_pattern.get(ak, lora_alpha)
            scaling = _scaling(aa, rr, use_rslora)
        else:
            rr, aa, scaling = r, lora_alpha, plain_scaling
        if m.kind not in LORA_KINDS:  # (m.lora_supported)
            res.containers_hit.append(m.name)
            continue
        if patterned or (lora_bias and m.kind == "embedding"):
            n = _lora_layer_params(m, rr, use_dora, lora_bias, res)
        else:
            shape = (m.kind, m.in_features, m.out_features, m.kernel_numel, m.groups)
            n = params_of.get(shape, -1)
            if n < 0:
                n = params_of[shape] = _lora_layer_params(m, rr, use_dora, lora_bias, res)
        res.targeted.append(_targeted_module(
            m.name, m.folded, m.cls, m.kind, m.in_features, m.out_features, rr, aa, scaling, n, entry, m.layer_index))
    if res.containers_hit:
        first = info.get(res.containers_hit[0])
        res.errors.append(
            f"ValueError: Target module {first.cls if first else '?'}() is not supported. Currently, only the "
            "following modules are supported: `torch.nn.Linear`, `torch.nn.Embedding`, `torch.nn.Conv1d`, "
            "`torch.nn.Conv2d`, `torch.nn.Conv3d`, `transformers.pytorch_utils.Conv1D`, "
            f"`torch.nn.MultiheadAttention.` (targeted: {', '.join(res.containers_hit[:5])})")
    for t in res.targeted if patterned else res.targeted[:1]:  # (without patterns every layer has r)
        if not isinstance(t.r, int) or isinstance(t.r, bool) or t.r <= 0:
            res.errors.append(f"ValueError: `r` should be a positive integer value but the value passed is {t.r}")
            break

    # ---- target_parameters (BaseTuner._inject_parameters) ----
    tparams = cfg.target_parameters
    if tparams:
        _inject_parameters(info, set(tparams), rank_pattern, alpha_pattern, r, lora_alpha, use_rslora, res,
                           {t.name for t in res.targeted}, rx, rank_keys, alpha_keys)
    if res.moe_converted_entries:
        _converted_bookkeeping(info, res)

    # ---- error analysis (inject_adapter) ----
    targeted_module_names = [t.name for t in res.targeted] + res.containers_hit
    if not targeted_module_names and not res.targeted_parameters:
        tm_desc = sorted(cfg.target_modules) if isinstance(cfg.target_modules, (set, list)) else cfg.target_modules
        if excluded and not unmatched:
            res.errors.append("NoMatchingPeftModuleError: All modules were excluded. This is likely unintended. Check "
                              "your `target_modules`, `exclude_modules` and `modules_to_save` configuration.")
        elif not excluded and unmatched and not cfg.target_modules:
            res.errors.append("NoMatchingPeftModuleError: No `target_modules` passed but also no `target_parameters` "
                              "found. Please check the values for these arguments.")
        else:
            if not excluded and unmatched:
                msg = (f"NoMatchingPeftModuleError: Target modules {tm_desc} not found in the base model. Please "
                       "check the target modules and try again.")
            else:
                msg = ("NoMatchingPeftModuleError: No modules were targeted for adaptation. This might be caused by "
                       "a combination of mismatched target modules and excluded modules. Please check your "
                       "`target_modules` and `exclude_modules` configuration. You may also have only targeted "
                       "modules that are marked to be saved (`modules_to_save`).")
            if layers_to_transform is not None:
                msg += f" Note: You specified 'layers_to_transform': {layers_to_transform}."
            if layers_pattern is not None:
                msg += f" You also specified 'layers_pattern': {layers_pattern}."
            res.errors.append(msg)
    elif exclude_modules and not excluded:
        res.warnings.append(f"You have passed exclude_modules={exclude_modules} but no modules were excluded. "
                            "Please check that exclude_modules was set correctly.")
    else:
        if cfg.target_modules and not targeted_module_names:
            res.warnings.append(f"target_modules={cfg.target_modules} were set but no module was matched.")
        elif cfg.target_parameters and not res.targeted_parameters:
            res.warnings.append(f"target_parameters={cfg.target_parameters} were set but no parameter was matched.")
    for attr, patterns, prepared, sink in (
            ("rank_pattern", rank_pattern, rank_keys, res.unmatched_rank_pattern_keys),
            ("alpha_pattern", alpha_pattern, alpha_keys, res.unmatched_alpha_pattern_keys)):
        if not patterns:
            continue
        matched = set()
        for k, key_rx in prepared:
            if isinstance(key_rx, re.error):
                continue
            if any(rx.match(key_rx, n, attr) for n in targeted_module_names):
                matched.add(k)
        unmatched_keys = sorted(set(patterns) - matched)
        sink.extend(unmatched_keys)
        if unmatched_keys:
            res.warnings.append(f"The following {attr} keys did not match any targeted module and were ignored: "
                                f"{unmatched_keys}.")

    # ---- counting on the module tree ----
    _count(info, res, bias, modules_to_save, task_type, tti, use_dora, lora_bias, bool(f.get("inference_mode")))
    return res


def _minimal_target_modules(tms: set[Any], names: list[str], suffixes: _SuffixTable | None = None) -> set[str] | str:
    """PEFT's condensed target set for >= 20 entries (tuners_utils.py: inject_adapter), or its ValueError."""
    suffixes = _SuffixTable() if suffixes is None else suffixes
    # n.endswith(tuple("." + t for t in tms)) by suffix lookup: all-linear on a big model has thousands
    if _all_str(tms):
        # a name ends with "." + t only if its last part is t's (most names are not split)
        # (a set: PEFT's _find_minimal_target_modules only asks what is in it)
        lasts = {t.rpartition(".")[2] for t in tms}
        other = set(names).difference(tms)
        ending = tuple(f".{last}" for last in lasts)
        risky = {n for n in other if n.endswith(ending) or n in lasts}  # the names whose last part is one of those
        no_target: Any = (other - risky) | {n for n in risky if tms.isdisjoint(suffixes[n])}
    else:
        no_target = [n for n in names if n not in tms and not n.endswith(tuple(f".{t}" for t in tms))]
    try:
        return _find_minimal_target_modules(tms, no_target, suffixes)
    except ValueError as exc:
        return f"ValueError: {exc}"


def _count_exclude_hits(exclude_modules: Any, key: str, hits: dict[str, int], cfg: _Cfg) -> None:
    if isinstance(exclude_modules, str):
        if cfg.rx.fullmatch(cfg.pattern(exclude_modules, FULLMATCH, "exclude_modules"), key, "exclude_modules"):
            hits[exclude_modules] = hits.get(exclude_modules, 0) + 1
    elif exclude_modules and _all_str(exclude_modules):
        for e in {key, *cfg.suffixes[key]} & set(exclude_modules):  # key == e or key.endswith("." + e)
            hits[e] = hits.get(e, 0) + 1
    elif exclude_modules:
        for e in exclude_modules:
            if key == e or key.endswith(f".{e}"):
                hits[e] = hits.get(e, 0) + 1


def _all_linear(info: ModelInfo, task_type: Any) -> tuple[set[str], list[str]]:
    """tuners_utils.py: _maybe_include_all_linear_layers on a PreTrainedModel."""
    names = info._analyses.get(_ALL_LINEAR_MEMO)
    if names is None:  # the linear names, once per model (a set built the same way each time: the same set)
        names = info._analyses[_ALL_LINEAR_MEMO] = {m.name for m in info.modules if m.kind in ("linear", "conv1d")}
    excl: list[str] = []
    if info.output_layer is not None:
        excl.append(info.output_layer)
    elif task_type == "SEQ_CLS" and info.seq_cls_head is not None:
        excl.append(info.seq_cls_head)
    return names - set(excl), [e for e in excl if e in names]


_ALL_LINEAR_MEMO = "targeting:all-linear"  # key in ModelInfo._analyses (advice's keys are reprs of lists)


def _lora_layer_params(m: Module, r: Any, use_dora: bool, lora_bias: bool, res: TargetingResult) -> int:
    """Parameters one LoRA layer adds (tuners/lora/layer.py: Linear / Embedding / _ConvNd / MultiheadAttention)."""
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        return 0
    i, o = m.in_features or 0, m.out_features or 0
    if m.kind == "embedding":
        if lora_bias:
            res.errors.append(f"ValueError: lora_bias=True is not supported for {m.cls} ({m.name})")
        return r * (i + o) + (o if use_dora else 0)
    if m.kind in ("linear", "conv1d", "conv"):
        if m.kind == "conv":  # lora_A is a conv over the kernel, lora_B a grouped 1x1 conv
            n = r * i * (m.kernel_numel or 1) + o * (r // (m.groups or 1))
        else:
            n = r * (i + o)
        # lora_B's bias (lora_bias) and DoRA's magnitude vector are out_features each
        return n + (o if lora_bias else 0) + (o if use_dora else 0)
    if m.kind == "mha":
        e = i
        n = r * (e + 3 * e) + r * (e + e)
        return n
    return 0


def _convert_moe(info: ModelInfo, cfg: _Cfg, rank_pattern: dict, alpha_pattern: dict, r: Any, alpha: Any,
                 task_type: Any, res: TargetingResult) -> None:
    """peft/utils/transformers_weight_conversion.py: _convert_peft_config_moe (+ _resolve_string_target_modules)."""
    facts = peft_facts()
    base = info.moe_conversion
    mapping: dict[str, str] = facts.get("moe_target_module_mapping", {}).get(base) or {}
    fused: dict[str, list[str]] = facts.get("moe_fused_targets", {}).get(base) or {}
    if not mapping or not fused:
        return
    if isinstance(cfg.target_modules, str):
        if cfg.target_modules.lower() == ALL_LINEAR:
            # attention stays nn.Linear and is resolved by type; the v4 expert and router names are added as such
            resolved_full, res.all_linear_excluded = _all_linear(info, task_type)
            resolved = {n.rsplit(".", 1)[-1] for n in resolved_full} | set(mapping)
        else:
            module_keys = [m.name for m in info.modules]
            param_keys = [p.name for p in info.parameters()]
            resolved = set()
            for key in module_keys + param_keys:
                if check_target_module_exists(cfg, key):
                    resolved.add(key.rsplit(".", 1)[-1])
            containers: dict[str, set[str]] = {}
            for name in param_keys:
                container, _, leaf = name.rpartition(".")
                containers.setdefault(leaf, set()).add(container)
            for old, new in mapping.items():
                if old in resolved:
                    continue
                for container in sorted(containers.get(new, ())):
                    if check_target_module_exists(cfg, f"{container}.{old}"):
                        resolved.add(old)
                        break
        if not resolved:
            return
        cfg.target_modules = resolved
    tps = set(cfg.target_parameters or [])
    tms = set(cfg.target_modules or [])  # NB: None becomes an empty set here (no default targets later)
    new_tps = set(tps)
    remaining: set[str] = set()
    matched: dict[str, set[str]] = {n: set() for n in fused}
    for target in sorted(tms):
        mapped_new = mapped_old = None
        for old, new in mapping.items():
            if target == old or target.endswith(f".{old}"):
                mapped_new, mapped_old = new, old
                break
        if mapped_new is None:
            remaining.add(target)
            continue
        new_tps.add(mapped_new)
        res.moe_converted_entries[target] = mapped_new
        if mapped_new in fused:
            matched.setdefault(mapped_new, set()).add(mapped_old)
    for new, required in fused.items():
        present = matched.get(new, set())
        if 0 < len(present) < len(required):
            missing = ", ".join(sorted(set(required) - present))
            raise ValueError(f"Cannot convert PEFT target(s) {', '.join(sorted(present))} without also targeting "
                             f"{missing} because they are fused into {new}.")
        if len(present) == len(required) and len(required) > 1:
            key = rf".*\.{re.escape(new)}"
            rank_pattern[key] = r * len(required)
            alpha_pattern[key] = alpha * len(required)
            res.moe_fused[new] = (list(required), rank_pattern[key], alpha_pattern[key])
    cfg.target_parameters = sorted(new_tps)
    cfg.target_modules = remaining
    res.moe_converted = True
    res.notes.append(f"transformers v5 MoE conversion ({base}): target_modules -> {sorted(remaining)}, "
                     f"target_parameters -> {sorted(new_tps)}")


def _converted_bookkeeping(info: ModelInfo, res: TargetingResult) -> None:
    """What the MoE conversion did to each entry it rewrote: the parameters it reaches through its new
    target_parameters name (so the entry is not "unmatched"), and the nn.Linear layers it named before and no
    longer reaches (PEFT drops the entry from target_modules, and ``experts.down_proj`` does not match a dense
    ``mlp.down_proj.weight``)."""
    reached: dict[str, int] = {}
    for p in res.targeted_parameters:
        reached[p.matched_by] = reached.get(p.matched_by, 0) + 1
    for entry, new in res.moe_converted_entries.items():
        if entry in res.entry_matches:
            res.entry_matches[entry] += reached.get(new, 0)
    res.unmatched_target_entries = [t for t in res.unmatched_target_entries if not res.entry_matches.get(t)]
    old_names = set(res.moe_converted_entries)
    targeted = {t.name for t in res.targeted}
    res.moe_left_frozen = [
        m.name for m in info.modules
        if m.lora_supported and m.name not in targeted and (m.name in old_names or any(
            s in old_names for s in _suffix_table(info)[m.name]))]


def _inject_parameters(info: ModelInfo, target_names: set[str], rank_pattern: dict, alpha_pattern: dict, r: Any,
                       alpha: Any, rslora: bool, res: TargetingResult, lora_targets: set[str], rx: Matcher,
                       rank_keys: list, alpha_keys: list) -> None:
    """BaseTuner._inject_parameters: parameters matched exactly or as a dotted suffix of module.param."""
    names = sorted(target_names)
    strs = _all_str(names)
    hits: set[str] = set()
    suffixes = _suffix_table(info)
    for m in info.modules:
        for p in m.params:
            if p.tied_to is not None:
                continue
            key = p.name
            # the first of the sorted names with key.endswith(f".{t}"), by suffix lookup
            if key in target_names:
                entry = key
            elif strs:
                entry = min((t for t in suffixes[key] if t in target_names), default=None)
            else:
                entry = next((t for t in names if key.endswith(f".{t}")), None)
            if entry is None:
                continue
            hits.add(entry)
            if m.name == "":
                res.errors.append(f"ValueError: Targeting an nn.Parameter on the top-level module is not supported "
                                  f"(parameter '{p.local_name}'). ")
                continue
            if m.name in lora_targets:
                res.errors.append(f"ValueError: Trying to wrap an `nn.Parameter` of layer '{m.name}' of type "
                                  f"{m.cls}, which is not a valid target. Make sure that this layer is not also "
                                  "targeted with `target_modules`.")
                continue
            try:
                rr = rank_pattern.get(_pattern_key(rank_keys, key, rx, "rank_pattern"), r)
                aa = alpha_pattern.get(_pattern_key(alpha_keys, key, rx, "alpha_pattern"), alpha)
            except re.error as exc:
                res.errors.append(f"re.error: invalid regular expression in rank_pattern/alpha_pattern: {exc}")
                return
            shape = p.shape
            if len(shape) == 3:
                e, a, b = shape
            elif len(shape) == 2:
                e, a, b = 1, shape[1], shape[0]
            else:
                res.errors.append(f"ValueError: lora.ParamWrapper was initialized with {len(shape)} dimensional "
                                  f"Parameter, but only 2d and 3d are supported ({key}).")
                continue
            n = rr * e * (a + b) if isinstance(rr, int) and rr > 0 else 0
            res.targeted_parameters.append(TargetedParameter(
                name=key, module=m.name, shape=shape, r=rr, lora_alpha=aa, scaling=_scaling(aa, rr, rslora),
                lora_params=n, matched_by=entry))
    res.target_parameters = names
    res.unmatched_target_parameters = [t for t in names if t not in hits]


def _lora_node(base: _N, m: Module, r: int, use_dora: bool, lora_bias: bool, dropout: bool = False) -> _N:
    """The module tree of a lora.Linear / lora.Embedding / ... wrapping ``base``."""
    n = _N(base.cls, base.kind, base.module)
    n.lora = True
    n.children["base_layer"] = base
    drop = _N("ModuleDict", "container")
    drop.children["default"] = _N("Dropout" if dropout else "Identity", "other")
    n.children["lora_dropout"] = drop
    la, lb = _N("ModuleDict", "container"), _N("ModuleDict", "container")
    ea, eb = _N("ParameterDict", "other"), _N("ParameterDict", "other")
    i, o = m.in_features or 0, m.out_features or 0
    if m.kind == "embedding":
        ea.params["default"] = _P(r * i)
        eb.params["default"] = _P(o * r)
    else:
        a = _N("Linear", "linear")
        b = _N("Linear", "linear")
        if m.kind == "conv":
            a.params["weight"] = _P(r * i * (m.kernel_numel or 1))
            b.params["weight"] = _P(o * (r // (m.groups or 1)))
        elif m.kind == "mha":
            a.params["weight"] = _P(r * i)
            b.params["weight"] = _P(3 * i * r)
            out = base.children.get("out_proj")
            if out is not None:
                o2 = _N(out.cls, out.kind, out.module)
                o2.lora = True
                o2.children["base_layer"] = out
                oa, ob = _N("Linear", "linear"), _N("Linear", "linear")
                oa.params["weight"] = _P(r * i)
                ob.params["weight"] = _P(i * r)
                o2.children["lora_A"] = _N("ModuleDict", "container")
                o2.children["lora_A"].children["default"] = oa
                o2.children["lora_B"] = _N("ModuleDict", "container")
                o2.children["lora_B"].children["default"] = ob
                base.children["out_proj"] = o2
        else:
            a.params["weight"] = _P(r * i)
            b.params["weight"] = _P(o * r)
        if lora_bias:
            b.params["bias"] = _P(o, is_bias=True)
        la.children["default"] = a
        lb.children["default"] = b
    n.children["lora_A"] = la
    n.children["lora_B"] = lb
    n.children["lora_embedding_A"] = ea
    n.children["lora_embedding_B"] = eb
    mag = _N("ModuleDict", "container")
    if use_dora and m.kind != "mha":
        d = _N("DoraLayer", "other")
        d.params["weight"] = _P(o)
        mag.children["default"] = d
    n.children["lora_magnitude_vector"] = mag
    return n


def _param_wrapper(base: _N, pname: str, r: int, shape: tuple[int, ...]) -> _N:
    n = _N("ParamWrapper", base.kind, base.module)
    n.lora = True
    n.children["base_layer"] = base
    if len(shape) == 3:
        e, a_, b_ = shape
    else:
        e, a_, b_ = 1, shape[1], shape[0]
    la, lb = _N("ModuleDict", "container"), _N("ModuleDict", "container")
    a = _N("Linear", "linear")
    a.params["weight"] = _P(a_ * r * e)
    b = _N("Linear", "linear")
    b.params["weight"] = _P(r * e * b_)
    la.children["default"] = a
    lb.children["default"] = b
    n.children["lora_dropout"] = _N("ModuleDict", "container")
    n.children["lora_A"] = la
    n.children["lora_B"] = lb
    n.children["lora_embedding_A"] = _N("ParameterDict", "other")
    n.children["lora_embedding_B"] = _N("ParameterDict", "other")
    n.children["lora_magnitude_vector"] = _N("ModuleDict", "container")
    return n


_LORA_CHILDREN = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")


_BASE_TREE_MEMO = "targeting:base-tree"  # key in ModelInfo._analyses (advice's keys are reprs of lists)
_PLAIN_LORA_KINDS = frozenset(("linear", "conv1d", "conv", "embedding"))


def _base_tree_facts(info: ModelInfo) -> tuple[int, frozenset[str]]:
    """(parameters of the unadapted tree, tied ones once; the module names that the tree reaches under
    their own name), computed once per ModelInfo: they do not depend on the config."""
    memo = info._analyses
    facts = memo.get(_BASE_TREE_MEMO)
    if facts is None:
        facts = memo[_BASE_TREE_MEMO] = _plain_tree_facts(info) or _built_tree_facts(info)
    return facts


def _built_tree_facts(info: ModelInfo) -> tuple[int, frozenset[str]]:
    """_base_tree_facts from the tree itself."""
    root, nodes = _build_tree(info)
    reachable = frozenset(name for name, node in nodes.items() if root.get(name) is node)
    return sum(p.numel for p in root.parameters()), reachable


def _plain_tree_facts(info: ModelInfo) -> tuple[int, frozenset[str]] | None:
    """_base_tree_facts without building the tree, for the usual inventory (None otherwise): the root first,
    every other name once and after its parent, no aliases, each parameter named ``<module>.<own name>``. Then
    _build_tree hangs every node under its parent (so get() reaches each name, the root included) and
    parameters() yields each tensor once: all of them, but a tied one whose source was already built."""
    modules = info.modules
    if info.aliases or not modules or modules[0].name != "":
        return None
    # (taken list by list: each test below is the per-module one over all of them)
    names = [m.name for m in modules]
    index = {name: k for k, name in enumerate(names)}
    if len(index) != len(names):
        return None  # a name twice
    parents = list(map(index.get, [name.rpartition(".")[0] for name in names[1:]]))
    if None in parents or not all(map(int.__lt__, parents, range(1, len(names)))):
        return None  # a name before its parent, or without one
    params = [p for m in modules for p in m.params]
    full = [p.name for p in params]
    # each p.name is its module's name, a dot and its own name, which has no dot (the root's: no dot at all)
    if len(set(full)) != len(full) or [f.rpartition(".")[0] for f in full] != [m.name for m in modules for _ in m.params]:
        return None
    total = sum(map(math.prod, [p.shape for p in params]))
    tied = [(k, p) for k, p in enumerate(params) if p.tied_to is not None]
    if tied:
        position = {f: k for k, f in enumerate(full)}
        for k, p in tied:  # the same tensor as a parameter built before it: not counted again
            if position.get(p.tied_to, k) < k:
                total -= math.prod(p.shape)
    return total, frozenset(names)


def _count_plain(info: ModelInfo, res: TargetingResult, bias: Any, modules_to_save: Any, task_type: Any, tti: Any,
                 inference_mode: bool) -> bool:
    """The common case counted without building the adapted tree: plain LoRA layers only (no biases,
    modules_to_save, trainable tokens, inference_mode; no target inside another), and ParamWrappers on modules
    the tree reaches under their own name, none a LoRA layer or inside one. Then PEFT's count is base + the sum
    of the layers' and wrappers' own parameters, which _lora_layer_params and _inject_parameters already gave
    each TargetedModule and TargetedParameter (they mirror _lora_node and _param_wrapper; a wrapper on a wrapped
    module nests, and adds its own). False: _count walks the tree."""
    if bias != "none" or modules_to_save is not None or tti is not None or inference_mode \
            or task_type in ("QUESTION_ANS", "TOKEN_CLS") or info.aliases:
        return False
    base_params, reachable = _base_tree_facts(info)
    targets = _plain_targets(res, reachable)
    if targets is None:
        return False
    for tp in res.targeted_parameters:
        module = tp.module
        if not module or module not in reachable or module in targets or any(
                module[:k] in targets for k, ch in enumerate(module) if ch == "."):
            return False  # (the root is never wrapped; a LoRA layer's own names are not the model's)
    res.base_params = base_params
    res.lora_params = sum(t.lora_params for t in res.targeted) + sum(tp.lora_params for tp in res.targeted_parameters)
    res.trainable_params = res.lora_params
    res.total_params = base_params + res.lora_params
    return True


def _plain_targets(res: TargetingResult, reachable: frozenset[str]) -> set[str] | None:
    """The targets' names when each is a plain LoRA layer (a kind _lora_layer_params counts as _lora_node builds
    it, a positive int rank) that the tree reaches under its own name, none under another; else None."""
    targeted = res.targeted
    ranks = [t.r for t in targeted]
    if not {t.kind for t in targeted} <= _PLAIN_LORA_KINDS or not {type(r) for r in ranks} <= {int} \
            or (ranks and min(ranks) <= 0):
        return None
    names = {t.name for t in targeted}
    if not names <= reachable:
        return None
    if _folded_nesting({t.folded for t in targeted}) and _nested(names):
        return None  # a target under another target: _count's set_child decides what is reached
    return names


def _folded_nesting(folded: set[str]) -> bool:
    """False when no module of one of these folded names can lie under a module of another (then _nested is False
    for their concrete names). A concrete name is its folded name with each "{...}" replaced by a number: a name
    under another agrees with it part by part over its length, so their folded names agree there but where a
    part holds a "{"."""
    split = [f.split(".") for f in folded]
    for short in split:
        n = len(short)
        for long in split:
            if len(long) > n and all(a == b or "{" in a or "{" in b for a, b in zip(short, long)):
                return True
    return False


# The last name part of every module a LoRA layer (_lora_node) or a ModulesToSaveWrapper (_set_trainable) adds.
_ADDED_LEAVES = ("base_layer", "lora_dropout", "default", "lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B",
                 "lora_magnitude_vector", "original_module", "modules_to_save")
_CONTAINERS = ("ModuleDict", "ModuleList", "ParameterDict", "ParameterList")
_PARAM_OBJECTS_MEMO = "targeting:param-objects"  # key in ModelInfo._analyses (advice's keys are reprs of lists)


def _count_saved_plain(info: ModelInfo, res: TargetingResult, bias: Any, modules_to_save: Any, task_type: Any,
                       tti: Any, inference_mode: bool) -> bool:
    """_count for plain LoRA layers (as _count_plain) plus modules_to_save (task_type SEQ_CLS's classifier/score
    among them) when _set_trainable only wraps: a list of names without dots, none the end of a name that LoRA
    or a wrapper adds (so their plain ``str.endswith`` sees only the model's own names, before and after the
    injection, with or without SEQ_CLS's "base_model.model." prefix), each module hit a plain module (not a
    container, not a target) with no target and no other hit inside or above it. Then each hit gets a copy of its
    subtree's tensors (tied ones once), trainable, and the originals stay frozen. False: _count walks the tree."""
    if bias != "none" or tti is not None or inference_mode or res.targeted_parameters or info.aliases \
            or task_type in ("QUESTION_ANS", "TOKEN_CLS") or not isinstance(modules_to_save, list) \
            or not modules_to_save or not all(isinstance(t, str) and t and "." not in t for t in modules_to_save):
        return False
    names = tuple(modules_to_save)
    if any(leaf.endswith(names) for leaf in _ADDED_LEAVES) or "base_model".endswith(names) \
            or "base_model.model".endswith(names):
        return False
    plain = _preorder_tree_facts(info)
    if plain is None:
        return False
    base_params, reachable = plain
    targets = _plain_targets(res, reachable)
    if targets is None:
        return False
    modules = info.modules
    hits = [k for k, m in enumerate(modules) if m.name.endswith(names)]
    if not hits:
        return False  # nothing wrapped: left to the tree (one path for what PEFT does then)
    objects = _param_objects(info)
    wrapped: list[tuple[str, int]] = []
    for k in hits:
        m = modules[k]
        if m.name in targets or m.cls in _CONTAINERS or any(
                m.name[:i] in targets for i, ch in enumerate(m.name) if ch == "."):
            return False  # PEFT raises for a LoRA layer, a container, a module inside a LoRA layer
        # the subtree: the module and the names after it under its own (named_modules() order)
        inside = m.name + "."
        seen: set[str] = set()
        numel = 0
        for j in range(k, len(modules)):
            sub = modules[j]
            if j > k and not sub.name.startswith(inside):
                break
            if j > k and (sub.name in targets or sub.name.endswith(names)):
                return False  # a LoRA layer or another hit inside the copy
            for p in sub.params:
                obj, n = objects[p.name]
                if obj not in seen:
                    seen.add(obj)
                    numel += n
        wrapped.append((m.name, numel))
    reached = {t for t in names if any(modules[k].name.endswith(t) for k in hits)}
    res.modules_to_save_wrapped.extend(wrapped)
    res.unmatched_modules_to_save = [t for t in names if t not in reached]
    res.modules_to_save_params = sum(n for _, n in wrapped)
    res.base_params = base_params
    res.lora_params = sum(t.lora_params for t in res.targeted)
    res.trainable_params = res.lora_params + res.modules_to_save_params
    res.total_params = base_params + res.trainable_params
    return True


_PREORDER_MEMO = "targeting:preorder-tree"  # key in ModelInfo._analyses (advice's keys are reprs of lists)


def _preorder_tree_facts(info: ModelInfo) -> tuple[int, frozenset[str]] | None:
    """_plain_tree_facts when, besides, the inventory lists the modules in named_modules() order (each subtree
    right after its root, children in order): then the tree's names come in the inventory's order and a module's
    descendants are the names right after it. None otherwise. Once per ModelInfo."""
    memo = info._analyses
    if _PREORDER_MEMO not in memo:
        facts = _plain_tree_facts(info)
        if facts is not None:
            open_: list[str] = [""]  # the root and the modules still open above the current one
            for m in info.modules[1:]:
                parent = m.name.rpartition(".")[0]
                while open_ and open_[-1] != parent:
                    open_.pop()
                if not open_:
                    facts = None
                    break
                open_.append(m.name)
        memo[_PREORDER_MEMO] = facts
    return memo[_PREORDER_MEMO]


def _param_objects(info: ModelInfo) -> dict[str, tuple[str, int]]:
    """Parameter name -> (the tensor it is, by the name that made it; its size), as _build_tree shares a tied
    tensor with the earlier one it is tied to. Once per ModelInfo."""
    memo = info._analyses
    found = memo.get(_PARAM_OBJECTS_MEMO)
    if found is None:
        found = memo[_PARAM_OBJECTS_MEMO] = {}
        for m in info.modules:
            for p in m.params:
                if p.tied_to is not None and p.tied_to in found:
                    found[p.name] = found[p.tied_to]
                else:
                    found[p.name] = (p.name, p.numel)
    return found


def _nested(names: set[str]) -> bool:
    """Whether some name starts with another one and a dot (a target under another target). In sorted order the names starting with ``p + "."`` come together, from the first
    that is not less than ``p + "."``."""
    ordered = sorted(names)
    for name in ordered:
        probe = name + "."
        k = bisect_left(ordered, probe)
        if k < len(ordered) and ordered[k].startswith(probe):
            return True
    return False


def _count(info: ModelInfo, res: TargetingResult, bias: Any, modules_to_save: Any, task_type: Any, tti: Any,
           use_dora: bool, lora_bias: bool, inference_mode: bool = False) -> None:
    if _count_plain(info, res, bias, modules_to_save, task_type, tti, inference_mode) \
            or _count_saved_plain(info, res, bias, modules_to_save, task_type, tti, inference_mode):
        return
    root, nodes = _build_tree(info)
    # the unadapted tree's count: the memo's (or the plain inventory's) when there is one, else from this tree
    facts = info._analyses.get(_BASE_TREE_MEMO)
    if facts is None:
        facts = _plain_tree_facts(info)
        if facts is not None:
            info._analyses[_BASE_TREE_MEMO] = facts
    res.base_params = facts[0] if facts is not None else sum(p.numel for p in root.parameters())
    lora_param_ids: set[int] = set()

    def set_child(path: str, new: _N) -> None:
        parent, _, leaf = path.rpartition(".")
        pn = root.get(parent)
        if pn is not None:
            pn.children[leaf] = new

    # LoRA layers
    for t in res.targeted:
        base = nodes.get(t.name)
        mod = info.get(t.name)
        if base is None or mod is None or not isinstance(t.r, int) or t.r <= 0:
            continue
        ln = _lora_node(base, mod, t.r, use_dora, lora_bias)
        set_child(t.name, ln)
        nodes[t.name] = ln
    # ParamWrappers (nested when several parameters of one module are targeted; sorted by name as PEFT does)
    for tp in sorted(res.targeted_parameters, key=lambda x: x.name):
        cur = root.get(tp.module)
        if cur is None or not isinstance(tp.r, int) or tp.r <= 0:
            continue
        pw = _param_wrapper(cur, tp.name.rsplit(".", 1)[-1], tp.r, tp.shape)
        set_child(tp.module, pw)
    tree, params = _walk(root)  # the structure does not change until modules_to_save
    for node in tree:
        if node.lora:
            # the adapter's own small subtrees (a plain stack: one generator per child cost ~1 s on peft's tree)
            stack = [node.children[c] for c in _LORA_CHILDREN if c in node.children]
            while stack:
                c = stack.pop()
                for p in c.params.values():
                    lora_param_ids.add(id(p))
                stack.extend(c.children.values())
    # _mark_only_adapters_as_trainable
    for p in params:
        p.requires_grad = id(p) in lora_param_ids
    res.lora_params = sum(p.numel for p in params if id(p) in lora_param_ids)
    if bias == "all":
        for name, p in root.named_parameters():
            if name == "bias" or name.endswith(".bias"):
                p.requires_grad = True
    elif isinstance(bias, str) and bias.endswith("_only"):
        for _, node in root.named_modules():
            if node.lora and node.cls != "ParamWrapper":
                bl = node.children.get("base_layer")
                if bl is not None and "bias" in bl.params:
                    bl.params["bias"].requires_grad = True
    elif bias != "none":
        res.errors.append(f"NotImplementedError: Requested bias: {bias}, is not implemented.")
    res.bias_params = sum(p.numel for p in params if p.requires_grad and id(p) not in lora_param_ids)

    # modules_to_save (utils/other.py: _set_trainable over named_modules(remove_duplicate=False))
    # Each ModulesToSaveWrapper keeps the module it replaces (as original_module, under a node the tree reaches)
    # and adds a copy of fresh tensors: the tree's parameters become the walk's plus the copies'.
    copies: list[_P] = []
    if modules_to_save is not None:
        _set_trainable(root, modules_to_save, res, copies=copies)
    if task_type in ("QUESTION_ANS", "TOKEN_CLS"):
        heads = ["qa_outputs"] if task_type == "QUESTION_ANS" else ["classifier", "score"]
        extra = list(heads) if modules_to_save is None else (
            list(modules_to_save) + heads if isinstance(modules_to_save, list) else None)
        if extra is None:
            res.errors.append(f"AttributeError: '{type(modules_to_save).__name__}' object has no attribute 'extend' "
                              "(modules_to_save must be a list)")
        else:
            res.modules_to_save = extra
            _set_trainable(root, extra, res, second_pass=True, copies=copies)
    elif task_type == "SEQ_CLS" and modules_to_save is not None:
        _set_trainable(root, modules_to_save, res, second_pass=True, copies=copies)
    res.modules_to_save_params = sum(p.numel for p in copies)
    params += copies

    # trainable_token_indices (a TrainableTokensWrapper: len(indices) * embedding_dim new parameters)
    if tti is not None:
        layers = tti if isinstance(tti, Mapping) else {_input_emb_leaf(info): tti}
        for lname, idxs in layers.items():
            if isinstance(modules_to_save, list) and lname in modules_to_save:
                res.errors.append("ValueError: The embedding layer is already marked to be trained fully, either "
                                  f'specify `modules_to_save=[..., "{lname}", ...]` or '
                                  f"`trainable_tokens={{'{lname}': x}}` but not both.")
            hit = [m for m in info.modules if m.name.endswith(lname) and m.kind == "embedding"]
            if not any(m.name.endswith(lname) for m in info.modules):
                res.errors.append(f"ValueError: Target modules {{'{lname}'}} not found in the base model. Please check "
                                  "the target modules and try again.")
            for m in hit:
                try:
                    n = len(idxs) * (m.out_features or 0)
                except TypeError:
                    n = 0
                res.trainable_token_params += n
                holder = _N("TrainableTokens", "other")
                holder.params["delta"] = _P(n)
                root.children.setdefault("__trainable_tokens__" + m.name, holder)
        if info.tied_word_embeddings and not isinstance(tti, Mapping) and info.output_layer:
            res.notes.append("tied embeddings: PEFT also wraps the tied output layer (shared delta, not counted twice)")

    if inference_mode:
        # tuners_utils.py BaseTuner.inject_adapter: "if self.peft_config[adapter_name].inference_mode:
        # for n, p in model.named_parameters(): if adapter_name in n: p.requires_grad = False" (a substring
        # test on the full name; biases trained by bias="all" stay trainable).
        for name, p in root.named_parameters():
            if "default" in name:
                p.requires_grad = False
        res.notes.append("inference_mode=True: PEFT freezes the adapter, so nothing of it trains")

    trainable = total = 0
    for p in root.parameters() if tti is not None else params:
        total += p.numel
        if p.requires_grad:
            trainable += p.numel
    res.trainable_params = trainable
    res.total_params = total


def _input_emb_leaf(info: ModelInfo) -> str:
    # utils/other.py: _get_input_embeddings_name(model, "embed_tokens")
    return info.input_embeddings or "embed_tokens"


def _set_layer_trainable(node: _N, value: bool) -> None:
    for p in node.parameters_of_subtree():
        p.requires_grad = value


def _set_trainable(root: _N, module_names: Any, res: TargetingResult, second_pass: bool = False,
                   copies: list[_P] | None = None) -> None:
    """utils/other.py: _set_trainable with ModulesToSaveWrapper (plain ``str.endswith`` matching, no dot
    boundary, over named_modules(remove_duplicate=False); a str is iterated character by character).
    `copies` receives the parameters of each copy made (fresh tensors, once each)."""
    if not module_names:
        return
    names = list(module_names)
    if second_pass:
        # PeftModelFor*.__init__ runs it again on the PeftModel ("base_model.model." prefix): existing wrappers
        # are only updated; new hits are wrapped like the first time.
        keys = [("base_model", None), ("base_model.model", "")] + [
            ("base_model.model." + k, k) for k, _ in root.named_modules(remove_duplicate=False) if k]
    else:
        keys = [(k, k) for k, _ in root.named_modules(remove_duplicate=False)]
    found: set[str] = set()
    # str.endswith with a tuple is any(shown.endswith(t) for t in names), at C speed for long lists
    suffixes = tuple(names) if _all_str(names) else None
    reached: set[str] = set()  # the names some key ends with (first pass, str names)
    for shown, key in keys:
        if not (shown.endswith(suffixes) if suffixes is not None else any(shown.endswith(t) for t in names)):
            continue
        if suffixes is not None and not second_pass:
            reached.update(t for t in names if shown.endswith(t))
        if key is None:
            res.notes.append("modules_to_save matched the PeftModel's own 'base_model' (not modelled)")
            res.exact = False
            continue
        parent_path, _, leaf = key.rpartition(".")
        parent = root.get(parent_path)
        target = root.get(key)
        if target is None or parent is None and key:
            continue
        grand_path = parent_path.rpartition(".")[0] if parent_path else None
        grand = root.get(grand_path) if grand_path is not None else None
        if grand is not None and grand.lora:
            res.errors.append(f"ValueError: You are trying to target a module with ModulesToSaveWrapper that is a "
                              f"child of a LoRA layer ({key}).")
            continue
        if (grand is not None and grand.wrapper) or target.wrapper:
            found.add(leaf)
            continue
        if key == "":
            res.notes.append("modules_to_save matched the whole model (not modelled exactly)")
            res.exact = False
            continue
        # utils/other.py: ModulesToSaveWrapper.check_module
        if target.lora or target.cls in ("ModuleDict", "ModuleList", "ParameterDict", "ParameterList"):
            kind = "a LoRA layer" if target.lora else target.cls
            res.errors.append(f"TypeError: modules_to_save cannot be applied to modules of type {kind} ({key})")
            continue
        copy = target.deepcopy()
        w = _N("ModulesToSaveWrapper", "container", target.module)
        w.wrapper = True
        w.children["original_module"] = target
        md = _N("ModuleDict", "container")
        md.children["default"] = copy
        w.children["modules_to_save"] = md
        _set_layer_trainable(target, False)
        _set_layer_trainable(copy, True)
        parent.children[leaf] = w
        copied = _walk(copy)[1]
        if copies is not None:
            copies += copied
        res.modules_to_save_wrapped.append((key, sum(p.numel for p in copied)))
        found.add(leaf)
    if not second_pass:
        if suffixes is not None:  # any(k.endswith(t) for k, _ in keys), noted as the keys were matched
            res.unmatched_modules_to_save = [t for t in names if t not in reached]
        else:
            res.unmatched_modules_to_save = [t for t in names if not any(k.endswith(t) for k, _ in keys)]
