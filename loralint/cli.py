"""The `loralint` command line. Exit codes: 0 clean, 1 findings, 2 usage or internal error.

Imports stay lazy: `loralint check one_file.py` must start about as fast as Python itself, and
nothing here may import torch, transformers or peft (only `verify` does, on demand).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from loralint import __version__

OUTPUT_FORMATS = ("text", "json", "sarif", "github", "lsp")


def _codes(values: tuple[str, ...]) -> list[str]:
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


def _fail(message: str) -> None:
    click.echo(f"loralint: error: {_safe(message)}", err=True)
    sys.exit(2)


def _fail_settings(exc) -> None:
    """Settings that cannot be used: each problem on a line of its own (as ruff prints them), exit 2."""
    for problem in exc.problems[:-1]:
        click.echo(f"loralint: error: {_safe(problem)}", err=True)
    _fail(exc.problems[-1] if exc.problems else str(exc))


def _safe(text: str) -> str:
    """`text` (it may quote paths and values from the checked tree) with control and bidi characters
    escaped, for the terminal; see loralint.report.escape."""
    from loralint.report.escape import escape

    return escape(text)


def _echo_source(text: str) -> None:
    """Source text (a --diff, a --fix of stdin): exact for the pipe it is meant for; escaped on a terminal."""
    if sys.stdout.isatty():
        from loralint.report.escape import escape_lines

        text = escape_lines(text)
    # color=True: click would otherwise strip ESC[...m sequences from the source when piped.
    click.echo(text, nl=False, color=True)


def _options(*decorators):
    """Several click options as one decorator, in the order listed (shared by check, verify, explain)."""

    def apply(f):
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


_MODEL = click.option("--model", "model", help="Base model id or local folder for every configuration (overrides the source).")
_ONLINE = click.option("--online", is_flag=True, help="Allow fetching config.json and data set cards from the Hugging Face Hub (also LORALINT_ONLINE=1; "
                       "HF_HUB_OFFLINE=1 wins; a repository's settings cannot turn it on).")


def _verify_options(prefix: str):
    """The options of a PEFT build; `prefix` says when they apply ("With --verify: ")."""

    def say(text: str) -> str:
        return prefix + text if prefix else text[0].upper() + text[1:]

    return _options(
        click.option("--trust-remote-code", is_flag=True, help=say("allow models whose code lives on the Hub.")),
        click.option("--device", type=click.Choice(["meta", "auto", "cuda", "cpu"]), default="meta", show_default=True,
                     help=say("also run one training step with random weights on this device (cuda: peak GPU memory).")),
        click.option("--seq-len", type=click.IntRange(min=1), default=2048, show_default=True, help="With --device: tokens per example."),
        click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True, help="With --device: examples per step."),
    )


_RUN_OPTIONS = _options(
    click.option("--exit-zero", is_flag=True, help="Exit 0 even when problems are found."),
    click.option("--fail-level", type=click.Choice(["error", "warning", "info"]),
                 help="Lowest severity that makes the exit code 1 (settings: fail-level; default: warning)."),
    click.option("--config", "config_path", type=click.Path(path_type=Path), help="Settings file to use instead of discovery."),
    click.option("--force-exclude", is_flag=True, help="Apply exclude settings to files named on the command line too."),
    click.option("--no-cache", is_flag=True, help="Do not read or write .loralint_cache."),
)


class _Loralint(click.Group):
    def invoke(self, ctx: click.Context) -> object:
        # Ctrl-C (or a SIGINT from a CI runner cancelling the job): click would print "Aborted!" and exit 1,
        # which reads as "findings". One line and 130, as shells report an interrupted command.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("loralint: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Loralint, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="loralint")
def cli() -> None:
    """A static linter and advisor for LoRA / QLoRA fine-tuning configurations."""


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    default="text",
    envvar="LORALINT_OUTPUT_FORMAT",
    show_default=True,
    help="How to print the results.",
)
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated), replacing the settings.")
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable in addition.")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable.")
@_MODEL
@_ONLINE
@click.option("--verify", is_flag=True, help="Also build each model on the meta device and apply real PEFT (needs loralint[verify]).")
@_verify_options("With --verify: ")
@click.option("--fix", is_flag=True, help="Apply safe fixes to the files.")
@click.option("--unsafe-fixes", is_flag=True, help="Also apply fixes that may change behaviour (with --fix or --diff).")
@click.option("--diff", is_flag=True, help="Print the fixes as a unified diff instead of writing them.")
@click.option("--stdin-filename", help="Read the source from stdin and report it under this name.")
@click.option("--statistics", is_flag=True, help="Print a count of findings per rule instead of each finding.")
@click.option("-q", "--quiet", is_flag=True, help="Print findings only: no source snippets, no summary.")
@click.option("--no-show-source", is_flag=True, help="Do not print the source line under each finding.")
@click.option("--dataset-size", type=click.IntRange(min=0), help="Number of training examples (for dataset-aware rules).")
@_RUN_OPTIONS
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Processes used to parse files (default: all cores).")
@click.option("--extend-exclude", multiple=True,
              help="Globs to exclude in addition to the settings' exclude and extend-exclude (comma-separated).")
@click.option("-o", "--output-file", type=click.Path(dir_okay=False, path_type=Path), envvar="LORALINT_OUTPUT_FILE",
              help="Write the report to this file instead of stdout (also LORALINT_OUTPUT_FILE).")
@click.option("--show-settings", is_flag=True,
              help="Print the resolved settings as a [tool.loralint] table, each with where it came from, then exit.")
@click.option("--show-files", is_flag=True, help="Print the files that would be checked, then exit.")
@click.option("-w", "--watch", is_flag=True, help="Check again whenever a checked file changes; Ctrl-C stops.")
def check(
    paths: tuple[str, ...],
    output_format: str,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    model: str | None,
    online: bool,
    verify: bool,
    trust_remote_code: bool,
    device: str,
    seq_len: int,
    batch_size: int,
    fix: bool,
    unsafe_fixes: bool,
    diff: bool,
    stdin_filename: str | None,
    exit_zero: bool,
    fail_level: str | None,
    statistics: bool,
    quiet: bool,
    no_show_source: bool,
    dataset_size: int | None,
    config_path: Path | None,
    force_exclude: bool,
    no_cache: bool,
    jobs: int | None,
    extend_exclude: tuple[str, ...] = (),
    output_file: Path | None = None,
    show_settings: bool = False,
    show_files: bool = False,
    watch: bool = False,
) -> None:
    """Check PATHS (default: the current directory) for problems in LoRA configurations."""
    from loralint.engine import Options, UsageError, exit_code, run

    use_stdin = stdin_filename is not None or paths == ("-",)
    targets = list(paths) or ["."]
    settings = _settings([Path(stdin_filename or ".")] if use_stdin else [Path(p) for p in targets], config_path, model)
    options = Options(
        select=_codes(select) or None,
        extend_select=_codes(extend_select),
        ignore=_codes(ignore),
        model=model,
        online=online or settings.online,
        force_exclude=force_exclude,
        no_cache=no_cache,
        jobs=jobs,
        dataset_size=dataset_size,
    )
    excludes = [g.strip() for v in extend_exclude for g in v.split(",") if g.strip()]
    if show_settings:
        _show_settings(settings, options, stdin_filename or targets[0],
                       {"fail_level": fail_level, "model": model, "dataset_size": dataset_size, "online": online,
                        "no_cache": no_cache, "excludes": excludes})
    settings.extend_exclude = [*settings.extend_exclude, *excludes]  # as ruff: added to the settings' own
    if show_files:
        _show_files(targets, settings, options)
    if watch:
        if use_stdin or diff:
            _fail("--watch checks files on disk: it cannot be used with stdin or --diff")
        sys.exit(_watch(targets, config_path, excludes, options))
    sources = None
    texts: dict[str, str] = {}
    if use_stdin:
        name = stdin_filename or "-"
        data = sys.stdin.buffer.read(settings.max_file_size + 1)  # bounded: the engine reports a larger input
        sources = {name: data}
        texts[name] = data.decode("utf-8", errors="replace")
    resolver = _resolver()
    reports: list = []
    stage = None
    if verify:
        from loralint.verify import verify_stage

        stage = verify_stage(reports, trust_remote_code=trust_remote_code, progress=output_format == "text",
                             device=device, seq_len=seq_len, batch_size=batch_size)
    try:
        # Only JSON shows each configuration's module counts; other formats let a cached file skip computing them.
        result = run(targets, settings, options, sources=sources, resolve=resolver, verify=stage,
                     describe_sites=output_format == "json", size_every_dataset=False)
    except UsageError as exc:
        _fail(str(exc))
    # Under --watch (which invokes this command in a sub-context sharing `meta`): the other files to poll.
    click.get_current_context().meta[_WATCH_INPUTS] = result.inputs
    for note in [*result.notes, *(n for r in reports for n in r.notes)]:
        click.echo(f"loralint: warning: {_safe(note)}", err=True)
    if fix or diff:
        from loralint.fixes import apply_fixes

        fixed = apply_fixes(result, unsafe=unsafe_fixes, write=not diff and not use_stdin, texts=texts,
                            settings=settings, options=options, resolve=resolver)
        if diff:
            if output_file is not None:
                _write_output(output_file, fixed.diff)
            else:
                _echo_source(fixed.diff)
            # As `check` says it: a diff without the unsafe fixes must not read as "nothing to fix".
            left = fixed.remaining.diagnostics if fixed.remaining is not None else result.diagnostics
            unsafe_left = 0 if unsafe_fixes else sum(
                1 for d in left if d.fix is not None and d.fix.edits and d.fix.applicability == "unsafe")
            if unsafe_left:
                click.echo(f"{unsafe_left} more fixable with `--fix --unsafe-fixes`.", err=True)
            sys.exit(0 if exit_zero or not fixed.diff else 1)
        result = fixed.remaining
        if fixed.count and output_format == "text" and not quiet:
            click.echo(f"Fixed {fixed.count} problem{'s' if fixed.count != 1 else ''}.", err=True)
    # As ruff does: with --fix on stdin, stdout carries the fixed source, so the report of what is
    # left goes to stderr (or to --output-file).
    to_stderr = use_stdin and fix and output_file is None
    colour = output_format == "text" and output_file is None and _use_colour(sys.stderr if to_stderr else None)
    rendered = _render(
        result, output_format, statistics=statistics, quiet=quiet, show_source=not no_show_source,
        unsafe=unsafe_fixes, colour=colour,
    )
    code = 0 if exit_zero else exit_code(result.diagnostics, fail_level or settings.fail_level)
    if (fix or diff) and fixed.errors and not exit_zero:
        code = max(code, 1)  # a fix that was refused or could not be written is a failure too
    _when_reader_leaves(code)
    if use_stdin and fix:
        _echo_source(fixed.texts.get(stdin_filename or "-", texts.get(stdin_filename or "-", "")))
    _emit(rendered, output_file, colour, err=to_stderr)
    _reported()
    sys.exit(code)


def _emit(rendered: str, output_file: Path | None, colour: bool, err: bool = False) -> None:
    """The report to stdout (stderr with `err`), or to --output-file (its folder made, as ruff does).
    An empty report (`-q` with nothing to say) prints nothing, not even a blank line."""
    if output_file is not None:
        _write_output(output_file, rendered + "\n" if rendered else "")
    elif rendered:
        click.echo(rendered, color=colour, err=err)


def _write_output(output_file: Path, text: str) -> None:
    try:
        output_file.parent.mkdir(parents=True, exist_ok=True)
        with output_file.open("w", encoding="utf-8", newline="") as handle:  # a diff keeps its line endings
            handle.write(text)
    except OSError as exc:
        _fail(f"cannot write --output-file {output_file}: {exc.strerror or exc}")


def _show_settings(settings, options, target: str, given: dict) -> None:
    """`--show-settings`: the resolved settings with where each came from; exit 0 (2 when unusable)."""
    from loralint.engine import UsageError, all_rules, selected_codes
    from loralint.show import CommandLine, render_settings

    values: dict = {}
    if options.select is not None:
        values["select"] = ("--select", options.select)
    for key, option, value in (("fail-level", "--fail-level", given["fail_level"]), ("model", "--model", given["model"]),
                               ("dataset-size", "--dataset-size", given["dataset_size"])):
        if value is not None:
            values[key] = (option, value)
    if given["online"]:
        values["online"] = ("--online", True)
    if given["no_cache"]:
        values["cache"] = ("--no-cache", False)
    added = {key: (option, extra) for key, option, extra in (
        ("extend-select", "--extend-select", options.extend_select), ("ignore", "--ignore", options.ignore),
        ("extend-exclude", "--extend-exclude", given["excludes"])) if extra}
    enabled, problem = None, None
    try:
        enabled = sorted(selected_codes(all_rules(settings), settings, options))
    except UsageError as exc:
        problem = str(exc)
    click.echo(render_settings(settings, CommandLine(values, added), enabled, problem, target))
    sys.exit(2 if problem else 0)


def _show_files(targets: list[str], settings, options) -> None:
    """`--show-files`: the files a run would check, one a line; exit 0."""
    from loralint.engine import discover_files
    from loralint.show import render_files

    found = discover_files(targets, settings, options)
    if found.missing:
        _fail(f"{found.missing[0]}: no such file or directory")
    for note in found.notes:
        click.echo(f"loralint: warning: {_safe(note)}", err=True)
    listing = render_files(found)
    if listing:
        click.echo(listing)
    sys.exit(0)


_WATCH_INPUTS = "loralint.inputs"  # ctx.meta key: RunResult.inputs of the last run


def _watch(targets: list[str], config_path: Path | None, excludes: list[str], options) -> int:
    """`--watch`: this very command again (without --watch and --output-file) after every change."""
    from loralint.watch import watch

    ctx = click.get_current_context()
    params = {**ctx.params, "watch": False, "output_file": None}

    def once() -> None:
        try:
            ctx.invoke(check, **params)
        except SystemExit:
            pass  # each run ends with its exit code; watching goes on
        except Exception as exc:  # noqa: BLE001 - one failed run must not end watching
            if os.environ.get("LORALINT_DEBUG"):
                raise
            click.echo(f"loralint: internal error: {type(exc).__name__}: {_safe(str(exc))}", err=True)

    return watch(once, lambda: _watched_paths(targets, config_path, excludes, options),
                 inputs=lambda: ctx.meta.pop(_WATCH_INPUTS, {}))


def _watched_paths(targets: list[str], config_path: Path | None, excludes: list[str], options) -> list[str]:
    """The discovered files, their folders (a new file changes its folder) and the settings file."""
    from loralint.engine import discover_files
    from loralint.settings import SettingsError, discover_settings, find_settings_file

    watched = set(targets)
    settings_file = config_path or find_settings_file(Path(targets[0]) if Path(targets[0]).exists() else Path.cwd())
    if settings_file is not None:
        watched.add(str(settings_file))
    try:
        settings = discover_settings([Path(p) for p in targets], config_path)
    except SettingsError:
        return sorted(watched)  # a broken settings file: its fix is the change to wait for
    settings.extend_exclude = [*settings.extend_exclude, *excludes]
    for source in discover_files(targets, settings, options).files:
        watched.add(str(source.path))
        watched.add(os.path.dirname(str(source.path)) or ".")
    return sorted(watched)


def _settings(paths: list[Path], config_path: Path | None, model: str | None):
    """The settings for these paths (discovered, or --config); --model overrides `model`. Exit 2 when invalid."""
    from loralint.settings import SettingsError, discover_settings

    try:
        settings = discover_settings(paths, config_path)
    except SettingsError as exc:
        _fail_settings(exc)
    for note in settings.notes:  # keys a repository may not set (`online`): ignored, and said so
        click.echo(f"loralint: warning: {_safe(note)}", err=True)
    if model:
        settings.model = model
    return settings


def _resolver():
    # Imported here so that `loralint rules` and `--help` do not pay for the resolver's imports.
    from loralint.resolve import SiteResolver

    return SiteResolver


def _use_colour(stream=None) -> bool:
    from loralint.report.text import use_colour

    return use_colour(stream)


def _render(result, output_format: str, *, statistics: bool, quiet: bool, show_source: bool, unsafe: bool,
            colour: bool = False) -> str:
    if output_format == "text":
        from loralint.report.text import render

        return render(
            result, colour=colour, show_source=show_source, statistics=statistics, quiet=quiet,
            unsafe_hint=not unsafe,
        )
    import importlib

    if statistics and output_format == "json":  # as ruff: the counts as JSON; other formats ignore it
        from loralint.report.json import render_statistics

        return render_statistics(result, unsafe_fixes=unsafe)
    return importlib.import_module(f"loralint.report.{output_format}").render(result)


# The rules `loralint verify` reports: its own, and what keeps a file from being read.
_VERIFY_SELECT = ["LORA25", "LORA901", "LORA902", "LORA904"]


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How to print the results.")
@_MODEL
@_ONLINE
@_verify_options("")
@_RUN_OPTIONS
def verify(
    paths: tuple[str, ...],
    output_format: str,
    model: str | None,
    online: bool,
    trust_remote_code: bool,
    device: str,
    seq_len: int,
    batch_size: int,
    exit_zero: bool,
    fail_level: str | None,
    config_path: Path | None,
    force_exclude: bool,
    no_cache: bool,
) -> None:
    """Build each configuration's base model on the meta device and apply real PEFT (needs loralint[verify]).

    Prints, per configuration: the base model and where its config.json came from, the modules PEFT
    matches (folded by layer), trainable and total parameters as PEFT counts them, and the scaling.
    """
    from loralint.engine import Options, UsageError, exit_code, run

    targets = list(paths) or ["."]
    settings = _settings([Path(p) for p in targets], config_path, model)
    options = Options(select=list(_VERIFY_SELECT), model=model, online=online or settings.online,
                      force_exclude=force_exclude, no_cache=no_cache)
    try:
        from loralint.verify import VerifyReport, render_json, render_text, verify_stage

        reports: list = []
        stage = verify_stage(reports, trust_remote_code=trust_remote_code, progress=output_format == "text",
                             device=device, seq_len=seq_len, batch_size=batch_size)
        result = run(targets, settings, options, resolve=_resolver(), verify=stage)
        report = reports[0] if reports else VerifyReport(device=device)
    except UsageError as exc:
        _fail(str(exc))
    for note in result.notes:
        if note not in report.notes:
            click.echo(f"loralint: warning: {_safe(note)}", err=True)
    from loralint.verify.stack import version_note

    version = version_note(report.versions) if report.versions else None
    if version:  # also in the report; on stderr too, so that it is seen beside any LORA253
        click.echo(f"loralint: warning: {_safe(version)}", err=True)
    code = 0 if exit_zero else exit_code(result.diagnostics, fail_level or settings.fail_level)
    _when_reader_leaves(code)
    if output_format == "json":
        click.echo(render_json(report, result))
    else:
        colour = _use_colour()
        click.echo(render_text(report, result, colour=colour), color=colour)
    sys.exit(code)


@cli.command()
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every rule: code, name, severity, summary.")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rule(code: str | None, show_all: bool, output_format: str) -> None:
    """Print the documentation of rule CODE (a code such as LORA101 or a name such as alpha-scaling)."""
    import json

    from loralint.ruleset import builtin_rules, find_rule

    rules = builtin_rules()
    if show_all or code is None:
        if output_format == "json":
            click.echo(json.dumps([
                {"code": r.code, "name": r.name, "severity": r.severity, "fix": r.fix, "summary": r.summary}
                for r in rules.values()
            ], indent=2))
            return
        width = max(len(r.name) for r in rules.values())
        for r in rules.values():
            fix = {"safe": "fix", "unsafe": "fix*", "none": ""}[r.fix]
            click.echo(_safe(f"{r.code}  {r.name:<{width}}  {r.severity:<7}  {fix:<4}  {r.summary}"))
        return
    found = find_rule(code, rules)
    if found is None:
        _fail(f"unknown rule {code!r}; `loralint rule --all` lists them")
    if output_format == "json":
        click.echo(json.dumps({"code": found.code, "name": found.name, "severity": found.severity, "check": found.check,
                               "params": found.params, "fix": found.fix, "summary": found.summary, "docs": found.docs}, indent=2))
        return
    from loralint.report.escape import escape_lines

    click.echo(escape_lines(
        f"{found.name} ({found.code})\n\nDefault severity: {found.severity}. Fix: {found.fix}."
        + (f" Parameters: {', '.join(f'{k}={v}' for k, v in found.params.items())}." if found.params else "")
        + f"\n\n{found.docs}"))


# What explain says about a file it could not read or parse (it has no configuration to explain).
_EXPLAIN_FILE_PROBLEMS = frozenset({"LORA901", "LORA902", "LORA904", "LORA905", "LORA906"})


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@_MODEL
@_ONLINE
@click.option("--verify", is_flag=True, help="Count with the real PEFT on the meta device (needs loralint[verify]).")
@click.option("--trust-remote-code", is_flag=True, help="With --verify: allow models whose code lives on the Hub.")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Settings file to use instead of discovery.")
@click.option("--no-cache", is_flag=True, help="Do not read or write .loralint_cache.")
@click.option("--gpu-memory", help="One GPU's memory (e.g. 24GB, 80 GiB; a bare number is GB): say whether training fits and what would make it fit.")
def explain(paths: tuple[str, ...], model: str | None, online: bool, verify: bool, trust_remote_code: bool,
            output_format: str, config_path: Path | None, no_cache: bool, gpu_memory: str | None) -> None:
    """Explain each LoRA configuration in PATHS: scaling, adapted modules, parameters, memory, advice."""
    import json

    from loralint.engine import Options, UsageError, run
    from loralint.explain import explain_site, render_text

    targets = list(paths) or ["."]
    settings = _settings([Path(p) for p in targets], config_path, model)
    options = Options(model=model, online=online or settings.online, no_cache=no_cache)
    stage = None
    if verify:
        from loralint.verify import verify_stage

        stage = verify_stage([], trust_remote_code=trust_remote_code, progress=output_format == "text")
    try:
        result = run(targets, settings, options, resolve=_resolver(), verify=stage)
    except UsageError as exc:
        _fail(str(exc))
    budget = None
    if gpu_memory is not None:
        from loralint.safe_read import parse_size

        try:
            # A bare number is gigabytes ("--gpu-memory 24" is a 24 GB card, not 24 bytes), as "24GB" reads.
            budget = parse_size(gpu_memory + "GB" if gpu_memory.strip().replace(".", "", 1).isdigit() else gpu_memory)
        except ValueError as exc:
            _fail(f"--gpu-memory: {exc}")

    sources = result.source_lines()  # a notebook's positions are named by cell
    if result.diagnostics or result.notes:
        from loralint.report.text import headline

        # A file that could not be read or parsed has no configuration to explain: said on stderr, or a
        # script with a syntax error would read as "No LoRA configuration found."
        for d in result.diagnostics:
            if d.code in _EXPLAIN_FILE_PROBLEMS:
                click.echo(f"loralint: warning: {headline(d, sources)}", err=True)
        for note in result.notes:
            click.echo(f"loralint: warning: {_safe(note)}", err=True)
    entries = [explain_site(site, budget, sources) for site in [*result.sites, *result.loaded]]
    click.echo(json.dumps({"version": 1, "configs": entries}, indent=2) if output_format == "json" else render_text(entries), nl=output_format == "json")


@cli.command()
@click.argument("model")
@click.option("--rank", "-r", type=click.IntRange(min=1), default=16, show_default=True, help="Rank for the parameter counts.")
@click.option(
    "--task-type",
    type=click.Choice(["CAUSAL_LM", "SEQ_2_SEQ_LM", "SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"]),
    help="Which model class to describe (default: the causal LM, else the model's natural class).",
)
@click.option("--online", is_flag=True, help="Allow fetching config.json from the Hugging Face Hub.")
@click.option("--output-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def modules(model: str, rank: int, task_type: str | None, online: bool, output_format: str) -> None:
    """List MODEL's linear layers, embeddings and target_modules presets, without loading it.

    MODEL is a hub id (resolved from the local Hugging Face cache or loralint's index; the Hub
    only with --online) or a folder with a config.json."""
    import json

    from loralint.inventory import InventoryError, build_inventory, render_text
    from loralint.report.escape import escape_strings
    from loralint.settings import SettingsError, user_allows_online

    try:
        data = build_inventory(model, rank, task_type, online or user_allows_online())
    except SettingsError as exc:
        _fail_settings(exc)
    except InventoryError as exc:
        _fail(str(exc))
    # Text: every string from the model folder (name, model_type, module names) escaped; JSON keeps them.
    click.echo(json.dumps(data, indent=2) if output_format == "json" else render_text(escape_strings(data)))


@cli.command()
@click.option("--stdio", is_flag=True, hidden=True, help="Accepted for editors that pass it; stdio is the only transport.")
def server(stdio: bool) -> None:
    """Run the language server (LSP over stdio) for editors. Needs loralint[lsp]."""
    try:
        import lsprotocol  # noqa: F401
        import pygls  # noqa: F401
    except ImportError:
        click.echo("loralint: error: the language server needs pygls: pip install 'loralint[lsp]'", err=True)
        sys.exit(2)
    from loralint.server import serve

    serve()


# The exit code of a command whose reader closes the pipe early (`loralint check | head`): the
# result's own code, decided before printing; 0 for commands without findings (rule, modules, ...).
_EXIT_IF_READER_LEAVES = 0


def _when_reader_leaves(code: int) -> None:
    global _EXIT_IF_READER_LEAVES
    _EXIT_IF_READER_LEAVES = code


# `check` has written its report: nothing is left to do but exit (see run).
_REPORTED = False


def _reported() -> None:
    global _REPORTED
    _REPORTED = True


def main() -> None:
    """The command's work (run() is the entry point): no traceback ever reaches the user; internal errors
    exit 2 with one line."""
    try:
        cli.main(prog_name="loralint", standalone_mode=True)
    except SystemExit as exc:
        final = exc
        if type(sys.stdout).__name__.lstrip("_") == "PacifyFlushWrapper":
            # click caught EPIPE (the reader went away) and exits 1, which would read as "findings".
            final = SystemExit(_EXIT_IF_READER_LEAVES)
        if _verified():
            _exit_now(final)  # torch/transformers/peft's module and tensor finalisation: about 0.8 s
        raise final from None
    except KeyboardInterrupt:
        click.echo("loralint: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`loralint check | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(_EXIT_IF_READER_LEAVES)
    except Exception as exc:  # noqa: BLE001 - last line of defence
        if os.environ.get("LORALINT_DEBUG"):
            raise
        click.echo(f"loralint: internal error: {type(exc).__name__}: {_safe(str(exc))} (set LORALINT_DEBUG=1 for a traceback)",
                   err=True)
        sys.exit(2)


def run() -> None:
    """The `loralint` command (console script, `python -m loralint`): main(), then, once `check` has written
    its report, exit without the interpreter's teardown. It does nothing for a finished check (the cache's
    entries are written and closed, the workers reaped, --output-file closed) and costs about a tenth
    of a warm run's CPU time on LLaMA-Factory's tree (freeing every object and module). Not under a profiler,
    tracer or debugger (`python -m cProfile -m loralint`, coverage): they write their results at or after the
    exit. main() itself returns through SystemExit, for callers that go on (the tests that look at what a
    check imported)."""
    try:
        main()
    except SystemExit as exc:
        if _REPORTED and sys.getprofile() is None and sys.gettrace() is None:
            _exit_now(exc)
        raise


def _verified() -> bool:
    """Whether --verify built a model (torch, transformers and peft are loaded)."""
    stack = sys.modules.get("loralint.verify.stack")
    return stack is not None and getattr(stack, "_STACK", None) is not None


def _exit_now(exc: SystemExit) -> None:
    """Exit as `exc` would, without the interpreter's teardown: flush, then leave."""
    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if not isinstance(exc.code, (int, type(None))):
        click.echo(exc.code, err=True)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run()
