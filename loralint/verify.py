"""verify: build each base model from its config.json on the meta device and apply real PEFT.

What the static stages predict, this stage observes: the modules PEFT matches, the parameters it
makes trainable (`PeftModel.get_nb_trainable_parameters`), the scaling each LoRA layer gets, and
every error or warning PEFT raises on the way. Nothing is downloaded (unless `--online`), no
weights are allocated (the meta device), and no code from a model repository runs (unless
`--trust-remote-code`).

torch, transformers and peft are imported here only, lazily, once per run (`load_stack`).

The flow, for each ConfigSite:
1. plan: the LoraConfig keyword arguments under PEFT's names (set values and the origin's
   defaults, `checks._util.effective`), all statically known, and the base model's config.json
   (`loralint.resolve`); otherwise an info diagnostic says why the site is not verified;
2. build: the transformers class the script loads (`hints.model_class`) or the one the task type
   implies, from the config alone under `torch.device("meta")`; one build per distinct
   (config, class), copied for each further site that shares it (PEFT mutates the model);
3. apply: `peft.LoraConfig(**kwargs)` then `peft.get_peft_model(model, config,
   low_cpu_mem_usage=True)`, with warnings recorded; errors and warnings become diagnostics;
4. observe: `targeted_module_names` folded by index, `get_nb_trainable_parameters()`, scaling;
5. optionally (`--device cuda|auto|cpu`): random weights on a real device, one forward+backward
   step at `--seq-len`/`--batch-size`, and the peak GPU memory.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralint.advice import SAVED_ADAPTER_ORIGIN
from loralint.engine import UsageError
from loralint.sites import ConfigSite, Diagnostic, Span, format_value

INSTALL_HINT = "pip install 'loralint[verify]'"
DEVICES = ("meta", "auto", "cuda", "cpu")
ADAPTER = "default"

# LoraConfig fields that only describe where the adapter came from: get_peft_model overwrites
# base_model_name_or_path (and warns when it differs, which from-config models always would).
_METADATA_FIELDS = frozenset({"base_model_name_or_path", "revision", "peft_version", "auto_mapping", "peft_type"})
# Initialisations that need data or real weights that no config can give (preprocess_corda,
# LoftQ's quantise-and-SVD). Their construction checks still run on the real value; the model is
# then built with the default initialisation, which gives the same modules and counts.
_DATA_DEPENDENT_INITS = ("corda", "loftq")
# Origins that do not apply LoRA through PEFT: their module names are not PEFT's to match.
_NOT_PEFT_ORIGINS = ("torchtune",)
_UNSLOTH_CLASSES = {"FastLanguageModel": "causal", "FastVisionModel": "vision", "FastModel": "vision"}
_TASK_CLASSES = {
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "TOKEN_CLS": "AutoModelForTokenClassification",
    "QUESTION_ANS": "AutoModelForQuestionAnswering",
    "FEATURE_EXTRACTION": "AutoModel",
}
_MODEL_CLASS = re.compile(
    r"^(AutoModel\w*|\w+(Model|ForCausalLM|ForConditionalGeneration|ForSequenceClassification|"
    r"ForTokenClassification|ForQuestionAnswering|ForMaskedLM|LMHeadModel|ForImageTextToText))$"
)
# Path segments of vision / audio towers in multimodal models (transformers 5 naming).
_TOWER_SEGMENTS = frozenset(
    {"visual", "vision_tower", "vision_model", "vision_encoder", "vision", "image_encoder", "audio_tower",
     "audio_model", "audio_encoder", "multi_modal_projector", "mm_projector"}
)
# peft/peft_model.py: PeftModelForSequenceClassification & co. add these heads to modules_to_save.
_HEAD_NAMES = ("score", "classifier", "qa_outputs")
_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)")
_PLACEHOLDERS = "ijklmn"


class VerifyUnavailable(UsageError):
    """torch / transformers / peft are not installed: `--verify` cannot run (exit 2)."""


# --------------------------------------------------------------------------------------------
# The libraries, imported once


@dataclass(slots=True)
class Stack:
    torch: Any
    transformers: Any
    peft: Any
    import_seconds: float

    @property
    def versions(self) -> dict[str, str]:
        return {
            "peft": self.peft.__version__,
            "transformers": self.transformers.__version__,
            "torch": self.torch.__version__,
        }


_STACK: Stack | None = None


def load_stack() -> Stack:
    """Import torch, transformers and peft (once per process); one clear line when they are missing."""
    global _STACK
    if _STACK is not None:
        return _STACK
    start = time.perf_counter()
    try:
        import peft
        import torch
        import transformers
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise VerifyUnavailable(
            f"verification needs torch, transformers and peft ({missing} is not installed): {INSTALL_HINT}"
        ) from None
    _STACK = Stack(torch, transformers, peft, time.perf_counter() - start)
    return _STACK


# --------------------------------------------------------------------------------------------
# Results


@dataclass(slots=True)
class ModuleGroup:
    """Matched modules that differ only by their indices: `model.layers.{i}.self_attn.q_proj` × 28."""

    pattern: str
    count: int = 0
    indices: list[int] = field(default_factory=list)  # the first index ({i}) of each match
    kind: str = ""  # the base layer's class: Linear, Conv1D, Embedding, Parameter, ...
    in_features: int | None = None
    out_features: int | None = None
    ranks: list[int] = field(default_factory=list)
    scalings: list[float] = field(default_factory=list)
    lora_params: int = 0  # adapter parameters PEFT added to these modules

    @property
    def shape(self) -> str:
        """`3072→1024` (in → out features), or "" when the layer has no such sizes."""
        if self.in_features is None or self.out_features is None:
            return ""
        return f"{self.in_features}→{self.out_features}"

    def as_json(self) -> dict[str, Any]:
        return {
            "pattern": self.pattern,
            "count": self.count,
            "indices": sorted(self.indices) if self.indices else None,
            "type": self.kind,
            "in_features": self.in_features,
            "out_features": self.out_features,
            "r": self.ranks[0] if len(self.ranks) == 1 else self.ranks,
            "scaling": self.scalings[0] if len(self.scalings) == 1 else self.scalings,
            "lora_params": self.lora_params,
        }


@dataclass(slots=True)
class SiteReport:
    site: ConfigSite
    status: str = "skipped"  # verified | rejected | skipped | unresolved | refused
    reason: str = ""
    model_id: str | None = None
    resolved_from: str | None = None
    model_type: str | None = None
    model_class: str | None = None
    groups: list[ModuleGroup] = field(default_factory=list)
    parameter_groups: list[ModuleGroup] = field(default_factory=list)  # target_parameters
    modules_to_save: list[ModuleGroup] = field(default_factory=list)
    trainable: int | None = None
    total: int | None = None
    scaling: float | None = None
    notes: list[str] = field(default_factory=list)
    device: dict[str, Any] | None = None  # the real-tensor step (--device)
    targeted: list[str] = field(default_factory=list)  # PEFT's targeted_module_names, unfolded
    targeted_parameters: list[str] = field(default_factory=list)  # targeted_parameter_names
    diagnostics: list[Diagnostic] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def percent(self) -> float | None:
        if self.trainable is None or not self.total:
            return None
        return 100 * self.trainable / self.total

    def matched_counts(self) -> dict[str, Any]:
        """The same shape as the static advice's `matched_modules`: the total and the folded names."""
        groups = [*self.groups, *self.parameter_groups]
        return {"count": sum(g.count for g in groups), "modules": {g.pattern: g.count for g in groups}}


