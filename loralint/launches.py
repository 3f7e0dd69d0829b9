"""How a training script is launched: `accelerate launch --config_file X train.py` written in a shell
script, Makefile or Slurm file of the script's folder or a folder above it (up to the project root or the
top of the git checkout), or in the script's own comments and docstring. The accelerate config such a
command names feeds the script's training context (LORA410 ZeRO-3 saving, LORA307 FSDP + QLoRA, LORA416
device_map="auto" under DDP).

Run file by file after extraction, like loralint.datasets; the facts it sets are part of the check
cache's key.
Conservative by design: a command counts only when both the script and the config it names exist
relative to one folder (the folder the command would run in), when every option it passes is one that
leaves those facts alone, and when no shell variable stands in for a path. Anything else: the script is
treated as not launched.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loralint.safe_read import read_text_limited
from loralint.sites import ConfigSite, FileResult, Span, TrainingContext

if TYPE_CHECKING:  # the readers of commands and configs load once a launch is looked for (start-up)
    from loralint.dependencies import Dependency
    from loralint.extract.accelerate import AccelerateConfig

MAX_LAUNCH_FILE_BYTES = 256 * 1024
MAX_LAUNCH_FILES_PER_FOLDER = 64
MAX_FOLDERS_UP = 6
MAX_LAUNCHES = 16  # launches of one script that are read
_LAUNCH_SUFFIXES = (".sh", ".bash", ".zsh", ".slurm", ".sbatch")
_LAUNCH_NAMES = frozenset({"Makefile", "makefile", "GNUmakefile"})
# accelerate/utils/dataclasses.py DistributedType: one process a device, under torch DDP
_DDP_TYPES = frozenset({"MULTI_GPU", "MULTI_XPU", "MULTI_NPU", "MULTI_MLU", "MULTI_SDAA", "MULTI_MUSA", "MULTI_HPU"})
# `\baccelerate\s+launch\b`, with the word boundary checked behind the literal: a pattern that begins with a
# literal is searched for with a fast scan, one that begins with \b is tried at every position (30x slower
# through a 280 kB test file, and each training script is searched for its usage notes).
_COMMAND = re.compile(r"accelerate(?<=\baccelerate)\s+launch\b")
# accelerate launch options (accelerate/commands/launch.py) that change nothing the rules read, and
# whether they take a value. Any other option (--use_deepspeed, --zero_stage, --zero3_save_16bit_model,
# --use_fsdp, --multi_gpu, --gpu_ids, --cpu, ...) may override the config: the command is not used.
_NEUTRAL_OPTIONS = {
    "--config_file": True, "--config-file": True, "--num_processes": True, "--num-processes": True,
    "--num_machines": True, "--num-machines": True, "--machine_rank": True, "--machine-rank": True,
    "--main_process_ip": True, "--main-process-ip": True, "--main_process_port": True, "--main-process-port": True,
    "--mixed_precision": True, "--mixed-precision": True, "--rdzv_backend": True, "--rdzv-backend": True,
    "--deepspeed_multinode_launcher": True, "--dynamo_backend": True, "--main_training_function": True,
    "--same_network": False, "--debug": False, "--quiet": False, "-q": False,
}


@dataclass(frozen=True, slots=True, eq=False)
class Launch:
    """One `accelerate launch` command that runs a checked script with an accelerate config."""

    where: Span  # the command (in a shell file, or in the script's own text)
    config: AccelerateConfig
    num_processes: int | None  # --num_processes on the command line, which beats the config's


class Launches:
    """The launch commands of one run, read once per file and folder: the engine asks file by file."""

    def __init__(self, root: Path, cache: Any = None) -> None:
        self._finder = _Finder(root, cache)

    def attach(self, result: FileResult, fs_paths: dict[str, str]) -> None:
        """Fill the training facts of each Python site of `result` launched with an accelerate config we can read."""
        sites = [s for s in result.sites if s.syntax == "python" and _wants(s)]
        path = fs_paths.get(result.path)
        if not sites or path is None or result.path.endswith(".ipynb"):
            return
        try:
            launches = self._finder.launches_of(Path(path))
        except Exception:  # files of the project that are no input of ours must never stop the run
            if os.environ.get("LORALINT_DEBUG"):
                raise
            return
        for site in sites:
            for launch in launches:
                _apply(site, launch)


def _wants(site: ConfigSite) -> bool:
    """Whether a fact an accelerate config gives could change a finding of this site."""
    training = site.hints.training
    if training is None:
        return False
    needs_zero = training.deepspeed is None and (training.trainer is not None or training.saved is not None)
    bnb = site.hints.bnb_config or {}
    needs_fsdp = site.hints.fsdp is None and bnb.get("load_in_4bit") is True
    needs_ddp = training.device_map_auto is not None and training.ddp_signal is None
    return needs_zero or needs_fsdp or needs_ddp


def _unsafe_save(facts: dict | None) -> bool:
    return facts is not None and facts.get("stage") == 3 and facts.get("gather") is False


def _apply(site: ConfigSite, launch: Launch) -> None:
    """One launch's facts; with several launches, the one that breaks something is the one kept."""
    training: TrainingContext = site.hints.training  # _wants checked it is there
    config = launch.config
    how = f"`accelerate launch --config_file {config.path}` ({launch.where.path}:{launch.where.line})"
    ours = training.deepspeed is not None and "launch" not in training.deepspeed
    if config.distributed_type == "DEEPSPEED" and config.deepspeed is not None and not ours \
            and (training.trainer is not None or training.saved is not None) \
            and (training.deepspeed is None or (_unsafe_save(config.deepspeed) and not _unsafe_save(training.deepspeed))):
        facts = dict(config.deepspeed)
        facts["source"] = f"{facts['source']}, launched by {how}"
        facts["launch"] = [(config.deepspeed_span or config.distributed_span, "the accelerate config's DeepSpeed settings"),
                           (launch.where, "the launch command")]
        training.deepspeed = facts
        training.deepspeed_span = training.trainer_span or training.saved or site.span
    elif config.distributed_type == "FSDP" and site.hints.fsdp is None:
        site.hints.fsdp = config.distributed_span
    processes = launch.num_processes if launch.num_processes is not None else config.num_processes
    if config.distributed_type in _DDP_TYPES and processes != 1 and training.device_map_auto is not None \
            and training.ddp_signal is None:
        training.ddp_signal = (config.distributed_span,
                               f"distributed_type: {config.distributed_type} in {config.path}, launched by {how}")


