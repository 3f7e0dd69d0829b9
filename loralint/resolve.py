"""resolve: base model id or path → what the model is (model_type, config, module inventory).

In this order, and every resolution says where it came from:
1. `--model` on the command line, or `model` in settings (they override the source);
2. a local folder with a config.json (relative to the working directory, then to the file);
3. the local Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub,
   ~/.cache/huggingface/hub), read with the stdlib: huggingface_hub costs 0.13 s to import;
4. the Hub itself, only with `--online` (HF_HUB_OFFLINE=1 always wins), through huggingface_hub;
5. loralint's shipped index of popular checkpoints, with their real config.json shape fields;
6. a guess from the name ("…llama…"): shown as advice, never used for an error.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from loralint.lazy_re import lazy
from loralint.limits import AnalysisLimit
from loralint.safe_read import InputRefused, read_limited, read_text_limited
from loralint.sites import ConfigSite

# "org/name", or a legacy id without an organisation ("gpt2", "t5-small", "bert-base-uncased").
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_COMMIT = lazy(r"^[0-9a-f]{40}$")


@dataclass(slots=True, repr=False, eq=False)
class Resolution:
    """Which model a site is about, where that came from, and (once analysed) its architecture."""

    model_id: str
    source: str  # "local folder", "Hugging Face cache", "Hugging Face Hub", "loralint index", "--model", ...
    detail: str = ""  # the config.json path, the index entry, ...
    config: dict[str, Any] | None = None
    model_type: str | None = None
    guessed: bool = False  # from the name alone: never the basis of an error
    info: Any = None  # loralint.knowledge ModelInfo for this config and task, when the type is known
    advice: Any = None  # loralint.advice.Advice: matched modules and parameter counts
    note: str = ""  # why the architecture is unknown, when it is
    # Bounds of loralint's reached for this site (LORA906): (LoraConfig field or None, message).
    limits: list[tuple[str | None, str]] = field(default_factory=list)
    via: str = ""  # "--model" / "settings" when the id came from there rather than from the source
    # Pre-quantized weights: "gptq" | "awq" | "bnb-4bit" | "bnb-8bit" | "gguf" | another quant_method; None: not known to be
    quantized: str | None = None

    @property
    def origin(self) -> str:
        """Where the model's identity came from, for messages: `ckpt/config.json`, `the Hugging Face cache`."""
        if self.source == "local folder":
            where = self.detail
        elif self.source == "loralint index":
            where = "loralint's index of popular checkpoints"
        elif self.source.startswith("Hugging Face"):
            where = f"the {self.source}"
        else:
            where = self.source
        return f"{self.via} {self.model_id} → {where}" if self.via else where


@dataclass(slots=True, repr=False, eq=False)
class Resolver:
    """Resolves model ids for one run, each (id, folder) once."""

    cwd: Path = field(default_factory=Path.cwd)
    online: bool = False
    override: str | None = None
    override_source: str = "--model"
    # config.json files found but not used, with the reason ("…/config.json: not a regular file (FIFO)").
    problems: list[str] = field(default_factory=list)
    _memo: dict[tuple[str, str], Resolution | None] = field(default_factory=dict)
    # model id -> its config.json in the Hugging Face cache: the same for every folder (finding the cache reads
    # the environment and the home folder, half of a resolution)
    _cached_paths: dict[str, Path | None] = field(default_factory=dict)
    _hub_cache: Path | None = None  # hub_cache_dir(), read from the environment once a run

    def resolve_site(self, site: ConfigSite) -> Resolution | None:
        model_id: str | None = None
        source_note = ""
        if self.override:
            model_id, source_note = self.override, self.override_source
        elif site.base_model is not None and isinstance(site.base_model.value, str):
            model_id = site.base_model.value
        if not model_id:
            return None
        base_dir = Path(site.path).parent if site.path not in ("-", "") else self.cwd
        key = (model_id, str(base_dir))
        if key not in self._memo:
            self._memo[key] = self.resolve(model_id, base_dir)
        base = self._memo[key]
        if base is None or base.guessed:
            from loralint.knowledge.index import model_type_of_class  # the knowledge base: only for a model

            # The class the script loads names the model type (Qwen2VLForConditionalGeneration -> qwen2_vl):
            # better than a guess from the id, still without the shapes of a config.json.
            by_class = model_type_of_class(site.hints.model_class) if site.hints.model_class else None
            if by_class is not None:
                base = Resolution(model_id, f"the class the script loads ({site.hints.model_class})", model_id,
                                  None, by_class, guessed=True)
        if base is None:
            return None
        # Each site gets its own copy: the architecture and advice depend on the site's task and fields.
        resolution = replace(base)
        resolution.via = source_note
        return resolution

    def resolve(self, model_id: str, base_dir: Path | None = None) -> Resolution | None:
        model_id = model_id.strip()
        for folder in _local_candidates(model_id, self.cwd, base_dir):
            config = _read_config(folder / "config.json", self.problems)
            if config is not None:
                shown = folder if Path(model_id).is_absolute() else Path(model_id)
                return _with_type(Resolution(model_id, "local folder", str(shown / "config.json"), config), self.problems)
        if _REPO_ID.match(model_id):
            if model_id not in self._cached_paths:
                if self._hub_cache is None:
                    self._hub_cache = hub_cache_dir()
                self._cached_paths[model_id] = cached_config_path(model_id, cache=self._hub_cache)
            path = self._cached_paths[model_id]
            if path is not None:
                config = _read_config(path, self.problems)
                if config is not None:
                    return _with_type(Resolution(model_id, "Hugging Face cache", str(path), config), self.problems)
            if self.online and not hub_offline():
                config = fetch_config_from_hub(model_id)
                if config is not None:
                    return _with_type(Resolution(model_id, "Hugging Face Hub", model_id, config), self.problems)
        from loralint.knowledge.index import lookup_checkpoint

        entry = lookup_checkpoint(model_id)
        if entry is not None:
            config = {**entry.get("config", {}), "model_type": entry["model_type"]}
            found = _with_type(Resolution(model_id, "loralint index", entry.get("mirror_of", model_id), config), self.problems)
            found.quantized = entry.get("quantized")
            return found
        guess = guess_model_type(model_id)
        if guess is not None:
            return Resolution(model_id, "a guess from the name", model_id, None, guess, guessed=True)
        return None


