"""`loralint explain`: the advisor. Per configuration, the table a practitioner would write —
scaling, what is adapted, what it costs in parameters, disk and memory — and the guidance that
applies to it. Numbers come from the static knowledge base or from --verify (PEFT's own count);
anything derived from rules of thumb is marked as an estimate."""

from __future__ import annotations

import math
import re
from typing import Any

from loralint.checks._util import effective, fmt, number
from loralint.report import SourceLines, cell_place, site_scaling
from loralint.report.escape import escape
from loralint.sites import ConfigSite

GIB = 1024**3
# bitsandbytes NF4: 4 bits a weight plus an fp32 absmax per 64-weight block (0.5 + 4/64 bytes);
# double quantization brings the constants to ~0.127 bits a weight. LLM.int8(): 1 byte + row scales.
BYTES_4BIT = 0.5 + 4 / 64
BYTES_4BIT_DOUBLE = 0.5 + 0.127 / 8
BYTES_8BIT = 1.0


def _size(n_bytes: float) -> str:
    if n_bytes >= GIB:
        return f"{n_bytes / GIB:.2f} GiB"
    return f"{n_bytes / 1024**2:.1f} MiB"


def explain_site(site: ConfigSite, gpu_memory: int | None = None, sources: SourceLines | None = None) -> dict[str, Any]:
    r, r_known = effective(site, "r")
    alpha, alpha_known = effective(site, "lora_alpha")
    rslora, _ = effective(site, "use_rslora")
    dropout, dropout_known = effective(site, "lora_dropout")
    bias, _ = effective(site, "bias")
    targets, targets_known = effective(site, "target_modules")
    resolution = site.model
    advice = getattr(resolution, "advice", None)
    info = getattr(resolution, "info", None)
    # In a notebook: the cell and the line inside it, as `check` names the position.
    cell, span = cell_place(sources, site.span) if sources is not None else (None, site.span)
    data: dict[str, Any] = {
        "path": site.path,
        **({"cell": cell} if cell is not None else {}),
        "line": span.line,
        "origin": site.origin,
        # --model / settings override what the source names
        "base_model": resolution.model_id if getattr(resolution, "via", "") else (
            site.base_model.value if site.base_model is not None and site.base_model.known else None),
        "model_type": getattr(resolution, "model_type", None),
        "model_class": getattr(info, "model_class", None),
        "resolved_from": getattr(resolution, "origin", None),
        "r": r if r_known else None,
        "lora_alpha": alpha if alpha_known else None,
        "use_rslora": bool(rslora),
        "scaling": site_scaling(site),
        "lora_dropout": dropout if dropout_known else None,
        "bias": bias,
        "target_modules": sorted(targets) if isinstance(targets, (set, frozenset)) else (targets if targets_known else None),
        "matched_modules": getattr(advice, "matched_modules", None),
        "trainable_params": getattr(advice, "trainable_params", None),
        "total_params": getattr(advice, "total_params", None),
        "counted_by": getattr(advice, "counted_by", None),
        "counts_exact": bool(advice.result.exact) if advice is not None else None,
        "model_notes": list(getattr(info, "notes", None) or []),
        "quantization": site.hints.quantization,
        # The training set's size as LORA104 reads it, and where the number came from (loralint.datasets).
        "dataset_size": _dataset_size(site)[0],
        "dataset_size_source": _dataset_size(site)[1],
    }
    if site.origin == "peft.PeftModel.from_pretrained":  # an adapter loaded to train again (extract/loaded.py)
        data["settings_from"] = site.hints.loaded_from
        data["settings_unknown"] = site.opaque
    data["scaling_by_pattern"] = _pattern_scalings(site, advice, data["scaling"])
    data["memory"] = _memory(data, info)
    data["fit"] = training_memory(site, data, info, gpu_memory)
    data["guidance"] = _guidance(site, data, info)
    notebook = sources.cells(site.path) if sources is not None else None
    if notebook is not None:  # "load_dataset at line 26" named as the notebook shows it (cell, line)
        from loralint.extract.notebook import cell_line_refs

        if data["dataset_size_source"]:
            data["dataset_size_source"] = cell_line_refs(notebook, data["dataset_size_source"])
        if data["fit"]:
            data["fit"]["notes"] = [cell_line_refs(notebook, n) for n in data["fit"]["notes"]]
    return data


