"""PEFT's transformers-5 MoE conversion and MoE routers: what loralint says statically, checked against
real PEFT on tiny configs (meta device)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from helpers import run_cli

pytestmark = pytest.mark.verify


def real_peft(model_dir: Path, **lora):
    """PEFT's own answer: (trainable, total, targeted module names, targeted parameter names)."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    config = transformers.AutoConfig.from_pretrained(str(model_dir))
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pm = get_peft_model(model, LoraConfig(**lora), low_cpu_mem_usage=True)
    trainable, total = pm.get_nb_trainable_parameters()
    return trainable, total, set(pm.base_model.targeted_module_names), set(pm.base_model.targeted_parameter_names)


def check_json(path: Path, *args: str) -> dict:
    run = run_cli(["check", "--output-format", "json", "--no-cache", *args, path.name], cwd=path.parent)
    assert run.exit_code in (0, 1), run.stdout + run.stderr
    return json.loads(run.stdout)


def messages(report: dict, code: str) -> list[str]:
    return [d["message"] for d in report["diagnostics"] if d["code"] == code]


def test_mixtral_w1_w2_w3_static_equals_peft_and_rank_doubles(tiny_model, script):
    model = tiny_model("mixtral")
    path = script(model, "LoraConfig(r=16, lora_alpha=32, target_modules=['w1', 'w2', 'w3'], task_type='CAUSAL_LM')")
    static = check_json(path)
    verified = check_json(path, "--verify")
    trainable, total, modules, params = real_peft(model, r=16, lora_alpha=32, target_modules=["w1", "w2", "w3"],
                                                  task_type="CAUSAL_LM")
    assert not modules and params == {f"model.layers.{i}.mlp.experts.{p}" for i in (0, 1) for p in ("gate_up_proj", "down_proj")}
    for report in (static, verified):
        assert "LORA201" not in [d["code"] for d in report["diagnostics"]], report["diagnostics"]
        assert (report["configs"][0]["trainable_params"], report["configs"][0]["total_params"]) == (trainable, total)
    assert static["configs"][0]["counted_by"] == "loralint" and verified["configs"][0]["counted_by"] == "peft"
    assert not [d for d in verified["diagnostics"] if d["severity"] == "error"]
    # PEFT's own rank/alpha patterns for the fused pair are not passed on as the user's warnings
    assert not messages(verified, "LORA251")
    run = run_cli(["verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    groups = {g["pattern"]: g for g in json.loads(run.stdout)["configs"][0]["matched_parameters"]}
    assert groups["model.layers.{i}.mlp.experts.gate_up_proj"]["r"] == 32  # w1 + w3 fused: r doubled ...
    assert groups["model.layers.{i}.mlp.experts.down_proj"]["r"] == 16
    assert {g["scaling"] for g in groups.values()} == {2.0}  # ... and lora_alpha with it: same scaling


def test_deepseek_v3_dense_layers_and_shared_experts_stay_frozen(tiny_model, script):
    model = tiny_model("deepseek_v3")  # first_k_dense_replace=1: layer 0 dense, layers 1-2 MoE with a shared expert
    path = script(model, "LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', task_type='CAUSAL_LM')")
    report = check_json(path)
    trainable, total, modules, params = real_peft(model, r=8, lora_alpha=16, target_modules="all-linear",
                                                  task_type="CAUSAL_LM")
    assert (report["configs"][0]["trainable_params"], report["configs"][0]["total_params"]) == (trainable, total)
    # the claims of the message, against PEFT
    assert not [n for n in modules if ".mlp." in n]  # no dense MLP, no shared expert
    assert "model.layers.1.mlp.gate.weight" in params and "model.layers.0.mlp.gate_proj.weight" not in params
    [frozen] = messages(report, "LORA215")
    assert "the dense MLP of layer 0 (mlp.{down_proj,gate_proj,up_proj}, first_k_dense_replace=1)" in frozen
    assert "the shared experts of layers 1, 2 (mlp.shared_experts.{down_proj,gate_proj,up_proj})" in frozen
    [router] = messages(report, "LORA211")
    assert "model.layers.{i}.mlp.gate.weight" in router
    # the suggested target_parameters do reach them, as PEFT applies them
    suggested = frozen.split("add target_parameters=", 1)[1]
    extra = json.loads(suggested.replace("'", '"'))
    _, _, _, more = real_peft(model, r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM",
                              target_parameters=extra)
    assert {n for n in more - params} == {
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
        *(f"model.layers.{i}.mlp.shared_experts.{p}.weight" for i in (1, 2) for p in ("gate_proj", "up_proj", "down_proj"))}
    # verify sees the router too, and contradicts nothing static said
    verified = check_json(path, "--verify")
    assert messages(verified, "LORA252") and not messages(verified, "LORA253")


def test_qwen3_moe_all_linear_router_static_as_verify_sees_it(tiny_model, script):
    model = tiny_model("qwen3_moe")
    path = script(model, "LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', task_type='CAUSAL_LM')")
    static = check_json(path)
    _, _, _, params = real_peft(model, r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    assert {"model.layers.0.mlp.gate.weight", "model.layers.1.mlp.gate.weight"} <= params
    [router] = messages(static, "LORA211")
    assert "model.layers.{i}.mlp.gate.weight" in router
    verified = check_json(path, "--verify")
    assert any("MoE router" in m for m in messages(verified, "LORA252"))


def test_gpt_oss_all_linear_leaves_the_fused_experts_frozen(tiny_model, script):
    model = tiny_model("gpt_oss")  # not in PEFT's conversion table: nothing rewrites the targets
    path = script(model, "LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', task_type='CAUSAL_LM')")
    report = check_json(path)
    trainable, total, modules, params = real_peft(model, r=8, lora_alpha=16, target_modules="all-linear",
                                                  task_type="CAUSAL_LM")
    assert not params and not [n for n in modules if ".mlp." in n]
    assert (report["configs"][0]["trainable_params"], report["configs"][0]["total_params"]) == (trainable, total)
    [experts] = messages(report, "LORA215")
    assert "target_parameters=['mlp.experts.down_proj', 'mlp.experts.gate_up_proj']" in experts
    assert "PEFT converts those" not in experts
    assert not messages(report, "LORA211")  # its router is not a Linear and nothing adds its weight
    listing = json.loads(run_cli(["modules", "--output-format", "json", str(model)]).stdout)
    assert {p["name"]: p["all_linear"] for p in listing["parameters"]} == {
        "model.layers.{i}.mlp.experts.gate_up_proj": False, "model.layers.{i}.mlp.experts.down_proj": False}
