#!/usr/bin/env python
"""Generate loralint's static architecture knowledge base from the installed transformers and peft.

For every model type transformers ships (``CONFIG_MAPPING_NAMES``) this builds the model classes a
LoRA user would load (base model, causal LM, seq2seq, sequence/token classification, question
answering, image-text-to-text, ...) on the ``meta`` device -- no weights, no downloads -- under many
different configurations, and records every module from ``named_modules()`` with its dimensions as
*expressions over config.json fields*, so that the static path (``loralint.knowledge``) can compute
exact shapes and parameter counts for any real config.json of that type without torch.

How the expressions are found (per model class):

* a *baseline* configuration (class defaults, layer counts capped so builds stay cheap);
* *one-at-a-time* variants: every integer / boolean config field perturbed alone, which tells which
  fields each dimension, each module's existence and each layer-index pattern depends on; the
  optional integer fields real checkpoints set to null (``NULLABLE_INT_FIELDS``) are also built as None;
* a few *combined* variants perturbing all relevant fields at once (seeded, so the output is
  deterministic), which validate the candidate expressions on independent data;
* a small exhaustive search over expression templates (sums of up to three monomials of up to
  three fields, floor divisions, small integer coefficients) and over predicate templates (``i >=
  F``, ``(i + 1) % F == 0``, ``layer_types[i] == "x"``, ``i not in F``, boolean fields, ...);
* a self-check that re-derives every observed build from the solved records with the loader's own
  expansion (``loralint.knowledge.models._expand``) and compares module names, shapes and the total
  parameter count; a class that fails it is marked ``exact: false``.

Derived config fields (``head_dim = hidden_size // num_attention_heads``, ``num_key_value_heads``
defaulting to ``num_attention_heads``, ``layer_types`` computed from a sliding-window pattern, ...)
are detected by constructing the config class alone and are solved the same way.

Usage::

    python scripts/generate_knowledge.py                  # everything, 2 worker processes
    python scripts/generate_knowledge.py --types llama gpt2 --out /tmp/kb
    python scripts/generate_knowledge.py --jobs 2 --timeout 240
    python scripts/generate_knowledge.py --config-keys    # only data/config_keys.json (about a minute)

Needs torch, transformers and peft (the ``verify`` extra). Never downloads anything.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import itertools
import json
import math
import os
import random
import re
import signal
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from loralint.knowledge.expr import evaluate  # noqa: E402  (stdlib-only evaluator, used for self-checks)
from loralint.knowledge.models import ModelTooLarge, _Evaluator, _expand  # noqa: E402  (the loader's expansion)

DEFAULT_OUT = REPO_ROOT / "loralint" / "knowledge" / "data"
FORMAT_VERSION = 1

# PEFT TaskType -> the transformers Auto mapping(s) whose class a user would load for it, in preference order.
TASK_MAPPINGS: list[tuple[str, list[str]]] = [
    ("CAUSAL_LM", ["MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"]),
    ("SEQ_2_SEQ_LM", ["MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES", "MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES"]),
    ("SEQ_CLS", ["MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES"]),
    ("TOKEN_CLS", ["MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES"]),
    ("QUESTION_ANS", ["MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES"]),
    ("FEATURE_EXTRACTION", ["MODEL_MAPPING_NAMES"]),
    ("IMAGE_TEXT_TO_TEXT", ["MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES"]),
    ("IMAGE_CLASSIFICATION", ["MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES"]),
]

# Fields that name a stack depth; capped in the baseline so each build stays cheap.
LAYER_FIELD_RE = re.compile(
    r"^(num_hidden_layers|n_layers?|num_layers|num_decoder_layers|num_encoder_layers|encoder_layers|"
    r"decoder_layers|depth|num_text_layers|num_vision_layers|num_audio_layers|n_layer|num_blocks)$"
)
LAYER_CAP = 8
# Fields never perturbed: token ids and similar indices do not change shapes (vocab does, and is perturbed).
SKIP_FIELD_RE = re.compile(r"(token_id|token_ids|_token_index|_index$|^id$|_id$|seed$|^transformers_version$)")
META_KEYS = {"transformers_version", "architectures", "_name_or_path", "torch_dtype", "dtype", "_commit_hash",
             "_attn_implementation_autoset", "output_attentions", "output_hidden_states", "return_dict",
             "id2label", "label2id"}

MAX_BUILDS_PER_CLASS = 160


# --------------------------------------------------------------------------------------------------
# small utilities
# --------------------------------------------------------------------------------------------------


class Timeout(Exception):
    pass


def _alarm_handler(signum, frame):  # pragma: no cover - signal path
    raise Timeout()


def cpu_seconds() -> float:
    """The limits count this process's CPU time, not the wall clock: a run on a loaded machine
    (or with more jobs than cores) then covers the same classes as one on an idle machine.
    Workers run torch single-threaded, so CPU time and the work done stay proportional."""
    return time.process_time()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, list):
        if all(x is None or isinstance(x, (bool, int, float, str)) for x in v):
            return v
        return None
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return None


# --------------------------------------------------------------------------------------------------
# configs: flattening, input trees, derived fields
# --------------------------------------------------------------------------------------------------


def _safe_getattr(obj: Any, name: str) -> Any:
    """getattr that tolerates configs refusing access (per-layer attributes of heterogeneous configs)."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def _is_config(obj: Any) -> bool:
    from transformers import PreTrainedConfig

    return isinstance(obj, PreTrainedConfig)


def sub_config_keys(cfg) -> list[str]:
    """Attribute names of nested sub-configs (text_config, vision_config, ...)."""
    keys = []
    for k in cfg.to_dict().keys():
        if k in META_KEYS:
            continue
        v = _safe_getattr(cfg, k)
        if _is_config(v):
            keys.append(k)
    return keys


def attribute_aliases(cfg, prefix: str = "") -> dict[str, str]:
    """``attribute_map`` of the config and its sub-configs, flattened: alias -> canonical field."""
    out = {f"{prefix}{a}": f"{prefix}{c}" for a, c in (getattr(cfg, "attribute_map", {}) or {}).items()}
    for k in sub_config_keys(cfg):
        out.update(attribute_aliases(getattr(cfg, k), f"{prefix}{k}."))
    return out


def flatten_config(cfg, prefix: str = "") -> dict[str, Any]:
    """Flat ``{dotted.name: value}`` of scalars and scalar lists; sub-configs are recursed into."""
    out: dict[str, Any] = {}
    try:
        d = cfg.to_dict()
    except Exception:
        d = dict(vars(cfg))
    aliases = set(getattr(cfg, "attribute_map", {}) or {})
    for k, v in d.items():
        if k in META_KEYS or k.startswith("_") or k in aliases:
            continue
        sub = _safe_getattr(cfg, k)
        if _is_config(sub):
            out.update(flatten_config(sub, f"{prefix}{k}."))
            continue
        jv = _jsonable(v)
        if jv is None and v is not None:
            continue
        out[prefix + k] = jv
    if not prefix:
        try:
            out["num_labels"] = int(cfg.num_labels)
        except Exception:
            pass
    return out


_DERIVED_CACHE: dict[type, tuple[set[str], dict[str, Any]]] = {}


def derived_fields_of(config_cls) -> set[str]:
    """Top-level fields of ``config_cls`` that its __init__ computes from other fields (no nesting)."""
    if config_cls in _DERIVED_CACHE:
        return _DERIVED_CACHE[config_cls][0]
    derived: set[str] = set()
    try:
        base = config_cls()
        d0 = {k: v for k, v in base.to_dict().items() if k not in META_KEYS}
    except Exception:
        _DERIVED_CACHE[config_cls] = (set(), {})
        return set()
    subs = set(sub_config_keys(base))
    for k, v in d0.items():
        if k in subs or SKIP_FIELD_RE.search(k):
            continue
        for new in perturbations(k, v):
            try:
                c = config_cls(**{k: new})
                d1 = {kk: vv for kk, vv in c.to_dict().items() if kk not in META_KEYS}
            except Exception:
                continue
            for kk in d0:
                if kk != k and kk not in subs and d1.get(kk) != d0.get(kk):
                    derived.add(kk)
            break
    _DERIVED_CACHE[config_cls] = (derived, d0)
    return derived


def input_tree(cfg, top: bool) -> dict[str, Any]:
    """The constructor kwargs that reproduce ``cfg`` while letting derived fields be re-derived.

    The top level returns only what must be passed (nothing, for a default config); sub-configs are
    passed as full dicts (minus their derived fields), because composite configs fill omitted keys
    from *their* defaults, not the sub-config class defaults.
    """
    tree: dict[str, Any] = {}
    d = cfg.to_dict()
    der = derived_fields_of(type(cfg))
    for k in sub_config_keys(cfg):
        tree[k] = input_tree(getattr(cfg, k), top=False)
    if top:
        return tree
    for k, v in d.items():
        if k in tree or k in der or k in META_KEYS:
            continue
        tree[k] = v
    return tree


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """Copy of ``tree`` with ``dotted`` set (sub-config dicts are copied, not shared)."""
    parts = dotted.split(".")
    out = dict(tree)
    node = out
    for p in parts[:-1]:
        child = dict(node.get(p) or {})
        node[p] = child
        node = child
    node[parts[-1]] = value
    return out


# String fields known to change the module tree, with the values worth trying.
STRING_ALTERNATIVES: dict[str, list[str]] = {
    "feed_forward_proj": ["relu", "gated-gelu", "gated-silu"],
    "position_embedding_type": ["absolute", "relative_key", "rotary"],
}


def perturbations(name: str, v: Any) -> list[Any]:
    leaf = name.rsplit(".", 1)[-1]
    if isinstance(v, str) and leaf in STRING_ALTERNATIVES:
        return [x for x in STRING_ALTERNATIVES[leaf] if x != v]
    if isinstance(v, bool):
        return [not v]
    if _is_int(v):
        if v < 0:
            return []
        if v == 0:
            return [1, 2]
        if v == 1:
            return [2, 3]
        if LAYER_FIELD_RE.match(name.rsplit(".", 1)[-1]):
            return [v * 2, v + 1]
        return [v * 2, v + 2, v * 3]
    if isinstance(v, list) and all(_is_int(x) for x in v) and len(v) <= 64:
        # index lists (mlp_only_layers, ...) and per-stage sizes (depths, hidden_sizes, ...)
        if not v:
            return [[1]]
        return [[], [2 * x for x in v]]
    return []


# Fields a config may leave None (or not define at all) that the *modeling* code then fills with a
# fallback. They are real inputs when a config.json sets them (Mistral-Nemo: head_dim 128 != 5120 // 32),
# so the generator fills them exactly like the model does, perturbs them explicitly, and records the
# fallback in the per-type file ("implicit") for the loader. The self-check rejects a wrong fallback.
IMPLICIT_RULES: list[tuple[str, str]] = [
    ("head_dim", "hidden_size // num_attention_heads"),
    ("num_key_value_heads", "num_attention_heads"),
]
_IMPLICIT: dict[str, str] = {}

# Integer fields that real config.json files set to null although the config class defaults them to a
# number, where null changes the module tree: DeepSeek-V2-Lite's and Moonlight-16B-A3B's
# ``q_lora_rank: null`` gives one ``q_proj`` instead of ``q_a_proj``/``q_a_layernorm``/``q_b_proj``
# (transformers models/deepseek_v2/modeling_deepseek_v2.py, ``if config.q_lora_rank is None``). The
# generator builds the None case too and lists such fields under "nullable" in the per-type file, so
# the loader trusts its module names for a null there.
NULLABLE_INT_FIELDS = {"q_lora_rank"}
_NULLABLE: set[str] = set()  # the flat names of such fields in the model type being analysed


def implicit_rules_for(env: dict[str, Any], model_type: str) -> dict[str, str]:
    out: dict[str, str] = {}
    prefixes = {""} | {k.rsplit(".", 1)[0] + "." for k in env if "." in k}
    for pre in sorted(prefixes):
        for f, rule in IMPLICIT_RULES:
            key = pre + f
            names = re.findall(r"[A-Za-z_]+", rule)
            if env.get(key) is not None:
                continue
            if not all(_is_int(env.get(pre + n)) for n in names):
                continue
            out[key] = re.sub(r"[A-Za-z_]+", lambda m: pre + m.group(0), rule)
    return out