def _dataset_size(site: ConfigSite) -> tuple[int | None, str | None]:
    sized = site.hints.dataset_size
    if sized is None or not isinstance(sized.value, int) or isinstance(sized.value, bool):
        return None, None
    return sized.value, sized.provenance


def _pattern_scalings(site: ConfigSite, advice, default: float | None) -> dict[str, float]:
    """Where rank_pattern / alpha_pattern give modules another scaling: folded module → scaling as PEFT
    applies it (from the matched modules when the model is known, else per pattern key)."""
    out: dict[str, float] = {}
    result = getattr(advice, "result", None)
    if result is not None and getattr(advice, "counted_by", "loralint") == "loralint":
        for t in result.targeted:
            if t.scaling is not None and (default is None or abs(t.scaling - default) > 1e-9):
                out.setdefault(t.folded, t.scaling)
        return out
    ranks, ranks_known = effective(site, "rank_pattern")
    alphas, alphas_known = effective(site, "alpha_pattern")
    r, _ = effective(site, "r")
    alpha, _ = effective(site, "lora_alpha")
    rslora, _ = effective(site, "use_rslora")
    if not (ranks_known and alphas_known) or not isinstance(ranks, dict) or not isinstance(alphas, dict):
        return out
    from loralint.checks.hyperparams import scaling_of

    for key in [*ranks, *(k for k in alphas if k not in ranks)]:
        rk, ak = number(ranks.get(key, r)), number(alphas.get(key, alpha))
        if rk is None or ak is None or rk <= 0:
            continue
        s = scaling_of(ak, rk, bool(rslora))
        if default is None or abs(s - default) > 1e-9:
            out[key] = s
    return out


def _memory(data: dict[str, Any], info) -> dict[str, Any] | None:
    trainable, total = data["trainable_params"], data["total_params"]
    if trainable is None or total is None:
        return None
    base = total - trainable
    memory: dict[str, Any] = {
        "adapter_fp32_bytes": trainable * 4,
        "adapter_bf16_bytes": trainable * 2,
        # AdamW keeps two fp32 moments per trainable parameter; the gradients add one more copy.
        "adamw_state_bytes": trainable * 8,
        "gradients_fp32_bytes": trainable * 4,
        "base_bf16_bytes": base * 2,
    }
    if info is not None:
        # bitsandbytes quantizes the Linear layers except the output layer; embeddings, norms and
        # lm_head stay in bf16 (transformers keeps the output embeddings unquantized).
        quantizable = sum(
            m.num_params for m in info.modules if m.kind == "linear" and m.name != info.output_layer
        )
        rest = max(info.total_params - quantizable, 0)
        memory["base_8bit_bytes"] = quantizable * BYTES_8BIT + rest * 2
        memory["base_4bit_bytes"] = quantizable * BYTES_4BIT + rest * 2
        memory["base_4bit_double_quant_bytes"] = quantizable * BYTES_4BIT_DOUBLE + rest * 2
        memory["quantized_estimate"] = True
    return memory


_BANDS = (
    (4, "light: style, tone or output-format changes on a capable base model"),
    (16, "standard: most task and instruction adaptation (8–16 is the common default)"),
    (32, "substantial: a new domain, harder reasoning or a larger data set"),
    (64, "high capacity: large data sets or big distribution shifts"),
    (math.inf, "maximum capacity: approaching a full fine-tune in cost; use rsLoRA"),
)


# The MLP projections' last names across families (Llama, GPT-2, NeoX/BLOOM, Falcon, Phi, T5, Mixtral's experts,
# torchtune's w1/w2/w3): a target list naming one of them adapts the MLP already.
_MLP_NAMES = frozenset({"gate_proj", "up_proj", "down_proj", "gate_up_proj", "c_fc", "fc1", "fc2", "fc_in", "fc_out",
                        "dense_h_to_4h", "dense_4h_to_h", "w1", "w2", "w3", "wi", "wo", "wi_0", "wi_1", "mlp"})
_ATTENTION_NAME = re.compile(r"att|^(q|k|v|o|qkv|out)_proj$|^(query|key|value|query_key_value|c_attn|wqkv|q|k|v|o)$",
                             re.IGNORECASE)