@dataclass(slots=True)
class VerifyReport:
    sites: list[SiteReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    device: str = "meta"
    timings: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        from loralint.report import jsonable

        configs = []
        for rep in self.sites:
            s = rep.site
            configs.append({
                "path": s.path,
                "line": s.span.line,
                "column": s.span.column,
                "origin": s.origin,
                "status": rep.status,
                "reason": rep.reason or None,
                "fields": {name: jsonable(f.value) for name, f in s.fields.items()},
                "base_model": rep.model_id,
                "resolved_from": rep.resolved_from,
                "model_type": rep.model_type,
                "model_class": rep.model_class,
                "matched_modules": [g.as_json() for g in rep.groups],
                "matched_parameters": [g.as_json() for g in rep.parameter_groups],
                "modules_to_save": [g.as_json() for g in rep.modules_to_save],
                "trainable_params": rep.trainable,
                "total_params": rep.total,
                "trainable_percent": round(rep.percent, 6) if rep.percent is not None else None,
                "scaling": rep.scaling,
                "counted_by": "peft" if rep.status == "verified" else None,
                "device": rep.device,
                "notes": rep.notes,
                "seconds": round(rep.seconds, 4),
            })
        return {
            "version": 1,
            "versions": self.versions,
            "device": self.device,
            "configs": configs,
            "notes": self.notes,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


class VerifiedAdvice:
    """What `check --verify` puts in place of the static advice: PEFT's own numbers.

    Reporters read `trainable_params`, `total_params`, `matched_modules` (and `counted_by`);
    anything else falls through to the static advice it replaces.
    """

    counted_by = "peft"

    def __init__(self, static: Any, report: SiteReport) -> None:
        self._static = static
        self.trainable_params = report.trainable
        self.total_params = report.total
        self.matched_modules = report.matched_counts()
        self.scaling = report.scaling

    def __getattr__(self, name: str) -> Any:
        static = self.__dict__.get("_static")
        if static is None:
            raise AttributeError(name)
        return getattr(static, name)


# --------------------------------------------------------------------------------------------
# Entry point


def verify_sites(
    sites: list,
    rules: dict,
    settings,
    options,
    *,
    trust_remote_code: bool = False,
    progress: bool = False,
    device: str = "meta",
    seq_len: int = 2048,
    batch_size: int = 1,
) -> VerifyReport:
    """Verify each site with the real libraries. The diagnostics stay in the report (per site);
    the engine filters them like every other finding (selection, per-file ignores, suppressions)."""
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}")
    report = VerifyReport(device=device)
    if not sites:
        return report
    stack = load_stack()
    report.versions = stack.versions
    report.timings["import"] = stack.import_seconds
    start = time.perf_counter()
    verifier = _Verifier(stack, sites, rules, settings, options, trust_remote_code, device, seq_len, batch_size, report)
    with _progress(progress) as bar:
        verifier.run(bar)
    report.timings["verify"] = time.perf_counter() - start
    for rep in report.sites:
        if rep.status == "verified" and rep.site.model is not None:
            rep.site.model.advice = VerifiedAdvice(rep.site.model.advice, rep)
    return report


def verify_stage(report_holder: list, **kwargs):
    """An engine stage: verify the run's sites and hand back their diagnostics, keyed by site."""

    def stage(sites: list, rules: dict, settings, options) -> dict[int, list[Diagnostic]]:
        report = verify_sites(sites, rules, settings, options, **kwargs)
        report_holder.append(report)
        return {id(rep.site): rep.diagnostics for rep in report.sites}

    return stage


# --------------------------------------------------------------------------------------------
# Planning: what to build and with which LoraConfig


@dataclass(slots=True)
class _Job:
    report: SiteReport
    kwargs: dict[str, Any]
    build_key: tuple
    config_dict: dict[str, Any]
    class_name: str
    remote: Any = None  # where remote code lives (a folder or a repo id), with --trust-remote-code
    unknown_dropped: list[str] = field(default_factory=list)


class _Verifier:
    def __init__(self, stack: Stack, sites: list, rules: dict, settings, options, trust_remote_code: bool,
                 device: str, seq_len: int, batch_size: int, report: VerifyReport) -> None:
        self.stack = stack
        self.sites = sites
        self.settings = settings
        self.options = options
        self.trust = trust_remote_code
        self.device = device
        self.seq_len = seq_len
        self.batch_size = batch_size
        self.report = report
        self.rules = rules
        self._resolver = None

    # -- diagnostics ---------------------------------------------------------------------------
    def diag(self, rep: SiteReport, code: str, message: str, span: Span | None = None) -> None:
        rule = self.rules.get(code)
        name = rule.name if rule is not None else code
        severity = rule.severity if rule is not None else "info"
        rep.diagnostics.append(Diagnostic(code, name, severity, message, span or rep.site.span))

    def provenance(self, rep: SiteReport) -> str:
        v = self.stack.versions
        where = rep.model_type or rep.model_id or "the base model"
        return f"verified: peft {v['peft']}, transformers {v['transformers']}, {where} built on the meta device"

    # -- the run -------------------------------------------------------------------------------
    def run(self, bar: _Bar) -> None:
        jobs: list[_Job] = []
        for site in self.sites:
            rep = SiteReport(site)
            self.report.sites.append(rep)
            job = self.plan(rep)
            if job is not None:
                jobs.append(job)
        bar.start(len(jobs))
        uses: dict[tuple, int] = {}
        for job in jobs:
            uses[job.build_key] = uses.get(job.build_key, 0) + 1
        built: dict[tuple, Any] = {}
        failed: dict[tuple, tuple[str, str]] = {}
        self.report.timings.setdefault("build", 0.0)
        self.report.timings.setdefault("peft", 0.0)
        with _quiet_transformers(self.stack):
            for job in jobs:
                rep = job.report
                start = time.perf_counter()
                key = job.build_key
                if key in failed:
                    code, message = failed[key]
                    self.diag(rep, code, message, _model_span(rep.site))
                    rep.status = "unresolved" if code == "LORA254" else "refused"
                    rep.reason = message
                    bar.advance()
                    continue
                if key not in built:
                    bar.describe(f"building {rep.model_type or rep.model_id} ({job.class_name}) on the meta device")
                    t = time.perf_counter()
                    try:
                        built[key] = self.build(job)
                    except _BuildRefused as exc:
                        failed[key] = (exc.code, exc.message)
                        self.diag(rep, exc.code, exc.message, _model_span(rep.site))
                        rep.status = "unresolved" if exc.code == "LORA254" else "refused"
                        rep.reason = exc.message
                        bar.advance()
                        continue
                    finally:
                        self.report.timings["build"] += time.perf_counter() - t
                uses[key] -= 1
                # get_peft_model changes the model in place: the last user takes the original.
                model = built.pop(key) if uses[key] == 0 else copy.deepcopy(built[key])
                bar.describe(f"applying PEFT to {rep.model_type or rep.model_id} for {_where(rep.site)}")
                t = time.perf_counter()
                self.apply(job, model)
                self.report.timings["peft"] += time.perf_counter() - t
                del model
                if self.device != "meta" and rep.status == "verified":
                    self.measure(job)
                rep.seconds = time.perf_counter() - start
                bar.advance()

    def plan(self, rep: SiteReport) -> _Job | None:
        site = rep.site
        if site.origin in _NOT_PEFT_ORIGINS:
            rep.reason = f"{site.origin} applies LoRA with its own modules, not with PEFT: nothing to verify"
            rep.notes.append(rep.reason)
            return None
        resolution = site.model
        if resolution is None or getattr(resolution, "config", None) is None:
            resolution = self.resolve(site) or resolution
        model_id = _model_id(site, self.options, self.settings)
        rep.model_id = getattr(resolution, "model_id", None) or model_id
        if resolution is None or getattr(resolution, "config", None) is None:
            rep.status = "unresolved"
            if model_id is None:
                rep.reason = "no base model is known for this configuration; pass --model ID_OR_PATH to verify it"
            else:
                where = "not a local folder with a config.json, not in the local Hugging Face cache"
                where += "" if self.options.online else "; --online allows fetching its config.json from the Hub"
                rep.reason = f"cannot read the config.json of base model {model_id!r} ({where})"
            self.diag(rep, "LORA254", f"not verified: {rep.reason}", _model_span(site))
            return None
        if site.model is None:
            site.model = resolution
        config = dict(resolution.config)
        rep.resolved_from = resolution.origin
        rep.model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None

        kwargs, unknown, dropped = lora_kwargs(site)
        if site.opaque:
            rep.reason = f"part of the call cannot be read ({site.opaque})"
        elif unknown:
            rep.reason = "not statically known: " + ", ".join(unknown)
        if site.opaque or unknown:
            self.diag(rep, "LORA256", f"not verified: {rep.reason}; verifying needs every value that decides the "
                                      "modules and counts")
            return None
        for name in dropped:
            rep.notes.append(f"{name} is not statically known; it does not change the modules or counts, so PEFT's default was used")

        task = kwargs.get("task_type") if isinstance(kwargs.get("task_type"), str) else None
        class_name, why = choose_model_class(self.stack, site.hints.model_class, task, config)
        rep.model_class = class_name
        if why:
            rep.notes.append(why)
        remote = None
        unknown_type = _needs_remote_code(self.stack, config)
        if unknown_type or (self.trust and isinstance(config.get("auto_map"), dict) and config["auto_map"]):
            # With --trust-remote-code, an auto_map wins over transformers' own class, as it does in
            # from_pretrained(..., trust_remote_code=True); without it, only known types are built.
            if not self.trust:
                rep.status = "refused"
                rep.reason = _remote_reason(self.stack, config)
                self.diag(rep, "LORA255", f"not verified: {rep.reason}", _model_span(site))
                return None
            remote = _remote_location(resolution, self.options.online)
            if remote is None:
                rep.status = "unresolved"
                rep.reason = ("its architecture is defined by code in the model repository, and that code is not on "
                              "this machine (a local folder or the Hugging Face cache; --online fetches it)")
                self.diag(rep, "LORA254", f"not verified: {rep.reason}", _model_span(site))
                return None
        key = (json.dumps(config, sort_keys=True, default=str), class_name, str(remote))
        return _Job(rep, kwargs, key, config, class_name, remote, dropped)

    def resolve(self, site: ConfigSite):
        try:
            from loralint.resolve import Resolver
        except ImportError:  # pragma: no cover - resolve ships with the package
            return None
        if self._resolver is None:
            override = self.options.model or getattr(self.settings, "model", None)
            self._resolver = Resolver(
                cwd=Path.cwd(), online=bool(self.options.online), override=override,
                override_source="--model" if self.options.model else "settings",
            )
        try:
            return self._resolver.resolve_site(site)
        except Exception:  # a resolver bug must not stop the run; the site is reported unresolved
            if os.environ.get("LORALINT_DEBUG"):
                raise
            return None

    # -- build ---------------------------------------------------------------------------------
    def build(self, job: _Job, device: str = "meta", dtype: Any = None):
        torch, transformers = self.stack.torch, self.stack.transformers
        cls = getattr(transformers, job.class_name)
        try:
            if job.remote is not None:
                config = transformers.AutoConfig.from_pretrained(
                    job.remote, trust_remote_code=True, local_files_only=not self.options.online
                )
            else:
                config = _config_from_dict(transformers, job.config_dict)
        except Exception as exc:  # noqa: BLE001 - any config transformers cannot read
            raise _BuildRefused("LORA254", f"not verified: transformers {transformers.__version__} cannot read this "
                                           f"config.json ({_short(exc)})") from None
        extra: dict[str, Any] = {}
        if job.remote is not None and job.class_name.startswith("AutoModel"):
            extra["trust_remote_code"] = True
        if dtype is not None:
            extra["dtype"] = dtype
        try:
            with torch.device(device):
                if hasattr(cls, "from_config"):
                    return cls.from_config(config, **extra)
                return cls._from_config(config, **extra)
        except Exception as exc:
            if os.environ.get("LORALINT_DEBUG"):
                raise
            raise _BuildRefused(
                "LORA254",
                f"not verified: transformers {transformers.__version__} cannot build {job.class_name} from this "
                f"config ({_short(exc)})",
            ) from None

    # -- apply PEFT ----------------------------------------------------------------------------
    def apply(self, job: _Job, model) -> None:
        rep, site = job.report, job.report.site
        peft = self.stack.peft
        unexpected_before = _special_modules(self.stack, model)
        with _capture_warnings() as caught:
            try:
                config = peft.LoraConfig(**job.kwargs)
            except ImportError as exc:
                rep.status = "skipped"
                rep.reason = f"LoraConfig needs a package that is not installed here ({_short(exc)})"
                self.diag(rep, "LORA256", f"not verified: {rep.reason}")
                return
            except Exception as exc:  # noqa: BLE001 - whatever LoraConfig raises is the finding
                rep.status = "rejected"
                rep.reason = f"LoraConfig(...) raises {type(exc).__name__}: {_short(exc)}"
                self.diag(rep, "LORA250", f"{rep.reason} ({self.provenance(rep)})", _span_for_error(site, str(exc)))
                self._warnings(job, caught)
                return
            if site.origin == SAVED_ADAPTER_ORIGIN and config.inference_mode:
                config.inference_mode = False
                rep.notes.append("inference_mode=true in the saved adapter: counted as "
                                 "PeftModel.from_pretrained(..., is_trainable=True) loads it for training")
            init = getattr(config, "init_lora_weights", True)
            if isinstance(init, str) and init.lower().startswith(_DATA_DEPENDENT_INITS):
                rep.notes.append(f"init_lora_weights={init!r} needs data or real weights; modules and counts were "
                                 "taken with the default initialisation (they do not depend on it)")
                config.init_lora_weights = True
            try:
                peft_model = peft.get_peft_model(model, config, low_cpu_mem_usage=True)
            except ImportError as exc:
                rep.status = "skipped"
                rep.reason = f"PEFT needs a package that is not installed here ({_short(exc)})"
                self.diag(rep, "LORA256", f"not verified: {rep.reason}")
                return
            except Exception as exc:
                if os.environ.get("LORALINT_DEBUG") == "2":
                    raise
                text = _short(exc)
                if _is_meta_artifact(text):
                    rep.status = "skipped"
                    rep.reason = f"this configuration cannot be applied on the meta device ({type(exc).__name__}: {text})"
                    self.diag(rep, "LORA256", f"not verified: {rep.reason}")
                    return
                rep.status = "rejected"
                rep.reason = f"get_peft_model raises {type(exc).__name__}: {text}"
                self.diag(rep, "LORA250", f"{rep.reason} ({self.provenance(rep)})", _span_for_error(site, str(exc)))
                self._warnings(job, caught)
                return
        rep.status = "verified"
        self._warnings(job, caught)
        self.observe(rep, peft_model)
        self._unexpected(job, unexpected_before)
        self._compare_static(rep)

    def _warnings(self, job: _Job, caught: list[tuple[str, str]]) -> None:
        rep = job.report
        seen: set[str] = set()
        for category, message in caught:
            if message in seen:
                continue
            seen.add(message)
            if _own_pattern_keys(message, job.kwargs):
                # PEFT's MoE conversion (utils/transformers_weight_conversion.py) adds rank/alpha
                # pattern keys for fused experts, then warns that they match no *module*: not the user's.
                continue
            self.diag(rep, "LORA251", f"PEFT warns: {message} ({self.provenance(rep)})",
                      _span_for_error(rep.site, message))

    def observe(self, rep: SiteReport, peft_model) -> None:
        from peft.tuners.lora import LoraLayer
        from peft.utils.other import ModulesToSaveWrapper

        rep.trainable, rep.total = peft_model.get_nb_trainable_parameters()
        base = peft_model.get_base_model()
        tuner = peft_model.base_model
        modules = dict(base.named_modules())
        groups: dict[str, ModuleGroup] = {}
        rep.targeted = list(getattr(tuner, "targeted_module_names", []))
        for name in rep.targeted:
            module = modules.get(name)
            group = _group(groups, name)
            if isinstance(module, LoraLayer):
                _describe_layer(group, module, self.stack.torch)
        rep.groups = list(groups.values())
        pgroups: dict[str, ModuleGroup] = {}
        rep.targeted_parameters = list(getattr(tuner, "targeted_parameter_names", []))
        for name in rep.targeted_parameters:
            group = _group(pgroups, name)
            owner, leaf = name.rsplit(".", 1) if "." in name else ("", name)
            module = modules.get(owner)
            # Several parameters of one module nest ParamWrappers: find the one for this parameter.
            while isinstance(module, LoraLayer) and getattr(module, "parameter_name", leaf) != leaf:
                module = getattr(module, "base_layer", None)
            group.kind = "Parameter"
            if isinstance(module, LoraLayer):
                _describe_layer(group, module, self.stack.torch, parameter=True)
        rep.parameter_groups = list(pgroups.values())
        saved: dict[str, ModuleGroup] = {}
        for name, module in modules.items():
            if isinstance(module, ModulesToSaveWrapper):
                group = _group(saved, name)
                inner = getattr(module, "original_module", None)
                group.kind = type(inner).__name__ if inner is not None else "Module"
                if inner is not None:
                    group.lora_params += sum(p.numel() for p in inner.parameters())
        rep.modules_to_save = list(saved.values())
        scalings = sorted({s for g in [*rep.groups, *rep.parameter_groups] for s in g.scalings})
        rep.scaling = scalings[0] if len(scalings) == 1 else None

    def _unexpected(self, job: _Job, special: dict[str, Any]) -> None:
        """LORA252: matched modules that are rarely what the user meant."""
        rep, site = job.report, job.report.site
        targets = job.kwargs.get("target_modules")
        named = set(targets) if isinstance(targets, (list, tuple, set, frozenset)) else set()
        regex = targets if isinstance(targets, str) else None
        what = "target_modules=" + (format_value(targets) if targets is not None else "None (PEFT's default)")
        matched = [*rep.targeted, *(n.rsplit(".", 1)[0] for n in rep.targeted_parameters)]
        findings: list[str] = []

        def explicit(name: str) -> bool:  # named in full or by a qualified suffix (`mlp.gate`)
            return any(name == t or ("." in t and name.endswith("." + t)) for t in named)

        output = special.get("output")
        if output and output in matched and not (named and any(output == t or output.endswith("." + t) for t in named)):
            findings.append(f"the output layer {output} (LoRA on the vocabulary projection: large, and tied to the "
                            "input embeddings in many models)")
        heads = [n for n in matched for h in special.get("heads", ()) if n == h or n.startswith(h + ".")]
        if heads and not any(explicit(n) or n.rsplit(".", 1)[-1] in named for n in heads):
            findings.append(f"the task head {_fold_list(heads)} (a randomly initialised head gets a low-rank update "
                            "instead of being trained in full: set task_type so PEFT puts it in modules_to_save)")
        routers = [n for n in matched if n in special.get("routers", ())]
        if routers and not any(explicit(n) for n in routers):
            findings.append(f"the MoE router {_fold_list(routers)} (the expert gate, not the MLP's gate_proj)")
        towers = [n for n in matched if _in_tower(n)]
        if towers and len(towers) < len(matched):
            mentioned = regex is not None and any(seg in regex for seg in _TOWER_SEGMENTS)
            if not mentioned:
                findings.append(f"{len(towers)} module{'s' if len(towers) != 1 else ''} of the vision/audio tower "
                                f"({_fold_list(towers)}) besides the language model")
        for finding in findings:
            self.diag(rep, "LORA252", f"{what} also matches {finding} ({self.provenance(rep)})",
                      site.span_of("target_modules"))

    def _compare_static(self, rep: SiteReport) -> None:
        """LORA253: the knowledge base's prediction against PEFT's count."""
        advice = getattr(rep.site.model, "advice", None) if rep.site.model is not None else None
        if advice is None or isinstance(advice, VerifiedAdvice):
            return
        predicted = (getattr(advice, "trainable_params", None), getattr(advice, "total_params", None))
        if not all(isinstance(v, int) for v in predicted):
            return
        result = getattr(advice, "result", None)
        if result is not None and not result.exact:
            return  # the static count said it was approximate (shapes at defaults, an unmodelled wrapping)
        if predicted != (rep.trainable, rep.total):
            self.diag(rep, "LORA253", (
                f"loralint's knowledge base predicts {predicted[0]:,} trainable of {predicted[1]:,} parameters, "
                f"PEFT counts {rep.trainable:,} of {rep.total:,}: this is a bug in loralint's knowledge base for "
                f"{rep.model_type or rep.model_id}, not in your configuration; please report it "
                f"({self.provenance(rep)})"
            ))

    # -- real tensors ----------------------------------------------------------------------------
    def measure(self, job: _Job) -> None:
        rep = job.report
        torch = self.stack.torch
        target = self.device
        if target in ("auto", "cuda"):
            if not torch.cuda.is_available():
                note = ("no CUDA device here: the GPU memory measurement was skipped (modules and counts come from "
                        "the meta device)")
                rep.device = {"device": target, "skipped": note}
                if note not in self.report.notes:
                    self.report.notes.append(note)
                return
            target = "cuda"
        try:
            rep.device = measure_step(self, job, target)
        except Exception as exc:  # out of memory, a missing kernel, bitsandbytes absent: say so, go on
            if os.environ.get("LORALINT_DEBUG") == "2":
                raise
            rep.device = {"device": target, "error": f"{type(exc).__name__}: {_short(exc)}"}
            rep.notes.append(f"the {target} step failed: {type(exc).__name__}: {_short(exc)}")
        finally:
            if target == "cuda":
                import gc

                gc.collect()  # the step's model, activations and gradients, before the next build
                torch.cuda.empty_cache()


class _BuildRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------------------------
# Planning helpers


def lora_kwargs(site: ConfigSite) -> tuple[dict[str, Any], list[str], list[str]]:
    """(kwargs, unknown, dropped): the LoraConfig arguments in force (set, or the origin's
    defaults), the relevant ones that are not statically known, and the irrelevant unknown ones
    left to PEFT's default."""
    from loralint.checks._util import effective
    from loralint.peft_fields import LORA_FIELDS

    irrelevant = {"lora_dropout", "megatron_core", "runtime_config"}
    kwargs: dict[str, Any] = {}
    unknown: list[str] = []
    dropped: list[str] = []
    for name in sorted({*site.fields, *site.defaults}):
        if name not in LORA_FIELDS or name in _METADATA_FIELDS:
            continue
        value, known = effective(site, name)
        if not known:
            if name in irrelevant and not (name == "lora_dropout" and site.fields.get("target_parameters")):
                dropped.append(name)
                continue
            unknown.append(name)
            continue
        kwargs[name] = _plain(value)
    return kwargs, unknown, dropped


def _plain(value: Any) -> Any:
    """Field values as a user would pass them: tuples stay lists, sets stay sets."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _model_id(site: ConfigSite, options, settings) -> str | None:
    if getattr(options, "model", None):
        return options.model
    if getattr(settings, "model", None):
        return settings.model
    if site.base_model is not None and isinstance(site.base_model.value, str):
        return site.base_model.value
    return None


def _model_span(site: ConfigSite) -> Span:
    """Findings about the base model point at its id in the source when it is there."""
    base = site.base_model
    if base is not None and base.span.path == site.path and isinstance(base.value, str):
        model = getattr(site.model, "source", "") or ""
        if not model.startswith(("--model", "settings")):
            return base.span
    return site.span


def _where(site: ConfigSite) -> str:
    return f"{site.path}:{site.span.line}"


def choose_model_class(stack: Stack, hinted: str | None, task: str | None, config: dict[str, Any]) -> tuple[str, str]:
    """The transformers class to build: the one the script loads, else the one the task implies.
    Returns (class name, a note when the choice needed a guess)."""
    from transformers.models.auto import modeling_auto

    transformers = stack.transformers
    model_type = config.get("model_type")
    causal = modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    vision = modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    def causal_or_vision() -> str:
        if model_type in vision and (model_type not in causal or "vision_config" in config):
            return "AutoModelForImageTextToText"
        return "AutoModelForCausalLM"

    if hinted in _UNSLOTH_CLASSES:
        if _UNSLOTH_CLASSES[hinted] == "vision":
            return causal_or_vision(), ""
        return "AutoModelForCausalLM", ""
    if hinted and _MODEL_CLASS.match(hinted) and _exists(transformers, hinted):
        if hinted == "AutoModelForCausalLM" and model_type not in causal and model_type in vision:
            return "AutoModelForImageTextToText", (
                f"transformers has no AutoModelForCausalLM for model_type {model_type!r}; built "
                "AutoModelForImageTextToText instead")
        return hinted, ""
    if task == "CAUSAL_LM":
        return causal_or_vision(), ""
    if task in _TASK_CLASSES:
        return _TASK_CLASSES[task], ""
    architectures = config.get("architectures")
    if (isinstance(architectures, list) and architectures and isinstance(architectures[0], str)
            and _exists(transformers, architectures[0])):
            return architectures[0], (f"no task_type and no model class in the source: built {architectures[0]}, "
                                      "the class config.json names")
    if model_type in causal:
        return "AutoModelForCausalLM", "no task_type and no model class in the source: built AutoModelForCausalLM"
    return "AutoModel", "no task_type and no model class in the source: built AutoModel"


def _exists(transformers, name: str) -> bool:
    try:
        obj = getattr(transformers, name)
    except (AttributeError, ImportError, RuntimeError):
        return False
    return hasattr(obj, "from_config") or hasattr(obj, "_from_config")


def _needs_remote_code(stack: Stack, config: dict[str, Any]) -> bool:
    """True when transformers' own classes cannot build this config: an unknown model_type (the
    model repository's code would define it, through auto_map)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    return not (isinstance(model_type, str) and model_type in CONFIG_MAPPING)


def _remote_reason(stack: Stack, config: dict[str, Any]) -> str:
    model_type = config.get("model_type")
    auto_map = config.get("auto_map")
    version = stack.transformers.__version__
    if isinstance(auto_map, dict) and auto_map:
        files = sorted({str(v).split(".", 1)[0] if isinstance(v, str) else str(v[0]).split(".", 1)[0]
                        for v in auto_map.values() if v})
        return (f"model_type {model_type!r} is defined by code in the model repository (auto_map: "
                f"{', '.join(f + '.py' for f in files)}); loralint does not import or run it without "
                "--trust-remote-code")
    if not isinstance(model_type, str):
        return "its config.json has no model_type, so transformers cannot tell which architecture to build"
    return (f"transformers {version} does not know model_type {model_type!r} and config.json has no auto_map: "
            "it may need a newer transformers, or the repository's code (--trust-remote-code)")


def _remote_location(resolution, online: bool):
    source = getattr(resolution, "source", "") or ""
    detail = getattr(resolution, "detail", "") or ""
    if ("local folder" in source or "Hugging Face cache" in source) and detail:
        return str(Path(detail).parent)
    if "Hugging Face Hub" in source and online:
        return resolution.model_id
    return None


def _config_from_dict(transformers, data: dict[str, Any]):
    """A PretrainedConfig from config.json's dict, with transformers' own class for its model_type
    (never AutoConfig.from_pretrained on a path: that could read the repository's code)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    data = dict(data)
    model_type = data.pop("model_type")
    data.pop("auto_map", None)  # the built-in class serves; auto_map would name repository code
    return CONFIG_MAPPING[model_type].from_dict(data)


# --------------------------------------------------------------------------------------------
# Observing the PEFT model


def fold(name: str) -> tuple[str, int | None]:
    """`model.layers.3.mlp.experts.7.w1` → (`model.layers.{i}.mlp.experts.{j}.w1`, 3)."""
    counter = iter(_PLACEHOLDERS)
    first: list[int] = []

    def sub(match: re.Match) -> str:
        if not first:
            first.append(int(match.group(0)))
        return "{" + next(counter, "n") + "}"

    return _INDEX.sub(sub, name), (first[0] if first else None)


def _group(groups: dict[str, ModuleGroup], name: str) -> ModuleGroup:
    pattern, index = fold(name)
    group = groups.get(pattern)
    if group is None:
        group = groups[pattern] = ModuleGroup(pattern)
    group.count += 1
    if index is not None and index not in group.indices:
        group.indices.append(index)
    return group


def _describe_layer(group: ModuleGroup, layer, torch, parameter: bool = False) -> None:
    base = layer.get_base_layer()
    if not parameter:
        group.kind = type(base).__name__
    in_f, out_f = getattr(layer, "in_features", None), getattr(layer, "out_features", None)
    if isinstance(in_f, int) and isinstance(out_f, int) and group.in_features is None:
        group.in_features, group.out_features = in_f, out_f
    r = layer.r.get(ADAPTER) if isinstance(getattr(layer, "r", None), dict) else None
    if r is not None and r not in group.ranks:
        group.ranks.append(r)
    scaling = layer.scaling.get(ADAPTER) if isinstance(getattr(layer, "scaling", None), dict) else None
    if isinstance(scaling, (int, float)):
        scaling = float(scaling)
        if scaling not in group.scalings:
            group.scalings.append(scaling)
    for pname, param in layer.named_parameters():
        if "lora_" in pname and ADAPTER in pname.split(".") and not pname.startswith("base_layer."):
            group.lora_params += param.numel()


def _special_modules(stack: Stack, model) -> dict[str, Any]:
    """Names, in the model PEFT sees, of modules that are rarely meant as LoRA targets."""
    torch = stack.torch
    names = {id(m): n for n, m in model.named_modules()}
    out: dict[str, Any] = {"output": None, "heads": [], "routers": set()}
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        try:
            module = get_out()
        except Exception:  # noqa: BLE001 - some models raise NotImplementedError
            module = None
        if module is not None:
            out["output"] = names.get(id(module))
    out["heads"] = [h for h in _HEAD_NAMES if isinstance(getattr(model, h, None), torch.nn.Module)]
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gate", "router"):
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            if hasattr(parent, "experts"):
                out["routers"].add(name)
    return out


def _in_tower(name: str) -> bool:
    return any(seg in _TOWER_SEGMENTS for seg in name.split("."))


def _fold_list(names: list[str], limit: int = 3) -> str:
    groups: dict[str, int] = {}
    for n in names:
        pattern, _ = fold(n)
        groups[pattern] = groups.get(pattern, 0) + 1
    items = [f"{p} × {c}" if c > 1 else p for p, c in groups.items()]
    return ", ".join(items[:limit]) + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


def _ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → "0-2, 5, 7-8"."""
    values = sorted(set(indices))
    parts: list[str] = []
    start = prev = values[0]
    for v in values[1:]:
        if v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = v
    parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Errors and warnings


_PHRASES = (
    ("target module", "target_modules"),
    ("target_modules", "target_modules"),
    ("requested bias", "bias"),
    ("dropout probability", "lora_dropout"),
    ("`r` should be", "r"),
    ("unknown initialization", "init_lora_weights"),
    ("fan_in_fan_out", "fan_in_fan_out"),
    ("rank_pattern", "rank_pattern"),
    ("alpha_pattern", "alpha_pattern"),
    ("modules_to_save", "modules_to_save"),
    ("exclude_modules", "exclude_modules"),
    ("layers_to_transform", "layers_to_transform"),
)
_BACKTICKED = re.compile(r"`(\w+)`")


def _span_for_error(site: ConfigSite, message: str) -> Span:
    """Point at the argument the message is about, when one is named and set; else the call."""
    for name in _BACKTICKED.findall(message):
        if name in site.fields:
            return site.fields[name].span
    lower = message.lower()
    for phrase, name in _PHRASES:
        if phrase in lower and name in site.fields:
            return site.fields[name].span
    return site.span


_PATTERN_WARNING = re.compile(r"The following (rank_pattern|alpha_pattern) keys did not match any targeted module.*?(\[.*\])")


def _own_pattern_keys(message: str, kwargs: dict[str, Any]) -> bool:
    """True for PEFT's unmatched-pattern-key warning when none of the keys is one the user wrote."""
    import ast

    match = _PATTERN_WARNING.search(message)
    if not match:
        return False
    try:
        keys = ast.literal_eval(match.group(2))
    except (ValueError, SyntaxError):
        return False
    written = kwargs.get(match.group(1)) or {}
    return isinstance(keys, list) and not any(k in written for k in keys)


def _short(exc: BaseException | str, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_meta_artifact(text: str) -> bool:
    lower = text.lower()
    return "meta tensor" in lower or "meta device" in lower or "on device meta" in lower or "'meta'" in lower


@contextmanager
def _capture_warnings() -> Iterator[list[tuple[str, str]]]:
    """Record PEFT's warnings (warnings.warn from peft's own files, and the `peft` logger) instead
    of printing them; other libraries' deprecation chatter is dropped."""
    caught: list[tuple[str, str]] = []
    handler = _ListHandler(caught)
    logger = logging.getLogger("peft")
    logger.addHandler(handler)
    old_propagate = logger.propagate
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield caught
        for w in records:
            if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
                continue
            if not _from_peft(w.filename):
                continue
            caught.append((w.category.__name__, " ".join(str(w.message).split())))
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate


def _from_peft(filename: str) -> bool:
    parts = Path(filename).parts
    return "peft" in parts


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[tuple[str, str]]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append((record.levelname, " ".join(record.getMessage().split())))


@contextmanager
def _quiet_transformers(stack: Stack) -> Iterator[None]:
    """transformers logs about configs while building (unused keys, attention implementations):
    not PEFT's, not the user's; keep stderr clean for the run."""
    tlog = stack.transformers.utils.logging
    level = tlog.get_verbosity()
    tlog.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        tlog.set_verbosity(level)


# --------------------------------------------------------------------------------------------
# Progress


class _Bar:
    """A rich progress bar on stderr (a terminal only); silent otherwise."""

    def __init__(self, progress: Any = None) -> None:
        self.progress = progress
        self.task = None

    def start(self, total: int) -> None:
        if self.progress is not None and total:
            self.task = self.progress.add_task("verifying", total=total)

    def describe(self, text: str) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, description=text)

    def advance(self) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task)


