"""`--output-format json`: the contract in DESIGN.md, validated by pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from loralint.engine import RunResult
from loralint.report import jsonable, site_scaling
from loralint.sites import Diagnostic, Fix


class JsonEdit(BaseModel):
    line: int
    column: int
    end_line: int
    end_column: int
    content: str
    cell: int | None = None  # as in JsonDiagnostic: an edit in a notebook names its cell


class JsonFix(BaseModel):
    description: str
    applicability: Literal["safe", "unsafe"]
    edits: list[JsonEdit]


class JsonDiagnostic(BaseModel):
    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    name: str
    severity: Literal["error", "warning", "info"]
    message: str
    fix: JsonFix | None
    cell: int | None = None  # in a notebook: the cell (1-based, all cells counted); lines count inside it


class JsonConfig(BaseModel):
    path: str
    line: int
    column: int
    origin: str
    fields: dict[str, Any]
    base_model: str | None
    scaling: float | None
    trainable_params: int | None
    cell: int | None = None  # as in JsonDiagnostic
    # Filled when the base model resolves (see `loralint.resolve`).
    model_type: str | None = None
    resolved_from: str | None = None
    matched_modules: dict[str, Any] | None = None
    total_params: int | None = None
    counted_by: Literal["loralint", "peft"] | None = None  # the static knowledge base, or --verify
    # Caveats of the resolved model: shapes at the type's defaults, fields the config leaves out, ...
    model_notes: list[str] = []
    # False when the static count is approximate (see model_notes); None when nothing was counted.
    counts_exact: bool | None = None


class JsonReport(BaseModel):
    version: Literal[1] = 1
    files_checked: int
    diagnostics: list[JsonDiagnostic]
    configs: list[JsonConfig]


def fix_model(fix: Fix | None) -> JsonFix | None:
    if fix is None:
        return None
    return JsonFix(
        description=fix.description,
        applicability=fix.applicability,
        edits=[
            JsonEdit(line=e.span.line, column=e.span.column, end_line=e.span.end_line, end_column=e.span.end_column, content=e.new_text)
            for e in fix.edits
        ],
    )


def diagnostic_model(d: Diagnostic) -> JsonDiagnostic:
    s = d.span
    return JsonDiagnostic(
        path=s.path, line=s.line, column=s.column, end_line=s.end_line, end_column=s.end_column,
        code=d.code, name=d.name, severity=d.severity, message=d.message, fix=fix_model(d.fix),
    )


def config_model(site) -> JsonConfig:
    base = site.base_model.value if site.base_model is not None and isinstance(site.base_model.value, str) else None
    advice = getattr(site.model, "advice", None) if site.model is not None else None
    return JsonConfig(
        path=site.path,
        line=site.span.line,
        column=site.span.column,
        origin=site.origin,
        fields={name: jsonable(f.value) for name, f in site.fields.items()},
        base_model=base,
        scaling=site_scaling(site),
        trainable_params=getattr(advice, "trainable_params", None),
        model_type=getattr(site.model, "model_type", None),
        resolved_from=getattr(site.model, "origin", None),
        matched_modules=getattr(advice, "matched_modules", None),
        total_params=getattr(advice, "total_params", None),
        counted_by=getattr(advice, "counted_by", None) if getattr(advice, "trainable_params", None) is not None else None,
        model_notes=list(getattr(getattr(site.model, "info", None), "notes", None) or [])
        + list(getattr(getattr(advice, "result", None), "notes", None) or []),
        counts_exact=_counts_exact(advice),
    )


def _counts_exact(advice) -> bool | None:
    if advice is None or getattr(advice, "trainable_params", None) is None:
        return None
    if getattr(advice, "counted_by", None) == "peft":
        return True
    result = getattr(advice, "result", None)
    return bool(getattr(result, "exact", False))


def render(result: RunResult) -> str:

    sources = result.source_lines()
    report = JsonReport(
        files_checked=result.files_checked,
        diagnostics=[in_cell_model(diagnostic_model(d), sources) for d in result.diagnostics],
        configs=[in_cell_model(config_model(s), sources) for s in result.sites],
    )
    return report.model_dump_json(indent=2, exclude=cell_exclusions(report))


def cell_exclusions(report: BaseModel) -> dict:
    """`cell` is written only for notebooks: other files keep the contract's keys as they were."""
    exclude: dict = {}
    for key in ("diagnostics", "configs"):
        items: dict = {}
        for i, item in enumerate(getattr(report, key)):
            drop: dict = {"cell": True} if item.cell is None else {}
            fix = getattr(item, "fix", None)
            edits = {j: {"cell": True} for j, e in enumerate(fix.edits) if e.cell is None} if fix is not None else {}
            if edits:
                drop["fix"] = {"edits": edits}
            if drop:
                items[i] = drop
        exclude[key] = items
    return exclude


def in_cell_model(item, sources):
    """A notebook's positions as ruff gives them: the cell, and line and column inside it."""
    from loralint.extract.notebook import in_cell, is_notebook
    from loralint.sites import Span

    if not is_notebook(item.path):
        return item
    end = (getattr(item, "end_line", item.line), getattr(item, "end_column", item.column))
    found = in_cell(sources.cells(item.path), Span(item.path, item.line, item.column, *end))
    if found is None:
        return item
    cell, span = found
    update = {"cell": cell, "line": span.line, "column": span.column}
    if hasattr(item, "end_line"):
        update |= {"end_line": span.end_line, "end_column": span.end_column}
    fix = getattr(item, "fix", None)
    if fix is not None:  # the fix's edits counted in their cells too, as the diagnostic is
        update["fix"] = fix.model_copy(update={"edits": [_edit_in_cell(e, item.path, sources) for e in fix.edits]})
    return item.model_copy(update=update)


def _edit_in_cell(edit: JsonEdit, path: str, sources) -> JsonEdit:
    from loralint.extract.notebook import in_cell
    from loralint.sites import Span

    found = in_cell(sources.cells(path), Span(path, edit.line, edit.column, edit.end_line, edit.end_column))
    if found is None:
        return edit
    cell, span = found
    return edit.model_copy(update={"cell": cell, "line": span.line, "column": span.column,
                                   "end_line": span.end_line, "end_column": span.end_column})


def render_statistics(result: RunResult, unsafe_fixes: bool = False) -> str:
    """`--statistics --output-format json`: ruff's shape, one object a rule (code, name, count, fixable,
    fixable_count), with the severity added."""
    import json

    from loralint.report.text import statistics_rows

    return json.dumps(statistics_rows(result, unsafe_fixes), indent=2)