def _attention_only(data: dict[str, Any]) -> bool:
    """Whether the targets adapt attention and nothing of the MLP, so "adapt the MLP" is advice that applies:
    from the modules matched when the model is known, else from the names in a target list."""
    matched = data["matched_modules"]
    if matched and matched.get("modules"):
        return all(_ATTENTION_NAME.search(name.rsplit(".", 1)[-1]) or "attn" in name or "attention" in name
                   for name in matched["modules"])
    targets = data["target_modules"]
    if not isinstance(targets, list) or not targets:
        return False  # "all-linear", a regex or not known: nothing to say
    return all(isinstance(t, str) and _ATTENTION_NAME.search(t) and t not in _MLP_NAMES for t in targets)


def _guidance(site: ConfigSite, data: dict[str, Any], info) -> list[str]:
    tips: list[str] = []
    r = number(data["r"]) if data["r"] is not None else None
    if r is not None and r > 0:
        band = next(text for limit, text in _BANDS if r <= limit)
        tips.append(f"rank band: r={fmt(r)} is {band}.")
    scaling = data["scaling"]
    odd = {k: v for k, v in data["scaling_by_pattern"].items() if not 0.5 <= v <= 4}
    if odd:
        tips.append("per-module scaling outside 0.5–4 from rank_pattern/alpha_pattern: "
                    + ", ".join(f"{k} {v:.3g}" for k, v in list(odd.items())[:4])
                    + " (LORA101 in `loralint check` says which alpha restores 1–2).")
    if scaling is not None:
        if data["use_rslora"]:
            tips.append(f"scaling lora_alpha/sqrt(r) = {scaling:.3g} (rsLoRA keeps the update size stable as r grows).")
        else:
            tips.append(
                f"scaling lora_alpha/r = {scaling:.3g}: keep it near 1–2 when you change r "
                f"(alpha={fmt(r)} for 1, {fmt(2 * r)} for 2)" if r else f"scaling lora_alpha/r = {scaling:.3g}."
            )
    matched = data["matched_modules"]
    tips.append(
        "under-fitting (training loss stays high): raise r and lora_alpha together"
        + (", adapt the MLP as well (target_modules=\"all-linear\")" if _attention_only(data) else "")
        + ", or raise the learning rate (LoRA typically wants 1e-4–3e-4)."
    )
    dropout = data["lora_dropout"]
    tips.append(
        "over-fitting (eval loss rises while train loss falls): lower r, train fewer epochs"
        + (", or add lora_dropout=0.05–0.1 on small data sets" if not dropout else ", or keep lora_dropout")
        + "."
    )
    # Checkpointing is proposed only where the script or config does not turn it on already.
    checkpointing = "" if _checkpointing(site)[0] else "enable gradient checkpointing, "
    if data["quantization"]:
        tips.append(f"memory pressure: already quantized; reduce r or the targets, {checkpointing}"
                    "or shorten sequences / use a smaller batch with gradient accumulation.")
    else:
        tips.append(f"memory pressure: load the base model in 4-bit (QLoRA, bnb nf4 with bf16 compute), {checkpointing}"
                    "reduce r or the targets.")
    slow = "slow training: "
    if site.origin.startswith("unsloth") and dropout:
        slow += "lora_dropout=0 puts Unsloth back on its fused kernels; "
    slow += "fewer targeted modules and a lower r cut the adapter's compute; 4-bit bases trade speed for memory."
    tips.append(slow)
    if matched and matched.get("count") == 0:
        tips.insert(0, "nothing is adapted: see the LORA20x findings of `loralint check`.")
    return tips


