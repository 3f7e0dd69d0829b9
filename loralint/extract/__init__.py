"""extract: one file's bytes → ConfigSites (or LORA9xx diagnostics about the file).

A cheap byte prefilter runs first: most files of a repository cannot hold a LoRA configuration,
and parsing is the cost centre. Parsers are imported only when a file passes the prefilter; plain
checking never imports libcst (only fixes do, loralint/fixes.py).
"""

from __future__ import annotations

import gc
import heapq
import os
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from loralint.extract.source import (
    SourceSyntaxError,
    UndecodableSource,
    as_utf8,
    decode_python,
    decode_text,
    looks_binary,
    wide_encoding,
)
from loralint.lazy_re import LazyPattern, lazy
from loralint.limits import AnalysisLimit
from loralint.sites import Diagnostic, FileResult, Span

# extract_source imports the bounds and the suppression reader itself: a warm run only prefilters here.

FORMATS: dict[str, str] = {".py": "python", ".pyi": "python", ".yaml": "yaml", ".yml": "yaml", ".json": "json",
                           ".ipynb": "notebook"}

# Words without which a file of that format cannot hold a configuration we extract. In Python:
# `LoraConfig`, `ModelConfig`, `get_peft_config`, `get_peft_model`, a saved adapter loaded
# (`PeftModel` / `PeftModelFor*` / `AutoPeftModelFor*.from_pretrained`: LORA407 and LORA405 need no LoraConfig).
# Two of them count only beside others in the file (`prefilter`). Of peft's own Python candidates, a third (56 of
# 168) named only these two, and none held a configuration or a finding.
# - `get_peft_model` makes a configuration only as Unsloth's (`FastLanguageModel.get_peft_model(model, r=16)`,
#   extract/python.py `_site_for`), whose qualified name comes from an import that spells `unsloth`. PEFT's
#   `get_peft_model(model, config)` applies a config that only the other words make.
# - A saved adapter loaded matters only to a trainer that trains it (a loaded site, LORA407: extract/loaded.py,
#   training.py; a trainer's import path ends in `Trainer` or comes from `import_module`/`importorskip`, or a
#   non-ASCII text spells it otherwise: extract/trainers.py `_may_name_trainers`), to a merge of it (LORA405,
#   `merge_and_unload`/`merge_adapter`) and to a 4/8-bit keyword on its base (LORA306, `load_in_4bit`/`load_in_8bit`).
_UNSLOTH = b"unsloth"
_LOAD_READERS = (b"Trainer", b"import_module", b"importorskip", b"merge_and_unload", b"merge_adapter", b"load_in_")
_ALWAYS = (b"LoraConfig", b"ModelConfig", b"get_peft_config")


def _python_words(unsloth: bool, loads: bool) -> bytes:
    words = rb"\b(?:" + b"|".join(_ALWAYS + ((b"get_peft_model",) if unsloth else ())) + rb")\b"
    return words + rb"|\b(?:Auto)?PeftModel\w*\.from_pretrained\b" if loads else words


# By (the text names unsloth, a loaded adapter may matter)
_PYTHON_PATTERNS = {(unsloth, loads): lazy(_python_words(unsloth, loads)) for unsloth in (False, True)
                    for loads in (False, True)}
# YAML: the LoRA keys of axolotl, LLaMA-Factory (also `finetuning_type: lora` alone, whose
# lora_* keys all default), torchtune (`_component_: ...lora_*`), TRL, Unsloth (`lora:` section). Each a key
# of its own (quoted or not), spelled as formats.py `detect` reads them: a docs table of contents that links the
# LoRA pages (`local: package_reference/lora_utils`, `conceptual_guides/adapter: ...`) and a CI workflow's
# environment (`PEFT_DEBUG: 1`) hold no configuration.
_YAML_WORDS = (rb"(?:^|(?<=[\s{,\"'?]))(?:lora_\w+|adapter|peft_\w+|use_peft|finetuning_type)\b[\"']?[ \t]*:"
               rb"|_component_:\s*\S*lora|^lora\s*:")
PREFILTERS: dict[str, LazyPattern] = {  # for Python and notebooks, every word: what `prefilter` picks from
    "python": _PYTHON_PATTERNS[True, True],
    # A notebook's code sits in JSON strings, where these words are written as in Python.
    "notebook": _PYTHON_PATTERNS[True, True],
    "yaml": lazy(_YAML_WORDS, re.M),
    "json": lazy(
        rb'"(?:lora_\w+|peft_type|peft_config|r|finetuning_type|use_peft|adapter|_component_)"\s*:'
    ),
}


