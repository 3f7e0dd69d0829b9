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

Modules, in pipeline order: `stack` (the imports), `plan` (LoraConfig kwargs, spans), `model`
(class choice, remote code, folding), `capture` (warnings, progress), `runner` (the stage),
`device` (--device), `report` (what was observed), `render` (output).
"""

from loralint.verify.render import render_json, render_text
from loralint.verify.report import SiteReport, VerifiedAdvice, VerifyReport
from loralint.verify.runner import verify_sites, verify_stage
from loralint.verify.stack import INSTALL_HINT, VerifyUnavailable, load_stack

__all__ = [
    "INSTALL_HINT",
    "SiteReport",
    "VerifiedAdvice",
    "VerifyReport",
    "VerifyUnavailable",
    "load_stack",
    "render_json",
    "render_text",
    "verify_sites",
    "verify_stage",
]