def render_text(entries: list[dict[str, Any]]) -> str:
    out: list[str] = []
    for data in entries:
        # Paths, model names, values and module names come from the checked tree: `escape` keeps their
        # control and bidi characters off the terminal (each line here is one line of text).
        place = f"cell {data['cell']}:{data['line']}" if data.get("cell") is not None else f"{data['line']}"
        title = escape(f"{data['path']}:{place}  {data['origin']}")
        out += [title, "-" * len(title)]
        rows: list[tuple[str, str]] = []
        base = data["base_model"] or "not found in the file"
        if data["model_type"]:
            base += f" → {data['model_type']} ({data['model_class'] or 'class unknown'}), from {data['resolved_from']}"
        rows.append(("base model", base))
        if "settings_from" in data:
            rows.append(("settings", f"the saved {data['settings_from']}" if data["settings_from"]
                         else f"not known: {data['settings_unknown'] or 'the saved adapter_config.json is not read'}"))
        rows.append(("r / lora_alpha", f"{_v(data['r'])} / {_v(data['lora_alpha'])}" + ("  (rsLoRA)" if data["use_rslora"] else "")))
        scaling = f"{data['scaling']:.4g}" if data["scaling"] is not None else "unknown"
        if data["scaling_by_pattern"]:
            scaling += " (rank_pattern/alpha_pattern: " + ", ".join(
                f"{name} {value:.4g}" for name, value in list(data["scaling_by_pattern"].items())[:6]) + ")"
        rows.append(("scaling", scaling))
        rows.append(("dropout / bias", f"{_v(data['lora_dropout'])} / {_v(data['bias'])}"))
        if data.get("dataset_size") is not None:
            rows.append(("training set", f"{data['dataset_size']:,} examples ({data['dataset_size_source']})"))
        rows.append(("targets", _v(data["target_modules"])))
        matched = data["matched_modules"]
        if matched:
            rows.append(("matched modules", f"{matched['count']}"))
            for name, count in list(matched["modules"].items())[:12]:
                rows.append(("", f"{name} ×{count}"))
        trainable, total = data["trainable_params"], data["total_params"]
        if trainable is not None and total:
            if data["counted_by"] == "peft":
                source = "counted by PEFT (--verify)"
            elif data["counts_exact"]:
                source = "exact, loralint's knowledge base"
            else:
                source = "approximate: some shapes at the model type's defaults (see notes; loralint verify is exact)"
            rows.append(("trainable", f"{trainable:,} of {total:,} ({100 * trainable / total:.3f}%) — {source}"))
        elif matched is not None and matched["count"] == 0:
            # Both sides known (the model's modules and the targets): nothing to count, and PEFT says so.
            rows.append(("trainable", "none: 0 modules matched (get_peft_model raises; see LORA202 in `loralint check`)"))
        else:
            rows.append(("trainable", f"unknown ({_why_not_counted(data)})"))
        memory = data["memory"]
        if memory:
            rows.append(("adapter on disk", f"{_size(memory['adapter_fp32_bytes'])} fp32, {_size(memory['adapter_bf16_bytes'])} bf16/fp16"))
            rows.append(("AdamW state", f"{_size(memory['adamw_state_bytes'])} (+ {_size(memory['gradients_fp32_bytes'])} gradients)"))
            base_line = f"{_size(memory['base_bf16_bytes'])} bf16"
            if "base_4bit_bytes" in memory:
                base_line += (f", ~{_size(memory['base_8bit_bytes'])} 8-bit, ~{_size(memory['base_4bit_bytes'])} 4-bit"
                              f" (~{_size(memory['base_4bit_double_quant_bytes'])} with double quantization) — estimates")
            rows.append(("base weights", base_line))
        rows += _fit_rows(data.get("fit"))
        for k, note in enumerate(data["model_notes"][:4]):
            rows.append(("notes" if k == 0 else "", note))
        width = max(len(k) for k, _ in rows)
        out += [f"  {k:<{width}}  {escape(v)}" for k, v in rows]
        out += ["", "  guidance:"] + [f"  - {escape(tip)}" for tip in data["guidance"]] + [""]
    if not entries:
        out.append("No LoRA configuration found.")
    return "\n".join(out).rstrip() + "\n"


def _why_not_counted(data: dict[str, Any]) -> str:
    """Which of the two facts a count needs is missing: the base model's modules, or the adapter's settings."""
    if not data["model_type"]:
        return "the base model is not known"
    if data.get("settings_from") is None and "settings_from" in data:
        return "the loaded adapter's settings are not known"
    if data["target_modules"] is None:
        return "target_modules is not statically known"
    return "some values are not statically known"


