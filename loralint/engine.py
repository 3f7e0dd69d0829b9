"""engine: runs the pipeline — discover → extract → resolve → check — and applies settings,
selection and suppressions. Reporters get a RunResult and nothing else."""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import re
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from loralint.discover import Discovery, Matcher, SourceFile, discover, glob_to_regex
from loralint.extract import extract_source, file_diagnostic, file_format, is_candidate
from loralint.globs import GlobError
from loralint.lazy_re import lazy
from loralint.ruleset import Rule, builtin_rules, code_matches, rule_from_mapping
from loralint.safe_read import DEFAULT_MAX_FILE_SIZE, InputRefused, format_size, read_limited
from loralint.settings import Settings, setting_location
from loralint.sites import SEVERITY_RANK, ConfigSite, Diagnostic, FileResult

# Read and parse in worker processes (loralint/workers.py) only when there is enough Python to pay for
# forking them: this many bytes of Python files and notebooks to read, or, once read, this many candidates;
# and one worker for each POOL_BYTES_PER_WORKER of them at most.
POOL_MIN_BYTES = 400_000
POOL_MIN_CANDIDATES = 24
POOL_BYTES_PER_WORKER = 256 * 1024


class UsageError(Exception):
    """A problem with how loralint was invoked (exit code 2)."""


@dataclass(slots=True, repr=False, eq=False)
class Options:
    """What the command line adds to the settings."""

    select: list[str] | None = None
    extend_select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    model: str | None = None
    online: bool = False
    force_exclude: bool = False
    no_cache: bool = False
    jobs: int | None = None
    dataset_size: int | None = None  # --dataset-size: beats the settings, per-file settings and the script


@dataclass(slots=True, repr=False, eq=False)
class RunResult:
    """What a run found: all that reporters read."""

    files_checked: int
    diagnostics: list[Diagnostic]
    sites: list[ConfigSite]
    rules: dict[str, Rule]
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # display path → filesystem path
    texts: dict[str, str] = field(default_factory=dict)  # display path → text, for in-memory sources
    loaded: list[ConfigSite] = field(default_factory=list)  # adapters loaded to train again (extract/loaded.py)
    max_file_size: int | None = None  # the bound files were read under (the settings'), for source_lines
    cells: dict[str, list[int]] = field(default_factory=dict)  # display path → a notebook's FileResult.cells
    cell_texts: dict[str, str] = field(default_factory=dict)  # display path → a notebook's FileResult.cell_text
    # Files besides the checked ones whose contents the findings depend on (data sets sized for LORA104, a
    # loaded adapter's adapter_config.json), each with its stat from before it was read (None: not taken):
    # `check --watch` polls them too.
    inputs: dict[str, os.stat_result | None] = field(default_factory=dict)
    _lines: Any = None

    def source_lines(self) -> Any:
        """One reader of the checked files' lines (loralint.report.SourceLines) for the run and its
        reports: each file, and each notebook's cells, read once whoever asks."""
        if self._lines is None:
            from loralint.report import SourceLines

            self._lines = SourceLines(self.sources, self.texts, self.max_file_size or DEFAULT_MAX_FILE_SIZE, self.cells,
                                      self.cell_texts)
        return self._lines


# What the check templates accept (checks/generic.py); other checks accept the keys their rule file sets.
_TEMPLATE_PARAMS: dict[str, dict[str, tuple[type, ...]]] = {
    "field_range": {"field": (str,), "min": (int, float), "max": (int, float), "skip_at_or_above": (int, float),
                    "reason": (str,)},
    "field_required": {"field": (str,)},
    "field_choices": {"field": (str,), "choices": (list,), "forbidden": (list,)},
}


def _check_params(rule: Rule, params: dict[str, Any], where: str) -> None:
    """Settings' parameters, checked before any file is: a typo or a wrong type is a usage error, not a
    finding that never fires or an internal error on every file."""
    from loralint.checks._util import close_matches

    accepted: dict[str, tuple[type, ...]] = dict(_TEMPLATE_PARAMS.get(rule.check, {}))
    for key, default in rule.params.items():
        if key not in accepted:
            kinds: tuple[type, ...] = (int, float) if isinstance(default, (int, float)) and not isinstance(default, bool) \
                else (type(default),)
            accepted[key] = kinds
    for key, value in params.items():
        if key not in accepted:
            near = close_matches(key, accepted, n=1, cutoff=0.6)
            known = ", ".join(sorted(accepted)) or "none"
            raise UsageError(f"{where}: unknown parameter {key!r}" + (f" (did you mean {near[0]!r}?)" if near else "")
                             + f"; it takes: {known}")
        kinds = accepted[key]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            wanted = "a number" if float in kinds else f"a {kinds[0].__name__}"
            raise UsageError(f"{where}: {key} = {value!r} should be {wanted}")
    field_name = params.get("field", rule.params.get("field"))
    if rule.check in _TEMPLATE_PARAMS and isinstance(field_name, str):
        from loralint.peft_fields import LORA_FIELDS

        if field_name not in LORA_FIELDS:
            near = close_matches(field_name, LORA_FIELDS, n=1, cutoff=0.6)
            raise UsageError(f"{where}: field {field_name!r} is not a LoraConfig field"
                             + (f" (did you mean {near[0]!r}?)" if near else ""))