def _with_type(resolution: Resolution, problems: list[str] | None = None) -> Resolution:
    config = resolution.config or {}
    model_type = config.get("model_type")
    resolution.model_type = model_type if isinstance(model_type, str) else None
    resolution.quantized = quantization_of_config(config)
    if model_type is not None and resolution.model_type is None and problems is not None:
        # A list or a dict here is a config.json no transformers version reads: say so, never hash it.
        from loralint.knowledge.index import short_repr

        problem = (f"{resolution.detail}: model_type must be a string, not {type(model_type).__name__} "
                   f"{short_repr(model_type)}")
        if problem not in problems:
            problems.append(problem)
    return resolution


def quantization_of_config(config: dict[str, Any]) -> str | None:
    """What config.json's quantization_config says the stored weights are: "gptq", "awq", "bnb-4bit", ...; None."""
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return None
    method = qc.get("quant_method")
    if method == "bitsandbytes" or (method is None and (qc.get("load_in_4bit") or qc.get("load_in_8bit"))):
        return "bnb-4bit" if qc.get("load_in_4bit") else "bnb-8bit" if qc.get("load_in_8bit") else "bitsandbytes"
    return method.lower() if isinstance(method, str) and method else None


def _local_candidates(model_id: str, cwd: Path, base_dir: Path | None) -> list[Path]:
    path = Path(os.path.expanduser(model_id))
    candidates = [path] if path.is_absolute() else [cwd / path] + ([base_dir / path] if base_dir else [])
    return [c for c in candidates if c.is_dir()]


def _read_config(path: Path, problems: list[str] | None = None) -> dict[str, Any] | None:
    """A config.json as a dict; None when there is none or it cannot be used, with the reason in `problems`.
    Read as any checked file is: regular files only, 10 MB at most (a FIFO or /dev/zero never hangs)."""
    from loralint.extract.source import UndecodableSource, decode_text

    try:
        data = json.loads(decode_text(read_limited(path), "json"))
    except InputRefused as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        problem = f"{exc}"
    except UndecodableSource as exc:
        problem = f"cannot decode: {exc}"
    except ValueError as exc:
        problem = f"invalid JSON ({getattr(exc, 'msg', exc)})"
    except RecursionError:
        problem = "invalid JSON (nesting too deep)"
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
    else:
        if isinstance(data, dict):
            return data
        problem = "not a JSON object"
    entry = f"{os.path.abspath(path)}: {problem}"  # absolute: one entry when two candidates are the same folder
    if problems is not None and entry not in problems:
        problems.append(entry)
    return None


