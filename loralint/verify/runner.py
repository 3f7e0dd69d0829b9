"""The verify stage: plan, build on the meta device, apply PEFT, observe, compare with the static count."""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loralint.advice import SAVED_ADAPTER_ORIGIN
from loralint.engine import UsageError
from loralint.sites import ConfigSite, Diagnostic, Span, format_value
from loralint.verify.capture import (
    _Bar,
    _capture_warnings,
    _is_meta_artifact,
    _progress,
    _quiet_transformers,
)
from loralint.verify.device import cpu_refusal, measure_step
from loralint.verify.model import (
    _TOWER_SEGMENTS,
    DEVICES,
    _config_from_dict,
    _describe_layer,
    _fold_list,
    _group,
    _in_tower,
    _needs_remote_code,
    _remote_location,
    _remote_reason,
    _special_modules,
    choose_model_class,
)
from loralint.verify.plan import (
    _DATA_DEPENDENT_INITS,
    _NOT_PEFT_ORIGINS,
    _model_id,
    _model_span,
    _own_pattern_keys,
    _short,
    _span_for_error,
    _where,
    lora_kwargs,
)
from loralint.verify.report import ModuleGroup, SiteReport, VerifiedAdvice, VerifyReport
from loralint.verify.stack import Stack, load_stack, version_differences, version_note


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
    note = version_note(stack.versions)
    if note:  # said once per run: it explains any LORA253 below
        report.notes.append(note)
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
                config = getattr(model, "config", None)  # its sizes bound the memory of a --device step
                del model
                if self.device != "meta" and rep.status == "verified":
                    self.measure(job, config)
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
                if self.options.online:
                    from loralint import hub

                    why = hub.failure(model_id.strip())
                    where += f"; not from the Hub either: {why}" if why else ""
                else:
                    where += "; --online allows fetching its config.json from the Hub"
                rep.reason = f"cannot read the config.json of base model {model_id!r} ({where})"
            self.diag(rep, "LORA254", f"not verified: {rep.reason}", _model_span(site))
            return None
        if site.model is None:
            site.model = resolution
        config = dict(resolution.config)
        rep.resolved_from = resolution.origin
        rep.model_type = config.get("model_type") if isinstance(config.get("model_type"), str) else None
        from loralint.knowledge.models import config_refusal

        refused = config_refusal(config)  # before building anything: 10**9 layers would take the machine
        if refused is not None:
            code, rep.reason = refused
            rep.status = "unresolved" if code == "LORA254" else "skipped"
            self.diag(rep, code, f"not verified: {rep.reason}", _model_span(site))
            return None

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
        rep.rewritten_targets = _rewritten_targets(rep.site, peft_model)
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
            counts = (f"loralint's knowledge base predicts {predicted[0]:,} trainable of {predicted[1]:,} parameters, "
                      f"PEFT counts {rep.trainable:,} of {rep.total:,}")
            where = rep.model_type or rep.model_id
            differences = version_differences(self.stack.versions)
            if differences:
                installed = " and ".join(f"{lib} {have}" for lib, have, _ in differences)
                recorded = " and ".join(f"{lib} {want}" for lib, _, want in differences)
                verb = "is" if len(differences) == 1 else "are"
                why = (f"the knowledge base describes {recorded} and {installed} {verb} installed: the difference is "
                       f"likely the version, not your configuration; if it persists with {recorded}, please report "
                       f"it as a bug in loralint's knowledge base for {where}")
            else:
                why = (f"this is a bug in loralint's knowledge base for {where}, not in your configuration; "
                       "please report it")
            self.diag(rep, "LORA253", f"{counts}: {why} ({self.provenance(rep)})")

    # -- real tensors ----------------------------------------------------------------------------
    def measure(self, job: _Job, config: Any = None) -> None:
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
        if target == "cpu":
            refused = cpu_refusal(self, job, config)
            if refused is not None:  # said before any tensor is built, instead of being killed
                rep.device = refused
                self.diag(rep, "LORA256", refused["skipped"])
                return
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


def _rewritten_targets(site: ConfigSite, peft_model) -> list[str]:
    """The user's target_modules entries missing from PEFT's config after get_peft_model: PEFT's MoE conversion
    (peft/utils/transformers_weight_conversion.py: _convert_peft_config_moe, run by BaseTuner.inject_adapter under
    transformers 5) moves them to target_parameters in place."""
    field = site.get("target_modules")
    given = field.value if field is not None else None
    if not isinstance(given, (list, tuple, set, frozenset)):
        return []
    config = getattr(peft_model, "peft_config", {}).get("default")
    final = getattr(config, "target_modules", None)
    if final is None or isinstance(final, str):
        return []
    from loralint.knowledge.models import peft_facts

    # only the v4 expert/router names the conversion knows (a list of 20+ entries is also condensed, by
    # _find_minimal_target_modules: an entry dropped there was not rewritten into parameters)
    old = {k for mapping in peft_facts().get("moe_target_module_mapping", {}).values() for k in mapping}
    final = set(final)
    return [t for t in given if isinstance(t, str) and t not in final
            and any(t == o or t.endswith("." + o) for o in old)]


class _BuildRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
