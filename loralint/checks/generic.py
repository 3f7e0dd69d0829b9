"""Check templates: generic checks on one field, for built-in rules and users' own policies
(kube-linter style: a rule names the template and gives it parameters)."""

from __future__ import annotations

from typing import Iterable

from loralint.checks import CheckContext, Finding, check
from loralint.checks._util import effective, fmt, number
from loralint.sites import ConfigSite


@check("field_range")
def field_range(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """A template: `field` outside [min, max]. Used by built-in rules and by users' own policies."""
    name = ctx.params.get("field")
    if not name:
        return
    value, known = effective(site, str(name))
    value = number(value) if known else None
    if value is None:
        return
    skip = ctx.params.get("skip_at_or_above")
    if skip is not None and value >= skip:
        return  # out of the valid range altogether: another rule reports it
    low, high = ctx.params.get("min"), ctx.params.get("max")
    if low is not None and value < low:
        bound, word = low, "below"
    elif high is not None and value > high:
        bound, word = high, "above"
    else:
        return
    reason = ctx.params.get("reason", "")
    if ctx.message:
        message = ctx.message.format(field=name, value=fmt(value), limit=fmt(bound), min=low, max=high)
    else:
        message = f"{site.describe(str(name))} is {word} {fmt(bound)}" + (f": {reason}" if reason else "")
    yield Finding(site.span_of(str(name)), message)


@check("field_required")
def field_required(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """A template: `field` must be set explicitly (an organisation's policy, e.g. task_type)."""
    name = str(ctx.params.get("field", ""))
    if not name or site.is_set(name) or site.opaque:
        return
    message = ctx.message.format(field=name) if ctx.message else f"{name} is not set (required by this project's settings)"
    yield Finding(site.span, message)


@check("field_choices")
def field_choices(site: ConfigSite, ctx: CheckContext) -> Iterable[Finding]:
    """A template: `field` must be one of `choices` (or must not be one of `forbidden`)."""
    name = str(ctx.params.get("field", ""))
    value, known = effective(site, name)
    if not name or not known:
        return
    choices, forbidden = ctx.params.get("choices"), ctx.params.get("forbidden")
    comparable = sorted(value) if isinstance(value, (set, frozenset)) else value
    bad = (choices is not None and comparable not in choices) or (forbidden is not None and comparable in forbidden)
    if not bad:
        return
    if ctx.message:
        message = ctx.message.format(field=name, value=fmt(value), choices=choices, forbidden=forbidden)
    elif choices is not None:
        message = f"{site.describe(name)} is not one of {', '.join(fmt(c) for c in choices)}"
    else:
        message = f"{site.describe(name)} is not allowed here"
    yield Finding(site.span_of(name), message)