def hub_cache_dir() -> Path:
    """The cache huggingface_hub uses, from the same environment variables, without importing it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def cached_config_path(model_id: str, revision: str = "main", cache: Path | None = None) -> Path | None:
    """config.json of `model_id` in the local cache (layout: models--org--name/{refs,snapshots}); `cache`:
    hub_cache_dir(), when the caller has it."""
    repo = (hub_cache_dir() if cache is None else cache) / ("models--" + model_id.replace("/", "--"))
    if not repo.is_dir():
        return None
    commit = revision if _COMMIT.match(revision) else None
    if commit is None:
        try:
            commit = read_text_limited(repo / "refs" / revision, 4096).strip()
        except OSError:
            commit = None
    snapshots = repo / "snapshots"
    if commit and (snapshots / commit / "config.json").is_file():
        return snapshots / commit / "config.json"
    # No ref (an offline copy): take the only snapshot that has a config.json, if unambiguous.
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    return found[0] if len(found) == 1 else None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def fetch_config_from_hub(model_id: str) -> dict[str, Any] | None:
    """Download config.json (only with --online). Any failure is "not resolved", never a crash:
    one short try, no retries, the reason kept for the run's notes (`loralint.hub`)."""
    from loralint import hub

    # Pass the cache and offline mode explicitly: huggingface_hub reads its environment once,
    # at import, and a long-lived process (the LSP server, tests) may have imported it earlier.
    path = hub.fetch_config_path(model_id, hub_cache_dir(), offline=hub_offline())
    return _read_config(path) if path is not None else None


# Name fragments → model_type, for advice only (never for an error).
_NAME_HINTS = (
    ("mixtral", "mixtral"),
    ("mistral", "mistral"),
    ("llama", "llama"),
    ("qwen3", "qwen3"),
    ("qwen2", "qwen2"),
    ("gemma-2", "gemma2"),
    ("gemma", "gemma"),
    ("phi-3", "phi3"),
    ("phi-2", "phi"),
    ("gpt2", "gpt2"),
    ("pythia", "gpt_neox"),
    ("falcon", "falcon"),
    ("bloom", "bloom"),
    ("opt-", "opt"),
    ("t5", "t5"),
    ("roberta", "roberta"),
    ("bert", "bert"),
)


def guess_model_type(model_id: str) -> str | None:
    name = model_id.lower().rsplit("/", 1)[-1]
    for fragment, model_type in _NAME_HINTS:
        if fragment in name:
            return model_type
    return None


def model_selection(site: ConfigSite) -> tuple[str | None, str | None]:
    """(task type, concrete class) of the model the config is applied to. The class the script
    loads decides (PEFT adapts what it is given); the config's task_type only when it is unknown."""
    from loralint.checks._util import effective
    from loralint.checks.hyperparams import task_type_for_class

    loaded = site.hints.model_class
    if loaded and not loaded.startswith(("Auto", "Fast")):
        return task_type_for_class(loaded), loaded  # LlamaForSequenceClassification: that very class
    if loaded and task_type_for_class(loaded):
        return task_type_for_class(loaded), None
    task, known = effective(site, "task_type")
    return (task if known and isinstance(task, str) and task else None), None


def not_found(model_id: str, online: bool, problems: list[str] | None = None) -> str:
    """Why `model_id` has no config.json here, and what would find it."""
    if problems:  # a config.json was there but could not be used: that is the reason
        return f"{model_id!r}: {'; '.join(problems)}; the model stays unresolved"
    hint = "" if online else "; --online fetches it from the Hugging Face Hub"
    if online:
        from loralint import hub

        why = hub.failure(model_id.strip())
        hint = f"; not from the Hub either: {why}" if why else hint
    return (f"{model_id!r}: no config.json found (not a local folder, not in the Hugging Face cache at "
            f"{hub_cache_dir()}, not in loralint's index of popular checkpoints){hint}")


class SiteResolver:
    """The engine's resolve stage for one run, fed file by file as extraction hands files over: attaches
    a Resolution (and the architecture) to each site.

    Two steps: which model each site is about (cheap: its config.json is read, never analysed), then the
    costly module inventory and counts. `needs_architecture`, asked once every site given has its model,
    may skip the second step for a site whose file's findings the engine already has (its check cache
    keys on the first step's facts); a file where the first step failed for any site is always analysed.
    Models, config.json files and inventories are looked at once a run, whatever the order of files."""

    def __init__(self, settings, options) -> None:
        override = options.model or settings.model
        self.resolver = Resolver(
            cwd=Path.cwd(),
            online=bool(options.online),
            override=override,
            override_source="--model" if options.model else "settings",
        )
        if override:
            found = self.resolver.resolve(override)
            if found is None or found.guessed or found.model_type is None:
                from loralint.engine import UsageError

                where = "--model" if options.model else f"model in {settings.source or 'settings'}"
                raise UsageError(f"{where} {not_found(override, self.resolver.online, self.resolver.problems)}")
        self.inventories: dict[str, Any] = {}  # one ModelInfo per (type, config, class) for the whole run

    def resolve(self, sites: list[ConfigSite],
                needs_architecture: Callable[[ConfigSite], bool] | None = None) -> list[tuple[ConfigSite, str]]:
        """Resolve `sites`; returns those whose resolution failed inside loralint, with the reason: the
        engine reports them as that file's internal error and the run goes on."""
        failures: list[tuple[ConfigSite, str]] = []
        resolved: list[ConfigSite] = []
        for site in sites:
            try:
                resolution = self.resolver.resolve_site(site)
            except Exception as exc:  # a bug of ours on one site must not end the run
                if os.environ.get("LORALINT_DEBUG"):
                    raise
                site.model = None
                failures.append((site, f"{type(exc).__name__}: {exc}"))
                continue
            if resolution is not None:
                site.model = resolution
                resolved.append(site)
        failed_files = {site.path for site, _ in failures}
        for site in resolved:
            if needs_architecture is not None and site.path not in failed_files and not needs_architecture(site):
                continue
            try:
                attach_architecture(site, site.model, self.inventories)
            except Exception as exc:  # a bug of ours on one site must not end the run
                if os.environ.get("LORALINT_DEBUG"):
                    raise
                site.model = None
                failures.append((site, f"{type(exc).__name__}: {exc}"))
        return failures

    def notes(self) -> list[str]:
        """For the end of the run: each config.json that is there but unusable (a FIFO, too large,
        invalid), and with --online what the Hub did not give. Sorted: files reach this stage in the order
        their extraction ends, which changes from run to run."""
        return [f"{problem}; not used" for problem in sorted(self.resolver.problems)] + _hub_notes(self.resolver)