class _Finder:
    """Launch commands, read once per file and folder in a run."""

    def __init__(self, root: Path, cache: Any = None) -> None:
        self.root = Path(os.path.realpath(root))
        self._cache = cache  # loralint.cache.ExtractionCache: an accelerate config's facts, kept across runs
        self._folders: dict[Path, list[tuple[str, Path]]] = {}
        self._commands: dict[Path, list[tuple[int, tuple[str, str, int | None]]]] = {}
        self._up: dict[Path, list[Path]] = {}
        # Per command (its file and line): the realpath of the script it names, from each folder it may run in, as
        # text (a script's every command is compared with every checked script below it: ~550 on peft's tree)
        self._scripts: dict[tuple[Path, int], list[tuple[Path, str]]] = {}
        self._configs: dict[tuple[Path, Path], AccelerateConfig | None] = {}  # (config, folder) → what it says

    def launches_of(self, script: Path) -> list[Launch]:
        real = Path(os.path.realpath(script))
        folders = self._folders_up(real.parent)
        # The script's own comments (usage notes), then shell files from its folder upwards.
        texts = [(str(script), real)] + [entry for folder in folders for entry in self._launch_files(folder)]
        out: list[Launch] = []
        target = str(real)
        for display, file in texts:
            commands = self._commands_of(file)
            if not commands:
                continue
            for line, parsed in commands:
                launch = self._match(parsed, file, target, display, line)
                if launch is not None:
                    out.append(launch)
                    if len(out) >= MAX_LAUNCHES:
                        return out
        return out

    def _folders_up(self, start: Path) -> list[Path]:
        """`start` and the folders above it, up to the project root, the top of a git checkout, or
        MAX_FOLDERS_UP levels, whichever comes first."""
        if start not in self._up:
            out = [start]
            while len(out) <= MAX_FOLDERS_UP:
                here = out[-1]
                if here == self.root or here.parent == here or (here / ".git").exists():
                    break
                out.append(here.parent)
            self._up[start] = out
        return self._up[start]

    def _launch_files(self, folder: Path) -> list[tuple[str, Path]]:
        if folder not in self._folders:
            found: list[tuple[str, Path]] = []
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                names = []
            for name in names:
                if name in _LAUNCH_NAMES or name.endswith(_LAUNCH_SUFFIXES):
                    found.append((str(folder / name), folder / name))
                    if len(found) >= MAX_LAUNCH_FILES_PER_FOLDER:
                        break
            self._folders[folder] = found
        return self._folders[folder]

    def _commands_of(self, file: Path) -> list[tuple[int, tuple[str, str, int | None]]]:
        """The usable `accelerate launch` commands of a file (line, and config, script and processes),
        read once a run: a shell script or Makefile up the tree is asked about by every script below it."""
        if file not in self._commands:
            text = self._read(file)
            commands = _commands(text) if text is not None and _COMMAND.search(text) else []
            self._commands[file] = [(line, parsed) for line, tokens in commands if (parsed := _parse(tokens)) is not None]
        return self._commands[file]

    @staticmethod
    def _read(file: Path) -> str | None:
        try:
            return read_text_limited(file, MAX_LAUNCH_FILE_BYTES)
        except OSError:
            return None

    def _match(self, parsed: tuple[str, str, int | None], file: Path, script: str, display: str,
               line: int) -> Launch | None:
        """The launch when the command (`line` of `file`) runs `script` (a realpath) with a config we can read."""
        config_name, script_name, processes = parsed
        runs = self._scripts.get((file, line))
        if runs is None:  # where the command may run: the file's folder, then up
            runs = self._scripts[(file, line)] = [(base, os.path.realpath(base / script_name))
                                                  for base in self._folders_up(file.parent)]
        for base, named in runs:
            if named != script:
                continue
            config_path = base / config_name
            if not config_path.is_file():
                return None  # the folder the command runs in names no config we can see
            key = (config_path, base)
            if key not in self._configs:  # a config shared by many scripts' commands is read once a run
                self._configs[key] = _accelerate_config(str(config_path), _display(str(config_path)), str(base), self._cache)
            config = self._configs[key]
            where = Span(_display(display), line, 1, line, 2)  # the command
            return Launch(where, config, processes) if config is not None else None
        return None