def fill_implicit(env: dict[str, Any]) -> dict[str, Any]:
    for k, rule in _IMPLICIT.items():
        if env.get(k) is None:
            try:
                env[k] = evaluate(rule, env)
            except Exception:
                pass
    return env


def build_config(config_cls, kwargs: dict[str, Any]):
    import copy

    return config_cls(**copy.deepcopy(kwargs))


# --------------------------------------------------------------------------------------------------
# building models and extracting observations
# --------------------------------------------------------------------------------------------------


@dataclass
class ModObs:
    name: str
    cls: str
    kind: str
    slots: dict[str, int]  # in/out/kernel/groups/num/dim/embed
    params: list[tuple[str, tuple[int, ...], str | None]]  # (param name, shape, full name of earlier identical tensor)


@dataclass
class BuildObs:
    env: dict[str, Any]  # flat resolved config
    changed: set[str]  # flat fields that differ from the baseline
    role: str  # baseline | single | combo
    modules: list[ModObs]
    aliases: list[tuple[str, str]]
    lists: dict[str, int]  # ModuleList name -> length
    output_layer: str | None
    input_embeddings: str | None
    seq_cls_head: str | None
    total: int
    kwargs: dict[str, Any] = field(default_factory=dict)


def module_kind(m) -> str:
    import torch.nn as nn
    from transformers.pytorch_utils import Conv1D

    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, Conv1D):
        return "conv1d"
    if isinstance(m, nn.Embedding):
        return "embedding"
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return "conv"
    if isinstance(m, nn.MultiheadAttention):
        return "mha"
    if next(iter(m.children()), None) is not None:
        return "container"
    return "other"


def module_slots(m, kind: str) -> dict[str, int]:
    if kind == "linear":
        return {"in": int(m.in_features), "out": int(m.out_features)}
    if kind == "conv1d":
        return {"in": int(m.nx), "out": int(m.nf)}
    if kind == "embedding":
        return {"in": int(m.num_embeddings), "out": int(m.embedding_dim)}
    if kind == "conv":
        return {"in": int(m.in_channels), "out": int(m.out_channels), "groups": int(m.groups)}
    if kind == "mha":
        return {"in": int(m.embed_dim), "out": int(m.embed_dim)}
    return {}


def instantiate(model_cls, config):
    import torch

    with torch.device("meta"):
        try:
            return model_cls._from_config(config)
        except TypeError:
            return model_cls(config)


def observe(model, env: dict[str, Any], changed: set[str], role: str, kwargs: dict[str, Any]) -> BuildObs:
    import torch.nn as nn

    named = list(model.named_modules())
    id2name = {id(m): n for n, m in named}
    aliases = []
    for n, m in model.named_modules(remove_duplicate=False):
        canon = id2name.get(id(m))
        if canon is not None and canon != n:
            aliases.append((n, canon))
    seen: dict[int, str] = {}
    mods: list[ModObs] = []
    lists: dict[str, int] = {}
    total = 0
    for n, m in named:
        kind = module_kind(m)
        params = []
        for pn, p in m._parameters.items():
            if p is None:
                continue
            full = f"{n}.{pn}" if n else pn
            dup = seen.get(id(p))
            if dup is None:
                seen[id(p)] = full
                total += p.numel()
            params.append((pn, tuple(int(s) for s in p.shape), dup))
        mods.append(ModObs(n, type(m).__name__, kind, module_slots(m, kind), params))
        if isinstance(m, nn.ModuleList) and not isinstance(m, nn.Sequential):
            lists[n] = len(m)

    def _name_of(getter):
        try:
            mod = getter()
        except Exception:
            return None
        if mod is None or not isinstance(mod, nn.Module):
            return None
        return id2name.get(id(mod))

    out_layer = _name_of(model.get_output_embeddings) if hasattr(model, "get_output_embeddings") else None
    in_emb = _name_of(model.get_input_embeddings) if hasattr(model, "get_input_embeddings") else None
    head = None
    for hn in ("score", "classifier"):  # peft/utils/constants.py: SEQ_CLS_HEAD_NAMES
        h = getattr(model, hn, None)
        if isinstance(h, nn.Module):
            head = id2name.get(id(h))
            break
    return BuildObs(env, changed, role, mods, aliases, lists, out_layer, in_emb, head, total, kwargs)


# --------------------------------------------------------------------------------------------------
# folding layer indices
# --------------------------------------------------------------------------------------------------

PLACEHOLDERS = ["i", "j", "k", "l"]


def decide_fold_lists(builds: list[BuildObs]) -> set[str]:
    """Folded names of ModuleLists whose length is driven by an integer config field (a stack depth,
    a number of experts, ...). Lists whose length changes only when a flag flips (T5's per-block
    ``layer`` list grows a cross-attention entry with ``is_decoder``) keep literal indices."""
    fold: set[str] = set()
    changed = True
    while changed:
        changed = False
        lens: dict[str, dict[int, set[int]]] = {}
        for bi, b in enumerate(builds):
            for path, n in b.lists.items():
                fpath, _ = fold_name(path, fold)
                lens.setdefault(fpath, {}).setdefault(bi, set()).add(n)
        for fpath, per_build in lens.items():
            if fpath in fold:
                continue
            base_set = per_build.get(0)
            for bi, ns in per_build.items():
                b = builds[bi]
                if b.role != "single" or ns == base_set or base_set is None:
                    continue
                if any(_is_int(b.env.get(k)) or isinstance(b.env.get(k), list) for k in b.changed):
                    fold.add(fpath)
                    changed = True
                    break
    return fold


def fold_name(name: str, fold: set[str]) -> tuple[str, tuple[int, ...]]:
    """``model.layers.3.mlp`` -> (``model.layers.{i}.mlp``, (3,)) for folded list ``model.layers``."""
    if not name or not fold:
        return name, ()
    parts = name.split(".")
    out: list[str] = []
    idx: list[int] = []
    for p in parts:
        if p.isdigit() and ".".join(out) in fold:
            out.append("{" + PLACEHOLDERS[min(len(idx), len(PLACEHOLDERS) - 1)] + "}")
            idx.append(int(p))
        else:
            out.append(p)
    return ".".join(out), tuple(idx)


# --------------------------------------------------------------------------------------------------
# expression solver
# --------------------------------------------------------------------------------------------------


def _solve_linear(rows: list[list[int]], ys: list[int]) -> list[Fraction] | None:
    """Exact least squares (normal equations) ; None if singular or not an exact fit."""
    n = len(rows[0])
    ata = [[Fraction(0)] * n for _ in range(n)]
    aty = [Fraction(0)] * n
    for r, y in zip(rows, ys):
        for a in range(n):
            if r[a] == 0:
                continue
            aty[a] += r[a] * y
            for b in range(n):
                ata[a][b] += r[a] * r[b]
    # Gaussian elimination
    m = [row[:] + [aty[i]] for i, row in enumerate(ata)]
    for col in range(n):
        piv = next((r for r in range(col, n) if m[r][col] != 0), None)
        if piv is None:
            return None
        m[col], m[piv] = m[piv], m[col]
        pv = m[col][col]
        m[col] = [x / pv for x in m[col]]
        for r in range(n):
            if r != col and m[r][col] != 0:
                f = m[r][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col])]
    sol = [m[i][n] for i in range(n)]
    for r, y in zip(rows, ys):
        if sum(c * x for c, x in zip(sol, r)) != y:
            return None
    return sol


@dataclass(frozen=True)
class Mono:
    text: str  # as written in the expression language (parenthesised when needed)
    vars: tuple[str, ...]
    degree: int
    kind: str  # v | mul | div | mul3 | idx

    def value(self, env: dict[str, Any]) -> int | None:
        try:
            v = evaluate(self.text, env)
        except Exception:
            return None
        return v if _is_int(v) else None


def _var_ok(v: Any) -> bool:
    return _is_int(v)


def make_monomials(cands: list[str], allow3: bool, i_dep: bool, list_vars: list[str]) -> list[Mono]:
    """Candidate monomials in priority order (the two-term search only looks at the first 160)."""
    monos = [Mono(c, (c,), 1, "v") for c in cands]
    for a, b in itertools.combinations(cands, 2):
        monos.append(Mono(f"{a}*{b}", (a, b), 2, "mul"))
    # heads * (hidden // heads): attention widths computed in modeling code, not from a head_dim field
    for a, b in itertools.permutations(cands, 2):
        monos.append(Mono(f"{a}*({b}//{a})", (a, b), 2, "muldiv"))
    for a, b in itertools.permutations(cands, 2):
        monos.append(Mono(f"({a}//{b})", (a, b), 2, "div"))
    for a in cands:
        monos.append(Mono(f"{a}*{a}", (a,), 2, "sq"))
    for a in cands:
        for c in (2, 3, 4, 8):
            monos.append(Mono(f"({a}//{c})", (a,), 1, "divc"))
    for a, b, c in itertools.permutations(cands, 3):
        monos.append(Mono(f"{a}*({b}//{c})", (a, b, c), 3, "muldiv"))
    for a, b in itertools.permutations(cands, 2):
        monos.append(Mono(f"({a}//{b})*({a}//{b})", (a, b), 3, "divsq"))
        monos.append(Mono(f"{a}*{a}*{b}", (a, b), 3, "mul3"))
    if allow3:
        for a, b, c in itertools.combinations(cands, 3):
            monos.append(Mono(f"{a}*{b}*{c}", (a, b, c), 3, "mul3"))
        for a, b in itertools.combinations(cands, 2):
            for c in cands:
                if c not in (a, b):
                    monos.append(Mono(f"({a}*{b}//{c})", (a, b, c), 3, "muldiv3"))
    if i_dep:
        monos.append(Mono("i", ("i",), 1, "v"))
        for lv in list_vars:
            monos.append(Mono(f"{lv}[i]", (lv,), 1, "idx"))
    return monos


def format_sum(terms: list[tuple[int, Mono]], const: int) -> str:
    parts: list[str] = []
    for coef, mono in terms:
        if coef == 0:
            continue
        mag = abs(coef)
        body = mono.text if mag == 1 else f"{mag}*{mono.text}"
        if not parts:
            parts.append(("-" if coef < 0 else "") + body)
        else:
            parts.append(("- " if coef < 0 else "+ ") + body)
    if const or not parts:
        if not parts:
            parts.append(str(const))
        else:
            parts.append(("- " if const < 0 else "+ ") + str(abs(const)))
    return " ".join(parts)


class Solver:
    """Finds the simplest integer expression over config fields reproducing observed values.

    Candidate sums of 1-3 monomials are screened in batches with float least squares (numpy), and
    every survivor is verified exactly in integer arithmetic, so a returned expression always
    reproduces every observation exactly. If no single expression fits, the observations are split
    on a boolean config field (``(A) if flag else (B)``, up to two levels).
    """

    def __init__(self) -> None:
        self.cache: dict[Any, str | None] = {}
        self.deadline = float("inf")  # past it, only the cheap one-term search runs

    def solve(self, points: list[tuple[dict[str, Any], int]], cands: list[str], list_vars: list[str],
              bools: list[str] | None = None, depth: int = 0) -> str | None:
        if not points:
            return None
        res = self._solve_plain(points, cands, list_vars)
        if res is not None or depth >= 2:
            return res
        res = self._solve_by_layer_type(points, cands, list_vars)
        if res is not None:
            return res
        for b in bools or []:
            vals = {env.get(b) for env, _ in points}
            if not vals <= {True, False} or len(vals) < 2:
                continue
            yes = [(e, y) for e, y in points if e.get(b)]
            no = [(e, y) for e, y in points if not e.get(b)]
            rest = [x for x in (bools or []) if x != b]
            ra = self.solve(yes, cands, list_vars, rest, depth + 1)
            if ra is None:
                continue
            rb = self.solve(no, cands, list_vars, rest, depth + 1)
            if rb is None:
                continue
            return f"({ra}) if {b} else ({rb})"
        return None

    def _solve_by_layer_type(self, points, cands, list_vars) -> str | None:
        """Per-layer values that depend on the layer's type (Gemma 4: a larger head_dim on full-attention
        layers): ``(A) if layer_types[i] == "full_attention" else (B)``."""
        if not all("i" in env for env, _ in points):
            return None
        for lv in list_vars:
            try:
                keys = [env[lv][env["i"]] for env, _ in points]
            except (KeyError, IndexError, TypeError):
                continue
            if not all(isinstance(k, str) for k in keys):
                continue
            distinct = sorted(set(keys))
            if not 2 <= len(distinct) <= 3:
                continue
            parts = []
            for val in distinct:
                sub = [pt for pt, k in zip(points, keys) if k == val]
                r = self._solve_plain(sub, cands, [])
                if r is None:
                    break
                parts.append((val, r))
            else:
                expr = f"({parts[-1][1]})"
                for val, r in reversed(parts[:-1]):
                    expr = f"({r}) if {lv}[i] == {_q(val)} else {expr}"
                return expr
        return None

    def _solve_plain(self, points, cands, list_vars) -> str | None:
        ys = [y for _, y in points]
        cands = [c for c in cands if all(_var_ok(env.get(c)) for env, _ in points)]
        i_dep = False
        # does the value vary while no candidate variable varies? then it depends on the layer index
        by_env: dict[tuple, set[int]] = {}
        for env, y in points:
            key = tuple(env.get(c) for c in cands)
            by_env.setdefault(key, set()).add(y)
        if any(len(s) > 1 for s in by_env.values()):
            i_dep = True
        if len(set(ys)) == 1 and not i_dep:
            return str(ys[0])
        # drop candidates that are constant over the data (they cannot explain any variation)
        cands = [c for c in cands if len({env[c] for env, _ in points}) > 1]
        # merge candidates with identical value vectors (keep the first: callers order them by preference)
        uniq: list[str] = []
        seen_vec: set[tuple] = set()
        for c in cands:
            vec = tuple(env[c] for env, _ in points)
            if vec in seen_vec:
                continue
            seen_vec.add(vec)
            uniq.append(c)
        cands = uniq[:12]
        lvars = [lv for lv in list_vars if all(isinstance(env.get(lv), list) for env, _ in points)] if i_dep else []
        # identical rows (same variables, same index, same value) carry no information: keep one
        uniq_pts = {}
        for env, y in points:
            k = (tuple(env[c] for c in cands), env.get("i") if i_dep else None,
                 tuple(json.dumps(env.get(lv)) for lv in lvars), y)
            uniq_pts.setdefault(k, (env, y))
        points = list(uniq_pts.values())
        ys = [y for _, y in points]
        key = (tuple(ys), tuple(tuple(env.get(c) for c in cands) for env, _ in points), tuple(cands),
               tuple(tuple(env.get("i") for env, _ in points)) if i_dep else (), tuple(lvars))
        if key in self.cache:
            return self.cache[key]
        res = self._search(points, ys, cands, i_dep, lvars)
        self.cache[key] = res
        return res

    def _search(self, points, ys, cands, i_dep, lvars) -> str | None:
        import numpy as np

        allow3 = len(cands) <= 8
        monos = make_monomials(cands, allow3=allow3, i_dep=i_dep, list_vars=lvars)
        cols: list[tuple[Mono, list[int]]] = []
        seen_cols: set[tuple] = set()
        for mo in monos:
            col = [mo.value(env) for env, _ in points]
            if any(v is None for v in col):
                continue
            t = tuple(col)
            if t in seen_cols or len(set(t)) <= 1:
                continue
            seen_cols.add(t)
            cols.append((mo, col))
        if not cols:
            return None
        npts_all = len(points)
        # screen on at most 120 evenly spaced points (exact verification below uses all of them)
        if npts_all > 120:
            sel = sorted({round(k * (npts_all - 1) / 119) for k in range(120)})
        else:
            sel = list(range(npts_all))
        npts = len(sel)
        A = np.array([[c[p] for p in sel] for _, c in cols], dtype=np.float64).T  # P x M
        norms = np.linalg.norm(A, axis=0)
        norms[norms == 0] = 1.0
        An = A / norms
        Y = np.array([ys[p] for p in sel], dtype=np.float64)
        ynorm = float(np.linalg.norm(Y)) or 1.0
        ones = np.full((npts, 1), 1.0 / math.sqrt(npts))

        def exact(chosen: tuple[int, ...], coefs: list[int], const: int) -> bool:
            for p in range(npts_all):
                v = const
                for j, c in zip(chosen, coefs):
                    v += c * cols[j][1][p]
                if v != ys[p]:
                    return False
            return True

        def batch(combos: list[tuple[int, ...]]) -> list[tuple[tuple, str]]:
            found: list[tuple[tuple, str]] = []
            if not combos:
                return found
            k = len(combos[0])
            if k + 1 > npts:
                return found
            idx = np.array(combos, dtype=np.int64)  # K x k
            for s0 in range(0, len(combos), 20000):
                sl = idx[s0:s0 + 20000]
                X = An[:, sl]  # P x K x k
                X = np.concatenate([X, np.broadcast_to(ones[:, None, :], (npts, len(sl), 1))], axis=2)
                G = np.einsum("pkn,pkm->knm", X, X)
                G += np.eye(k + 1)[None] * 1e-12
                bvec = np.einsum("pkn,p->kn", X, Y)
                try:
                    sol = np.linalg.solve(G, bvec[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    continue
                pred = np.einsum("pkn,kn->pk", X, sol)
                resid = np.abs(pred - Y[:, None]).max(axis=0)
                ok = np.nonzero(resid <= 1e-6 * max(ynorm, 1.0) + 1e-6)[0]
                for r in ok:
                    chosen = tuple(int(x) for x in sl[r])
                    raw = sol[r]
                    coefs = [raw[t] / norms[j] for t, j in enumerate(chosen)]
                    const = raw[k] / math.sqrt(npts)
                    ic = [int(round(c)) for c in coefs]
                    icst = int(round(const))
                    if any(c == 0 or abs(c) > 1024 for c in ic):
                        continue
                    if not exact(chosen, ic, icst):
                        continue
                    text = format_sum([(c, cols[j][0]) for c, j in zip(ic, chosen)], icst)
                    deg = sum(cols[j][0].degree for j in chosen)
                    plain = sum(0 if cols[j][0].kind == "v" else 1 for j in chosen)
                    found.append(((deg, plain, 1 if icst else 0, len(text)), text))
            return found

        M = len(cols)
        best = batch([(j,) for j in range(M)])
        if best:
            return min(best)[1]
        if cpu_seconds() > self.deadline:
            return None
        best = batch(list(itertools.combinations(range(min(M, 160)), 2)))
        if best:
            return min(best)[1]
        if i_dep or cpu_seconds() > self.deadline:
            return None
        small = [j for j, (mo, _) in enumerate(cols) if mo.kind in ("v", "mul", "sq", "mul3", "idx", "muldiv")][:45]
        best = batch(list(itertools.combinations(small, 3)))
        if best:
            return min(best)[1]
        return None


# --------------------------------------------------------------------------------------------------
# predicate solver
# --------------------------------------------------------------------------------------------------


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def predicate_atoms(envs: list[dict[str, Any]], fields: list[str], indexed: bool) -> list[str]:
    atoms: list[str] = ["i == 0", "i != 0"] if indexed else []
    sample = envs[0]
    ints = [f for f in fields if _is_int(sample.get(f))]
    if len(ints) <= 12:
        for a, b in itertools.combinations(ints, 2):
            atoms += [f"{a} == {b}", f"{a} != {b}"]
    small_ints = [k for k, v in sample.items()
                  if _is_int(v) and 0 <= v <= 64 and k not in fields and "[" not in k and k != "i"
                  and not SKIP_FIELD_RE.search(k.rsplit(".", 1)[-1]) and all(_is_int(e.get(k)) for e in envs)]
    for f in list(fields) + (small_ints if indexed else []):
        vals = [e.get(f) for e in envs]
        v0 = sample.get(f)
        if isinstance(v0, bool):
            atoms += [f, f"not {f}"]
        elif _is_int(v0):
            atoms += [f"{f} > 0", f"{f} == 0"]
            if any(v is None for v in vals):  # a NULLABLE_INT_FIELDS field built as None
                atoms += [f"{f} == None", f"{f} != None"]
            small = sorted({v for v in vals if _is_int(v)})
            if len(small) <= 4:
                for c in small:
                    if c not in (0,):
                        atoms += [f"{f} == {c}", f"{f} != {c}"]
            if indexed:
                atoms += [f"i >= {f}", f"i < {f}", f"(i + 1) % {f} == 0", f"i % {f} == 0", f"(i + 1) % {f} != 0",
                          f"i % {f} != 0", f"i == {f} - 1", f"i != {f} - 1"]
                offsets = [k for k in list(fields) + small_ints if not SKIP_FIELD_RE.search(k.rsplit(".", 1)[-1])]
                for g in offsets:
                    if g != f and _is_int(sample.get(g)):
                        atoms += [f"i % {f} == {g}", f"i % {f} != {g}"]
                for c in (1, 2, 3):
                    atoms += [f"i % {f} == {c}"]
                if LAYER_FIELD_RE.match(f.rsplit(".", 1)[-1]):
                    # the last G layers differ (Gemma 3n / 4: KV shared by the last num_kv_shared_layers)
                    for g in fields:
                        if g != f and _is_int(sample.get(g)):
                            atoms += [f"i < {f} - {g}", f"i >= {f} - {g}"]
        elif isinstance(v0, str) or v0 is None:
            strs = sorted({v for v in vals if isinstance(v, str)})
            for s in strs[:6]:
                atoms += [f"{f} == {_q(s)}", f"{f} != {_q(s)}"]
            if any(v is None for v in vals):
                atoms += [f"{f} == None", f"{f} != None"]
            if indexed and strs and all(isinstance(v, str) and len(v) > 1 for v in vals):
                chars = sorted({ch for v in vals for ch in v})
                for ch in chars[:6]:
                    atoms += [f"{f}[i] == {_q(ch)}", f"{f}[i] != {_q(ch)}"]
        elif isinstance(v0, list) and indexed:
            items = {x for e in envs for x in (e.get(f) or []) if not isinstance(x, (list, dict))}
            if all(_is_int(x) for x in items):
                atoms += [f"i in {f}", f"i not in {f}"]
            strs = sorted(x for x in items if isinstance(x, str))
            for s in strs[:8]:
                atoms += [f"{f}[i] == {_q(s)}", f"{f}[i] != {_q(s)}"]
            bools = [x for x in items if isinstance(x, bool)]
            if bools:
                atoms += [f"{f}[i]", f"not {f}[i]"]
    return atoms


_PRED_CACHE: dict[Any, str | None] = {}


def solve_predicate(obs: list[tuple[dict[str, Any], bool]], fields: list[str], indexed: bool,
                    prefer: set[str]) -> str | None:
    """Smallest conjunction (<= 3 atoms) of template atoms that equals the observed truth values.

    Tries the fields the one-at-a-time variants implicate first, then all fields."""
    if all(v for _, v in obs):
        return "true"
    if not any(v for _, v in obs):
        return "false"
    key = (tuple(v for _, v in obs), tuple(id(e) for e, _ in obs), tuple(fields), indexed, tuple(sorted(prefer)))
    if key in _PRED_CACHE:
        return _PRED_CACHE[key]
    res = None
    pref_fields = [f for f in fields if f in prefer]
    if pref_fields and len(pref_fields) < len(fields):
        res = _solve_predicate(obs, pref_fields, indexed, prefer)
    if res is None:
        res = _solve_predicate(obs, fields, indexed, prefer)
    _PRED_CACHE[key] = res
    return res


def _solve_predicate(obs, fields, indexed, prefer) -> str | None:
    envs = [e for e, _ in obs]
    atoms = predicate_atoms(envs, fields, indexed)
    pos = [e for e, v in obs if v]
    neg = [e for e, v in obs if not v]

    def holds_all(atom: str, group, want: bool) -> bool:
        for e in group:
            try:
                r = evaluate(atom, e)
            except Exception:
                return False
            if not isinstance(r, bool) or r != want:
                return False
        return True

    def bits(atom: str) -> int | None:
        out = 0
        for k, (e, _) in enumerate(obs):
            try:
                r = evaluate(atom, e)
            except Exception:
                return None
            if not isinstance(r, bool):
                return None
            if r:
                out |= 1 << k
        return out

    full = (1 << len(obs)) - 1
    target = 0
    for k, (_, v) in enumerate(obs):
        if v:
            target |= 1 << k
    necessary: list[tuple[str, int]] = []
    sufficient: list[tuple[str, int]] = []
    seen: set[int] = set()
    seen_s: set[int] = set()
    for a in atoms:
        # necessary: true wherever the module exists; sufficient: false wherever it does not
        nec = holds_all(a, pos, True)
        suf = holds_all(a, neg, False)
        if not nec and not suf:
            continue
        t = bits(a)
        if t is None:
            continue
        if nec and t != full and t not in seen:
            seen.add(t)
            necessary.append((a, t))
        if suf and t != 0 and t not in seen_s:
            seen_s.add(t)
            sufficient.append((a, t))

    def score(a: str) -> tuple:
        found = [n for n in re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", a) if n not in ("i", "not", "and", "or", "in", "None")]
        names = set(found)
        affinity = 0
        if len(found) == 2:  # `i % expert_layer_period == expert_layer_offset`: related names belong together
            affinity = len(os.path.commonprefix(found))
        return (-len(names & prefer), len(names - prefer), -affinity, len(a))

    necessary.sort(key=lambda at: score(at[0]))
    necessary = necessary[:60]
    for k in (1, 2, 3):
        for combo in itertools.combinations(necessary, k):
            acc = full
            for _, t in combo:
                acc &= t
            if acc == target:
                return " and ".join(a if (" or " not in a) else f"({a})" for a, _ in combo)
    sufficient.sort(key=lambda at: score(at[0]))
    sufficient = sufficient[:60]
    for combo in itertools.combinations(sufficient, 2):
        if combo[0][1] | combo[1][1] == target:
            return " or ".join(f"({a})" if " and " in a else a for a, _ in combo)
    return None


# --------------------------------------------------------------------------------------------------
# per-class analysis
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassResult:
    record: dict[str, Any]
    builds: int
    seconds: float


def _flat_changed(env: dict[str, Any], base: dict[str, Any]) -> set[str]:
    keys = set(env) | set(base)
    return {k for k in keys if env.get(k) != base.get(k)}


def _numeric_env(env: dict[str, Any]) -> dict[str, Any]:
    """The environment the solver sees: ints, plus scalar lists, plus `ints[k]` for short int lists."""
    out = dict(env)
    for k, v in env.items():
        if isinstance(v, list) and 0 < len(v) <= 8 and all(_is_int(x) for x in v):
            for idx, x in enumerate(v):
                out[f"{k}[{idx}]"] = x
    return out


def _var_order(name: str) -> tuple:
    """Solver preference among variables with identical data: plain, common names first."""
    common = ["hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "head_dim",
              "vocab_size", "num_hidden_layers", "num_labels", "moe_intermediate_size", "num_local_experts",
              "num_experts", "d_model", "n_embd", "n_head", "n_inner", "d_ff", "d_kv", "num_heads"]
    leaf = name.rsplit(".", 1)[-1]
    return (name.count("."), 0 if leaf in common else 1, common.index(leaf) if leaf in common else 99, len(name),
            name)


def analyse_class(
    model_cls,
    config_cls,
    base_kwargs: dict[str, Any],
    single_variants: list[tuple[str, dict[str, Any]]],
    combo_variants: list[dict[str, Any]],
    solver: Solver,
    derived_inputs: set[str],
    deadline: float,
    base_env_defaults: dict[str, Any],
) -> tuple[dict[str, Any], list[BuildObs], set[str]]:
    """Build ``model_cls`` under the baseline and the variants and solve its module records."""
    builds: list[BuildObs] = []

    def build(kwargs, role, label=""):
        cfg = build_config(config_cls, kwargs)
        # the config as config.json would state it: flattened BEFORE the model's __init__ may mutate it
        env = fill_implicit(flatten_config(cfg))
        model = instantiate(model_cls, cfg)
        obs = observe(model, env, set(), role, kwargs)
        del model
        return obs

    base = build(base_kwargs, "baseline")
    builds.append(base)
    relevant: set[str] = set()
    for label, kw in single_variants:
        if cpu_seconds() > deadline or len(builds) > MAX_BUILDS_PER_CLASS:
            break
        try:
            ob = build(kw, "single", label)
        except Timeout:
            raise
        except Exception:
            continue
        ob.changed = _flat_changed(ob.env, base.env)
        if structural_signature(ob) != structural_signature(base) or len(ob.changed - {label}) > 0:
            relevant.add(label)
        builds.append(ob)
    for kw in combo_variants:
        if cpu_seconds() > deadline:
            break
        try:
            ob = build(kw, "combo")
        except Timeout:
            raise
        except Exception:
            continue
        ob.changed = _flat_changed(ob.env, base.env)
        builds.append(ob)
    record = solve_class(builds, solver, derived_inputs)
    return record, builds, relevant


def structural_signature(b: BuildObs) -> tuple:
    return (tuple((m.name, m.cls, tuple(sorted(m.slots.items())), tuple((p[0], p[1], p[2]) for p in m.params))
                  for m in b.modules), b.total)


def solve_class(builds: list[BuildObs], solver: Solver, derived_inputs: set[str]) -> dict[str, Any]:
    base = builds[0]
    fold = decide_fold_lists(builds)
    notes: list[str] = []
    unsolved: list[str] = []

    # ---- group observations by (folded name, class) ----
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for bi, b in enumerate(builds):
        for pos, m in enumerate(b.modules):
            fname, idx = fold_name(m.name, fold)
            key = (fname, m.cls)
            g = groups.get(key)
            if g is None:
                g = groups[key] = {"kind": m.kind, "inst": [], "pos": (bi, pos)}
                order.append(key)
            g["inst"].append((bi, idx, m))
    # keep the order of first appearance in the baseline, then the others
    first_pos: dict[tuple[str, str], tuple[int, int]] = {}
    for key, g in groups.items():
        first_pos[key] = g["pos"]

    # ---- lists: count expressions ----
    list_counts: dict[str, str] = {}
    list_points: dict[str, list[tuple[dict[str, Any], int]]] = {}
    for bi, b in enumerate(builds):
        nenv = _numeric_env(b.env)
        for path, n in b.lists.items():
            fpath, idx = fold_name(path, fold)
            if fpath not in fold:
                continue
            list_points.setdefault(fpath, []).append(({**nenv, **_idx_env(idx)}, n))

    def cand_vars(points_builds: Iterable[int], values_by_build: dict[int, Any]) -> list[str]:
        """Variables that changed in single-variant builds in which the observed value changed."""
        names: set[str] = set()
        bval = values_by_build.get(0)
        for bi in points_builds:
            b = builds[bi]
            if b.role != "single":
                continue
            if values_by_build.get(bi) != bval:
                names |= b.changed
        if bval is None:
            # Absent from the baseline, present with a nullable field None (DeepSeek's q_proj, q_lora_rank
            # None): the fields it depends on are those the None-case combos vary on top of that None, one
            # input (and what derives from it) at a time; the combined None combos only validate.
            ref = next((bi for bi in points_builds if builds[bi].role == "single" and any(
                k in _NULLABLE and builds[bi].env.get(k) is None for k in builds[bi].changed)), None)
            if ref is not None:
                rv, rc = values_by_build.get(ref), builds[ref].changed
                for bi in points_builds:
                    b = builds[bi]
                    if (b.role == "combo" and rc <= b.changed and len(b.changed - rc) <= 4
                            and values_by_build.get(bi) != rv):
                        names |= b.changed - rc
        ordered = sorted(names, key=_var_order)
        return ordered

    all_list_vars = sorted({k for b in builds for k, v in b.env.items() if isinstance(v, list)})
    wide_cands = sorted({k for b in builds for k in b.changed if _is_int(b.env.get(k))}, key=_var_order)
    bool_cands = sorted({k for b in builds for k in b.changed if isinstance(b.env.get(k), bool)}, key=_var_order)

    for fpath, pts in list_points.items():
        vals_by_build: dict[int, Any] = {}
        bis = []
        for bi, b in enumerate(builds):
            vs = tuple(sorted((fold_name(p, fold)[1], n) for p, n in b.lists.items() if fold_name(p, fold)[0] == fpath))
            vals_by_build[bi] = vs
            bis.append(bi)
        cands = cand_vars(bis, vals_by_build)
        expr = solve_with_fallback(solver, pts, cands, all_list_vars, wide_cands, bool_cands)
        if expr is None:
            unsolved.append(f"count of {fpath}")
            expr = str(pts[0][1])
        list_counts[fpath] = expr

    # ---- per-group records ----
    records: list[dict[str, Any]] = []
    for key in sorted(order, key=lambda k: first_pos[k]):
        fname, cls = key
        g = groups[key]
        kind = g["kind"]
        rec: dict[str, Any] = {"n": fname, "c": cls, "k": kind}
        # slots & param shapes
        slot_points: dict[str, list[tuple[dict[str, Any], int]]] = {}
        slot_vals_by_build: dict[str, dict[int, Any]] = {}
        param_names: list[str] = []
        ties: dict[str, dict[int, list[tuple[tuple, str | None]]]] = {}
        kinds = set()
        for bi, idx, m in g["inst"]:
            kinds.add(m.kind)
            env = _env_for(builds, bi, idx)
            for s, v in m.slots.items():
                slot_points.setdefault(s, []).append((env, v))
                slot_vals_by_build.setdefault(s, {}).setdefault(bi, []).append((idx, v))
            for pn, shape, dup in m.params:
                if pn not in param_names:
                    param_names.append(pn)
                for d, v in enumerate(shape):
                    sk = f"p:{pn}:{d}"
                    slot_points.setdefault(sk, []).append((env, v))
                    slot_vals_by_build.setdefault(sk, {}).setdefault(bi, []).append((idx, v))
                sk = f"nd:{pn}"
                slot_points.setdefault(sk, []).append((env, len(shape)))
                ties.setdefault(pn, {}).setdefault(bi, []).append((idx, dup))
        if len(kinds) > 1:
            notes.append(f"{fname}: kind varies with config ({sorted(kinds)})")
        # solve slots
        solved: dict[str, Any] = {}
        aliased = conditional_aliases(g, list(slot_points))
        for sk, pts in slot_points.items():
            if sk in aliased:
                continue
            vb = {bi: frozenset(x for _, x in v) for bi, v in slot_vals_by_build.get(sk, {}).items()}
            cands = cand_vars(vb.keys(), vb)
            expr = solve_with_fallback(solver, pts, cands, all_list_vars, wide_cands, bool_cands)
            if expr is None:
                if os.environ.get("KB_DEBUG"):
                    print("UNSOLVED", fname, sk, "cands", cands, "wide", wide_cands[:20], file=sys.stderr)
                    for env, v in pts[:40]:
                        print("   ", v, {c: env.get(c) for c in (cands + wide_cands)[:14]}, file=sys.stderr)
                unsolved.append(f"{fname}[{cls}].{sk}")
                expr = str(pts[0][1])
            solved[sk] = int(expr) if re.fullmatch(r"-?\d+", expr) else expr
        for sk, other in aliased.items():
            solved[sk] = solved[other]
        for s in ("in", "out", "ks", "groups"):
            if s in solved:
                rec[s] = solved[s]
        # params: name, ndim, shape exprs, presence predicate, tie
        plist = []
        for pn in param_names:
            nd = solved.get(f"nd:{pn}")
            if not isinstance(nd, int):
                notes.append(f"{fname}.{pn}: rank varies with config")
                nd = max(k for k in range(8) if f"p:{pn}:{k - 1}" in solved or k == 0)
            shape = [solved.get(f"p:{pn}:{d}") for d in range(nd)]
            pent: list[Any] = [pn, shape]
            plist.append(pent)
        rec["p"] = plist
        # presence of the whole record (per build, per index) and of each param
        rec_where = presence_predicate(builds, g, fold, fname, list_counts, notes)
        if rec_where is None:
            if os.environ.get("KB_DEBUG"):
                present: dict[int, set] = {}
                for bi, idx, m in g["inst"]:
                    present.setdefault(bi, set()).add(idx)
                print("PRESENCE", fname, cls, file=sys.stderr)
                for bi, b in enumerate(builds):
                    print("   ", bi, b.role, sorted(b.changed)[:5], sorted(present.get(bi, set()))[:20],
                          {k: b.env.get(k) for k in ("num_hidden_layers", "num_experts", "expert_layer_period",
                                                     "expert_layer_offset")}, file=sys.stderr)
            unsolved.append(f"{fname}[{cls}] presence")
        elif rec_where != "true":
            rec["w"] = rec_where
        for pent in plist:
            pn = pent[0]
            pw = param_presence(builds, g, pn)
            if pw is None:
                unsolved.append(f"{fname}.{pn} presence")
            elif pw != "true":
                pent.append({"w": pw})
            tie = tie_rule(builds, g, pn, fold)
            if tie == "?":
                unsolved.append(f"{fname}.{pn} tie")
            elif tie is not None:
                if len(pent) == 2:
                    pent.append({})
                pent[2]["t"] = tie
        records.append(rec)

    # ---- aliases (same module object under several names; matter for modules_to_save) ----
    alias_set: dict[tuple[str, str], list[bool]] = {}
    for b in builds:
        for a, c in b.aliases:
            alias_set.setdefault((fold_name(a, fold)[0], fold_name(c, fold)[0]), []).append(True)
    aliases = sorted(alias_set.keys())

    def _stable(getter):
        names = {getter(b) for b in builds}
        folded = {fold_name(n, fold)[0] if n else None for n in names}
        if len(folded) > 1:
            notes.append(f"{getter.__name__} varies with config: {sorted(map(str, folded))}")
        return fold_name(getter(base), fold)[0] if getter(base) else None

    def output_layer(b):
        return b.output_layer

    def input_embeddings(b):
        return b.input_embeddings

    def seq_cls_head(b):
        return b.seq_cls_head

    rec_class: dict[str, Any] = {
        "output_layer": _stable(output_layer),
        "input_embeddings": _stable(input_embeddings),
        "seq_cls_head": _stable(seq_cls_head),
        "lists": list_counts,
        "modules": records,
    }
    if aliases:
        rec_class["aliases"] = [list(a) for a in aliases]
    rec_class["_unsolved"] = unsolved
    rec_class["_notes"] = notes
    return rec_class


def conditional_aliases(g, keys: list[str]) -> dict[str, str]:
    """A dimension of a parameter that exists only under some configs (a bias behind ``attention_bias``)
    is seen in few builds, so its own search is weak. If it equals an always-present slot of the same
    module in every observation (bias == out_features), it takes that slot's expression."""
    values: dict[str, list[Any]] = {k: [] for k in keys}
    for bi, idx, m in g["inst"]:
        row: dict[str, Any] = dict(m.slots)
        for pn, shape, _ in m.params:
            for d, v in enumerate(shape):
                row[f"p:{pn}:{d}"] = v
        for k in keys:
            values[k].append(row.get(k))
    always = [k for k in keys if all(v is not None for v in values[k]) and not k.startswith("nd:")]
    out: dict[str, str] = {}
    for k in keys:
        if not k.startswith("p:") or all(v is not None for v in values[k]):
            continue
        for other in ["out", "in"] + [o for o in always if o.startswith("p:")]:
            if other not in always or other == k:
                continue
            if all(v is None or v == o for v, o in zip(values[k], values[other])):
                out[k] = other
                break
    return out


def solve_with_fallback(solver: Solver, pts, cands: list[str], list_vars: list[str], wide: list[str],
                        bools: list[str] = ()) -> str | None:
    """Solve over the variables the one-at-a-time variants implicate; if that fails, over all varied
    ones; if that fails, piecewise on boolean fields."""
    expr = solver.solve(pts, cands, list_vars)
    if expr is not None:
        return expr
    more = cands + [w for w in wide if w not in cands]
    if len(more) > len(cands):
        expr = solver.solve(pts, more, list_vars)
        if expr is not None:
            return expr
    # piecewise only on flags whose one-at-a-time flip changed this value
    implicated = [b for b in cands if b in set(bools)][:3]
    if implicated:
        return solver.solve(pts, more, list_vars, implicated)
    return None


_ENV_MEMO: dict[tuple[int, tuple[int, ...]], dict[str, Any]] = {}
_ENV_OWNER: list[Any] = [None]


def _env_for(builds, bi: int, idx: tuple[int, ...]) -> dict[str, Any]:
    """One shared environment object per (build, index) so predicate results can be cached by identity."""
    if _ENV_OWNER[0] is not builds:
        _ENV_MEMO.clear()
        _PRED_CACHE.clear()
        _ENV_OWNER[0] = builds
    key = (bi, idx)
    env = _ENV_MEMO.get(key)
    if env is None:
        env = {**_numeric_env(builds[bi].env), **_idx_env(idx)}
        _ENV_MEMO[key] = env
    return env


def _idx_env(idx: tuple[int, ...]) -> dict[str, int]:
    return {PLACEHOLDERS[min(k, len(PLACEHOLDERS) - 1)]: v for k, v in enumerate(idx)}


def presence_predicate(builds, g, fold, fname, list_counts, notes) -> str | None:
    """Where the record exists: a config-level predicate, or a per-layer predicate over ``i``."""
    n_ph = fname.count("{")
    present: dict[int, set[tuple[int, ...]]] = {}
    for bi, idx, m in g["inst"]:
        present.setdefault(bi, set()).add(idx)
    # the list that provides {i}
    parts = fname.split(".")
    if n_ph == 0:
        obs = [(_env_for(builds, bi, ()), bi in present) for bi, b in enumerate(builds)]
        fields = _pred_fields(builds)
        return solve_predicate(obs, fields, indexed=False, prefer=_prefer(builds, present))
    # outer list path
    ipos = parts.index("{i}")
    outer = ".".join(parts[:ipos])
    obs = []
    for bi, b in enumerate(builds):
        # the outer list may appear several times if it is itself nested; keep the first-level only
        n = None
        for path, ln in b.lists.items():
            if fold_name(path, fold)[0] == outer:
                n = ln
                break
        if n is None:
            # the list does not exist in this build: the record exists nowhere
            if bi in present:
                return None
            continue
        seen_i = {idx[0] for idx in present.get(bi, set())}
        for i in range(n):
            obs.append((_env_for(builds, bi, (i,)), i in seen_i))
        if n_ph > 1:
            # inner placeholders must be complete (every expert etc.)
            inner_sets = {}
            for idx in present.get(bi, set()):
                inner_sets.setdefault(idx[0], set()).add(idx[1:])
            for i, s in inner_sets.items():
                total = 1
                for inner in s:
                    pass
                sizes = [max(x[k] for x in s) + 1 for k in range(n_ph - 1)]
                total = math.prod(sizes)
                if len(s) != total:
                    notes.append(f"{fname}: inner index set incomplete")
                    return None
    fields = _pred_fields(builds)
    return solve_predicate(obs, fields, indexed=True, prefer=_prefer(builds, present))


def _pred_fields(builds) -> list[str]:
    fields: set[str] = set()
    for b in builds:
        if b.role == "single":
            fields |= b.changed
    base = builds[0].env
    # include list / str / bool fields of the baseline even if never perturbed (layer_types, flags ...)
    for k, v in base.items():
        if isinstance(v, (list, str, bool)) and "[" not in k:
            fields.add(k)
    return sorted(fields, key=_var_order)


def _prefer(builds, present) -> set[str]:
    """Fields whose one-at-a-time perturbation changed where the record exists (layer-count effects
    are ignored by comparing only indices both builds have)."""
    out: set[str] = set()
    base_p = present.get(0, set())

    def firsts(s):
        return {x[0] if x else -1 for x in s}

    base_f = firsts(base_p)
    for bi, b in enumerate(builds):
        if b.role != "single":
            continue
        cur = firsts(present.get(bi, set()))
        if cur == base_f:
            continue
        cut = min(max(base_f, default=-1), max(cur, default=-1)) + 1
        if not base_p or not present.get(bi) or {x for x in cur if x < cut} != {x for x in base_f if x < cut}:
            out |= b.changed
    return out


def param_presence(builds, g, pn) -> str | None:
    obs = []
    for bi, idx, m in g["inst"]:
        env = _env_for(builds, bi, idx)
        obs.append((env, any(p[0] == pn for p in m.params)))
    if all(v for _, v in obs):
        return "true"
    fields = _pred_fields(builds)
    prefer: set[str] = set()
    return solve_predicate(obs, fields, indexed=bool(g["inst"][0][1]), prefer=prefer)


def tie_rule(builds, g, pn, fold) -> Any:
    """None (never tied), or [source folded name, predicate] when this param is an earlier tensor."""
    obs = []
    sources: set[str] = set()
    for bi, idx, m in g["inst"]:
        env = _env_for(builds, bi, idx)
        for p in m.params:
            if p[0] == pn:
                obs.append((env, p[2] is not None))
                if p[2] is not None:
                    sources.add(fold_name(p[2], fold)[0])
    if not any(v for _, v in obs):
        return None
    if len(sources) != 1:
        return "?"
    fields = _pred_fields(builds)
    pred = solve_predicate(obs, fields, indexed=bool(g["inst"][0][1]), prefer=set())
    if pred is None:
        return "?"
    return [next(iter(sources)), pred]


# --------------------------------------------------------------------------------------------------
# self check: re-derive every build from the records
# --------------------------------------------------------------------------------------------------


def expand_records(rec_class: dict[str, Any], env: dict[str, Any]) -> tuple[list[tuple[str, str, dict, list]], int]:
    """Concrete (name, class, slots, params) list and total parameter count, by the loader's own expansion
    (loralint/knowledge/models.py ``_expand``), so the self-check tests exactly what users get.

    Strict where the loader is lenient: an expression that does not evaluate on this build's config is an
    error here (the loader would fall back to the defaults and mark the result approximate).
    """
    ev = _Evaluator(env, env)
    modules = _expand(rec_class["modules"], rec_class.get("lists", {}), ev)
    if ev.failures:
        raise ValueError(f"expressions that do not evaluate: {sorted(ev.failures)[:3]}")
    out = []
    total = 0
    for m in modules:
        # the slots module_slots() observes; Module.kernel_numel is derived from the weight, not a slot
        slots = {s: v for s, v in (("in", m.in_features), ("out", m.out_features), ("groups", m.groups))
                 if v is not None}
        params = [(p.local_name, p.shape, p.tied_to is not None) for p in m.params]
        total += m.num_params
        out.append((m.name, m.cls, slots, params))
    return out, total


def self_check(rec_class: dict[str, Any], builds: list[BuildObs]) -> list[str]:
    problems = []
    for bi, b in enumerate(builds):
        try:
            mods, total = expand_records(rec_class, b.env)
        except ModelTooLarge:
            # A variant past the loader's bound (NLLB-MoE with hundreds of experts a layer): users get LORA906
            # for such a config, never a count, so it says nothing about the counts the loader gives.
            continue
        except Exception as exc:  # pragma: no cover - diagnostic path
            problems.append(f"build {bi} ({b.role}): expansion failed: {exc!r}")
            continue
        want = [(m.name, m.cls, m.slots, [(p[0], p[1], p[2] is not None) for p in m.params]) for m in b.modules]
        got = [(n, c, s, list(p)) for n, c, s, p in mods]
        if sorted(want, key=lambda x: x[0]) != sorted(got, key=lambda x: x[0]):
            wn = {w[0]: w for w in want}
            gn = {g[0]: g for g in got}
            missing = sorted(set(wn) - set(gn))[:3]
            extra = sorted(set(gn) - set(wn))[:3]
            diff = [n for n in wn if n in gn and wn[n] != gn[n]][:2]
            detail = f"missing {missing} extra {extra} differ " + "; ".join(f"{wn[n]} vs {gn[n]}" for n in diff)
            problems.append(f"build {bi} ({b.role}, changed {sorted(b.changed)[:4]}): {detail}"[:600])
        elif total != b.total:
            problems.append(f"build {bi}: total {total} != {b.total}")
    return problems


# --------------------------------------------------------------------------------------------------
# derived config fields
# --------------------------------------------------------------------------------------------------


def solve_derived(config_cls, base_kwargs, single_variants, combo_variants, solver: Solver) -> tuple[dict, list]:
    """Rules for flat fields that the config classes compute from other fields when omitted."""
    envs: list[tuple[dict[str, Any], set[str], str]] = []
    base_env = flatten_config(build_config(config_cls, base_kwargs))
    for label, kw in single_variants:
        try:
            env = flatten_config(build_config(config_cls, kw))
        except Exception:
            continue
        envs.append((env, {label}, "single"))
    for kw in combo_variants:
        try:
            env = flatten_config(build_config(config_cls, kw))
        except Exception:
            continue
        envs.append((env, set(_flat_keys(kw)), "combo"))
    derived: set[str] = set()
    dep: dict[str, set[str]] = {}
    for env, labels, role in envs:
        if role != "single":
            continue
        for k in set(env) | set(base_env):
            if k in labels:
                continue
            if env.get(k) != base_env.get(k):
                derived.add(k)
                dep.setdefault(k, set()).update(labels)
    rules: dict[str, Any] = {}
    unsolved: list[str] = []
    for k in sorted(derived):
        # observations where k was left to the config class (not passed explicitly)
        all_envs = [base_env] + [e for e, labels, _ in envs if k not in labels]
        v0 = base_env.get(k)
        cands = sorted(dep.get(k, set()), key=_var_order)
        wide = sorted({kk for e, labels, _ in envs for kk in labels if kk != k}, key=_var_order)
        cands = cands + [w for w in wide if w not in cands]
        if _is_int(v0) and all(_is_int(e.get(k)) for e in all_envs):
            pts = [(_numeric_env(e), e[k]) for e in all_envs]
            expr = solver.solve(pts, cands, [])
            if expr is None:
                unsolved.append(k)
            else:
                rules[k] = {"expr": int(expr) if re.fullmatch(r"-?\d+", expr) else expr}
        elif isinstance(v0, list) and all(isinstance(e.get(k), list) for e in all_envs):
            rule = solve_list_rule(k, all_envs, cands, solver)
            if rule is None:
                unsolved.append(k)
            else:
                rules[k] = rule
        elif isinstance(v0, bool) or isinstance(v0, str) or v0 is None:
            # value picked among a few alternatives
            vals = {json.dumps(e.get(k)) for e in all_envs}
            if len(vals) <= 6:
                rule = solve_choice_rule(k, all_envs, cands)
                if rule is not None:
                    rules[k] = rule
                    continue
            unsolved.append(k)
        else:
            unsolved.append(k)
    return rules, unsolved


def _flat_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in tree.items():
        if isinstance(v, dict) and k.endswith("_config"):
            out += _flat_keys(v, f"{prefix}{k}.")
        else:
            out.append(prefix + k)
    return out


def solve_list_rule(k: str, envs: list[dict[str, Any]], cands: list[str], solver: Solver) -> dict | None:
    # length
    pts = [(_numeric_env(e), len(e[k])) for e in envs]
    len_expr = solver.solve(pts, cands, [])
    if len_expr is None:
        return None
    values = sorted({json.dumps(x) for e in envs for x in e[k]})
    if len(values) == 1:
        return {"len": _maybe_int(len_expr), "item": json.loads(values[0])}
    if len(values) != 2:
        return None
    a, b = (json.loads(v) for v in values)
    obs = []
    for e in envs:
        ne = _numeric_env(e)
        for i, x in enumerate(e[k]):
            obs.append(({**ne, "i": i}, x == a))
    fields = [c for c in cands if c != k]
    pred = solve_predicate(obs, fields, indexed=True, prefer=set(fields))
    if pred is None:
        return None
    return {"len": _maybe_int(len_expr), "when": pred, "then": a, "else": b}


def solve_choice_rule(k: str, envs: list[dict[str, Any]], cands: list[str]) -> dict | None:
    vals = []
    for e in envs:
        v = e.get(k)
        if v not in vals:
            vals.append(v)
    if len(vals) == 1:
        return {"value": vals[0]}
    if len(vals) != 2:
        return _map_rule(k, envs, cands)
    a, b = vals
    obs = [(_numeric_env(e), e.get(k) == a) for e in envs]
    pred = solve_predicate(obs, cands, indexed=False, prefer=set(cands))
    if pred is None:
        return _map_rule(k, envs, cands)
    return {"when": pred, "then": a, "else": b}


def _map_rule(k: str, envs: list[dict[str, Any]], cands: list[str]) -> dict | None:
    """A derived value that is a function of one string field (T5: dense_act_fn from feed_forward_proj)."""
    for c in cands:
        if not all(isinstance(e.get(c), str) for e in envs):
            continue
        table: dict[str, Any] = {}
        ok = True
        for e in envs:
            v = e.get(k)
            if table.setdefault(e[c], v) != v:
                ok = False
                break
        if ok and len(table) > 1:
            return {"field": c, "map": table}
    return None


def _maybe_int(s: str) -> Any:
    return int(s) if re.fullmatch(r"-?\d+", s) else s


# --------------------------------------------------------------------------------------------------
# per-model-type analysis
# --------------------------------------------------------------------------------------------------


def task_classes_for(model_type: str) -> dict[str, str]:
    import transformers
    from transformers.models.auto import modeling_auto as ma

    out: dict[str, str] = {}
    for task, maps in TASK_MAPPINGS:
        for mname in maps:
            mapping = getattr(ma, mname, {})
            cname = mapping.get(model_type)
            if isinstance(cname, (list, tuple)):
                cname = cname[0]
            if cname and hasattr(transformers, cname):
                out[task] = cname
                break
    return out


def _seed_for(model_type: str) -> int:
    return int(hashlib.sha256(model_type.encode()).hexdigest()[:8], 16)


def analyse_model_type(model_type: str, time_limit: float = 300.0, prefill: bool = False) -> dict[str, Any]:
    """Full analysis of one model type; returns the per-type JSON document (or raises).

    ``prefill`` writes the implicit fields (``head_dim``, ``num_key_value_heads``) into the baseline
    config: some config classes default them to None although their modeling code needs a number
    (ministral, nemotron, hunyuan), and every real config.json of those types sets them.
    """
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    t0 = time.time()
    c0 = cpu_seconds()
    deadline = c0 + time_limit * 0.85
    config_cls = CONFIG_MAPPING[model_type]
    default_cfg = config_cls()
    tasks = task_classes_for(model_type)
    if not tasks:
        raise RuntimeError("no model class in the Auto mappings used for LoRA tasks")
    solver = Solver()
    solver.deadline = c0 + time_limit * 0.6

    # ---- baseline kwargs: default config with stack depths capped ----
    base_tree = input_tree(default_cfg, top=True)
    flat_default = flatten_config(default_cfg)
    base_kwargs = dict(base_tree)
    for k, v in flat_default.items():
        leaf = k.rsplit(".", 1)[-1]
        if _is_int(v) and LAYER_FIELD_RE.match(leaf) and v > LAYER_CAP:
            base_kwargs = set_path(base_kwargs, k, LAYER_CAP)
    try:
        base_env = flatten_config(build_config(config_cls, base_kwargs))
    except Exception:
        base_kwargs = dict(base_tree)
        base_env = flatten_config(build_config(config_cls, base_kwargs))

    # ---- implicit (modeling-code) fallbacks for None / absent fields ----
    _IMPLICIT.clear()
    implicit = implicit_rules_for(base_env, model_type)
    if prefill and implicit:
        for k, rule in implicit.items():
            base_kwargs = set_path(base_kwargs, k, evaluate(rule, base_env))
        base_env = flatten_config(build_config(config_cls, base_kwargs))
        implicit = implicit_rules_for(base_env, model_type)
    _IMPLICIT.update(implicit)
    # ---- one-at-a-time variants (config level) ----
    single_variants: list[tuple[str, dict[str, Any]]] = []
    filled = fill_implicit(dict(base_env))
    for k in implicit:
        v = filled.get(k)
        if _is_int(v):
            for new in (2 * v, v + 8):
                kw = set_path(base_kwargs, k, new)
                try:
                    env = flatten_config(build_config(config_cls, kw))
                except Exception:
                    continue
                if env.get(k) == new:
                    single_variants.append((k, kw))
                    break
    derived_all = set()
    for k, v in sorted(base_env.items()):
        if SKIP_FIELD_RE.search(k.rsplit(".", 1)[-1]):
            continue
        for new in perturbations(k, v):
            kw = set_path(base_kwargs, k, new)
            try:
                env = flatten_config(build_config(config_cls, kw))
            except Exception:
                continue
            if env.get(k) != new:
                continue  # the config class overrides this field: not an input
            single_variants.append((k, kw))
            if not isinstance(v, str):
                break  # strings: keep every alternative
    rng = random.Random(_seed_for(model_type))
    input_ints = [k for k, _ in single_variants if _is_int(filled.get(k)) or isinstance(filled.get(k), bool)]

    def combo(fields: list[str], n: int, tries: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(tries):
            if len(out) >= n:
                break
            kw = base_kwargs
            for k in fields:
                v = filled.get(k)
                if isinstance(v, bool):
                    if rng.random() < 0.5:
                        kw = set_path(kw, k, not v)
                elif _is_int(v):
                    if LAYER_FIELD_RE.match(k.rsplit(".", 1)[-1]):
                        choices = [v, 2 * v, 3 * v, v + 1]
                    elif v == 0:
                        choices = [0, 1, 2, 3]
                    elif v == 1:
                        choices = [1, 2, 3, 4]
                    else:
                        choices = [v, 2 * v, 3 * v, v + 2, 4 * v]
                    kw = set_path(kw, k, rng.choice(choices))
            try:
                build_config(config_cls, kw)
            except Exception:
                continue
            out.append(kw)
        return out

    input_fields = [k for k, _ in single_variants]
    derived_combos = combo(input_fields, 4, 12)
    derived_rules, derived_unsolved = solve_derived(config_cls, base_kwargs, single_variants, derived_combos, solver)
    derived_all = set(derived_rules) | set(derived_unsolved)

    # ---- None for the optional integer fields real checkpoints leave null (NULLABLE_INT_FIELDS) ----
    nullable: list[str] = []
    for k, v in sorted(base_env.items()):
        if k.rsplit(".", 1)[-1] not in NULLABLE_INT_FIELDS or not _is_int(v):
            continue
        kw = set_path(base_kwargs, k, None)
        try:
            env = flatten_config(build_config(config_cls, kw))
        except Exception:
            continue
        if k in env and env[k] is None:
            single_variants.append((k, kw))
            nullable.append(k)
    _NULLABLE.clear()
    _NULLABLE.update(nullable)

    # ---- model classes ----
    class_names: list[str] = []
    for t, c in tasks.items():
        if c not in class_names:
            class_names.append(c)
    classes_out: dict[str, Any] = {}
    failures: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for cname in class_names:
        try:
            cls = getattr(transformers, cname)
            m = instantiate(cls, build_config(config_cls, base_kwargs))
            sizes[cname] = sum(1 for _ in m.named_modules())
            del m
        except Timeout:
            raise
        except Exception as exc:
            failures[cname] = f"{type(exc).__name__}: {str(exc)[:300]}"
    if not sizes:
        raise RuntimeError("no class could be built: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))
    primary = max(sizes, key=lambda c: (sizes[c], -class_names.index(c)))
    ordered = [primary] + [c for c in class_names if c in sizes and c != primary]
    relevant: set[str] = set()
    combos_primary: list[dict[str, Any]] = []
    timing: dict[str, float] = {}
    partial_reasons: list[str] = []
    for ci, cname in enumerate(ordered):
        if cpu_seconds() > deadline:
            failures[cname] = "skipped: per-model time limit reached"
            continue
        tc = time.time()
        cls = getattr(transformers, cname)
        if ci == 0:
            singles = single_variants
            # combos: fields that matter structurally are unknown until the singles ran; analyse in two steps
            rec, builds, rel = analyse_class(cls, config_cls, base_kwargs, singles, [], solver, derived_all, deadline,
                                             base_env)
            relevant = rel | {"num_labels"}
            # combined variants: all inputs at once (finds dependencies that only show up together, e.g. the
            # dense MLP width of layers that exist only when decoder_sparse_step > 1), then the relevant ones
            combos_primary = combo(input_ints, 5, 16) + combo(sorted(rel & set(input_ints)), 3, 10)
            random_combos = list(combos_primary)
            # second order: every structural flag flipped, with each relevant integer perturbed on top
            # (Falcon's fused QKV width depends on num_kv_heads only when new_decoder_architecture is set)
            rel_bools = [k for k in sorted(rel) if isinstance(filled.get(k), bool)][:6]
            rel_ints = sorted((k for k in input_ints if _is_int(filled.get(k))), key=_var_order)
            # a nullable field set to None is such a flag too (DeepSeek's q_proj width with q_lora_rank None);
            # the cap below is for the flags, so it never starves the None case
            flips = [(b, not filled[b]) for b in rel_bools] + [(k, None) for k in nullable if k in rel]
            for b, flip_to in flips:
                flipped = set_path(base_kwargs, b, flip_to)
                for k in rel_ints:
                    if k == b:
                        continue
                    for new in perturbations(k, filled[k]):
                        kw = set_path(flipped, k, new)
                        try:
                            build_config(config_cls, kw)
                        except Exception:
                            continue
                        combos_primary.append(kw)
                        break
                    if flip_to is not None and len(combos_primary) > 90:
                        break
            # ... and under the combined variants as well: with one field varied at a time on top of the
            # None, a wrong expression can fit (MiniCPM3's q_proj width through a floor division)
            for k in nullable:
                if k not in rel:
                    continue
                for kw in random_combos:
                    kw = set_path(kw, k, None)
                    try:
                        build_config(config_cls, kw)
                    except Exception:
                        continue
                    combos_primary.append(kw)
            if combos_primary:
                extra_builds = []
                for kw in combos_primary:
                    try:
                        cfg_kw = build_config(config_cls, kw)
                        env = fill_implicit(flatten_config(cfg_kw))
                        model = instantiate(cls, cfg_kw)
                        ob = observe(model, env, set(), "combo", kw)
                        ob.changed = _flat_changed(env, builds[0].env)
                        extra_builds.append(ob)
                        del model
                    except Timeout:
                        raise
                    except Exception:
                        continue
                builds = builds + extra_builds
                rec = solve_class(builds, solver, derived_all)
        else:
            singles = [(k, kw) for k, kw in single_variants if k in relevant or isinstance(base_env.get(k), bool)]
            nl_kw = dict(base_kwargs)
            nl_kw["num_labels"] = 3
            singles = singles + [("num_labels", nl_kw)]
            combos = []
            for j, kw in enumerate(combos_primary):
                kw2 = dict(kw)
                kw2["num_labels"] = [2, 5, 3, 7][j % 4]
                combos.append(kw2)
            rec, builds, _ = analyse_class(cls, config_cls, base_kwargs, singles, combos, solver, derived_all,
                                           deadline, base_env)
        problems = self_check(rec, builds)
        unsolved = rec.pop("_unsolved")
        notes = rec.pop("_notes")
        rec["exact"] = not problems and not unsolved
        if unsolved:
            rec["unsolved"] = sorted(set(unsolved))[:50]
        if problems:
            rec["self_check"] = problems[:5]
        if notes:
            rec["notes"] = sorted(set(notes))[:20]
        rec["builds"] = len(builds)
        rec["tasks"] = sorted(t for t, c in tasks.items() if c == cname)
        classes_out[cname] = rec
        timing[cname] = round(time.time() - tc, 2)
        if not rec["exact"]:
            partial_reasons.append(f"{cname}: " + ("; ".join((unsolved or [])[:3]) or (problems[0] if problems else "")))

    if not classes_out:
        raise RuntimeError("no class analysed: " + "; ".join(f"{k}: {v}" for k, v in failures.items()))

    # ---- per-type facts ----
    defaults = {k: v for k, v in flatten_config(default_cfg).items() if k not in derived_rules}
    layer_field = None
    for k in ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "text_config.num_hidden_layers",
              "decoder_layers", "depth"):
        if k in flat_default:
            layer_field = k
            break
    doc: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "model_type": model_type,
        "config_class": config_cls.__name__,
        "sub_configs": sorted({k.rsplit(".", 1)[0] for k in flat_default if "." in k}),
        "defaults": defaults,
        "derived": derived_rules,
        "layer_count_field": layer_field,
        "tie_word_embeddings_default": _jsonable(getattr(default_cfg, "tie_word_embeddings", None)),
        "task_classes": {t: c for t, c in tasks.items() if c in classes_out},
        "classes": classes_out,
        "moe_conversion": moe_conversion_for(model_type),
    }
    amap = attribute_aliases(default_cfg)
    if amap:
        doc["attribute_map"] = amap
    if implicit:
        doc["implicit"] = implicit
    if nullable:
        doc["nullable"] = nullable
    if derived_unsolved:
        doc["derived_unsolved"] = derived_unsolved
    if failures:
        doc["class_failures"] = failures
    doc["exact"] = all(c.get("exact") for c in classes_out.values())
    if partial_reasons:
        doc["partial_reasons"] = partial_reasons[:10]
    doc["seconds"] = round(time.time() - t0, 2)
    doc["class_seconds"] = timing
    dedupe_classes(doc)
    return doc


def dedupe_classes(doc: dict[str, Any]) -> None:
    """Replace a head class's copy of the base model's records by a reference ("base": [class, prefix])."""
    classes = doc["classes"]
    base_name = doc["task_classes"].get("FEATURE_EXTRACTION")
    if not base_name or base_name not in classes:
        return
    base = classes[base_name]
    if not base.get("exact"):
        return
    base_mods = base["modules"]
    if not base_mods or base_mods[0]["n"] != "":
        return
    base_root_cls = base_mods[0]["c"]
    for cname, rec in classes.items():
        if cname == base_name or "base" in rec:
            continue
        roots = [m for m in rec["modules"] if m["c"] == base_root_cls and "{" not in m["n"] and m["n"]]
        if len(roots) != 1:
            continue
        prefix = roots[0]["n"]
        sub = [m for m in rec["modules"] if m["n"] == prefix or m["n"].startswith(prefix + ".")]
        rebased = []
        for m in sub:
            m2 = dict(m)
            m2["n"] = "" if m["n"] == prefix else m["n"][len(prefix) + 1:]
            rebased.append(m2)
        if json.dumps(rebased, sort_keys=True) != json.dumps(base_mods, sort_keys=True):
            continue
        lists_sub = {k[len(prefix) + 1:]: v for k, v in rec["lists"].items() if k.startswith(prefix + ".")}
        if lists_sub != base["lists"]:
            continue
        first = rec["modules"].index(roots[0])
        rest_before = rec["modules"][:first]
        rest_after = [m for m in rec["modules"][first:] if not (m["n"] == prefix or m["n"].startswith(prefix + "."))]
        rec["base"] = [base_name, prefix]
        rec["modules"] = rest_before + [{"base": True}] + rest_after
        rec["lists"] = {k: v for k, v in rec["lists"].items() if not k.startswith(prefix + ".")}
        if "aliases" in rec and base.get("aliases"):
            pref_alias = [[f"{prefix}.{a}", f"{prefix}.{c}"] for a, c in base["aliases"]]
            rec["aliases"] = [a for a in rec["aliases"] if a not in pref_alias]
            if not rec["aliases"]:
                del rec["aliases"]


def moe_conversion_for(model_type: str) -> str | None:
    """peft/utils/transformers_weight_conversion.py: convert_peft_config_for_transformers /
    _convert_peft_config_moe -- which MoE family PEFT rewrites v4-style targets for on this type."""
    try:
        from peft.utils.transformers_weight_conversion import (
            _MODEL_TO_CONVERSION_PATTERN,
            _MOE_FUSED_TARGETS,
            _MOE_TARGET_MODULE_MAPPING,
        )
        from transformers.conversion_mapping import get_checkpoint_conversion_mapping
    except Exception:
        return None
    if get_checkpoint_conversion_mapping(model_type) is None:
        return None
    base = _MODEL_TO_CONVERSION_PATTERN.get(model_type)
    if base is None or not _MOE_TARGET_MODULE_MAPPING.get(base) or not _MOE_FUSED_TARGETS.get(base):
        return None
    return base


# --------------------------------------------------------------------------------------------------
# config.json keys: how transformers reads a file (aliases, legacy names, the flat multimodal layout)
# --------------------------------------------------------------------------------------------------

# `kwargs.pop("n_embed")`, `kwargs.get("x")`, `"x" in kwargs`: names a config class may accept besides its fields.
_KWARG_RE = re.compile(r"""kwargs\.(?:pop|get)\(\s*["'](\w+)["']|["'](\w+)["']\s+in\s+kwargs""")
_PROBES = (3072, 6144)  # distinctive values; a class that rejects them is probed with multiples of its own sizes
CONFIG_KEYS_FILE = "config_keys.json"


def _flat_values(cfg, prefix: str = "") -> dict[str, Any]:
    """Every scalar attribute of a config and its sub-configs, flattened (``text_config.hidden_size``)."""
    try:
        d = cfg.to_dict()
    except Exception:
        d = dict(vars(cfg))
    out: dict[str, Any] = {}
    for k, v in d.items():
        sub = _safe_getattr(cfg, k)
        if _is_config(sub):
            out.update(_flat_values(sub, f"{prefix}{k}."))
        elif v is None or isinstance(v, (bool, int, float, str)):
            out[prefix + k] = v
    return out


def _kwarg_candidates(config_cls) -> set[str]:
    """Names the config class's own module reads from **kwargs (legacy keys live there)."""
    import inspect

    keys: set[str] = set()
    for c in config_cls.__mro__:
        if not c.__module__.startswith("transformers.models."):
            continue
        try:
            src = inspect.getsource(inspect.getmodule(c))
        except (OSError, TypeError):
            continue
        keys.update(m.group(1) or m.group(2) for m in _KWARG_RE.finditer(src))
    return keys


def _construct(config_cls, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return _flat_values(config_cls(**kwargs))
    except Exception:
        return None


def legacy_keys(config_cls) -> dict[str, list]:
    """``{legacy_key: [attribute, wins]}``: keys the class's __init__ pops and stores under another name
    (BloomConfig: ``n_embed`` -> ``hidden_size``), found by constructing the class with the key and seeing
    which attribute takes the value; ``wins``: the legacy key overrides the attribute when both are given."""
    base = _construct(config_cls, {})
    if base is None:
        return {}
    own_ints = sorted({v for v in base.values() if _is_int(v) and 1 < v < 10**6})
    out: dict[str, list] = {}
    for key in sorted(_kwarg_candidates(config_cls)):
        if key in base or key in META_KEYS:
            continue
        probe_sets = [_PROBES] + [(2 * v, 4 * v) for v in own_ints]
        for probes in probe_sets:
            hits: set[str] | None = None
            for value in probes:
                got = _construct(config_cls, {key: value})
                if got is None:
                    hits = None
                    break
                now = {a for a, x in got.items() if _is_int(x) and x == value and base.get(a) != value}
                hits = now if hits is None else hits & now
            if hits is None:
                continue
            hits = {h for h in hits if h != key and not h.startswith("_") and h.rsplit(".", 1)[-1] != "dtype"}
            if len(hits) == 1:
                target = hits.pop()
                both = _construct(config_cls, {target.rsplit(".", 1)[-1]: probes[0], key: probes[1]}) \
                    if "." not in target else None
                out[key] = [target, bool(both is not None and both.get(target) == probes[1])]
            break
    return out


def attribute_map_precedence(config_cls, amap: dict[str, str]) -> dict[str, list]:
    """``{alias: [canonical, wins]}`` for the class's own ``attribute_map`` (top level only)."""
    out: dict[str, list] = {}
    base = _construct(config_cls, {})
    for alias, canonical in amap.items():
        if "." in alias:
            continue
        wins = True  # PreTrainedConfig.__setattr__ maps the alias, and kwargs are set after the fields
        if base is not None and _is_int(base.get(canonical)) and not isinstance(base.get(canonical), bool):
            v = base[canonical]
            got = _construct(config_cls, {canonical: 2 * v or 2, alias: 4 * v or 4})
            if got is not None:
                wins = got.get(canonical) == (4 * v or 4)
        out[alias] = [canonical, wins]
    return out


def flat_layout(config_cls, sub_name: str, sub_defaults: dict[str, Any]) -> dict[str, Any] | None:
    """Which top-level config.json keys the composite class moves into ``sub_name`` (Qwen2-VL keeps the text
    fields at the top level; Qwen2VLConfig.__post_init__ pops them into text_config), and whether it still does
    when the file has a ``sub_name`` dict of its own. None: it moves none."""
    routed: list[str] = []
    probed = 0
    with_sub = False
    top = _construct(config_cls, {}) or {}
    for key, default in sorted(sub_defaults.items()):
        if key in META_KEYS or key.startswith("_") or key == "model_type":
            continue
        if isinstance(default, bool):
            value: Any = not default
        elif _is_int(default):
            value = 2 * default if default else 2
        elif default is None:
            value = 2
        else:
            continue
        probed += 0 if key in top else 1
        got = _construct(config_cls, {key: value})
        if got is not None and got.get(f"{sub_name}.{key}") == value and got.get(f"{sub_name}.{key}") != default:
            routed.append(key)
            if not with_sub:
                got2 = _construct(config_cls, {key: value, sub_name: {}})
                with_sub = got2 is not None and got2.get(f"{sub_name}.{key}") == value
    if not routed:
        return None
    # "all": every sub-config field the top level lacks moved (Qwen2VLConfig pops by the text class's
    # signature), so fields that were not probed (strings, floats, lists) move too
    return {"keys": routed, "all": len([k for k in routed if k not in top]) == probed, "with_sub_config": with_sub}


def class_model_types() -> dict[str, str]:
    """Model class name -> model_type, from every Auto mapping (``Qwen2VLForConditionalGeneration`` ->
    ``qwen2_vl``); a class several model types share is left out (its name does not decide the type)."""
    from transformers.models.auto import modeling_auto as ma

    seen: dict[str, set[str]] = {}
    for name in dir(ma):
        mapping = getattr(ma, name)
        if not (name.startswith("MODEL") and name.endswith("_MAPPING_NAMES") and isinstance(mapping, dict)):
            continue
        for model_type, cls in mapping.items():
            for c in (cls if isinstance(cls, (list, tuple)) else [cls]):
                if isinstance(c, str) and not c.startswith("Auto"):
                    seen.setdefault(c, set()).add(model_type)
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    out: dict[str, str] = {}
    for c, model_types in sorted(seen.items()):
        if len(model_types) > 1:  # shared (Gemma3ForConditionalGeneration: gemma3, shieldgemma2): the type
            # whose config class names the model class (Gemma3Config), if exactly one does
            model_types = {t for t in model_types
                           if c.startswith(CONFIG_MAPPING_NAMES.get(t, "").removesuffix("Config") or "\0")}
        if len(model_types) == 1:
            out[c] = next(iter(model_types))
    return out


def config_key_tables(types: Iterable[str]) -> dict[str, Any]:
    """The tables the static loader applies to a config.json before anything else (loralint.knowledge.models:
    read_config_keys): legacy and alias keys per model type, the flat multimodal layouts, class -> model_type."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    aliases: dict[str, dict[str, list]] = {}
    flat: dict[str, dict[str, Any]] = {}
    per_class: dict[type, dict[str, list]] = {}
    probed: list[str] = []  # types whose config class could be constructed: their tables are complete
    for model_type in sorted(types):
        try:
            config_cls = CONFIG_MAPPING[model_type]
            default_cfg = config_cls()
        except Exception:
            continue
        probed.append(model_type)
        table: dict[str, list] = {}
        table.update(attribute_map_precedence(config_cls, dict(getattr(config_cls, "attribute_map", {}) or {})))
        if config_cls not in per_class:
            per_class[config_cls] = legacy_keys(config_cls)
        table.update(per_class[config_cls])
        for sub_name in sub_config_keys(default_cfg):
            sub = getattr(default_cfg, sub_name)
            sub_cls = type(sub)
            if sub_cls not in per_class:
                per_class[sub_cls] = legacy_keys(sub_cls)
            for alias, (target, wins) in per_class[sub_cls].items():
                table[f"{sub_name}.{alias}"] = [f"{sub_name}.{target}", wins]
            for alias, canonical in (getattr(sub_cls, "attribute_map", {}) or {}).items():
                table.setdefault(f"{sub_name}.{alias}", [f"{sub_name}.{canonical}", True])
            layout = flat_layout(config_cls, sub_name, _flat_values(sub))
            if layout is not None:
                flat.setdefault(model_type, {})[sub_name] = layout
        if table:
            aliases[model_type] = dict(sorted(table.items()))
    return {"format": FORMAT_VERSION, "probed": probed, "aliases": aliases, "flat": flat,
            "classes": class_model_types()}


def write_config_keys(out_dir: Path, types: Iterable[str], merge: bool) -> dict[str, Any]:
    """Write (or, for --types, merge into) data/config_keys.json."""
    path = out_dir / CONFIG_KEYS_FILE
    types = list(types)
    tables = config_key_tables(types)
    if merge and path.exists():
        old = json.loads(path.read_text())
        tables["probed"] = sorted(set(old.get("probed", [])) - set(types) | set(tables["probed"]))
        for part in ("aliases", "flat"):
            merged = {k: v for k, v in old.get(part, {}).items() if k not in types}
            merged.update(tables[part])
            tables[part] = dict(sorted(merged.items()))
    path.write_text(json.dumps(tables, indent=0, sort_keys=False) + "\n")
    return tables


# --------------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------------


def _worker_init() -> None:
    warnings.filterwarnings("ignore")
    import logging

    logging.disable(logging.WARNING)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except Exception:
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except Exception:
        pass
    signal.signal(signal.SIGPROF, _alarm_handler)


def _run_one(args: tuple[str, float]) -> tuple[str, dict[str, Any] | None, str | None, float]:
    model_type, time_limit = args
    t0 = time.time()
    signal.setitimer(signal.ITIMER_PROF, time_limit + 1)  # CPU time, as cpu_seconds()
    try:
        try:
            doc = analyse_model_type(model_type, time_limit)
        except RuntimeError as exc:
            if "no class could be built" not in str(exc) or "NoneType" not in str(exc):
                raise
            doc = analyse_model_type(model_type, time_limit, prefill=True)
            doc.setdefault("notes", []).append(
                "the default config leaves head_dim/num_key_value_heads unset and the model cannot be built "
                "from it; generated with them set explicitly, as real config.json files do")
        return model_type, doc, None, time.time() - t0
    except Timeout:
        return model_type, None, f"timeout after {time_limit:.0f}s", time.time() - t0
    except BaseException as exc:  # noqa: BLE001 - record every failure with its reason
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return model_type, None, tb[:400], time.time() - t0
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        import gc

        gc.collect()


def all_model_types() -> list[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return sorted(CONFIG_MAPPING_NAMES.keys())


def remote_code_types() -> list[str]:
    """Model types PEFT knows (default targets) that are not transformers model types: remote code."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return sorted(k for k in TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING if k not in CONFIG_MAPPING_NAMES)


def peft_facts() -> dict[str, Any]:
    from peft.utils import constants as pc
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as M

    facts: dict[str, Any] = {
        "default_target_modules": {k: (sorted(v) if not isinstance(v, str) else v) if v is not None else None
                                   for k, v in M.items()},
        "seq_cls_head_names": list(pc.SEQ_CLS_HEAD_NAMES),
        "embedding_layer_names": list(pc.EMBEDDING_LAYER_NAMES),
        "min_target_modules_for_optimization": pc.MIN_TARGET_MODULES_FOR_OPTIMIZATION,
    }
    try:
        from peft.utils.transformers_weight_conversion import _MOE_FUSED_TARGETS, _MOE_TARGET_MODULE_MAPPING

        facts["moe_target_module_mapping"] = _MOE_TARGET_MODULE_MAPPING
        facts["moe_fused_targets"] = {k: {kk: list(vv) for kk, vv in v.items()} for k, v in _MOE_FUSED_TARGETS.items()}
    except Exception:
        pass
    # keep list order as PEFT stores it (order matters for nothing but readability)
    facts["default_target_modules"] = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in M.items()}
    return facts


def write_doc(out_dir: Path, doc: dict[str, Any]) -> Path:
    path = out_dir / "arch" / f"{doc['model_type']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=False) + "\n")
    return path


def summary_entry(doc: dict[str, Any]) -> dict[str, Any]:
    """The index keeps only what is needed before the per-type file is read (it stays small)."""
    entry: dict[str, Any] = {"file": f"arch/{doc['model_type']}.json", "exact": doc["exact"]}
    if doc.get("moe_conversion"):
        entry["moe_conversion"] = doc["moe_conversion"]
    return entry


def write_index(out_dir: Path, models: dict[str, Any], failed: dict[str, str], seconds: Any, jobs: int) -> dict:
    import peft
    import torch
    import transformers

    all_types = all_model_types()
    exact = sorted(k for k, v in models.items() if v["exact"])
    remote = remote_code_types()
    no_class = sorted(k for k, v in failed.items() if "no model class in the Auto mappings" in v)
    index = {
        "format": FORMAT_VERSION,
        "versions": {
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "torch": torch.__version__.split("+")[0],
            "python": ".".join(map(str, sys.version_info[:3])),
        },
        "generated": _dt.date.today().isoformat(),
        "generator_seconds": seconds,
        "generator_jobs": jobs,
        "coverage": {
            "model_types_total": len(all_types),
            "covered": len(models),
            "exact": len(exact),
            "partial": len(models) - len(exact),
            "failed": len(failed),
            "failed_no_auto_class": len(no_class),
            "remote_code_types_listed": len(remote),
        },
        "peft": peft_facts(),
        "remote_code_model_types": remote,
        "model_types": dict(sorted(models.items())),
        "failed": dict(sorted(failed.items())),
    }
    (out_dir / "index.json").write_text(json.dumps(index, indent=0, sort_keys=False) + "\n")
    return index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", nargs="*", help="model types to (re)generate, merged into the existing index "
                                                 "(default: all, replacing it)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=240.0, help="per model type, CPU seconds")
    ap.add_argument("--reindex", action="store_true", help="only rebuild index.json from the files in --out")
    ap.add_argument("--config-keys", action="store_true",
                    help=f"only rebuild {CONFIG_KEYS_FILE} (config.json aliases, flat layouts, class names; ~1 min)")
    args = ap.parse_args(argv)

    _worker_init()
    t0 = time.time()
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    index_path = out_dir / "index.json"
    old: dict[str, Any] = json.loads(index_path.read_text()) if index_path.exists() else {}
    merge = bool(args.types) or args.reindex
    models: dict[str, Any] = dict(old.get("model_types", {})) if merge else {}
    failed: dict[str, str] = dict(old.get("failed", {})) if merge else {}

    if args.config_keys:
        tables = write_config_keys(out_dir, args.types or all_model_types(), merge=bool(args.types))
        print(f"{CONFIG_KEYS_FILE}: aliases for {len(tables['aliases'])} model types, flat layouts for "
              f"{len(tables['flat'])}, {len(tables['classes'])} class names", file=sys.stderr)
        return 0

    if args.reindex:
        models = {}
        for p in sorted((out_dir / "arch").glob("*.json")):
            doc = json.loads(p.read_text())
            models[doc["model_type"]] = summary_entry(doc)
            failed.pop(doc["model_type"], None)
        write_index(out_dir, models, failed, old.get("generator_seconds"), old.get("generator_jobs", args.jobs))
        print(f"reindexed {len(models)} model types", file=sys.stderr)
        return 0

    types = args.types or all_model_types()
    if not merge:
        arch_dir = out_dir / "arch"
        if arch_dir.exists():
            for p in arch_dir.glob("*.json"):
                p.unlink()
    work = [(t, args.timeout) for t in types]
    done = 0
    if args.jobs > 1:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        with ctx.Pool(args.jobs, initializer=_worker_init, maxtasksperchild=25) as pool:
            for mt, doc, err, secs in pool.imap_unordered(_run_one, work):
                done += 1
                _record(out_dir, models, failed, mt, doc, err, secs, done, len(work))
    else:
        for w in work:
            mt, doc, err, secs = _run_one(w)
            done += 1
            _record(out_dir, models, failed, mt, doc, err, secs, done, len(work))

    total_seconds = round(time.time() - t0, 1)
    seconds = old.get("generator_seconds", total_seconds) if merge else total_seconds
    index = write_index(out_dir, models, failed, seconds, args.jobs if not merge else old.get("generator_jobs", args.jobs))
    write_config_keys(out_dir, types, merge=merge)
    cov = index["coverage"]
    print(f"done in {total_seconds}s: {cov['covered']} covered ({cov['exact']} exact), {cov['failed']} failed, "
          f"of {cov['model_types_total']} model types", file=sys.stderr)
    return 0


def _record(out_dir, models, failed, mt, doc, err, secs, done, total) -> None:
    if doc is not None:
        write_doc(out_dir, doc)
        models[mt] = summary_entry(doc)
        failed.pop(mt, None)
        status = "exact" if doc["exact"] else "partial"
    else:
        failed[mt] = err or "unknown error"
        models.pop(mt, None)
        p = out_dir / "arch" / f"{mt}.json"
        if p.exists():
            p.unlink()
        status = "FAILED " + (err or "")[:120]
    print(f"[{done}/{total}] {mt}: {status} ({secs:.1f}s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