@contextmanager
def _progress(enabled: bool) -> Iterator[_Bar]:
    if not enabled or not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        yield _Bar()
        return
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:  # rich is part of loralint[verify]; without it, no bar
        yield _Bar()
        return
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    )
    with progress:
        yield _Bar(progress)


# --------------------------------------------------------------------------------------------
# One training step on a real device (--device)


def measure_step(verifier: _Verifier, job: _Job, device: str) -> dict[str, Any]:
    """Random weights on `device`, the same LoraConfig, one forward+backward at --seq-len and
    --batch-size; on CUDA the peak memory (torch.cuda.max_memory_allocated)."""
    torch, peft = verifier.stack.torch, verifier.stack.peft
    site = job.report.site
    quant = site.hints.quantization if site.hints.quantization in ("4bit", "8bit") else None
    bnb_config = site.hints.bnb_config or {}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.empty_cache()
        base_memory = torch.cuda.memory_allocated()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        base_memory = 0
        dtype = torch.float32
    if quant:
        compute = _torch_dtype(torch, bnb_config.get("bnb_4bit_compute_dtype")) or dtype
        dtype = compute
    start = time.perf_counter()
    with _quiet_transformers(verifier.stack):
        model = verifier.build(job, device=device, dtype=dtype)
        if quant:
            if device != "cuda":
                raise RuntimeError(f"{quant} quantization (bitsandbytes) needs a CUDA device")
            _quantize_bnb(verifier.stack, model, quant, bnb_config, dtype)
        weights = (torch.cuda.memory_allocated() - base_memory) if device == "cuda" else None
        kwargs = dict(job.kwargs)
        init = kwargs.get("init_lora_weights")
        if isinstance(init, str) and init.lower().startswith(_DATA_DEPENDENT_INITS):
            kwargs["init_lora_weights"] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peft_model = peft.get_peft_model(model, peft.LoraConfig(**kwargs))
        peft_model.train()
        batch = _dummy_batch(torch, peft_model, job.class_name, device, verifier.batch_size, verifier.seq_len)
        loss = _loss(torch, peft_model(**batch))
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "device": device if device != "cuda" else f"cuda ({torch.cuda.get_device_name()})",
        "dtype": str(dtype).replace("torch.", ""),
        "quantization": quant,
        "seq_len": verifier.seq_len,
        "batch_size": verifier.batch_size,
        "seconds": round(seconds, 3),
        "loss_finite": bool(torch.isfinite(loss.detach()).item()),
    }
    if device == "cuda":
        out["weights_bytes"] = int(weights or 0)
        out["peak_bytes"] = int(torch.cuda.max_memory_allocated() - base_memory)
        out["note"] = "one forward+backward step, no optimizer state, no gradient checkpointing"
    del peft_model, model, loss, batch
    return out