def _accelerate_config(path: str, display: str, base: str, cache: Any) -> AccelerateConfig | None:
    """read_accelerate_config, its answer kept in the cache (keyed by the file's bytes, where it is read from and
    the working directory; served while the other files it read, a deepspeed_config_file, read the same): a warm
    run then neither imports the YAML parser nor parses the file."""
    from loralint.dependencies import blake2b, unchanged  # blake2b without OpenSSL (see loralint/cache.py)
    from loralint.extract.accelerate import MAX_ACCELERATE_CONFIG_BYTES, read_accelerate_config
    from loralint.safe_read import read_limited

    try:
        data = read_limited(path, MAX_ACCELERATE_CONFIG_BYTES)
    except (OSError, ValueError):  # ValueError: a NUL in the path
        return None  # as read_accelerate_config: not a config it can read
    key = None
    if cache is not None:
        facts = json.dumps([path, display, base, os.getcwd()]).encode()
        digest = blake2b(facts, digest_size=20, person=b"loralint-accel")
        digest.update(data)
        key = digest.hexdigest()
        found = _cached_config(cache, key, display)
        if found is not None and unchanged(found[1]):
            return found[0]
    reads: list[Dependency] = []
    config = read_accelerate_config(path, display, base, data.decode("utf-8", errors="replace"), reads)
    if key is not None:
        from loralint.cache_format import FormatError, dumps_value

        value = None if config is None else [config.distributed_type, config.distributed_span, config.num_processes,
                                             config.deepspeed, config.deepspeed_span]
        try:
            cache.write(key, dumps_value([value, reads]))
        except (FormatError, ValueError, TypeError, RecursionError):
            pass  # facts the format does not hold: read again next time
    return config