def _fit_rows(fit: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not fit:
        return []
    rows: list[tuple[str, str]] = []
    for k, item in enumerate(fit["items"]):
        rows.append(("training memory" if k == 0 else "", f"{item['what']}: {_size(item['bytes'])} ({item['kind']})"))
    for note in fit["notes"]:
        rows.append(("", note))
    if fit.get("total_bytes") is not None:
        line = f"total {_size(fit['total_bytes'])} (estimate)"
        if fit.get("gpu_memory_bytes"):
            line += f" against {_size(fit['gpu_memory_bytes'])}: " + ("fits" if fit["fits"] else "does not fit")
        rows.append(("", line))
    for change in fit.get("changes", []):
        rows.append(("", f"to fit: {change}"))
    return rows


def _v(value: Any) -> str:
    if value is None:
        return "unknown"
    return fmt(value) if not isinstance(value, str) else value


# --- training memory: weights, adapter, optimizer, activations --------------------------------
# Names the training arguments go by in TRL/transformers and the trainer YAML formats.
_BATCH_KEYS = ("per_device_train_batch_size", "micro_batch_size", "batch_size")
_SEQ_KEYS = ("max_length", "max_seq_length", "sequence_len", "cutoff_len", "max_seq_len")
_UNCHECKED = "the estimates are rules of thumb, not yet checked against a GPU's measured peak"


def _training_arg(site: ConfigSite, names: tuple[str, ...]) -> tuple[Any, str] | None:
    """The first of `names` the training arguments set, else the trainer call itself (SFTTrainer(max_seq_length=))."""
    training = getattr(site.hints, "training", None)
    for given in (getattr(training, "args", None) or {}, getattr(training, "trainer_args", None) or {}):
        for name in names:
            f = given.get(name)
            if f is not None and f.known:
                return f.value, name
    return None


# trl/trainer/sft_config.py (recent TRL): "gradient_checkpointing: Defaults to True instead of False" —
# SFTConfig overrides TrainingArguments' default.
_CHECKPOINTING_BY_DEFAULT = frozenset({"SFTConfig"})


def _checkpointing(site: ConfigSite) -> tuple[bool, str]:
    """Whether training runs with gradient checkpointing, and (for the note) what turns it on. A call on
    the model wins over the arguments: Trainer only ever enables it (transformers/trainer.py)."""
    training = getattr(site.hints, "training", None)
    found = getattr(training, "checkpointing", None)
    if found is not None:
        return True, f" ({found[1]}, line {found[0].line})"
    written = (getattr(training, "args", None) or {}).get("gradient_checkpointing")
    if written is not None:  # a trainer YAML's default says which trainer decided it
        return written.known and written.value is True, "" if written.written_here else f" ({written.provenance})"
    if getattr(training, "args_class", None) in _CHECKPOINTING_BY_DEFAULT:
        return True, f" ({training.args_class}'s default gradient_checkpointing=True)"
    return False, ""


def training_memory(site: ConfigSite, data: dict[str, Any], info, gpu_memory: int | None) -> dict[str, Any] | None:
    """What training this configuration holds on one GPU: the base weights at the chosen
    quantization, the adapter with its gradients and AdamW state (exact when the counts are), and
    an activation estimate for the batch and sequence length (Korthikanti et al. 2022, "Reducing
    Activation Recomputation in Large Transformer Models": about 34·s·b·h bytes a layer in 16-bit
    with flash attention; with gradient checkpointing, the 2·s·b·h input of each layer plus one
    layer recomputed; plus the fp32 logits, b·s·vocab·4)."""
    memory = data.get("memory")
    if not memory or data.get("trainable_params") is None:
        return None
    trainable = data["trainable_params"]
    quant = site.hints.quantization
    bnb = site.hints.bnb_config or {}
    exact_counts = bool(data.get("counts_exact")) or data.get("counted_by") == "peft"
    counted = "exact" if exact_counts else "estimate"
    if quant == "4bit" and "base_4bit_bytes" in memory:
        double = bnb.get("bnb_4bit_use_double_quant") is True
        base = memory["base_4bit_double_quant_bytes" if double else "base_4bit_bytes"]
        base_item = {"what": "base weights, 4-bit" + (" (double quantization)" if double else ""), "bytes": base, "kind": "estimate"}
    elif quant == "8bit" and "base_8bit_bytes" in memory:
        base_item = {"what": "base weights, 8-bit", "bytes": memory["base_8bit_bytes"], "kind": "estimate"}
    elif quant is None:
        base_item = {"what": "base weights, bf16", "bytes": memory["base_bf16_bytes"], "kind": counted}
    else:
        return None
    items = [
        base_item,
        # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype=True); AdamW two fp32 moments.
        {"what": "adapter weights, fp32", "bytes": trainable * 4, "kind": counted},
        {"what": "adapter gradients, fp32", "bytes": trainable * 4, "kind": counted},
        {"what": "AdamW state (2 fp32 moments)", "bytes": trainable * 8, "kind": counted},
    ]
    fit: dict[str, Any] = {"items": items, "notes": [], "total_bytes": None, "gpu_memory_bytes": gpu_memory,
                           "fits": None, "changes": [], "checked_on_gpu": False}
    config = getattr(info, "config", None) or {}
    hidden, layers, vocab = config.get("hidden_size"), getattr(info, "num_layers", None), config.get("vocab_size")
    batch, seq = _training_arg(site, _BATCH_KEYS), _training_arg(site, _SEQ_KEYS)
    gc_on, gc_why = _checkpointing(site)
    if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, vocab)):
        fit["notes"].append("activations: unknown (the model's hidden size, layers or vocabulary are not known)")
        return fit
    if batch is None or seq is None or not isinstance(batch[0], int) or not isinstance(seq[0], int):
        missing = [what for what, found in (("batch size", batch), ("sequence length", seq))
                   if found is None or not isinstance(found[0], int)]
        keys = {"batch size": _BATCH_KEYS, "sequence length": _SEQ_KEYS}
        looked = f"; looked for {', '.join(keys[missing[0]])}" if len(missing) == 1 else ""
        fit["notes"].append(f"activations: unknown ({' and '.join(missing)} not found in the training arguments{looked})")
        return fit
    b, s = batch[0], seq[0]
    without, with_gc = activation_bytes(b, s, hidden, layers, vocab)
    items.append({"what": f"activations, batch {b} × {s} tokens, no gradient checkpointing", "bytes": without, "kind": "estimate"})
    items.append({"what": f"activations, batch {b} × {s} tokens, gradient checkpointing", "bytes": with_gc, "kind": "estimate"})
    fixed = sum(i["bytes"] for i in items[:4])
    total = fixed + (with_gc if gc_on else without)
    fit["total_bytes"] = total
    fit["notes"].append(f"{'with' if gc_on else 'without'} gradient checkpointing as configured{gc_why}; {_UNCHECKED}")
    deepspeed = getattr(getattr(site.hints, "training", None), "deepspeed", None) or {}
    if deepspeed.get("stage") == 3:  # ZeRO-3 partitions parameters, gradients and optimizer state over the ranks
        fit["notes"].append(f"DeepSpeed ZeRO stage 3 ({deepspeed.get('source')}) splits the base weights, gradients and"
                            " AdamW state across the GPUs: these are the figures of one GPU holding them all, an upper bound")
    if gpu_memory:
        fit["fits"] = total <= gpu_memory
        if not fit["fits"]:
            fit["changes"] = _changes(fixed, without, with_gc, gc_on, b, s, hidden, layers, vocab, gpu_memory, quant, memory)
    return fit