def prefilter(data: bytes, fmt: str) -> LazyPattern:
    """The pattern a file of that format (`data`: its bytes, UTF-8) must match somewhere to be a candidate."""
    if fmt not in ("python", "notebook"):
        return PREFILTERS[fmt]
    return _PYTHON_PATTERNS[_names_unsloth(data), _loads_matter(data)]


def _names_unsloth(data: bytes) -> bool:
    return _UNSLOTH in data


def _loads_matter(data: bytes) -> bool:
    return not data.isascii() or any(word in data for word in _LOAD_READERS)


def file_format(path: str | Path) -> str | None:
    return FORMATS.get(os.path.splitext(str(path))[1].lower())


# Where a match of PREFILTERS[fmt] can begin: every match starts at an occurrence of one of these literals,
# moved by the offset given (`use_peft` begins 4 bytes before its `peft`, `AutoPeftModel` 4 before
# `PeftModel`). The pattern is then tried only there (`match` at that position, which sees the bytes
# before it for `\b` and `^`) instead of searched for at every byte: a file that holds none of the words is
# refused by a few substring searches, about ten times faster than the regex, and a large one that holds
# them costs a match per occurrence (transformers: 2,912 files, 54 MB; peft's notebooks: 15 MB).
_PYTHON_STARTS = ((b"LoraConfig", (0,)), (b"get_peft_", (0,)), (b"ModelConfig", (0,)), (b"PeftModel", (0, -4)))
_STARTS: dict[str, tuple[tuple[bytes, tuple[int, ...]], ...]] = {
    "python": _PYTHON_STARTS,
    "notebook": _PYTHON_STARTS,
    "yaml": ((b"lora", (0,)), (b"adapter", (0,)), (b"peft", (0, -4)), (b"finetuning_type", (0,)),
             (b"_component_", (0,))),
}
# JSON's keys all begin with a quote, the most frequent byte of a JSON file: one pass of this pattern (whose
# every match a PREFILTERS["json"] match begins with) is cheaper than a substring search a key.
_JSON_KEY_START = lazy(rb'"(?:lora_|peft_|r"|finetuning_type"|use_peft"|adapter"|_component_")')


# In a Python file a word counts only in code: in a comment or a string (a docstring's example, a message)
# it names nothing the program calls, and a library that only documents LoraConfig (transformers'
# trainer.py, peft's own peft_model.py: 25 of peft's 192 candidates) need not be parsed. Comments and
# strings are found from the start of the file as the tokenizer finds them: in code a quote always opens
# a string, which ends at its own quote not escaped. A quote that opens none (code that does not
# tokenize) ends the search there, the file a candidate as before: the parser says what is wrong. An f-
# or t-string's fields are code (Python 3.12 nests quotes there): a word inside one counts.
# Each body is unrolled (a run of plain bytes, then one escape or lone quote, and again), so a match
# never backtracks, and a quote is tried once: the search is linear in the text.
NOT_CODE = (  # with re.S (extract/inert_text.py reads statements with it)
    rb"#[^\r\n]*"
    rb"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''"
    rb'|"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*"""'
    rb"|'(?!'')[^'\\\r\n]*(?:\\.[^'\\\r\n]*)*'"
    rb'|"(?!"")[^"\\\r\n]*(?:\\.[^"\\\r\n]*)*"'
    rb"|['\"]"  # opens no string
)
_NOT_CODE = lazy(NOT_CODE, re.S)


def is_candidate(data: bytes, fmt: str) -> bool:
    text = as_utf8(data, fmt)  # UTF-16/32 text is searched as UTF-8
    if fmt == "json":
        return _JSON_KEY_START.search(text) is not None and PREFILTERS[fmt].search(text) is not None
    if fmt == "python":
        return next(_in_code(text, _word_starts(text)), None) is not None
    if fmt == "yaml":
        match = PREFILTERS[fmt].match
    else:  # a notebook: its code cells' words are written in its JSON as in Python
        match = _python_match(text)
    # A word at a time, in the table's order: the first match answers (no search for the others).
    return any(True for word, shifts in _STARTS[fmt] for _ in _matches(text, word, shifts, match))


