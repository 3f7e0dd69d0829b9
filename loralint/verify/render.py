"""Output of `loralint verify`: JSON and text."""

from __future__ import annotations

import json
from typing import Any

from loralint.report.escape import escape
from loralint.sites import Diagnostic
from loralint.verify.model import _ranges
from loralint.verify.report import ModuleGroup, VerifyReport


def render_json(report: VerifyReport, result) -> str:
    from loralint.report import SourceLines, cell_place

    sources = SourceLines(result.sources, result.texts)
    data = report.as_json()
    for config, rep in zip(data["configs"], report.sites):
        cell, span = cell_place(sources, rep.site.span)
        if cell is not None:  # a notebook: the cell and the line inside it, as `check` says
            config.update(cell=cell, line=span.line, column=span.column)
        config["diagnostics"] = [_diagnostic_json(d, sources) for d in rep.diagnostics]
    out = {
        "version": data["version"],
        "files_checked": result.files_checked,
        "versions": data["versions"],
        "device": data["device"],
        "configs": data["configs"],
        "diagnostics": [_diagnostic_json(d, sources) for d in result.diagnostics],
        "notes": data["notes"],
        "timings": data["timings"],
    }
    return json.dumps(out, indent=2)


def _diagnostic_json(d: Diagnostic, sources) -> dict[str, Any]:
    """As `check --output-format json` writes it: `cell` only in a notebook."""
    from loralint.report.json import diagnostic_model, in_cell_model

    item = in_cell_model(diagnostic_model(d), sources)
    exclude: dict = {} if item.cell is not None else {"cell": True}
    if item.fix is not None:
        edits = {j: {"cell": True} for j, e in enumerate(item.fix.edits) if e.cell is None}
        if edits:
            exclude["fix"] = {"edits": edits}
    return item.model_dump(exclude=exclude)


def render_text(report: VerifyReport, result, colour: bool = False) -> str:
    import click

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if colour else text

    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    status_colour = {"verified": "green", "rejected": "red", "refused": "yellow", "unresolved": "cyan", "skipped": "cyan"}
    from loralint.report import SourceLines, place_text

    sources = SourceLines(result.sources, result.texts)
    lines: list[str] = []
    shown: set[int] = set()
    for rep in report.sites:
        s = rep.site
        # Paths, model ids and types, module names, reasons and notes may come from the checked tree or a
        # model folder: escaped, so that no control or bidi character reaches the terminal raw.
        head = escape(f"{s.path}:{place_text(sources, s.span)}")
        lines.append(f"{style(head, bold=True)}  {s.origin}  {style(rep.status, fg=status_colour[rep.status], bold=True)}")
        if rep.model_id or rep.model_type:
            where = f"{rep.model_id or '?'}"
            if rep.model_type:
                where += f": {rep.model_type}"
            if rep.resolved_from:
                where += f" from {rep.resolved_from}"
            if rep.model_class and rep.status in ("verified", "rejected"):
                where += f", built as {rep.model_class}"
            lines.append(label("base model") + escape(where))
        if rep.status == "verified":
            groups = [*rep.groups, *rep.parameter_groups]
            if groups:
                width = max(len(escape(g.pattern)) for g in groups)
                for n, g in enumerate(groups):
                    lines.append(label("targets" if n == 0 else "") + _group_line(g, width))
            if rep.modules_to_save:
                for n, g in enumerate(rep.modules_to_save):
                    extra = f"  {g.kind}, {g.lora_params:,} parameters trained in full"
                    lines.append(label("saved" if n == 0 else "") + escape(g.pattern)
                                 + (f" × {g.count}" if g.count > 1 else "") + extra)
            pct = f" ({rep.percent:.4f}%)" if rep.percent is not None else ""
            lines.append(label("trainable") + f"{rep.trainable:,} of {rep.total:,} parameters{pct}, counted by PEFT")
            if rep.scaling is not None:
                lines.append(label("scaling") + _number(rep.scaling))
            else:
                lines.append(label("scaling") + "per module (see targets)")
            if rep.device and "skipped" not in rep.device:  # a skipped step is said once: a note or LORA256
                lines.append(label("device") + escape(_device_line(rep.device)))
        elif rep.reason and not rep.diagnostics:
            lines.append(label("why") + escape(rep.reason))
        for note in rep.notes:
            if note != rep.reason:
                lines.append(label("note") + escape(note))
        for d in rep.diagnostics:
            shown.add(id(d))
            lines.append("  " + _diag_line(d, style, colours, sources))
        lines.append("")
    for d in result.diagnostics:
        if id(d) not in shown and d.code.startswith("LORA9"):
            lines.append(_diag_line(d, style, colours, sources))
    v = report.versions
    verified = sum(1 for r in report.sites if r.status == "verified")
    total = len(report.sites)
    if total == 0:
        lines.append("No LoRA configuration found.")
    else:
        timing = ""
        if "verify" in report.timings:
            timing = f" in {report.timings['verify']:.2f} s (imports {report.timings.get('import', 0):.2f} s)"
        lines.append(
            f"Verified {verified} of {total} configuration{'s' if total != 1 else ''} with peft {v.get('peft', '?')}, "
            f"transformers {v.get('transformers', '?')}, torch {v.get('torch', '?')} on the meta device{timing}"
            + (f"; one training step each on {report.device}" if _stepped(report) else "") + "."
        )
    for note in report.notes:
        lines.append(f"note: {escape(note)}")
    return "\n".join(lines)


def _stepped(report: VerifyReport) -> bool:
    """Whether any real-device step ran (without a GPU or the memory for it, none did)."""
    return any(rep.device and "seconds" in rep.device for rep in report.sites)


def label(text: str) -> str:
    return f"  {text:<12}"


def _number(value: float) -> str:
    return repr(float(value)) if len(repr(float(value))) <= 8 else f"{value:.6g}"


def _group_line(g: ModuleGroup, width: int) -> str:
    count = f"× {g.count}"
    index = f"i={_ranges(g.indices)}" if g.indices and "{i}" in g.pattern else ""
    rank = ""
    if g.ranks:
        rank = "r=" + "/".join(str(r) for r in g.ranks)
    if len(g.scalings) > 1:
        rank += " scaling=" + "/".join(_number(s) for s in g.scalings)
    parts = [f"{escape(g.pattern):<{width}}", f"{count:>6}", index, " ".join(x for x in (g.kind, g.shape) if x), rank]
    return "  ".join(p for p in parts if p)


def _device_line(device: dict[str, Any]) -> str:
    if "skipped" in device:
        return device["skipped"]
    if "error" in device:
        return f"{device['device']}: {device['error']}"
    text = f"{device['device']}, {device['dtype']}"
    if device.get("quantization"):
        text += f", {device['quantization']}"
    text += f", batch {device['batch_size']} × {device['seq_len']} tokens: one step in {device['seconds']} s"
    if "peak_bytes" in device:
        text += (f"; weights {device['weights_bytes'] / 2**30:.2f} GiB, peak {device['peak_bytes'] / 2**30:.2f} GiB "
                 f"({device['note']})")
    return text


def _diag_line(d: Diagnostic, style, colours: dict[str, str], sources) -> str:
    from loralint.report import place_text

    s = d.span
    return (f"{style(f'{escape(s.path)}:{place_text(sources, s)}:', bold=True)} "
            f"{style(escape(d.code), fg=colours[d.severity], bold=True)} "
            f"{style(f'[{d.severity}]', fg=colours[d.severity])} {escape(d.message)}")
