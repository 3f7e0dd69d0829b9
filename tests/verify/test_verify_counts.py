"""`loralint verify` reports exactly what PEFT counts: trainable and total parameters
(`PeftModel.get_nb_trainable_parameters`) and the targeted modules, across architectures and the
targeting features of LoraConfig."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FIXTURES, peft_reference
from helpers import run_cli

pytestmark = pytest.mark.verify


def verify_json(path: Path, *args: str) -> dict:
    run = run_cli(["verify", "--output-format", "json", "--no-cache", *args, str(path.name)], cwd=path.parent)
    assert run.exit_code in (0, 1), run.stdout + run.stderr
    return json.loads(run.stdout)


def only_config(report: dict) -> dict:
    assert len(report["configs"]) == 1, report
    return report["configs"][0]


def assert_matches_peft(config: dict, model_dir: Path, class_name: str, **lora):
    trainable, total, targeted = peft_reference(model_dir, class_name, **lora)
    assert config["status"] == "verified", config
    assert config["model_class"] == class_name
    assert (config["trainable_params"], config["total_params"]) == (trainable, total)
    assert sum(g["count"] for g in config["matched_modules"]) == len(targeted)
    assert config["counted_by"] == "peft"


CAUSAL = ["llama", "mistral", "qwen2", "gemma2", "phi3", "gpt2", "gpt_neox", "falcon", "opt", "bloom"]


@pytest.mark.parametrize("arch", CAUSAL)
@pytest.mark.parametrize("targets", [None, "all-linear"], ids=["default-targets", "all-linear"])
def test_causal_lm_counts_match_peft(arch, targets, tiny_model, script):
    model = tiny_model(arch)
    lora = {"r": 8, "lora_alpha": 16, "target_modules": targets, "task_type": "CAUSAL_LM"}
    source = f"LoraConfig(r=8, lora_alpha=16, target_modules={targets!r}, task_type='CAUSAL_LM')"
    report = verify_json(script(model, source))
    config = only_config(report)
    try:
        peft_reference(model, "AutoModelForCausalLM", **lora)
    except ValueError as exc:  # no PEFT default targets for this architecture: PEFT's error is reported
        assert config["status"] == "rejected"
        assert [d["code"] for d in config["diagnostics"] if d["code"] != "LORA253"] == ["LORA250"]
        assert str(exc) in config["diagnostics"][0]["message"]
        return
    assert_matches_peft(config, model, "AutoModelForCausalLM", **lora)
    assert config["scaling"] == 2.0
    assert config["model_type"] == json.loads((model / "config.json").read_text())["model_type"]


def test_gpt2_conv1d_layers_are_counted_and_named(tiny_model, script):
    model = tiny_model("gpt2")
    config = only_config(verify_json(script(model, "LoraConfig(r=4, target_modules=['c_attn', 'c_fc'], fan_in_fan_out=True, task_type='CAUSAL_LM')")))
    assert_matches_peft(config, model, "AutoModelForCausalLM", r=4, target_modules=["c_attn", "c_fc"], fan_in_fan_out=True,
                        task_type="CAUSAL_LM")
    groups = {g["pattern"]: g for g in config["matched_modules"]}
    assert groups["transformer.h.{i}.attn.c_attn"]["type"] == "Conv1D"
    assert (groups["transformer.h.{i}.attn.c_attn"]["in_features"], groups["transformer.h.{i}.attn.c_attn"]["out_features"]) == (64, 192)
    assert groups["transformer.h.{i}.attn.c_attn"]["lora_params"] == 2 * 4 * (64 + 192)


def test_t5_seq2seq(tiny_model, script):
    model = tiny_model("t5")
    lora = {"r": 8, "target_modules": ["q", "v"], "task_type": "SEQ_2_SEQ_LM"}
    config = only_config(verify_json(script(model, "LoraConfig(r=8, target_modules=['q', 'v'], task_type='SEQ_2_SEQ_LM')",
                                            loader="AutoModelForSeq2SeqLM")))
    assert_matches_peft(config, model, "AutoModelForSeq2SeqLM", **lora)
    patterns = {g["pattern"] for g in config["matched_modules"]}
    assert "decoder.block.{i}.layer.{j}.EncDecAttention.q" in patterns


def test_bert_sequence_classification_trains_its_classifier(tiny_model, script):
    model = tiny_model("bert")
    lora = {"r": 8, "target_modules": ["query", "value"], "modules_to_save": ["classifier"], "task_type": "SEQ_CLS"}
    source = "LoraConfig(r=8, target_modules=['query', 'value'], modules_to_save=['classifier'], task_type='SEQ_CLS')"
    config = only_config(verify_json(script(model, source, loader="AutoModelForSequenceClassification")))
    assert_matches_peft(config, model, "AutoModelForSequenceClassification", **lora)
    saved = {g["pattern"]: g for g in config["modules_to_save"]}
    assert saved["classifier"]["lora_params"] == 64 * 3 + 3  # num_labels=3 from config.json


@pytest.mark.parametrize("loader", ["AutoModelForImageTextToText", "AutoModelForCausalLM"])
def test_vision_language_model(loader, tiny_model, script):
    """A multimodal config is built as image-text-to-text (what AutoModelForCausalLM cannot build)."""
    model = tiny_model("qwen2_vl")
    lora = {"r": 8, "target_modules": "all-linear", "exclude_modules": r".*visual.*", "task_type": "CAUSAL_LM"}
    source = "LoraConfig(r=8, target_modules='all-linear', exclude_modules=r'.*visual.*', task_type='CAUSAL_LM')"
    config = only_config(verify_json(script(model, source, loader=loader)))
    assert_matches_peft(config, model, "AutoModelForImageTextToText", **lora)
    assert not any("visual" in g["pattern"] for g in config["matched_modules"])
    assert [d for d in config["diagnostics"] if d["code"] != "LORA253"] == []


def test_vision_tower_picked_up_by_all_linear(tiny_model, script):
    model = tiny_model("qwen2_vl")
    config = only_config(verify_json(script(model, "LoraConfig(r=8, target_modules='all-linear', task_type='CAUSAL_LM')",
                                            loader="AutoModelForImageTextToText")))
    (diag,) = [d for d in config["diagnostics"] if d["code"] != "LORA253"]
    assert diag["code"] == "LORA252" and "vision/audio tower" in diag["message"] and "model.visual.blocks.{i}" in diag["message"]


LLAMA_FEATURES = {
    "regex": ("target_modules=r'.*\\.(q|v)_proj'", {"target_modules": r".*\.(q|v)_proj"}),
    "layers_to_transform": ("target_modules=['q_proj', 'v_proj'], layers_to_transform=[0, 2], layers_pattern='layers'",
                            {"target_modules": ["q_proj", "v_proj"], "layers_to_transform": [0, 2], "layers_pattern": "layers"}),
    "rank_pattern": ("target_modules=['q_proj', 'v_proj'], rank_pattern={'v_proj': 16}, alpha_pattern={'v_proj': 64}",
                     {"target_modules": ["q_proj", "v_proj"], "rank_pattern": {"v_proj": 16}, "alpha_pattern": {"v_proj": 64}}),
    "bias_all": ("target_modules=['q_proj'], bias='all'", {"target_modules": ["q_proj"], "bias": "all"}),
    "modules_to_save": ("target_modules=['q_proj'], modules_to_save=['lm_head']",
                        {"target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}),
    "exclude_modules": ("target_modules='all-linear', exclude_modules=['down_proj']",
                        {"target_modules": "all-linear", "exclude_modules": ["down_proj"]}),
    "rslora_dora": ("target_modules=['q_proj', 'v_proj'], use_rslora=True, use_dora=True",
                    {"target_modules": ["q_proj", "v_proj"], "use_rslora": True, "use_dora": True}),
    "embedding": ("target_modules=['embed_tokens', 'q_proj']", {"target_modules": ["embed_tokens", "q_proj"]}),
}


@pytest.mark.parametrize("feature", sorted(LLAMA_FEATURES))
def test_targeting_features_match_peft(feature, tiny_model, script):
    model = tiny_model("llama", attention_bias=True)  # biases, so that bias="all" has something to train
    source_args, lora = LLAMA_FEATURES[feature]
    config = only_config(verify_json(script(model, f"LoraConfig(r=8, lora_alpha=16, {source_args}, task_type='CAUSAL_LM')")))
    assert_matches_peft(config, model, "AutoModelForCausalLM", r=8, lora_alpha=16, task_type="CAUSAL_LM", **lora)


def test_layers_to_transform_folds_only_the_chosen_layers(tiny_model, script):
    model = tiny_model("llama")
    config = only_config(verify_json(script(model, "LoraConfig(target_modules=['q_proj'], layers_to_transform=[0, 2], layers_pattern='layers')")))
    (group,) = config["matched_modules"]
    assert group == {**group, "pattern": "model.layers.{i}.self_attn.q_proj", "count": 2, "indices": [0, 2]}


def test_rank_pattern_gives_per_module_rank_and_scaling(tiny_model, script):
    model = tiny_model("llama")
    config = only_config(verify_json(script(model, "LoraConfig(r=8, lora_alpha=16, target_modules=['q_proj', 'v_proj'], rank_pattern={'v_proj': 16})")))
    groups = {g["pattern"].rsplit(".", 1)[-1]: g for g in config["matched_modules"]}
    assert (groups["q_proj"]["r"], groups["q_proj"]["scaling"]) == (8, 2.0)
    assert (groups["v_proj"]["r"], groups["v_proj"]["scaling"]) == (16, 1.0)
    assert config["scaling"] is None  # not one value


def test_llama_3_2_3b_all_linear_is_the_known_answer(tmp_path, script):
    """DESIGN.md's known answer, through `loralint verify` on a script whose base model is the
    real-shaped local fixture folder (config.json only)."""
    model = FIXTURES / "verify-llama-3.2-3b"
    path = script(model, "LoraConfig(r=16, lora_alpha=32, target_modules='all-linear', task_type='CAUSAL_LM')")
    config = only_config(verify_json(path))
    assert (config["trainable_params"], config["total_params"]) == (24_313_856, 3_237_063_680)
    assert config["matched_modules"][0]["count"] == 28
    assert {g["pattern"] for g in config["matched_modules"]} == {
        f"model.layers.{{i}}.{m}" for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
    }


def test_model_option_gives_the_base_model(tiny_model, tmp_path):
    model = tiny_model("qwen2")
    (tmp_path / "cfg.py").write_text(
        "from peft import LoraConfig\nconfig = LoraConfig(r=4, target_modules=['q_proj'], task_type='CAUSAL_LM')\n"
    )
    config = only_config(verify_json(tmp_path / "cfg.py", "--model", str(model)))
    assert_matches_peft(config, model, "AutoModelForCausalLM", r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")
    assert config["resolved_from"].startswith("--model")


def test_yaml_config_is_verified(tiny_model, tmp_path):
    """An axolotl YAML maps onto the same LoraConfig."""
    model = tiny_model("mistral")
    (tmp_path / "axolotl.yml").write_text(
        f"base_model: {model}\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n"
        "lora_target_modules:\n  - q_proj\n  - v_proj\n"
    )
    config = only_config(verify_json(tmp_path / "axolotl.yml"))
    trainable, total, _ = peft_reference(model, "AutoModelForCausalLM", r=8, lora_alpha=16,
                                         target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    assert (config["trainable_params"], config["total_params"]) == (trainable, total)


def test_check_verify_fills_configs_with_peft_numbers(tiny_model, script):
    model = tiny_model("llama")
    path = script(model, "LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', task_type='CAUSAL_LM')")
    run = run_cli(["check", "--verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    report = run.json
    (config,) = report["configs"]
    trainable, total, targeted = peft_reference(model, "AutoModelForCausalLM", r=8, lora_alpha=16,
                                                target_modules="all-linear", task_type="CAUSAL_LM")
    assert config["trainable_params"] == trainable
    assert config["total_params"] == total
    # the same shape as without --verify: the total and the folded names
    assert config["matched_modules"]["count"] == sum(config["matched_modules"]["modules"].values()) == len(targeted)
    assert config["counted_by"] == "peft"
    static = run_cli(["check", "--output-format", "json", "--no-cache", path.name], cwd=path.parent).json["configs"][0]
    assert static["matched_modules"] == config["matched_modules"]


def test_explain_verify_shows_peft_numbers(tiny_model, script):
    model = tiny_model("llama")
    path = script(model, "LoraConfig(r=8, lora_alpha=16, target_modules='all-linear', task_type='CAUSAL_LM')")
    run = run_cli(["explain", "--verify", "--no-cache", path.name], cwd=path.parent)
    assert run.exit_code == 0, run.stdout + run.stderr
    trainable, total, _ = peft_reference(model, "AutoModelForCausalLM", r=8, lora_alpha=16, target_modules="all-linear",
                                         task_type="CAUSAL_LM")
    assert f"{trainable:,} of {total:,}" in run.stdout and "counted by PEFT (--verify)" in run.stdout


def test_one_build_per_distinct_model(tiny_model, tmp_path, monkeypatch):
    """Sites that share a base model share one build (each gets its own copy for PEFT)."""
    from loralint.verify import runner as verify

    llama, gpt2 = tiny_model("llama"), tiny_model("gpt2")
    lines = ["from transformers import AutoModelForCausalLM", "from peft import LoraConfig, get_peft_model"]
    for i, (model, target) in enumerate([(llama, "q_proj"), (llama, "v_proj"), (gpt2, "c_attn"), (llama, "o_proj")]):
        lines += [f"m{i} = AutoModelForCausalLM.from_pretrained({str(model)!r})",
                  f"c{i} = LoraConfig(r=4, target_modules=[{target!r}], fan_in_fan_out={target == 'c_attn'}, task_type='CAUSAL_LM')",
                  f"m{i} = get_peft_model(m{i}, c{i})"]
    (tmp_path / "many.py").write_text("\n".join(lines) + "\n")
    builds = []
    original = verify._Verifier.build

    def counting(self, job, *args, **kwargs):
        builds.append(job.class_name)
        return original(self, job, *args, **kwargs)

    monkeypatch.setattr(verify._Verifier, "build", counting)
    report = verify_json(tmp_path / "many.py")
    assert [c["status"] for c in report["configs"]] == ["verified"] * 4
    assert len(builds) == 2
    counts = [c["trainable_params"] for c in report["configs"]]
    assert counts[0] == peft_reference(llama, "AutoModelForCausalLM", r=4, target_modules=["q_proj"], task_type="CAUSAL_LM")[0]
    assert counts[3] == peft_reference(llama, "AutoModelForCausalLM", r=4, target_modules=["o_proj"], task_type="CAUSAL_LM")[0]


@pytest.mark.parametrize(
    "fixture", sorted(p.parent.name for p in FIXTURES.glob("*/config.json") if p.parent.name != "verify-remote-code"),
)
def test_every_model_fixture_counts_like_peft(fixture, script):
    """Whatever config fixtures the repository holds: loralint's count is PEFT's, on the class it builds."""
    model = FIXTURES / fixture
    config = only_config(verify_json(script(model, "LoraConfig(r=8, target_modules='all-linear')",
                                            loader="AutoModel")))
    if config["status"] != "verified":
        pytest.skip(f"{fixture}: {config['reason']}")
    assert_matches_peft(config, model, config["model_class"], r=8, target_modules="all-linear")


def test_modules_to_save_as_a_string_wraps_what_peft_wraps(tiny_model, script):
    # A string is iterated character by character: "lm_head" also matches every module name ending in
    # l, m, _, h, e, a or d, the whole "model" among them; later keys resolve inside its active copy.
    model = tiny_model("llama")
    lora = {"r": 4, "target_modules": ["q_proj"], "modules_to_save": "lm_head", "task_type": "CAUSAL_LM"}
    report = verify_json(script(model, "LoraConfig(r=4, target_modules=['q_proj'], modules_to_save='lm_head', task_type='CAUSAL_LM')"))
    config = only_config(report)
    assert_matches_peft(config, model, "AutoModelForCausalLM", **lora)
    assert "LORA253" not in [d["code"] for d in config["diagnostics"]]  # the static count agrees


@pytest.mark.parametrize("bias", ["none", "all"])
def test_inference_mode_freezes_the_adapter_as_peft_does(tiny_model, script, bias):
    model = tiny_model("llama")
    lora = {"r": 4, "target_modules": ["q_proj", "o_proj"], "bias": bias, "inference_mode": True, "task_type": "CAUSAL_LM"}
    report = verify_json(script(model, f"LoraConfig(r=4, target_modules=['q_proj', 'o_proj'], bias={bias!r}, inference_mode=True, task_type='CAUSAL_LM')"))
    config = only_config(report)
    assert_matches_peft(config, model, "AutoModelForCausalLM", **lora)
    assert "LORA253" not in [d["code"] for d in config["diagnostics"]]


def test_a_saved_adapter_is_counted_for_training(tiny_model, tmp_path):
    # adapter_config.json always says inference_mode=true; training loads it with is_trainable=True.
    model = tiny_model("llama")
    (tmp_path / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "base_model_name_or_path": str(model), "r": 4, "lora_alpha": 8,
        "target_modules": ["q_proj"], "inference_mode": True, "task_type": "CAUSAL_LM",
    }))
    config = only_config(verify_json(tmp_path / "adapter_config.json"))
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "task_type": "CAUSAL_LM"}
    assert_matches_peft(config, model, "AutoModelForCausalLM", **lora)
    assert config["trainable_params"] > 0
    assert any("is_trainable=True" in note for note in config["notes"])