def _python_match(text: bytes) -> Callable[[bytes, int], Any]:
    """`prefilter(text, "python").match`, which reads the rest of the text for a word that depends on it only
    where it first meets that word: a notebook's megabytes are otherwise searched for the words alone."""
    full = PREFILTERS["python"].match
    counts: dict[bool, bool] = {}  # is it get_peft_model (else a loaded adapter) → whether it counts here

    def match(data: bytes, at: int) -> Any:
        found = full(data, at)
        if found is None or data.startswith(_ALWAYS, at):
            return found
        unsloth = data.startswith(b"get_peft_model", at)
        known = counts.get(unsloth)
        if known is None:
            known = counts[unsloth] = _names_unsloth(text) if unsloth else _loads_matter(text)
        return found if known else None

    return match


def _word_starts(text: bytes) -> Iterator[int]:
    """Where a match of the Python prefilter begins, in order, one at a time: a file's first words (its
    imports) are most often enough."""
    found = _word_finders(text)
    return found[0] if len(found) == 1 else heapq.merge(*found)  # most files: none of the words, or one


def every_word_start(text: bytes) -> list[int]:
    """Every offset of `_word_starts`, in order."""
    found = _word_finders(text)
    return list(found[0]) if len(found) == 1 else sorted(chain.from_iterable(found))


def _word_finders(text: bytes) -> list[Iterator[int]]:
    match = _python_match(text)
    return [_matches(text, word, tuple(sorted(shifts)), match) for word, shifts in _PYTHON_STARTS if word in text]


def _matches(text: bytes, word: bytes, shifts: tuple[int, ...], match: Callable[..., Any]) -> Iterator[int]:
    """Where a match of the pattern (`match`) begins at an occurrence of `word` moved by one of `shifts`, in order
    when the shifts ascend (one word's occurrences are further apart than its shifts)."""
    find = text.find
    at = find(word)
    while at >= 0:
        for shift in shifts:
            if at + shift >= 0 and match(text, at + shift) is not None:
                yield at + shift
        at = find(word, at + 1)


def not_code_at(text: bytes, line_start: int, at: int) -> bool:
    """Whether offset `at` is in a comment or a string (not an f-string) of Python source, when its line, which
    begins at `line_start`, begins outside any string."""
    return next(_in_code(text, (at,), line_start), None) is None


def _in_code(text: bytes, starts: Iterable[int], begin: int = 0) -> Iterator[int]:
    """Each offset of `starts` (ascending, in Python source read from `begin`, outside any string) outside every
    comment and string, or inside an f- or t-string; then -1 where a quote opens no string (what follows is not
    known to be code or not), and no more."""
    search = _NOT_CODE.search
    found = search(text, begin)
    for at in starts:
        while found is not None and found.end() <= at:
            if found.end() - found.start() == 1 and text[found.start()] != 0x23:
                yield -1  # a quote that opens no string: the file does not tokenize
                return
            found = search(text, found.end())
        if found is None or found.start() > at:
            yield at
        elif text[found.start()] != 0x23 and has_fields(text, found.start()):  # a string, not a comment
            yield at


def has_fields(text: bytes, quote: int) -> bool:
    """Whether the string whose quote is at offset `quote` is an f- or t-string, whose replacement fields are
    code: an f or t among its prefix, up to two letters before the quote."""
    prefix = text[max(quote - 2, 0):quote].lower()
    return b"f" in prefix or b"t" in prefix


def _positions_are_bytes(data: bytes) -> bool:
    """Whether ast's positions in the decoded text are offsets of `data` (per line, in UTF-8 bytes): UTF-8
    without a byte-order mark, whose lines end at `\\n` (or `\\r\\n`) only."""
    from loralint.extract.source import declared_encoding

    if b"\r" in data and b"\r" in data.replace(b"\r\n", b""):
        return False
    return declared_encoding(data) == "utf-8"


def file_diagnostic(code: str, path: str, message: str, line: int = 1, column: int = 1) -> Diagnostic:
    names = {"LORA901": "parse-error", "LORA902": "unreadable-file", "LORA904": "internal-error",
             "LORA905": "input-skipped", "LORA906": "analysis-limit"}
    severity = "warning" if code in ("LORA905", "LORA906") else "error"
    return Diagnostic(code, names[code], severity, message, Span(path, line, column, line, column + 1))