def activation_bytes(b: int, s: int, hidden: int, layers: int, vocab: int) -> tuple[int, int]:
    """(without, with) gradient checkpointing, in bytes: estimates."""
    logits = b * s * vocab * 4
    without = 34 * s * b * hidden * layers + logits
    with_gc = 2 * s * b * hidden * layers + 34 * s * b * hidden + logits
    return without, with_gc


def _changes(fixed, without, with_gc, gc_on, b, s, hidden, layers, vocab, budget, quant, memory) -> list[str]:
    out: list[str] = []
    if not gc_on and fixed + with_gc <= budget:
        out.append(f"enable gradient checkpointing (total ~{_size(fixed + with_gc)})")
        return out
    activations = with_gc if gc_on else without
    if quant is None and "base_4bit_bytes" in memory:
        smaller = fixed - memory["base_bf16_bytes"] + memory["base_4bit_bytes"]
        if smaller + with_gc <= budget:
            out.append(f"load the base in 4-bit (QLoRA) with gradient checkpointing (total ~{_size(smaller + with_gc)})")
    # The largest smaller batch that fits, computed rather than searched: the activations grow linearly
    # with the batch, and a YAML may say micro_batch_size: 100000000.
    per_one = activation_bytes(1, s, hidden, layers, vocab)[1]
    batch = min(b - 1, (budget - fixed) // per_one) if per_one > 0 else 0
    if batch >= 1:
        per = activation_bytes(batch, s, hidden, layers, vocab)[1]
        out.append(f"per-device batch {batch} with gradient checkpointing and gradient_accumulation_steps ×{math.ceil(b / batch)}"
                   f" (total ~{_size(fixed + per)})")
    if not out:
        out.append("shorter sequences, a smaller model or more GPUs: nothing above fits "
                   f"(weights and optimizer alone ~{_size(fixed)}, activations ~{_size(activations)})")
    return out