def _hub_notes(resolver: Resolver) -> list[str]:
    """With --online: one line when the Hub could not be reached (naming the models left
    unresolved), and one per model the Hub answered no for (not found, gated)."""
    if not resolver.online:
        return []
    from loralint import hub

    unresolved = sorted({m.strip() for (m, _), found in resolver._memo.items() if found is None or found.guessed})
    down = hub.unreachable()
    lost = [m for m in unresolved if down is not None and hub.failure(m) == down]
    notes = []
    if down is not None:
        notes.append(f"--online: {down}" + (f"; not resolved: {', '.join(map(repr, lost))}" if lost else ""))
    notes.extend(f"--online: {m!r} was not resolved: {hub.failure(m)}"
                 for m in unresolved if m not in lost and hub.failure(m) is not None)
    return notes


def _unsloth_targets(site: ConfigSite, info: Any) -> None:
    """FastVisionModel.get_peft_model: the target regex Unsloth builds for this model from its
    finetune_* flags (loralint/knowledge/unsloth.py), as the value PEFT receives."""
    from loralint.knowledge.unsloth import unsloth_targets
    from loralint.sites import Field

    written = site.get("target_modules")
    if written is not None and not written.known:
        return
    built = unsloth_targets(site.hints.unsloth_finetune or {}, written.value if written is not None else None, info)
    if built is None:
        return
    regex, how = built
    if written is None:
        site.defaults["target_modules"] = regex
    else:
        site.fields["target_modules"] = Field("target_modules", regex, written.span, written.key_span, provenance=how)


def attach_architecture(site: ConfigSite, resolution: Resolution, inventories: dict[str, Any] | None = None) -> None:
    """Load the module inventory for this model type, config and task (lazily, per type)."""
    if resolution.model_type is None:
        return
    from loralint.knowledge.models import known_model_types, load_model_info

    if resolution.model_type not in known_model_types():
        resolution.note = f"loralint has no module table for model_type {resolution.model_type!r}"
        return
    if resolution.guessed:
        return
    try:
        task, model_class = model_selection(site)
        key = json.dumps([resolution.model_type, resolution.config, task, model_class], sort_keys=True, default=repr)
        if inventories is not None and key in inventories:
            resolution.info = inventories[key]
        else:
            resolution.info = load_model_info(resolution.model_type, resolution.config, task, model_class=model_class)
            if resolution.info is None and model_class is not None:  # a class the knowledge base does not list
                resolution.info = load_model_info(resolution.model_type, resolution.config, task)
            if inventories is not None:
                inventories[key] = resolution.info
    except AnalysisLimit as exc:  # an absurd config.json (10**9 layers): not built, LORA906 says so
        resolution.note = exc.message
        resolution.limits = [*resolution.limits, (None, f"{resolution.origin}: {exc.message}")]
        resolution.info = None
    except Exception as exc:  # a config we cannot evaluate: say so, keep going
        resolution.note = f"cannot compute the module shapes from this config ({type(exc).__name__}: {exc})"
        resolution.info = None
    if resolution.info is not None and site.hints.unsloth_finetune is not None:
        _unsloth_targets(site, resolution.info)
    if resolution.info is not None:
        from loralint.advice import advise

        try:
            resolution.advice = advise(site, resolution.info)
        except AnalysisLimit as exc:  # patterns loralint will not run, or too much matching: LORA906
            resolution.limits = [*resolution.limits, (exc.field, exc.message)]