def extract_source(display: str, data: bytes, fmt: str) -> FileResult:
    """Extract from bytes already read. Never raises: problems become diagnostics."""
    from loralint.extract.bounds import recording

    # A parse makes ~100k tracked objects and no cycles worth collecting before the file is done:
    # collecting meanwhile costs a quarter of the extraction's time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with recording() as limits:  # bounds reached on part of the file: one LORA906 per kind
            result = _extract_source(display, data, fmt)
    finally:
        if collecting:
            gc.enable()
    for reached in limits.values():
        result.diagnostics.append(file_diagnostic("LORA906", display, reached.message, reached.line, reached.column))
    return result


def _extract_source(display: str, data: bytes, fmt: str) -> FileResult:
    from loralint.extract.bounds import LimitReached, check_python_size
    from loralint.suppressions import find_suppressions

    result = FileResult(display)
    if wide_encoding(data, fmt) is None and looks_binary(data):
        result.diagnostics.append(file_diagnostic("LORA902", display, "binary file (contains NUL bytes); not checked"))
        return result
    environment: str | None = None  # a notebook's cells as written, shell lines included (extract/pins.py)
    tree = None  # a notebook's module, from its cells' parses (extract/notebook.py)
    try:
        text = decode_python(data) if fmt == "python" else decode_text(data, "json" if fmt == "notebook" else fmt)
        if "\x00" in text[:8192]:
            raise UndecodableSource("binary file (contains NUL characters)")
        if fmt == "notebook":  # its code cells as one Python text: positions inside are in that text
            from loralint.extract.notebook import read_notebook

            notebook = read_notebook(text)
            result.cells = [n for cell in notebook.cells for n in (cell.number, cell.first, len(cell.lines))]
            environment = "".join(line for cell in notebook.cells for line in cell.original)
            text, fmt, tree = notebook.python, "python", notebook.tree
            result.cell_text = text
            for code, message, line, column in notebook.problems:
                result.diagnostics.append(file_diagnostic(code, display, message, line, column))
        result.suppressions = find_suppressions(display, text)
        if fmt == "python":
            check_python_size(text)  # ast's memory grows with the source: bounded before parsing
            from loralint.extract.python import extract_python_full

            if tree is None and _positions_are_bytes(data):  # a script (a notebook's tree is its cells')
                from loralint.extract.inert_names import only_inert
                from loralint.extract.inert_text import only_inert_text
                from loralint.program.model import parse

                starts = every_word_start(data)
                if only_inert_text(data, starts):
                    return result  # imports and annotations only, told from the text: not even parsed
                tree = parse(text)
                if only_inert(tree, data, starts):
                    return result  # imports and annotations only: nothing to build a configuration from
            result.sites, limits, found, result.loaded, result.depends_on = extract_python_full(display, text,
                                                                                                environment, tree)
            result.diagnostics.extend(found)  # a loaded adapter trained frozen (LORA407), merged into 4-bit (LORA405)
            for span, reason in limits:
                result.diagnostics.append(
                    file_diagnostic("LORA906", display, f"analysis limit: {reason}", span.line, span.column)
                )
        elif fmt == "yaml":
            from loralint.extract.yaml_formats import extract_yaml

            result.sites = extract_yaml(display, text, result.depends_on)  # a DeepSpeed JSON it names
        else:
            from loralint.extract.adapter_json import extract_json

            result.sites = extract_json(display, text, result.depends_on)
    except UndecodableSource as exc:
        result.diagnostics.append(file_diagnostic("LORA902", display, f"cannot decode: {exc}; not checked"))
    except SourceSyntaxError as exc:
        result.diagnostics.append(
            file_diagnostic("LORA901", display, f"cannot parse: {exc.message}; not checked", exc.line, exc.column)
        )
    except LimitReached as exc:
        result.diagnostics.append(file_diagnostic("LORA906", display, f"{exc.message}; not checked", exc.line, exc.column))
    except AnalysisLimit as exc:
        result.diagnostics.append(file_diagnostic("LORA906", display, f"{exc}; not checked"))
    except (RecursionError, MemoryError) as exc:  # a bound of Python's own, reached in spite of ours
        what = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
        result.diagnostics.append(file_diagnostic("LORA906", display, f"{what} for loralint to analyse; not checked"))
    except Exception as exc:  # an internal failure on one file is that file's diagnostic, never a crash
        if os.environ.get("LORALINT_DEBUG"):
            raise
        result.diagnostics.append(
            file_diagnostic(
                "LORA904", display, f"internal error while reading this file ({type(exc).__name__}: {exc}); please report it"
            )
        )
    return result