def all_rules(settings: Settings) -> dict[str, Rule]:
    """Built-in rules plus the user's own, with the settings' parameters and severities applied."""
    rules = dict(builtin_rules())
    for custom in settings.rules:
        if custom.code in rules:
            raise UsageError(f"custom rule {custom.code} clashes with a built-in rule")
        rules[custom.code] = rule_from_mapping(
            dataclasses.asdict(custom), docs=custom.summary, source="settings", builtin=False
        )
    if settings.rules:
        # Only a custom rule can name a check that does not exist (tests/test_startup.py holds the built-in
        # ones to theirs): without one, a run whose files all come from the check cache imports no check.
        from loralint.checks import load_checks

        checks = load_checks()
        for rule in rules.values():
            if rule.check not in checks and rule.check != "engine":
                raise UsageError(f"rule {rule.code} uses unknown check {rule.check!r} (known: {', '.join(sorted(checks))})")
    by_name = {r.name: r for r in rules.values()}
    for custom in settings.rules:
        _check_params(rules[custom.code], custom.params, f"custom rule {custom.code}")
    for key, params in settings.params.items():
        rule = rules.get(key.upper()) or by_name.get(key)
        if rule is None:
            raise UsageError(f"{setting_location(settings, 'params')}: unknown rule {key!r}")
        _check_params(rule, params, f"params of {rule.code} ({rule.name})")
        rules[rule.code] = replace(rule, params={**rule.params, **params})
    for key, severity in settings.severity.items():
        rule = rules.get(key.upper()) or by_name.get(key)
        if rule is None:
            raise UsageError(f"{setting_location(settings, 'severity')}: unknown rule {key!r}")
        rules[rule.code] = replace(rules[rule.code], severity=severity)
    return rules


def selected_codes(rules: dict[str, Rule], settings: Settings, options: Options) -> set[str]:
    # As in ruff, a `--select` on the command line resets the selection: the settings' select and
    # extend-select no longer apply, only the command line's extend-select does.
    if options.select is not None:
        select, extend = options.select, list(options.extend_select)
    else:
        select, extend = settings.select or ["ALL"], [*settings.extend_select, *options.extend_select]
    ignore = [*settings.ignore, *options.ignore]
    # Each selector in use, with where it is written: a typo names its settings file and key.
    sources: list[tuple[str, list[str]]] = [("--select", options.select or []), ("--extend-select", options.extend_select),
                                            ("--ignore", options.ignore), (setting_location(settings, "ignore"), settings.ignore)]
    if options.select is None:
        sources += [(setting_location(settings, "select"), settings.select or []),
                    (setting_location(settings, "extend-select"), settings.extend_select)]
    sources += [(f"{setting_location(settings, 'per-file-ignores')}[{glob!r}]", codes)
                for glob, codes in settings.per_file_ignores.items()]
    for where, selectors in sources:
        for selector in selectors:
            if selector != "ALL" and not any(code_matches(code, selector) for code in rules):
                raise UsageError(f"{where}: unknown rule selector {selector!r} (`loralint rule --all` lists the codes)")
    chosen = set()
    for code in rules:
        picked = [s for s in (*select, *extend) if code_matches(code, s)]
        dropped = [s for s in ignore if code_matches(code, s)]
        if not picked:
            continue
        # The more specific selector wins, as in ruff: --select LORA101 beats ignore = ["LORA1"].
        if dropped and max(len(s) for s in dropped) >= max(len(s) for s in picked):
            continue
        chosen.add(code)
    return chosen