def _cached_config(cache: Any, key: str, display: str) -> tuple[AccelerateConfig | None, list[Dependency]] | None:
    """The entry `_accelerate_config` wrote: (the config, the files it read); None when there is none to trust."""
    from loralint.cache_format import loads_value
    from loralint.extract.accelerate import AccelerateConfig

    payload = cache.read(key)
    if payload is None:
        return None
    try:
        value, reads = loads_value(payload)
    except (ValueError, TypeError, RecursionError):
        return None
    if type(reads) is not list or not all(type(r) is tuple and len(r) == 2 and type(r[0]) is str
                                          and (r[1] is None or type(r[1]) is str) for r in reads):
        return None
    if value is None:
        return None, reads
    if type(value) is not list or len(value) != 5:
        return None
    kind, span, processes, deepspeed, deepspeed_span = value
    if type(kind) is not str or type(span) is not Span or not (processes is None or type(processes) is int) \
            or not (deepspeed is None or type(deepspeed) is dict) or not (deepspeed_span is None or type(deepspeed_span) is Span):
        return None
    return AccelerateConfig(display, kind, span, processes, deepspeed, deepspeed_span), reads


def _commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, tokens after `accelerate launch`) of each command: backslash continuations joined, comment
    markers and a Makefile recipe's tab stripped, stopped at the first shell operator."""
    out: list[tuple[int, list[str]]] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        start = number
        logical = lines[number]
        while logical.rstrip().endswith("\\") and number + 1 < len(lines):
            number += 1
            logical = logical.rstrip()[:-1] + " " + lines[number].lstrip().lstrip("#")
        number += 1
        match = _COMMAND.search(logical)
        if match is None:
            continue
        rest = logical[match.end():]
        import shlex

        try:
            tokens = shlex.split(rest, comments=True)
        except ValueError:
            continue
        cut = next((i for i, t in enumerate(tokens) if t in (";", "&&", "||", "|", "&", ">", ">>", "2>&1")), len(tokens))
        out.append((start + 1, tokens[:cut]))
    return out


def _parse(tokens: list[str]) -> tuple[str, str, int | None] | None:
    """(config, script, --num_processes) of a command's tokens, or None when it cannot be used."""
    config, processes, index = None, None, 0
    while index < len(tokens):
        token = tokens[index]
        if not token.startswith("-"):
            break
        name, eq, value = token.partition("=")
        if name not in _NEUTRAL_OPTIONS:
            return None  # an option that may override the config (or -m: a module, no script)
        if _NEUTRAL_OPTIONS[name] and not eq:
            index += 1
            if index >= len(tokens):
                return None
            value = tokens[index]
        if name in ("--config_file", "--config-file"):
            config = value
        elif name in ("--num_processes", "--num-processes"):
            processes = int(value) if value.isdigit() else -1  # a variable: more than one, maybe
        index += 1
    if config is None or index >= len(tokens) or not tokens[index].endswith(".py"):
        return None
    script = tokens[index]
    if any(c in part for part in (config, script) for c in "$`*?~"):
        return None  # a shell variable or pattern stands in for a path
    return config, script, processes if processes != -1 else None


def _display(path: str) -> str:
    """A path as messages show it: relative to the working directory when it is under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel
