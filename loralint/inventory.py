"""`loralint modules MODEL`: a model's LoRA-relevant modules, from the knowledge base, loading nothing.

It answers what every LoRA tutorial answers with a loop that loads the model and prints each
nn.Linear: the folded linear layers with class and shapes, what "all-linear" selects and what it
leaves out, the embeddings (an nn.Embedding is not a Linear), and ready-made target_modules lists
with the trainable parameters each gives at a chosen rank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_ATTENTION = re.compile(r"att", re.I)


class InventoryError(Exception):
    """The model cannot be resolved or is not in the knowledge base (exit 2 with this message)."""


@dataclass(slots=True)
class Preset:
    name: str
    target_modules: list[str] | str
    modules: int
    parameters: int  # target_parameters matched (fused MoE experts, routers): part of the count too
    trainable: int
    total: int


def build_inventory(model: str, rank: int, task_type: str | None, online: bool) -> dict[str, Any]:
    from loralint.knowledge.models import load_model_info
    from loralint.knowledge.targeting import analyze_lora
    from loralint.limits import AnalysisLimit
    from loralint.resolve import Resolver, not_found

    resolver = Resolver(online=online)
    resolution = resolver.resolve(model)
    if resolution is None or resolution.model_type is None:
        raise InventoryError(f"cannot resolve {not_found(model, online, resolver.problems)}")
    if resolution.guessed:
        raise InventoryError(f"{model!r} is not known; its name suggests model_type {resolution.model_type!r}:"
                             " pass a config.json folder or use --online")
    try:
        info = load_model_info(resolution.model_type, resolution.config, task_type)
    except AnalysisLimit as exc:  # 10**9 layers in config.json: refused before anything is built
        raise InventoryError(f"{resolution.origin}: {exc.message}") from None
    if info is None:
        raise InventoryError(f"loralint has no module table for model_type {resolution.model_type!r}")
    all_linear = analyze_lora(info, {"target_modules": "all-linear", "r": rank, "lora_alpha": rank, "task_type": task_type})
    selected = set(all_linear.targeted_names)
    folded = info.folded_modules()
    linear = [m for m in folded if m.kind in ("linear", "conv1d")]
    layer_linear = [m for m in linear if m.layer_indices is not None]
    names = [m.name for m in linear]
    attention = _suffixes([m.name for m in layer_linear if _ATTENTION.search(m.name)], names)
    mlp = _suffixes([m.name for m in layer_linear if not _ATTENTION.search(m.name)], names)
    both = _suffixes([m.name for m in layer_linear], names)
    presets = []
    for name, targets in (("attention only", attention), ("attention + MLP", both if mlp else []), ("all-linear", "all-linear")):
        if not targets:
            continue
        result = analyze_lora(info, {"target_modules": targets, "r": rank, "lora_alpha": rank, "task_type": task_type})
        presets.append(Preset(name, targets, len(result.targeted), len(result.targeted_parameters), result.trainable_params,
                              result.total_params))
    excluded = set(all_linear.all_linear_excluded)
    frozen = set(all_linear.moe_left_frozen)
    return {
        "model": model,
        "model_type": info.model_type,
        "model_class": info.model_class,
        "resolved_from": resolution.origin,
        "exact": info.exact,
        "num_layers": info.num_layers,
        "layers_path": info.layers_path,
        "tied_word_embeddings": info.tied_word_embeddings,
        "total_params": info.total_params,
        "rank": rank,
        "linear": [
            {
                "name": m.name,
                "class": m.cls,
                "in_features": m.in_features,
                "out_features": m.out_features,
                "count": m.count,
                "all_linear": any(_instance_of(n, m.name) for n in selected),
                "excluded_because": "output layer" if any(_instance_of(n, m.name) for n in excluded) else (
                    "PEFT's MoE conversion" if any(_instance_of(n, m.name) for n in frozen) else None),
            }
            for m in linear
        ],
        "parameters": _parameter_targets(info, all_linear),
        "embeddings": [
            {"name": m.name, "class": m.cls, "num_embeddings": m.in_features, "embedding_dim": m.out_features, "count": m.count}
            for m in folded
            if m.kind == "embedding"
        ],
        "presets": [
            {"name": p.name, "target_modules": p.target_modules, "modules": p.modules, "parameters": p.parameters,
             "trainable_params": p.trainable, "total_params": p.total}
            for p in presets
        ],
        "notes": list(info.notes),
    }


def _parameter_targets(info: Any, result: Any) -> list[dict[str, Any]]:
    """The parameters "all-linear" adapts besides modules, folded: on transformers-5 MoE models PEFT's conversion
    (peft/utils/transformers_weight_conversion.py) adds the fused experts and the router weight as target_parameters."""
    rows: dict[str, dict[str, Any]] = {}

    def folded(module: str, pname: str) -> str:
        owner = info.get(module)
        return f"{owner.folded}.{pname.rsplit('.', 1)[-1]}" if owner is not None else pname

    for p in result.targeted_parameters:
        owner = info.get(p.module)
        leaf = p.name.rsplit(".", 1)[-1]
        name = folded(p.module, p.name)
        row = rows.setdefault(name, {"name": name, "shape": list(p.shape), "count": 0, "all_linear": True, "r": p.r,
                                     "lora_alpha": p.lora_alpha, "lora_params": 0, "note": None})
        row["count"] += 1
        row["lora_params"] += p.lora_params
        fused = result.moe_fused.get(leaf)
        if fused is not None:
            row["note"] = f"{' + '.join(fused[0])} fused: PEFT doubles r and lora_alpha" if len(fused[0]) == 2 else (
                f"{' + '.join(fused[0])} fused: PEFT multiplies r and lora_alpha by {len(fused[0])}")
        elif owner is not None and leaf == "weight" and owner.leaf_name in ("gate", "router"):
            row["note"] = "the MoE router"
    # fused 3-D experts "all-linear" does not reach (no conversion for this model type): only target_parameters does
    for m in info.modules:
        for p in m.params:
            if len(p.shape) == 3 and ".experts." in p.name and p.tied_to is None:
                name = folded(m.name, p.name)
                row = rows.setdefault(name, {"name": name, "shape": list(p.shape), "count": 0, "all_linear": False,
                                             "r": None, "lora_alpha": None, "lora_params": 0,
                                             "note": f"target_parameters=[\"mlp.experts.{p.local_name}\"] reaches it"})
                if not row["all_linear"]:
                    row["count"] += 1
    return list(rows.values())


def _suffixes(group: list[str], everything: list[str]) -> list[str]:
    """The shortest dotted suffixes that select `group` and nothing else among `everything`
    (GPT-2's `c_proj` is in attention and MLP: attention-only needs `attn.c_proj`)."""
    others = [n for n in everything if n not in group]
    out: list[str] = []
    for name in group:
        parts = name.split(".")
        for size in range(1, len(parts) + 1):
            suffix = ".".join(parts[-size:])
            if "{" in suffix:
                continue
            if not any(o == suffix or o.endswith("." + suffix) for o in others):
                break
        if suffix not in out:
            out.append(suffix)
    return out


def _instance_of(concrete: str, folded: str) -> bool:
    pattern = re.escape(folded).replace(r"\{i\}", r"\d+").replace(r"\{j\}", r"\d+")
    return re.fullmatch(pattern, concrete) is not None


def render_text(data: dict[str, Any]) -> str:
    out = [
        f"{data['model']}: {data['model_type']} ({data['model_class']}), from {data['resolved_from']}",
        f"{data['num_layers']} layers ({data['layers_path']}), {data['total_params']:,} parameters"
        + (", tied word embeddings" if data["tied_word_embeddings"] else "")
        + ("" if data["exact"] else " (shapes from the default config: approximate)"),
        "",
        "Linear layers — what target_modules names (✓ = selected by \"all-linear\"):",
    ]
    width = max((len(m["name"]) for m in [*data["linear"], *(data.get("parameters") or [])]), default=10)
    for m in data["linear"]:
        mark = "✓" if m["all_linear"] else f"✗ {m['excluded_because'] or 'not selected'}"
        out.append(
            f"  {m['name']:<{width}}  {m['class']:<12} {m['in_features']:>7} → {m['out_features']:<7} ×{m['count']:<4} {mark}"
        )
    if data["embeddings"]:
        out += ["", "Embeddings — nn.Embedding, not Linear: \"all-linear\" never adapts them:"]
        for e in data["embeddings"]:
            out.append(f"  {e['name']:<{width}}  {e['class']:<12} {e['num_embeddings']:>7} × {e['embedding_dim']:<7} ×{e['count']}")
    params = data.get("parameters") or []
    if params:
        out += ["", ("Parameters — fused MoE experts and routers, reached only through target_parameters (✓ = PEFT's MoE"
                     " conversion adds it for \"all-linear\"):")]
        for p in params:
            shape = "×".join(str(d) for d in p["shape"])
            mark = f"✓ r={p['r']}, lora_alpha={p['lora_alpha']}" if p["all_linear"] else "✗ not selected"
            note = f"  {p['note']}" if p["note"] else ""
            out.append(f"  {p['name']:<{width}}  {shape:<20} ×{p['count']:<4} {mark}{note}")
    out += ["", f"target_modules at r={data['rank']} (trainable parameters as PEFT counts them):"]
    # One column for "N modules + M parameters" over the rows, so the counts and the targets line up.
    adapted = {id(p): f"{p['modules']:>5} modules" + (f" + {p['parameters']} parameters" if p.get("parameters") else "")
               for p in data["presets"]}
    column = max((len(text) for text in adapted.values()), default=0)
    for p in data["presets"]:
        targets = p["target_modules"] if isinstance(p["target_modules"], str) else "[" + ", ".join(f'"{t}"' for t in p["target_modules"]) + "]"
        share = 100 * p["trainable_params"] / p["total_params"] if p["total_params"] else 0
        out.append(f"  {p['name']:<16} {adapted[id(p)]:<{column}}  {p['trainable_params']:>14,} ({share:.2f}%)  {targets}")
    for note in data["notes"]:
        out.append(f"note: {note}")
    return "\n".join(out)
