"""Resolving the base model: --model, local folders, the HF cache (offline), the hub, the index, guesses."""

from __future__ import annotations

import json
import textwrap

import pytest

from helpers import REPO, run_cli
from loralint.resolve import Resolver, cached_config_path, hub_cache_dir

CACHE = REPO / "tests" / "fixtures" / "hf_cache"


@pytest.fixture
def hf_cache(monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(CACHE))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return CACHE


def configs(tmp_path, source: str, *args: str):
    (tmp_path / "train.py").write_text(textwrap.dedent(source).lstrip("\n"))
    run = run_cli(["check", "--output-format", "json", "--no-cache", *args, "train.py"], cwd=tmp_path)
    return run, run.json["configs"]


def test_cache_dir_honours_hf_hub_cache_hf_home_and_xdg(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "direct"))
    assert hub_cache_dir() == tmp_path / "direct"


def test_cache_lookup_follows_refs_and_falls_back_to_a_single_snapshot(hf_cache):
    path = cached_config_path("acme/tiny-gpt2")
    assert path is not None and path.parent.name == "0123456789abcdef0123456789abcdef01234567"
    # no refs/main (a copied cache): the only snapshot is used
    assert cached_config_path("acme/tiny-llama") is not None
    assert cached_config_path("acme/absent") is None


def test_script_model_resolved_from_the_cache_is_checked_against_its_architecture(hf_cache, tmp_path):
    run, [config] = configs(
        tmp_path,
        """
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("acme/tiny-gpt2")
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"], task_type="CAUSAL_LM"))
        """,
    )
    assert config["model_type"] == "gpt2" and config["resolved_from"] == "the Hugging Face cache"
    # the only entry misses: one finding for the list (LORA202), not also LORA201 for the entry
    [d202] = [d for d in run.json["diagnostics"] if d["code"] in ("LORA201", "LORA202")]
    assert d202["code"] == "LORA202"
    assert d202["message"].startswith(
        "target_modules=['q_proj'] matches no module of gpt2 (GPT2LMHeadModel, from the Hugging Face cache): gpt2 has"
        " c_attn, c_proj, c_fc (Conv1D); did you mean c_attn (for q_proj)?"
    )


def test_local_folder_wins_and_model_option_overrides_the_source(hf_cache, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
                                                     "num_hidden_layers": 2, "num_attention_heads": 4,
                                                     "vocab_size": 500}))
    source = """
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained("./ckpt")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    """
    _, [config] = configs(tmp_path, source)
    assert (config["model_type"], config["resolved_from"]) == ("llama", "ckpt/config.json")
    assert config["trainable_params"] == 2 * (8 * (64 + 64) + 8 * (64 + 64))
    run, [config] = configs(tmp_path, source, "--model", "acme/tiny-gpt2")
    assert config["model_type"] == "gpt2"
    assert config["resolved_from"] == "--model acme/tiny-gpt2 → the Hugging Face cache"
    assert "LORA202" in run.codes()


def test_settings_model_applies_when_the_script_names_none(hf_cache, tmp_path):
    (tmp_path / ".loralint.toml").write_text('model = "acme/tiny-llama"\n')
    _, [config] = configs(tmp_path, "from peft import LoraConfig\nc = LoraConfig(r=4, lora_alpha=8, target_modules=['q_proj'])\n")
    assert config["model_type"] == "llama" and config["trainable_params"] == 4 * 4 * (64 + 64)


def test_offline_always_wins_over_online(hf_cache, monkeypatch):
    called = []
    monkeypatch.setattr("loralint.resolve.fetch_config_from_hub", lambda model_id: called.append(model_id))
    assert Resolver(online=True).resolve("acme/not-cached") is None
    assert called == []
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    Resolver(online=True).resolve("acme/not-cached")
    assert called == ["acme/not-cached"]


def test_hub_code_path_reads_through_huggingface_hub_offline(hf_cache):
    from loralint.resolve import fetch_config_from_hub

    # huggingface_hub itself, in offline mode, serves config.json from the cache fixture.
    config = fetch_config_from_hub("acme/tiny-gpt2")
    assert config is not None and config["model_type"] == "gpt2" and config["n_layer"] == 3
    assert fetch_config_from_hub("acme/never-downloaded") is None


def test_a_name_guess_is_never_used_for_an_error(hf_cache, tmp_path):
    run, [config] = configs(
        tmp_path,
        """
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("someone/my-llama-finetune")
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["not_a_module"], task_type="CAUSAL_LM"))
        """,
    )
    assert config["model_type"] == "llama" and config["resolved_from"] == "a guess from the name"
    assert not [c for c in run.codes() if c.startswith("LORA2")]
    assert config["trainable_params"] is None


def test_unresolvable_model_is_not_a_failure(hf_cache, tmp_path):
    run, [config] = configs(
        tmp_path,
        """
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("org/xyz-123")
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"], task_type="CAUSAL_LM"))
        """,
    )
    assert run.exit_code == 0 and config["base_model"] == "org/xyz-123" and config["model_type"] is None


def test_a_legacy_id_without_organisation_is_read_from_the_cache(monkeypatch, tmp_path):
    # "gpt2" lives in the cache as models--gpt2: the cached config (2 layers here) beats the shipped index (12).
    snapshot = tmp_path / "hub" / "models--gpt2" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 4}))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    resolution = Resolver(cwd=tmp_path).resolve("gpt2")
    assert resolution is not None and resolution.source == "Hugging Face cache"
    assert resolution.config["n_layer"] == 2
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert Resolver(cwd=tmp_path).resolve("gpt2").source == "loralint index"
