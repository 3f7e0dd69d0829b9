"""LORA2xx against real architectures: the issue's "done means" and each rule's edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from helpers import run_cli

LLAMA_3B = "meta-llama/Llama-3.2-3B"


def check(tmp_path, source: str, *args: str):
    (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
    return run_cli(["check", "--output-format", "json", "--no-cache", *args, "train.py"], cwd=tmp_path)


def script(model: str, config: str, loader: str = "AutoModelForCausalLM") -> str:
    return f"""
    from peft import LoraConfig, get_peft_model
    from transformers import {loader}
    model = {loader}.from_pretrained("{model}")
    model = get_peft_model(model, LoraConfig({config}))
    """


def test_q_proj_on_gpt2_fails_naming_c_attn_and_passes_on_llama(tmp_path):
    bad = check(tmp_path, script("gpt2", "r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], fan_in_fan_out=True, task_type='CAUSAL_LM'"))
    assert bad.exit_code == 1
    # one mistake, one error: the list matches nothing (LORA202), not also a LORA201 per entry
    [lora202] = [d for d in bad.json["diagnostics"] if d["code"] in ("LORA201", "LORA202")]
    assert lora202["code"] == "LORA202"
    assert "gpt2 has c_attn, c_proj, c_fc (Conv1D); did you mean c_attn (for q_proj, v_proj)?" in lora202["message"]
    assert (lora202["line"], lora202["column"], lora202["end_column"]) == (4, 77, 97)
    # with one entry right, the wrong one is its own finding, at the entry
    partly = check(tmp_path, script("gpt2", "r=8, lora_alpha=16, target_modules=['c_attn', 'v_proj'], fan_in_fan_out=True, task_type='CAUSAL_LM'"))
    [lora201] = [d for d in partly.json["diagnostics"] if d["code"] in ("LORA201", "LORA202")]
    assert lora201["code"] == "LORA201" and (lora201["column"], lora201["end_column"]) == (88, 96)
    good = check(tmp_path, script(LLAMA_3B, "r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM'"))
    assert not [c for c in good.codes() if c in ("LORA201", "LORA202")]
    assert good.exit_code == 0


def test_regex_that_misses_every_layer_is_lora202(tmp_path):
    run = check(tmp_path, script(LLAMA_3B, r"r=16, lora_alpha=32, target_modules=r'layers\.\d+\.attn\.q_proj', task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA202"]
    assert "a string is a regex that must match a full name such as 'model.layers.0.self_attn.q_proj'" in d["message"]


def test_llama_3_2_3b_json_counts_without_torch(tmp_path):
    (tmp_path / "train.py").write_text(textwrap.dedent(script(LLAMA_3B, "r=16, lora_alpha=32, target_modules='all-linear', task_type='CAUSAL_LM'")))
    # torch, transformers and peft made unimportable: the static path must not need them.
    code = (
        "import sys\n"
        "for name in ('torch', 'transformers', 'peft'):\n    sys.modules[name] = None\n"
        "from loralint.cli import main\n"
        "sys.argv = ['loralint', 'check', '--output-format', 'json', '--no-cache', 'train.py']\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    [config] = json.loads(proc.stdout)["configs"]
    assert config["trainable_params"] == 24_313_856
    assert config["total_params"] == 3_237_063_680
    assert config["model_type"] == "llama" and config["counted_by"] == "loralint"
    assert config["matched_modules"]["count"] == 196
    assert config["matched_modules"]["modules"]["model.layers.{i}.mlp.down_proj"] == 28


def test_q_and_v_at_rank_8_on_llama_3_2_3b(tmp_path):
    run = check(tmp_path, script(LLAMA_3B, "r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM'"))
    assert run.json["configs"][0]["trainable_params"] == 2_293_760


def test_embedding_and_tied_head(tmp_path):
    run = check(tmp_path, script("meta-llama/Llama-3.2-1B", "r=8, lora_alpha=16, target_modules=['q_proj', 'embed_tokens', 'lm_head'], task_type='CAUSAL_LM'"))
    messages = [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA203"]
    assert len(messages) == 2
    assert any(m.startswith("model.embed_tokens is the embedding of llama") for m in messages)
    assert all("tied to the output layer" in m for m in messages)


def test_lm_head_message_says_vllm_refuses_it_only_where_it_does(tmp_path):
    # vLLM serves lm_head LoRA for Llama (its class lists embedding_modules) and refuses it for Qwen2/3
    def head_message(model: str) -> str:
        run = check(tmp_path, script(model, "r=8, lora_alpha=16, target_modules=['q_proj', 'lm_head'], task_type='CAUSAL_LM'"))
        [message] = [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA203"]
        return message

    assert "vLLM" not in head_message("meta-llama/Llama-3.2-1B")
    assert "vLLM will not serve LoRA on it" in head_message("Qwen/Qwen2.5-7B")


def test_conv1d_fan_in_fan_out_fix(tmp_path):
    run = check(tmp_path, script("gpt2", "r=8, lora_alpha=16, target_modules=['c_attn'], task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA204"]
    assert d["fix"]["edits"][0]["content"] == ", fan_in_fan_out=True"
    run = check(tmp_path, script(LLAMA_3B, "r=8, lora_alpha=16, target_modules=['q_proj'], fan_in_fan_out=True, task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA204"]
    assert d["message"].startswith("fan_in_fan_out=True but every target on llama")


def test_attention_only_says_what_all_linear_adds(tmp_path):
    run = check(tmp_path, script(LLAMA_3B, "r=16, lora_alpha=32, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA205"]
    assert '"all-linear" would add 140 modules (down_proj, gate_proj, k_proj, o_proj, up_proj)' in d["message"]
    assert "from 4,587,520 to 24,313,856" in d["message"]


def test_attention_only_on_a_vision_language_model_advises_the_language_models_mlp(tmp_path):
    # "all-linear" would also adapt the vision tower (LORA211's warning): the advice names the MLP projections
    attention = "r=8, lora_alpha=16, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj'], task_type='CAUSAL_LM'"
    run = check(tmp_path, script("Qwen/Qwen2-VL-7B-Instruct", attention, "Qwen2VLForConditionalGeneration"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA205"]
    assert '"all-linear"' not in d["message"]
    assert ("target_modules=['k_proj', 'o_proj', 'q_proj', 'v_proj', 'down_proj', 'gate_proj', 'up_proj'] (the language"
            " model's MLP too) would add 84 modules (down_proj, gate_proj, up_proj)") in d["message"]
    # Qwen2.5-VL's vision blocks have gate_proj/up_proj/down_proj too: no list is proposed that reaches them
    run = check(tmp_path, script("Qwen/Qwen2.5-VL-7B-Instruct", attention, "Qwen2_5_VLForConditionalGeneration"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA205"]
    assert "also reach the vision/audio tower, so add them with a regex limited to the language model" in d["message"]


def test_layers_pattern_must_name_the_layer_list(tmp_path):
    run = check(tmp_path, script("gpt2", "r=8, lora_alpha=16, target_modules=['c_attn'], layers_to_transform=[0], layers_pattern='layers', fan_in_fan_out=True, task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA206"]
    assert "keeps its layers in 'transformer.h': use layers_pattern='h'" in d["message"]


def test_default_targets_and_no_default(tmp_path):
    run = check(tmp_path, script(LLAMA_3B, "r=16, lora_alpha=32, task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA208"]
    assert "PEFT's default for llama adapts only q_proj, v_proj (56 modules)" in d["message"]
    run = check(tmp_path, script("microsoft/Phi-3-mini-4k-instruct", "r=16, lora_alpha=32, task_type='CAUSAL_LM'"))
    assert "LORA217" in run.codes() and run.exit_code == 1


def test_containers_and_modules_to_save(tmp_path):
    run = check(tmp_path, script(LLAMA_3B, "r=16, lora_alpha=32, target_modules=['mlp'], modules_to_save=['head'], task_type='CAUSAL_LM'"))
    by_code: dict[str, list[str]] = {}
    for d in run.json["diagnostics"]:
        by_code.setdefault(d["code"], []).append(d["message"])
    [container] = by_code["LORA214"]
    assert "LlamaMLP container" in container and "down_proj, gate_proj, up_proj" in container
    assert any("also wraps lm_head" in m for m in by_code["LORA213"])
    assert any("trains a full copy of 394,002,432 parameters" in m for m in by_code["LORA213"])


def test_rank_exceeding_a_narrow_layer(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 1, "vocab_size": 100}))
    run = check(tmp_path, script("./tiny", "r=32, lora_alpha=32, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA212"]
    assert d["message"].startswith("r=32 is not below min(in, out)=16 of model.layers.{i}.self_attn.v_proj (2×")


def test_modules_command_lists_layers_and_presets(tmp_path):
    run = run_cli(["modules", "gpt2", "--rank", "8"], cwd=tmp_path)
    assert run.exit_code == 0
    out = run.stdout
    assert "transformer.h.{i}.attn.c_attn  Conv1D" in out
    assert "lm_head" in out and "✗ output layer" in out
    assert "transformer.wte" in out and "never adapts them" in out
    assert '["c_attn", "attn.c_proj"]' in out
    data = json.loads(run_cli(["modules", LLAMA_3B, "--output-format", "json"], cwd=tmp_path).stdout)
    presets = {p["name"]: p["trainable_params"] for p in data["presets"]}
    assert presets["all-linear"] == 24_313_856
    assert [e["name"] for e in data["embeddings"]] == ["model.embed_tokens"]
    assert run_cli(["modules", "nobody/nothing"], cwd=tmp_path).exit_code == 2


def test_a_null_q_lora_rank_builds_q_proj_as_transformers_does(tmp_path):
    # DeepSeek-V2-Lite's config.json has "q_lora_rank": null, so its attention has one q_proj where a
    # q_lora_rank of 1536 gives q_a_proj/q_b_proj; the knowledge base is generated for both cases.
    model_dir = tmp_path / "dsv2-lite"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({
        "model_type": "deepseek_v2", "hidden_size": 256, "intermediate_size": 512, "moe_intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "n_routed_experts": 4,
        "n_shared_experts": 1, "num_experts_per_tok": 2, "first_k_dense_replace": 1, "kv_lora_rank": 32,
        "q_lora_rank": None, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16, "vocab_size": 1000,
    }))
    run = check(tmp_path, script("./dsv2-lite", "r=8, lora_alpha=16, target_modules=['q_proj', 'kv_b_proj'], task_type='CAUSAL_LM'"))
    assert "LORA201" not in run.codes()
    [config] = run.json["configs"]
    # 2 layers x (q_proj 256->4*(16+8): 8*(256+96) + kv_b_proj 32->4*(16+16): 8*(32+128)), as PEFT counts it
    assert config["trainable_params"] == 2 * (8 * (256 + 96) + 8 * (32 + 128))
    assert config["matched_modules"]["count"] == 4
    # with the field set, the same target is checked and q_proj is unknown
    (model_dir / "config.json").write_text(
        (model_dir / "config.json").read_text().replace('"q_lora_rank": null', '"q_lora_rank": 64'))
    run = check(tmp_path, script("./dsv2-lite", "r=8, lora_alpha=16, target_modules=['q_proj', 'kv_b_proj'], task_type='CAUSAL_LM'"))
    assert "LORA201" in run.codes()


def test_bias_all_is_reported_only_where_the_model_has_biases(tmp_path):
    llama = check(tmp_path, script(LLAMA_3B, "r=8, lora_alpha=16, target_modules=['q_proj'], bias='all', task_type='CAUSAL_LM'"))
    assert "LORA106" not in llama.codes()  # Llama has no biases: nothing extra trains
    # 12 blocks x (c_attn 2304 + c_proj 768 + c_fc 3072 + c_proj 768 + ln_1 768 + ln_2 768) + ln_f 768
    gpt2 = check(tmp_path, script("gpt2", "r=8, lora_alpha=16, target_modules=['c_attn'], fan_in_fan_out=True, bias='all', task_type='CAUSAL_LM'"))
    [d] = [d for d in gpt2.json["diagnostics"] if d["code"] == "LORA106"]
    assert "(102,144 parameters here)" in d["message"] and "Unsloth" not in d["message"]
    unresolved = check(tmp_path, script("my-org/private-model", "r=8, lora_alpha=16, target_modules=['q_proj'], bias='all', task_type='CAUSAL_LM'"))
    assert "LORA106" in unresolved.codes()  # unknown model: the risk stands


def test_a_bare_name_string_is_also_checked_against_the_architecture(tmp_path):
    run = check(tmp_path, script("gpt2", "r=8, lora_alpha=16, target_modules='q_proj', task_type='CAUSAL_LM'"))
    by_code = {d["code"]: d["message"] for d in run.json["diagnostics"]}
    assert "did you mean c_attn?" in by_code["LORA201"]  # the name itself does not exist on gpt2
    assert "full names such as 'transformer.h.0.attn.c_attn'" in by_code["LORA209"]  # gpt2's own names
    run = check(tmp_path, script(LLAMA_3B, "r=8, lora_alpha=16, target_modules='q_proj,v_proj', task_type='CAUSAL_LM'"))
    assert "LORA209" in run.codes() and "LORA201" not in run.codes()  # real names, wrong form


# ---- MoE under transformers 5: PEFT's own conversion of v4 expert names, routers, frozen dense layers ----

MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"


def test_mixtral_w1_w2_w3_are_converted_not_unknown(tmp_path):
    run = check(tmp_path, script(MIXTRAL, "r=16, lora_alpha=32, target_modules=['w1', 'w2', 'w3'], task_type='CAUSAL_LM'"))
    assert "LORA201" not in run.codes(), run.stdout
    assert run.exit_code == 0
    [config] = run.json["configs"]
    # w1+w3 are fused into experts.gate_up_proj (8 x 4096 -> 28672) at r=32; w2 is experts.down_proj (8 x 14336 -> 4096)
    per_layer = 32 * 8 * (4096 + 2 * 14336) + 16 * 8 * (14336 + 4096)
    assert config["trainable_params"] == 32 * per_layer == 343_932_928
    assert config["matched_modules"]["modules"] == {"model.layers.{i}.mlp.experts.gate_up_proj": 32,
                                                    "model.layers.{i}.mlp.experts.down_proj": 32}


def test_half_of_a_fused_pair_is_still_reported(tmp_path):
    run = check(tmp_path, script(MIXTRAL, "r=16, lora_alpha=32, target_modules=['w1', 'w2'], task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA215"]
    assert "Cannot convert PEFT target(s) w1 without also targeting w3" in d["message"]


def test_all_linear_on_mixtral_adapts_the_router_weight(tmp_path):
    run = check(tmp_path, script(MIXTRAL, "r=16, lora_alpha=32, target_modules='all-linear', task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA211"]
    assert "model.layers.{i}.mlp.gate.weight" in d["message"]
    assert "exclude_modules does not reach target_parameters" in d["message"]
    assert "target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'w1', 'w3', 'w2']" in d["message"]
    assert "LORA205" not in run.codes()  # the experts are adapted (as parameters): not attention-only
    # the suggested list adapts everything but the router
    listed = check(tmp_path, script(MIXTRAL, "r=16, lora_alpha=32, target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'w1', 'w3', 'w2'], task_type='CAUSAL_LM'"))
    assert listed.exit_code == 0, listed.stdout
    router = 32 * 16 * (8 + 4096)  # gate.weight: 8 x 4096, wrapped as a 2-D parameter
    assert run.json["configs"][0]["trainable_params"] - listed.json["configs"][0]["trainable_params"] == router


def test_deepseek_v3_conversion_leaves_dense_mlp_and_shared_experts_frozen(tmp_path):
    run = check(tmp_path, script("deepseek-ai/DeepSeek-V3", "r=16, lora_alpha=32, target_modules=['q_a_proj', 'gate_proj', 'up_proj', 'down_proj'], task_type='CAUSAL_LM'"))
    [d] = [d for d in run.json["diagnostics"] if d["code"] == "LORA215"]
    message = d["message"]
    assert "turns down_proj, gate_proj, up_proj into target_parameters" in message
    assert "routed experts of layers 3–60" in message
    assert "mlp.experts.gate_up_proj (r=32, lora_alpha=64: gate_proj and up_proj are fused into it" in message
    assert "the dense MLP of layers 0, 1, 2 (mlp.{down_proj,gate_proj,up_proj}, first_k_dense_replace=3)" in message
    assert "the shared experts of layers 3–60 (mlp.shared_experts.{down_proj,gate_proj,up_proj})" in message
    assert "target_parameters=['mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight', " \
           "'shared_experts.gate_proj.weight'" in message
    assert "LORA201" not in run.codes()


def test_modules_lists_the_parameter_targets_of_all_linear(tmp_path):
    run = run_cli(["modules", MIXTRAL], cwd=tmp_path)
    assert run.exit_code == 0
    assert "model.layers.{i}.mlp.experts.gate_up_proj  8×28672×4096         ×32   ✓ r=32, lora_alpha=32  w1 + w3 fused" in run.stdout
    assert "model.layers.{i}.mlp.gate.weight" in run.stdout and "the MoE router" in run.stdout
    assert "all-linear         128 modules + 96 parameters     359,665,664" in run.stdout
    assert "lm_head                                    Linear          4096 → 32000   ×1    ✗ output layer" in run.stdout
    data = json.loads(run_cli(["modules", "--output-format", "json", "deepseek-ai/DeepSeek-V3"], cwd=tmp_path).stdout)
    dense = {m["name"]: m["excluded_because"] for m in data["linear"] if ".mlp." in m["name"]}
    assert set(dense.values()) == {"PEFT's MoE conversion"}
    assert {p["name"]: p["all_linear"] for p in data["parameters"]} == {
        "model.layers.{i}.mlp.experts.gate_up_proj": True, "model.layers.{i}.mlp.experts.down_proj": True,
        "model.layers.{i}.mlp.gate.weight": True}
    oss = json.loads(run_cli(["modules", "--output-format", "json", "openai/gpt-oss-20b"], cwd=tmp_path).stdout)
    assert [(p["name"], p["all_linear"]) for p in oss["parameters"]] == [
        ("model.layers.{i}.mlp.experts.gate_up_proj", False), ("model.layers.{i}.mlp.experts.down_proj", False)]


def test_configs_sharing_a_model_in_one_run_each_get_their_own_counts(tmp_path):
    # PEFT condenses 20 or more target entries to a minimal suffix set; loralint computes it once per
    # model and entries within a run: a second config that differs in r, or in its entries, is counted afresh.
    names = [f"model.layers.{i}.self_attn.{p}" for i in range(10) for p in ("q_proj", "v_proj")]
    configs = [
        "r=16, lora_alpha=32, target_modules='all-linear', task_type='CAUSAL_LM'",
        "r=8, lora_alpha=16, target_modules='all-linear', task_type='CAUSAL_LM'",
        f"r=16, lora_alpha=32, target_modules={names!r}, task_type='CAUSAL_LM'",
    ]
    lines = ["from peft import LoraConfig, get_peft_model", "from transformers import AutoModelForCausalLM"]
    for k, config in enumerate(configs):
        lines += [f'model{k} = AutoModelForCausalLM.from_pretrained("{LLAMA_3B}")',
                  f"peft{k} = get_peft_model(model{k}, LoraConfig({config}))"]
    (tmp_path / "train.py").write_text("\n".join(lines) + "\n")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "train.py"], cwd=tmp_path)
    counts = [(c["trainable_params"], c["matched_modules"]["count"]) for c in sorted(run.json["configs"], key=lambda c: c["line"])]
    # q_proj: 16 * (3072 + 3072), v_proj: 16 * (3072 + 1024), in 10 of the 28 layers
    assert counts == [(24_313_856, 196), (12_156_928, 196), (10 * (98_304 + 65_536), 20)]


def test_conv1d_fan_in_fan_out_only_where_the_format_can_set_it(tmp_path):
    # TRL's ModelConfig has no fan_in_fan_out (get_peft_config never passes one): no finding, and above all no
    # "safe" fix that adds fan_in_fan_out=True to ModelConfig(...), a TypeError when the script runs.
    trl = check(tmp_path, """
    from trl import ModelConfig, SFTTrainer, get_peft_config
    margs = ModelConfig(model_name_or_path="gpt2", use_peft=True, lora_r=16, lora_alpha=32)
    trainer = SFTTrainer(model="gpt2", train_dataset=None, peft_config=get_peft_config(margs))
    """)
    assert trl.json["configs"] and [d for d in trl.json["diagnostics"] if d["code"] == "LORA204"] == []
    (tmp_path / "lf.yaml").write_text("model_name_or_path: openai-community/gpt2\nstage: sft\ndo_train: true\n"
                                      "finetuning_type: lora\nlora_rank: 8\nlora_target: c_attn\n")
    (tmp_path / "ax.yml").write_text("base_model: gpt2\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n"
                                     "lora_target_modules: [c_attn]\n")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "LORA204", "lf.yaml", "ax.yml"],
                  cwd=tmp_path)
    assert len(run.json["configs"]) == 2
    [d] = run.json["diagnostics"]  # LLaMA-Factory has no such setting either; axolotl has its own key
    assert d["path"] == "ax.yml" and d["message"].endswith("with a warning; set lora_fan_in_fan_out: true")