def iter_extracted(files: list[SourceFile], settings: Settings, options: Options,
                   keys: dict[str, str] | None = None, walked: Iterable[str] = ()) -> Iterator[FileResult]:
    """Read every file, prefilter, and parse the candidates (cached; with many files, in worker processes
    that read, prefilter and parse too), handing each result over as soon as it is there: the caller's
    per-file stages then run while the workers go on. Cache hits the stat index vouches for come first; then
    the files read, as they are done (with workers: by the workers, largest first, or by this process,
    smallest first, while no result is ready: see workers.Workers), so their order changes from
    run to run and the caller must not depend on it; without workers, in the order of `files`. With the
    cache on, `keys` receives each candidate's content key (display path → key) before its result.
    `walked`: the folders `files` are all the files of (discover.Discovery.walked), whose other records the
    stat index drops."""
    cache = index = None
    if settings.cache and not options.no_cache:
        from loralint.cache import ExtractionCache
        from loralint.stat_index import StatIndex, file_stat

        cache = ExtractionCache(settings.root)
        index = StatIndex(cache, settings.max_file_size)
    ready: list[FileResult] = []
    pending: list[_Item] = []  # to read: each file with its stat (cache on) or None
    for source in files:
        facts = None
        if index is not None:
            # An unchanged file (its stat as the index recorded it) is neither read nor hashed: its content
            # key comes from the index. Its entry gone or its dependencies changed, it is read as before.
            facts = file_stat(source.path)
            known = index.known(source.display, str(source.path), source.fmt, facts)
            if known is not None:
                key = known[0]
                if key is None:
                    continue  # the prefilter refused it
                if keys is not None:
                    keys[source.display] = key
                cached = _cache_hit(cache, key)
                if cached is not None:
                    _note_dependencies(keys, source.display, cached)
                    ready.append(cached)
                    continue
        pending.append((source, facts, None))

    def intake(item: _Item) -> _Outcome:
        return _intake(item[0], item[2], settings, options, cache)

    def handle(item: _Item, outcome: _Outcome) -> FileResult | None:
        """What this process does with a file's outcome, whoever read and parsed it: its result, if any."""
        (source, facts, _), (kind, key, result) = item, outcome
        if kind in ("refused", "cached", "fresh") and index is not None:  # read, and not too large
            index.record(source.display, str(source.path), source.fmt, facts, key)
        if key and keys is not None:
            keys[source.display] = key
        if kind == "cached":
            _note_dependencies(keys, source.display, result)
        elif kind == "fresh" and key and not any(d.code == "LORA904" for d in result.diagnostics):
            # An adapter loaded to train again carries the settings of another file (its adapter_config.json):
            # the entry lists the files read (result.depends_on), and a hit re-reads them.
            _note_dependencies(keys, source.display, result)
            cache.put(key, result)
        return result

    # With much Python to read, workers are forked now and read, prefilter and parse as this process does;
    # with less, this process reads and prefilters every file first, and forks workers only for many
    # candidates (forking costs a small tree more than it saves).
    todo, workers = pending, None
    sizes = _sizes(pending, options, POOL_MIN_BYTES, None)
    if sizes is not None:
        todo, workers = _start_workers(pending, sizes, options, intake)
    try:
        yield from ready  # the workers, if any, are already at work
        if workers is None:
            todo = []
            for item in pending:
                data, outcome = _read(item[0], settings, options)
                if outcome is None:
                    todo.append((item[0], item[1], data))
                elif (result := handle(item, outcome)) is not None:
                    yield result
            sizes = _sizes(todo, options, POOL_MIN_BYTES, POOL_MIN_CANDIDATES)
            if sizes is not None:
                todo, workers = _start_workers(todo, sizes, options, intake)
        outcomes = iter(workers) if workers is not None else enumerate(map(intake, todo))
        for position, outcome in outcomes:
            if (result := handle(todo[position], outcome)) is not None:
                yield result
    finally:
        if workers is not None:
            workers.close()  # a usage error half-way stops them now
    if index is not None:
        index.save(walked)


# A file to do: its source, its stat (cache on), its bytes once read. What became of it: see _intake.
_Item = tuple[SourceFile, Any, "bytes | None"]
_Outcome = tuple[str, "str | None", "FileResult | None"]


def _jobs(options: Options) -> int:
    return options.jobs if options.jobs is not None else (os.cpu_count() or 1)


def _sizes(items: list[_Item], options: Options, min_bytes: int, min_files: int | None) -> list[int] | None:
    """Each item's size when there is enough Python (files and notebooks) among them to pay for forking
    workers: `min_bytes` of it, or `min_files` of it. YAML and JSON extraction is cheap (libyaml)."""
    if _jobs(options) < 2 or len(items) < 2:
        return None
    sizes = [len(data) if data is not None else _size(source, facts) for source, facts, data in items]
    python = [size for (source, _, _), size in zip(items, sizes) if source.fmt in ("python", "notebook")]
    if sum(python) < min_bytes and (min_files is None or len(python) < min_files):
        return None
    return sizes


def _size(source: SourceFile, facts: Any) -> int:
    if facts is not None:
        return facts[0]  # the stat index's (size, mtime, inode, ctime)
    try:
        return os.stat(source.path).st_size
    except OSError:
        return 0  # reading it says what is wrong