def _torch_dtype(torch, value: Any):
    if value is None:
        return None
    name = str(value).replace("torch.", "")
    found = getattr(torch, name, None)
    return found if isinstance(found, torch.dtype) else None


def _quantize_bnb(stack: Stack, model, quant: str, bnb_config: dict[str, Any], compute_dtype) -> None:
    """Swap every nn.Linear but the output layer for a bitsandbytes layer holding the same random
    weights, as from_pretrained(quantization_config=...) would (transformers' bnb integration),
    and mark the model as loaded in k-bit so PEFT dispatches its bnb LoRA layers."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise RuntimeError("QLoRA measurement needs bitsandbytes (pip install bitsandbytes)") from None
    torch = stack.torch
    skip = set(bnb_config.get("llm_int8_skip_modules") or [])
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in list(model.named_modules()):
        if not isinstance(module, torch.nn.Linear) or module is output or name.rsplit(".", 1)[-1] in skip:
            continue
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        has_bias = module.bias is not None
        if quant == "4bit":
            new = bnb.nn.Linear4bit(
                module.in_features, module.out_features, bias=has_bias, compute_dtype=compute_dtype,
                compress_statistics=bool(bnb_config.get("bnb_4bit_use_double_quant", False)),
                quant_type=str(bnb_config.get("bnb_4bit_quant_type", "fp4")), device="meta",
            )
            new.weight = bnb.nn.Params4bit(module.weight.data.to("cpu"), requires_grad=False,
                                           quant_type=str(bnb_config.get("bnb_4bit_quant_type", "fp4")))
        else:
            new = bnb.nn.Linear8bitLt(module.in_features, module.out_features, bias=has_bias,
                                      has_fp16_weights=False, threshold=float(bnb_config.get("llm_int8_threshold", 6.0)),
                                      device="meta")
            new.weight = bnb.nn.Int8Params(module.weight.data.to("cpu"), requires_grad=False, has_fp16_weights=False)
        if has_bias:
            new.bias = torch.nn.Parameter(module.bias.data, requires_grad=False)
        setattr(parent, name.rsplit(".", 1)[-1], new.to("cuda"))
        del module
    model.is_loaded_in_4bit = quant == "4bit"
    model.is_loaded_in_8bit = quant == "8bit"
    torch.cuda.empty_cache()


def _dummy_batch(torch, peft_model, cls: str, device: str, batch_size: int, seq_len: int) -> dict[str, Any]:
    config = peft_model.get_base_model().config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = int(getattr(text, "vocab_size", None) or 1000)
    ids = torch.randint(0, max(vocab - 1, 1), (batch_size, seq_len), device=device)
    batch: dict[str, Any] = {"input_ids": ids}
    if cls.endswith(("SequenceClassification",)):
        batch["labels"] = torch.zeros(batch_size, dtype=torch.long, device=device)
    elif cls.endswith("TokenClassification"):
        batch["labels"] = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
    elif cls.endswith("QuestionAnswering"):
        batch["start_positions"] = torch.zeros(batch_size, dtype=torch.long, device=device)
        batch["end_positions"] = torch.zeros(batch_size, dtype=torch.long, device=device)
    elif cls != "AutoModel" and not cls.endswith("Model"):
        batch["labels"] = ids
        if getattr(config, "is_encoder_decoder", False):
            batch["decoder_input_ids"] = ids  # not every config names a decoder_start_token_id
    return batch



def _loss(torch, output):
    loss = getattr(output, "loss", None)
    if loss is not None:
        return loss
    first = output[0] if isinstance(output, (tuple, list)) else next(iter(output.values()))
    return first.float().mean()


# --------------------------------------------------------------------------------------------
# Output of `loralint verify`


def render_json(report: VerifyReport, result) -> str:
    from loralint.report.json import diagnostic_model

    data = report.as_json()
    for config, rep in zip(data["configs"], report.sites):
        config["diagnostics"] = [diagnostic_model(d).model_dump() for d in rep.diagnostics]
    out = {
        "version": data["version"],
        "files_checked": result.files_checked,
        "versions": data["versions"],
        "device": data["device"],
        "configs": data["configs"],
        "diagnostics": [diagnostic_model(d).model_dump() for d in result.diagnostics],
        "notes": data["notes"],
        "timings": data["timings"],
    }
    return json.dumps(out, indent=2)


def render_text(report: VerifyReport, result, colour: bool = False) -> str:
    import click

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if colour else text

    colours = {"error": "red", "warning": "yellow", "info": "cyan"}
    status_colour = {"verified": "green", "rejected": "red", "refused": "yellow", "unresolved": "cyan", "skipped": "cyan"}
    lines: list[str] = []
    shown: set[int] = set()
    for rep in report.sites:
        s = rep.site
        head = f"{s.path}:{s.span.line}:{s.span.column}"
        lines.append(f"{style(head, bold=True)}  {s.origin}  {style(rep.status, fg=status_colour[rep.status], bold=True)}")
        if rep.model_id or rep.model_type:
            where = f"{rep.model_id or '?'}"
            if rep.model_type:
                where += f": {rep.model_type}"
            if rep.resolved_from:
                where += f" from {rep.resolved_from}"
            if rep.model_class and rep.status in ("verified", "rejected"):
                where += f", built as {rep.model_class}"
            lines.append(label("base model") + where)
        if rep.status == "verified":
            groups = [*rep.groups, *rep.parameter_groups]
            if groups:
                width = max(len(g.pattern) for g in groups)
                for n, g in enumerate(groups):
                    lines.append(label("targets" if n == 0 else "") + _group_line(g, width))
            if rep.modules_to_save:
                for n, g in enumerate(rep.modules_to_save):
                    extra = f"  {g.kind}, {g.lora_params:,} parameters trained in full"
                    lines.append(label("saved" if n == 0 else "") + g.pattern + (f" × {g.count}" if g.count > 1 else "") + extra)
            pct = f" ({rep.percent:.4f}%)" if rep.percent is not None else ""
            lines.append(label("trainable") + f"{rep.trainable:,} of {rep.total:,} parameters{pct}, counted by PEFT")
            if rep.scaling is not None:
                lines.append(label("scaling") + _number(rep.scaling))
            else:
                lines.append(label("scaling") + "per module (see targets)")
            if rep.device:
                lines.append(label("device") + _device_line(rep.device))
        elif rep.reason and not rep.diagnostics:
            lines.append(label("why") + rep.reason)
        for note in rep.notes:
            if note != rep.reason:
                lines.append(label("note") + note)
        for d in rep.diagnostics:
            shown.add(id(d))
            lines.append("  " + _diag_line(d, style, colours))
        lines.append("")
    for d in result.diagnostics:
        if id(d) not in shown and d.code.startswith("LORA9"):
            lines.append(_diag_line(d, style, colours))
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
            + (f"; one training step each on {report.device}" if report.device != "meta" else "") + "."
        )
    for note in report.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


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
    parts = [f"{g.pattern:<{width}}", f"{count:>6}", index, " ".join(x for x in (g.kind, g.shape) if x), rank]
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


def _diag_line(d: Diagnostic, style, colours: dict[str, str]) -> str:
    s = d.span
    return (f"{style(f'{s.path}:{s.line}:{s.column}:', bold=True)} {style(d.code, fg=colours[d.severity], bold=True)} "
            f"{style(f'[{d.severity}]', fg=colours[d.severity])} {d.message}")