def _start_workers(items: list[_Item], sizes: list[int], options: Options,
                   intake: Callable[[_Item], _Outcome]) -> tuple[list[_Item], Any]:
    """The items, largest first, and the workers forked to do them with this process."""
    # Import the extractors once here: forked workers then share them instead of each importing.
    import encodings.utf_8_sig  # noqa: F401  (notebooks and BOM-marked files decode with it)

    import loralint.datasets.python_refs  # noqa: F401
    import loralint.dependencies  # noqa: F401
    import loralint.extract.adapter_json  # noqa: F401
    import loralint.extract.bounds  # noqa: F401
    import loralint.extract.inert_names  # noqa: F401
    import loralint.extract.inert_text  # noqa: F401
    import loralint.extract.notebook  # noqa: F401
    import loralint.extract.python  # noqa: F401
    import loralint.extract.yaml_formats  # noqa: F401
    import loralint.suppressions  # noqa: F401
    from loralint.workers import Workers

    # This process reads and parses too, from the smallest up, while no result is ready: `jobs` in all, but
    # no more workers than there is Python for (each fork costs the main process a few milliseconds).
    python = sum(size for (source, _, _), size in zip(items, sizes) if source.fmt in ("python", "notebook"))
    workers = min(_jobs(options) - 1, max(1, python // POOL_BYTES_PER_WORKER))
    # Largest first: a big file handed out last would leave the other processes idle at the end.
    order = sorted(range(len(items)), key=sizes.__getitem__, reverse=True)
    items = [items[i] for i in order]
    return items, Workers(items, [sizes[i] for i in order], workers, intake)


def _read(source: SourceFile, settings: Settings, options: Options) -> tuple[bytes | None, _Outcome | None]:
    """The file's bytes if it is a candidate, else what became of it: "skipped" (too large, not named),
    "unread" (a read problem, reported) or "refused" (by the prefilter)."""
    try:
        data = read_limited(source.path, settings.max_file_size)
    except OSError as exc:
        named = source.explicit and not options.force_exclude  # --force-exclude: pre-commit names every staged file
        if getattr(exc, "too_large", False) and source.fmt == "json" and not named:
            # A JSON file this large, found by walking a folder, is a data set or a tokenizer.json, never a
            # configuration (an adapter_config.json, a DeepSpeed or trainer JSON is a few KB): skipped as the
            # prefilter skips a file without LoRA words, not LORA905 on every repository that keeps its
            # alpaca_data.json beside the scripts. Named on the command line, it is reported, so the stat
            # index keeps no record of it (refused by size: a stat, no read).
            return None, ("skipped", None, None)
        return None, ("unread", None, FileResult(source.display, diagnostics=[_read_problem(source.display, exc)]))
    if not is_candidate(data, source.fmt):
        return None, ("refused", None, None)
    return data, None


def _intake(source: SourceFile, data: bytes | None, settings: Settings, options: Options, cache: Any) -> _Outcome:
    """One file read (unless `data` holds it), prefiltered and extracted or found in the cache: (what became
    of it (see _read; "cached", "fresh": extracted now), its content key (cache on), its result)."""
    if data is None:
        data, outcome = _read(source, settings, options)
        if outcome is not None:
            return outcome
        assert data is not None
    key = cache.key(source.display, source.fmt, data) if cache else None
    cached = _cache_hit(cache, key) if cache and key else None
    if cached is not None:
        return "cached", key, cached
    return "fresh", key, _extract(source.display, data, source.fmt)


def _cache_hit(cache: Any, key: str) -> FileResult | None:
    """The cached result of `key`, unless a file its extraction read (a loaded adapter's
    adapter_config.json) changed since: then it is extracted afresh."""
    cached = cache.get(key)
    if cached is not None and cached.depends_on:
        from loralint.dependencies import unchanged

        if not unchanged(cached.depends_on):
            return None
    return cached


def _note_dependencies(keys: dict[str, str] | None, display: str, result: FileResult) -> None:
    """The check cache's key of a file whose extraction read other files names what they held."""
    if keys is not None and result.depends_on and display in keys:
        from loralint.dependencies import fold

        keys[display] = fold(keys[display], result.depends_on)


# Python's recursion limit counts every frame on the stack, the caller's too, and (3.11) C calls such as the
# parser's: a file nested near it (a chain of thousands of `+`) got LORA901 from a worker, forked deep inside
# the run, and LORA906 from this process taking the same file itself (workers.Workers), depending on timing.
# Each extraction gets this many frames above its own first one, whoever runs it.
_EXTRACTION_FRAMES = 975


def _extract(display: str, data: bytes, fmt: str) -> FileResult:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    saved = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + _EXTRACTION_FRAMES)
    try:
        return extract_source(display, data, fmt)
    finally:
        sys.setrecursionlimit(saved)


def _read_problem(display: str, exc: OSError) -> Diagnostic:
    """LORA905 for what loralint refuses to read (a FIFO, a device, a loop, too large), LORA902 for a read error."""
    if isinstance(exc, InputRefused) and exc.skipped:
        return file_diagnostic("LORA905", display, f"{exc}; not checked")
    reason = exc.strerror or str(exc) or type(exc).__name__
    return file_diagnostic("LORA902", display, f"cannot read: {reason}; not checked")


def _in_memory(display: str, data: bytes, settings: Settings) -> FileResult:
    """An editor's buffer or stdin, bounded like a file on disk."""
    if len(data) > settings.max_file_size:
        refused = InputRefused(f"larger than max-file-size ({format_size(settings.max_file_size)}): "
                               f"{format_size(len(data))}")
        return FileResult(display, diagnostics=[_read_problem(display, refused)])
    fmt = file_format(display) or "python"
    return extract_source(display, data, fmt) if is_candidate(data, fmt) else FileResult(display)


def _invalid_globs(settings: Settings) -> list[str]:
    """Notes for the per-file globs of the settings that cannot be used (they match nothing)."""
    notes = []
    for setting, globs in (("per-file-ignores", settings.per_file_ignores),
                           ("per-file-dataset-size", settings.per_file_dataset_size)):
        for glob in globs:
            try:
                glob_to_regex(glob)
            except GlobError as exc:
                notes.append(f"{setting} pattern {glob!r} is invalid ({exc}); ignored")
    return notes


def matches_glob(display: str, filesystem: str | os.PathLike[str], root: Path, globs: Iterable[str]) -> list[str]:
    if not globs:
        return []  # no realpath for nothing to match (once per checked file)
    try:
        rel = Path(os.path.realpath(filesystem)).relative_to(root).as_posix()  # realpath: a link loop must not raise
    except (ValueError, OSError):
        rel = display
    return [g for g in globs if _glob_matches(g, rel) or _glob_matches(g, display)]


def _glob_matches(glob: str, path: str) -> bool:
    try:
        return bool(glob_to_regex(glob).match(path))
    except GlobError:
        return False  # reported once, as a note, by _invalid_globs


def _fold_online_notes(notes: list[str], dataset_notes: list[str]) -> None:
    """One line when the Hub cannot be reached: the data sets left unsized join the models' line."""
    for note in dataset_notes:
        reason, _, lost = note.rpartition("; data sets not sized: ")
        same = next((k for k, n in enumerate(notes) if reason and (n == reason or n.startswith(reason + "; "))), None)
        if same is None:
            notes.append(note)
        else:
            notes[same] += f"; data sets not sized: {lost}"


def discover_files(paths: list[str], settings: Settings, options: Options) -> Discovery:
    """The files a run checks, under the settings' exclude, extend-exclude and include (also what
    `check --show-files` lists and `check --watch` polls)."""
    matcher = Matcher(settings.root, [*settings.exclude, *settings.extend_exclude], settings.include)
    return discover(paths, matcher, settings.respect_gitignore, options.force_exclude)


# The stages after extraction (unpickled results, model inventories, analyses, findings) allocate steadily and
# make few cycles: at CPython's default threshold (700) the collector ran ~200 times a cold run on axolotl, 8% of
# the main process's CPU. A run raises the first threshold (as mypy does for its build, mypy/build.py); the
# workers, forked inside the run, inherit it. Restored after the run (the LSP server runs many).
_GC_THRESHOLD = 20_000
_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved: tuple[int, ...] = ()


def _fewer_collections(fn: Callable[..., RunResult]) -> Callable[..., RunResult]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> RunResult:
        global _gc_runs, _gc_saved
        with _gc_lock:
            if _gc_runs == 0:
                _gc_saved = gc.get_threshold()
                if _gc_saved[0] and _gc_saved[0] < _GC_THRESHOLD:  # 0: the caller turned automatic collection off
                    gc.set_threshold(_GC_THRESHOLD, *_gc_saved[1:])
            _gc_runs += 1
        try:
            return fn(*args, **kwargs)
        finally:
            with _gc_lock:
                _gc_runs -= 1
                if _gc_runs == 0:
                    gc.set_threshold(*_gc_saved)

    return wrapper


@_fewer_collections
def run(
    paths: list[str],
    settings: Settings,
    options: Options,
    *,
    sources: dict[str, bytes] | None = None,
    resolve: Callable[[Settings, Options], Any] | None = None,
    verify: Callable[[list[ConfigSite], dict[str, Rule], Settings, Options], dict[int, list[Diagnostic]]] | None = None,
    describe_sites: bool = True,
    size_every_dataset: bool = True,
) -> RunResult:
    """Check `paths` (or, with `sources`, in-memory files keyed by display path: stdin, editors).

    `resolve`: the resolve stage (loralint.resolve.SiteResolver), made once a run, at the first file
    with a site. Each file goes through the stages after extraction (data set sizes, launch commands,
    resolve, checks) as soon as extraction hands it over, while the workers parse the others; with
    `verify`, PEFT's own findings need every site resolved first, so the checks wait for all files.
    `describe_sites=False`: the caller shows findings only (text, SARIF, ...), not each site's module
    counts, so a site whose file's findings come from the check cache skips the architecture analysis.
    `size_every_dataset=False`: a data set is sized only where a check reads its size (`check`'s findings),
    not for every site (`explain` shows each one's)."""
    rules = all_rules(settings)
    active = selected_codes(rules, settings, options)
    notes: list[str] = []
    fs_paths: dict[str, str] = {}  # display path → filesystem path
    texts: dict[str, str] = {}
    notes.extend(_invalid_globs(settings))
    content_keys: dict[str, str] = {}  # display path → extraction cache key (files on disk, cache on)
    stream: Iterable[FileResult]
    if sources is not None:
        from loralint.report import decode_source

        fs_paths = {display: display for display in sources}
        stream = [_in_memory(display, data, settings) for display, data in sources.items()]
        files_checked = len(sources)
        texts = {display: decode_source(display, data) for display, data in sources.items()
                 if len(data) <= settings.max_file_size}
    else:
        found = discover_files(paths, settings, options)
        if found.missing:
            raise UsageError(f"{found.missing[0]}: no such file or directory")
        notes.extend(found.notes)
        fs_paths = {f.display: f.path for f in found.files}
        files_checked = len(found.files)
        stream = iter_extracted(found.files, settings, options, content_keys, found.walked)

    stages = _FileStages(settings, options, rules, active, fs_paths, content_keys, resolve,
                         checked=verify is None, describe_sites=describe_sites, on_disk=sources is None,
                         size_every_dataset=size_every_dataset)
    results: list[FileResult] = []
    try:
        for result in stream:
            results.append(result)
            stages.prepare(result)
            if verify is None:
                stages.check(result, {})
    finally:
        # Here: a usage error half-way (a --model not found) stops the workers now, not whenever the garbage
        # collector closes the generator.
        close = getattr(stream, "close", None)
        if close is not None:
            close()
    # The files' order, as discovered, not as extraction handed them over (which changes from run to run).
    order = {display: rank for rank, display in enumerate(fs_paths)}
    results.sort(key=lambda result: order.get(result.path, len(order)))
    sites = [site for result in results for site in result.sites]
    loaded = [site for result in results for site in result.loaded]
    notes.extend(stages.resolve_notes())
    _fold_online_notes(notes, stages.dataset_notes())
    if verify is not None:
        # --verify: the real PEFT's findings per site, filtered like every other finding.
        verified = verify(sites, rules, settings, options) if sites else {}
        for result in results:
            stages.check(result, verified)
    # Findings at one position keep their files' order, then their order within the file.
    diagnostics = [d for r in results for d in stages.diagnostics.get(r.path, ())]
    result = RunResult(files_checked, sorted(diagnostics, key=Diagnostic.sort_key), sites, rules, notes,
                       dict(fs_paths), texts, loaded, settings.max_file_size,
                       {r.path: r.cells for r in results if r.cells is not None},
                       {r.path: r.cell_text for r in results if r.cell_text is not None},
                       {**{path: None for r in results for path, _ in r.depends_on}, **stages.inputs()})
    result.diagnostics = _notebook_lines(result)
    return result


class _FileStages:
    """The stages after extraction, one file at a time: data set sizes, launch commands, resolve (each
    holding what it learned for the whole run), then the checks and the check cache."""

    def __init__(self, settings: Settings, options: Options, rules: dict[str, Rule], active: set[str],
                 fs_paths: dict[str, str], content_keys: dict[str, str], resolve: Callable[[Settings, Options], Any] | None,
                 *, checked: bool, describe_sites: bool, on_disk: bool, size_every_dataset: bool = True) -> None:
        self.settings, self.options, self.rules, self.active = settings, options, rules, active
        self.fs_paths, self.content_keys = fs_paths, content_keys
        self._resolve, self._resolver = resolve, None
        self._sizer: Any = None
        self._size_every_dataset = size_every_dataset
        self._size_read: Callable[[ConfigSite], bool] | None = None  # see _sized
        self._launches: Any = None
        self._checked = checked  # --verify checks after every file is resolved: no check cache then
        self._describe_sites = describe_sites
        self._on_disk = on_disk  # an editor's buffer or stdin: no counts kept across runs
        self._check_cache: Any = None
        self._check_plan: list[tuple[str, Rule, Any, bool]] | None = None  # see _plan
        self._contexts: dict[tuple[int | None, str | None], list[Any]] = {}  # (data set size, its source) -> contexts
        self._looked_up: dict[str, tuple[str | None, list[Diagnostic] | None]] = {}  # path → (check key, cached findings)
        self.diagnostics: dict[str, list[Diagnostic]] = {}  # FileResult.path → its findings

    @property
    def check_cache(self) -> Any:
        # Checked diagnostics are cached too (not with --verify: PEFT's own findings are not). The content
        # keys are all there once extraction hands over its first file.
        if self._check_cache is None and self.content_keys and self._checked:
            from loralint.cache import CheckCache

            self._check_cache = CheckCache(self.settings, self.rules, self.active, self.options)
        return self._check_cache

    def prepare(self, result: FileResult) -> None:
        """What the checks read besides the file itself: data set sizes, launches, the model."""
        sized = [site for site in result.sites if (site.hints.datasets or site.hints.held_out is not None)
                 and self._sized(site)]
        if sized:
            self._size_datasets(sized)
        if any(site.syntax == "python" and site.hints.training is not None for site in result.sites):
            # `accelerate launch --config_file X script.py` seen in the project: the config's facts (cached apart)
            if self._launches is None:
                from loralint.launches import Launches

                cache = None
                if self.settings.cache and not self.options.no_cache and self._on_disk:
                    from loralint.cache import ExtractionCache

                    cache = ExtractionCache(self.settings.root)
                self._launches = Launches(self.settings.root, cache)
            self._launches.attach(result, self.fs_paths)
        todo = [*result.sites, *result.loaded]
        if self._resolve is None or not todo:
            return
        if self._resolver is None:
            self._resolver = self._resolve(self.settings, self.options)
        if self.check_cache is not None and not self._describe_sites:
            # Only the files that will be checked need their models analysed (see SiteResolver).
            failures = self._resolver.resolve(todo, needs_architecture=lambda site: self.look_up(result)[1] is None)
        else:
            failures = self._resolver.resolve(todo)
        for site, reason in failures:
            result.diagnostics.append(
                file_diagnostic(
                    "LORA904", site.path, f"internal error while resolving the base model ({reason}); please report it",
                    site.span.line, site.span.column,
                )
            )

    def _sized(self, site: ConfigSite) -> bool:
        """Whether the site's data sets are sized. Counting was a sixth of a cold run on LLaMA-Factory (its data/),
        and only LORA104 reads the size, for a lora_dropout it can flag: when it is not active, when --dataset-size
        gives the size, or when the site's dropout is not in play, the count is skipped."""
        if self._size_every_dataset:
            return True
        if self._size_read is None:
            if self.options.dataset_size is None and any(self.rules[c].check == "dropout_large_dataset" for c in self.active):
                from loralint.datasets import dropout_in_play

                self._size_read = lambda site: dropout_in_play(site) is not None
            else:
                self._size_read = lambda site: False
        return self._size_read(site)

    def _size_datasets(self, sites: list[ConfigSite]) -> None:
        """The data sets' real size, for LORA104: counted after extraction, cached apart (by file size and time)."""
        from loralint.datasets import run_sizer, size_sites

        if self._sizer is None:
            # The Hub is asked about data sets only with --online, and only when a rule reads the size.
            wanted = self.options.dataset_size is None and any(
                self.rules[c].check == "dropout_large_dataset" for c in self.active)
            self._sizer = run_sizer(self.settings, online=self.options.online and wanted,
                                    cached=bool(self.settings.cache and not self.options.no_cache and self._on_disk))
        size_sites(self._sizer, sites, self.fs_paths)

    def resolve_notes(self) -> list[str]:
        return self._resolver.notes() if self._resolver is not None else []

    def inputs(self) -> dict[str, os.stat_result | None]:
        return self._sizer.read if self._sizer is not None else {}

    def dataset_notes(self) -> list[str]:
        if self._sizer is None or not self._sizer.asked:
            return []
        from loralint.datasets import online_notes

        return online_notes(sorted(self._sizer.asked))  # asked in the order files arrive: not the same each run

    def look_up(self, result: FileResult) -> tuple[str | None, list[Diagnostic] | None]:
        if result.path not in self._looked_up:
            cache = self.check_cache
            key = cache.key(result, self.content_keys.get(result.path), list(_file_facts(result, self.settings, self.fs_paths)))
            self._looked_up[result.path] = (key, cache.get(key) if key else None)
        return self._looked_up[result.path]

    def _plan(self) -> list[tuple[str, Rule, Any, bool]]:
        """The active rules that run checks, in code order, each with its check and whether it runs on an adapter
        loaded to train again (LOADED_ADAPTER_CHECKS): worked out once a run, not once a site."""
        if self._check_plan is None:
            from loralint.checks import LOADED_ADAPTER_CHECKS, load_checks

            checks = load_checks()
            self._check_plan = [(code, rule, checks[rule.check], rule.check in LOADED_ADAPTER_CHECKS)
                                for code in sorted(self.active) for rule in (self.rules[code],) if rule.check != "engine"]
        return self._check_plan

    def check(self, result: FileResult, verified: dict[int, list[Diagnostic]]) -> None:
        """The file's findings, from the check cache or from running the rules on each of its sites."""
        if not (result.sites or result.loaded or result.diagnostics or result.suppressions):
            # Nothing to check and nothing to filter: no findings, without a check cache entry to key, read or
            # write (a third of LLaMA-Factory's candidates: YAML and JSON files with no configuration).
            return
        settings, options, rules = self.settings, self.options, self.rules
        per_file_ignores, dataset_size, dataset_source = _file_facts(result, settings, self.fs_paths)
        check_key, cached = None, None
        if self.check_cache is not None:
            if any(d.code == "LORA904" for d in result.diagnostics):
                self._looked_up.pop(result.path, None)  # added by resolve after a lookup: the file is checked afresh
            check_key, cached = self.look_up(result)
        if cached is not None:
            self.diagnostics.setdefault(result.path, []).extend(cached)
            return
        # Imported here, after the cache: a warm run's findings need no check.
        from loralint.checks import CheckContext

        plan = self._plan()
        file_diags: list[tuple[Diagnostic, int | None]] = [(d, None) for d in result.diagnostics]
        loaded_here = {id(site) for site in result.loaded}
        for site in [*result.sites, *result.loaded]:
            if site.hints.expected_to_fail:
                continue  # a test builds it wrong on purpose (inside pytest.raises / assertRaises)
            file_diags.extend((d, site.span.line) for d in verified.get(id(site), []))
            size, source = dataset_size, dataset_source
            if options.dataset_size is not None:
                size, source = options.dataset_size, "--dataset-size"
            elif size is None and site.hints.dataset_size is None and settings.dataset_size is not None:
                size = settings.dataset_size
                source = f"dataset-size in {settings.source.name if settings.source else 'settings'}"
            # One context a rule and data set size for the run (checks only read them): 60,000 on peft's tree.
            contexts = self._contexts.get((size, source))
            if contexts is None:
                contexts = self._contexts[(size, source)] = [
                    CheckContext(params=rule.params, dataset_size=size, dataset_size_source=source, message=rule.message)
                    for _, rule, _, _ in plan]
            loaded = id(site) in loaded_here
            for (code, rule, run_check, on_loaded), ctx in zip(plan, contexts):
                if loaded and not on_loaded:
                    continue
                try:
                    findings = list(run_check(site, ctx))
                except Exception as exc:  # a bug in one check must not hide the others
                    if os.environ.get("LORALINT_DEBUG"):
                        raise
                    findings = []
                    file_diags.append(
                        (
                            file_diagnostic(
                                "LORA904", result.path, f"internal error in {code} ({type(exc).__name__}: {exc}); please report it",
                                site.span.line, site.span.column,
                            ),
                            None,
                        )
                    )
                for finding in findings:
                    diag = Diagnostic(
                        code=code,
                        name=rule.name,
                        severity=_demoted(rule.severity, finding.demote),
                        message=finding.message,
                        span=finding.span,
                        fix=None if _changes_trained_weights(site, code) else finding.fix,
                        related=finding.related,
                    )
                    file_diags.append((diag, site.span.line))
        filtered = _apply_file_filters(result, file_diags, self.active, rules, per_file_ignores, not self._checked)
        self.diagnostics.setdefault(result.path, []).extend(filtered)
        if self.check_cache is not None and check_key and not any(d.code == "LORA904" for d, _ in file_diags):
            self.check_cache.put(check_key, filtered)  # an internal error is never kept: the next run tries again


def _notebook_lines(result: RunResult) -> list[Diagnostic]:
    """A notebook's findings with the lines their messages name ("Trainer at line 9") said as the notebook
    shows them ("cell 6, line 1"), like their positions. Done on copies, after the check cache has its own."""
    diagnostics = result.diagnostics
    if not any(d.span.path.lower().endswith(".ipynb") for d in diagnostics):
        return diagnostics
    from loralint.extract.notebook import cell_line_refs

    sources = result.source_lines()
    out = []
    for d in diagnostics:
        notebook = sources.cells(d.span.path) if d.span.path.lower().endswith(".ipynb") else None
        if notebook is not None:
            d = replace(d, message=cell_line_refs(notebook, d.message),
                        related=[(span, cell_line_refs(notebook, label) if span.path == d.span.path else label)
                                 for span, label in d.related])
        out.append(d)
    return out


def _file_facts(result: FileResult, settings: Settings, fs_paths: dict[str, str]) -> tuple[list[str], int | None, str | None]:
    """What the settings say about this one file: codes per-file-ignores drops, per-file-dataset-size (and
    where it is set)."""
    path = fs_paths.get(result.path, result.path)
    per_file_ignores = [code for glob in matches_glob(result.path, path, settings.root, settings.per_file_ignores)
                        for code in settings.per_file_ignores[glob]]
    dataset_size, dataset_source = None, None
    size_globs = matches_glob(result.path, path, settings.root, settings.per_file_dataset_size)
    if size_globs:
        dataset_size = settings.per_file_dataset_size[size_globs[0]]
        dataset_source = f"per-file-dataset-size in {settings.source.name if settings.source else 'settings'}"
    return per_file_ignores, dataset_size, dataset_source


# A name or value from the checked file longer than this is cut in messages (the source line and
# JSON's structured fields keep it whole): a 300-character identifier is quoted, not echoed in full.
MAX_MESSAGE_WORD = 80
_LONG_WORD = lazy(rf"\S{{{MAX_MESSAGE_WORD + 1},}}")
_CLOSING = lazy(r"[\]'\")}>,;:.]*$")


def shorten_message(message: str) -> str:
    def cut(match: re.Match[str]) -> str:
        word = match.group()
        closing = _CLOSING.search(word).group()[:4]  # type: ignore[union-attr]
        return word[: MAX_MESSAGE_WORD - 1 - len(closing)] + "\u2026" + closing

    return _LONG_WORD.sub(cut, message) if len(message) > MAX_MESSAGE_WORD else message


def _changes_trained_weights(site: ConfigSite, code: str) -> bool:
    """A saved adapter_config.json describes weights already trained: a fix to its scaling, rank,
    dropout (LORA1xx) or fan_in_fan_out (LORA204) would change what those weights do when loaded, so
    such findings advise the next run and carry no fix there."""
    return site.origin == "adapter_config" and (code.startswith("LORA1") or code == "LORA204")


def _demoted(severity: str, steps: int) -> str:
    """A rule's (configured) severity lowered by a finding that knows less than the rule assumes."""
    if steps <= 0:
        return severity
    order = ["info", "warning", "error"]
    return order[max(0, order.index(severity) - steps)] if severity in order else severity


_NOT_ANALYSED = frozenset({"LORA901", "LORA902", "LORA904", "LORA905", "LORA906"})


def _apply_file_filters(
    result: FileResult,
    diags: list[tuple[Diagnostic, int | None]],
    active: set[str],
    rules: dict[str, Rule],
    per_file_ignores: list[str],
    verified: bool = False,
) -> list[Diagnostic]:
    from loralint.suppressions import NOQA, own_suppressions  # only for a file checked afresh

    out: list[Diagnostic] = []
    # In a noqa comment, E501 is another linter's code; LORA101 and custom rule codes are ours.
    suppressions = own_suppressions(result.suppressions, lambda code: code in rules or code.startswith("LORA"))
    used: dict[int, set[str]] = {line: set() for line in suppressions}
    seen: set[tuple] = set()
    for diag, site_line in diags:
        if diag.code not in active or any(code_matches(diag.code, c) for c in per_file_ignores):
            continue
        if diag.code in rules and site_line is None:
            diag.severity = rules[diag.code].severity  # file-level diagnostics take the configured severity
        diag.message = shorten_message(diag.message)
        key = (diag.code, diag.span.line, diag.span.column, diag.message)
        if key in seen:
            continue  # the same finding reached twice (a dict shared by two configs)
        seen.add(key)
        suppressed = False
        for line in (diag.span.line, site_line):
            if line is None or line not in suppressions:
                continue
            codes = suppressions[line][0]
            if codes is None or diag.code in codes:
                used[line].add(diag.code if codes is not None else "*")
                suppressed = True
                break
        if not suppressed:
            out.append(diag)
    # A file not parsed, not read, or analysed only in part cannot tell which suppressions are used:
    # it reports none unused (whether or not the code saying so is selected).
    unanalysed = any(d.code in _NOT_ANALYSED for d, _ in diags)
    if "LORA903" in active and not unanalysed and not any(code_matches("LORA903", c) for c in per_file_ignores):
        rule = rules["LORA903"]
        for line, (codes, span, kind) in sorted(suppressions.items()):
            if codes is None:
                if not used[line] and kind != NOQA:  # a bare noqa comment may be another linter's
                    out.append(Diagnostic("LORA903", rule.name, rule.severity, "unused suppression: nothing to ignore on this line", span))
                continue
            # A code only --verify reports cannot be judged unused by a static run.
            unused = sorted(
                c for c in codes
                if c not in used[line] and (c in active or c not in rules) and not (c in rules and rules[c].verify and not verified)
            )
            for code in unused:
                why = "unknown rule code" if code not in rules else f"no {code} finding on this line"
                out.append(Diagnostic("LORA903", rule.name, rule.severity, f"unused suppression for {code} ({why})", span))
    return out


def exit_code(diagnostics: list[Diagnostic], fail_level: str) -> int:
    threshold = SEVERITY_RANK[fail_level]
    return 1 if any(SEVERITY_RANK[d.severity] >= threshold for d in diagnostics) else 0
