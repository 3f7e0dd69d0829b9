"""What PEFT rejects or warns about becomes a diagnostic at the configuration, never a traceback;
configurations that cannot be verified say why, without failing the run."""

from __future__ import annotations

import builtins
import json
import sys

import pytest
from helpers import run_cli, run_subprocess

pytestmark = pytest.mark.verify


def verify(path, *args, fmt="json"):
    return run_cli(["verify", "--output-format", fmt, "--no-cache", *args, path.name], cwd=path.parent)


# LORA253 (the knowledge base disagrees with PEFT) has its own tests below; the others ignore it.
def findings(diagnostics: list[dict]) -> list[dict]:
    return [d for d in diagnostics if d["code"] != "LORA253"]


def codes(run) -> list[str]:
    return [d["code"] for d in findings(run.json["diagnostics"])]


def test_config_peft_rejects_is_an_error_at_the_argument(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj'], layers_pattern='layers', task_type='CAUSAL_LM')")
    run = run_subprocess(["verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr + run.stdout
    report = json.loads(run.stdout)
    (diag,) = findings(report["diagnostics"])
    assert diag["code"] == "LORA250" and diag["severity"] == "error"
    assert "`layers_to_transform` must also be specified" in diag["message"]
    assert "verified: peft" in diag["message"]
    line = path.read_text().splitlines()[diag["line"] - 1]
    assert line[diag["column"] - 1: diag["end_column"] - 1] == "'layers'"  # the layers_pattern value
    assert report["configs"][0]["status"] == "rejected"


def test_target_that_matches_nothing(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['query_key_value'], task_type='CAUSAL_LM')")
    run = verify(path)
    assert run.exit_code == 1
    (diag,) = findings(run.json["diagnostics"])
    assert diag["code"] == "LORA250"
    assert "NoMatchingPeftModuleError" in diag["message"] and "not found in the base model" in diag["message"]
    line = path.read_text().splitlines()[diag["line"] - 1]
    assert line[diag["column"] - 1: diag["end_column"] - 1] == "['query_key_value']"


def test_check_verify_reports_the_rejection_with_the_static_findings(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['mlp'], task_type='CAUSAL_LM')")
    run = run_subprocess(["check", "--verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    assert run.exit_code == 1, run.stderr
    assert "Traceback" not in run.stderr
    found = [d for d in json.loads(run.stdout)["diagnostics"] if d["code"] == "LORA250"]
    assert found and "is not supported" in found[0]["message"]


def test_peft_warning_becomes_a_diagnostic(tiny_model, script):
    path = script(tiny_model("gpt2"), "LoraConfig(r=8, target_modules=['c_attn'], task_type='CAUSAL_LM')")
    run = verify(path)
    assert run.exit_code == 1
    (diag,) = findings(run.json["diagnostics"])
    assert diag["code"] == "LORA251" and diag["severity"] == "warning"
    assert "fan_in_fan_out is set to False but the target module is `Conv1D`" in diag["message"]


def test_unmatched_rank_pattern_key_is_reported_once(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj'], rank_pattern={'^q_proj': 16}, task_type='CAUSAL_LM')")
    diags = findings(verify(path).json["diagnostics"])
    assert [d["code"] for d in diags] == ["LORA251"]
    assert "rank_pattern keys did not match" in diags[0]["message"]


def test_moe_conversion_pattern_keys_are_not_blamed_on_the_user(tiny_model, script):
    """PEFT's own MoE conversion adds `.*\\.gate_up_proj` pattern keys and then warns about them."""
    path = script(tiny_model("qwen3_moe"), "LoraConfig(r=8, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    assert codes(verify(path)) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("LoraConfig(r=8, target_modules=r'.*_(proj|head)', task_type='CAUSAL_LM')", "the output layer lm_head"),
        ("LoraConfig(r=8, target_modules='all-linear', task_type='CAUSAL_LM')", "MoE router"),
        ("LoraConfig(r=8, target_modules=['gate', 'q_proj'], task_type='CAUSAL_LM')", "MoE router"),
    ],
)
def test_unexpected_modules(source, expected, tiny_model, script):
    model = tiny_model("qwen3_moe" if "router" in expected else "llama")
    diags = verify(script(model, source)).json["diagnostics"]
    found = [d for d in diags if d["code"] == "LORA252"]
    assert found and expected in found[0]["message"], diags


def test_classification_head_without_task_type(tiny_model, script):
    path = script(tiny_model("bert"), "LoraConfig(r=8, target_modules='all-linear')", loader="AutoModelForSequenceClassification")
    diags = findings(verify(path).json["diagnostics"])
    assert [d["code"] for d in diags] == ["LORA252"]
    assert "task head classifier" in diags[0]["message"]
    # With task_type PEFT trains the head in full: nothing unexpected.
    path = script(tiny_model("bert"), "LoraConfig(r=8, target_modules='all-linear', task_type='SEQ_CLS')",
                  loader="AutoModelForSequenceClassification", name="good.py")
    assert findings(verify(path).json["diagnostics"]) == []


def test_lm_head_named_in_a_list_is_meant(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj', 'lm_head'], task_type='CAUSAL_LM')")
    assert codes(verify(path)) == []


def test_unresolvable_model_is_information(tmp_path):
    (tmp_path / "train.py").write_text(
        "from transformers import AutoModelForCausalLM\nfrom peft import LoraConfig, get_peft_model\n"
        "model = AutoModelForCausalLM.from_pretrained('loralint-tests/no-such-model')\n"
        "config = LoraConfig(r=8, target_modules=['q_proj'], task_type='CAUSAL_LM')\n"
        "model = get_peft_model(model, config)\n"
    )
    run = verify(tmp_path / "train.py")
    assert run.exit_code == 0, run.stdout
    (diag,) = run.json["diagnostics"]
    assert diag["code"] == "LORA254" and diag["severity"] == "info"
    assert "--online" in diag["message"]
    assert diag["line"] == 3  # at the model id
    assert run.json["configs"][0]["status"] == "unresolved"


def test_no_base_model_at_all(tmp_path):
    (tmp_path / "cfg.py").write_text("from peft import LoraConfig\nconfig = LoraConfig(r=8, target_modules=['q_proj'])\n")
    run = verify(tmp_path / "cfg.py")
    assert run.exit_code == 0
    assert codes(run) == ["LORA254"]
    assert "--model" in run.json["diagnostics"][0]["message"]


def test_value_not_statically_known_is_skipped(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=int(sys.argv[1]), target_modules=['q_proj'], task_type='CAUSAL_LM')",
                  extra="import sys")
    run = verify(path)
    assert run.exit_code == 0
    assert codes(run) == ["LORA256"]
    assert "r" in run.json["configs"][0]["reason"]


def test_unknown_dropout_does_not_stop_verification(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, lora_dropout=float(sys.argv[1]), target_modules=['q_proj'], task_type='CAUSAL_LM')",
                  extra="import sys")
    config = verify(path).json["configs"][0]
    assert config["status"] == "verified"
    assert any("lora_dropout" in note for note in config["notes"])


def test_data_dependent_init_is_counted_with_the_default(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj'], init_lora_weights='corda', task_type='CAUSAL_LM')")
    config = verify(path).json["configs"][0]
    assert config["status"] == "verified"
    assert any("corda" in note for note in config["notes"])


def test_unknown_init_is_rejected(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj'], init_lora_weights='pisa', task_type='CAUSAL_LM')")
    diags = findings(verify(path).json["diagnostics"])
    assert [d["code"] for d in diags] == ["LORA250"]
    assert "Unknown initialization" in diags[0]["message"]


def test_suppression_silences_a_verified_finding_and_is_not_unused(tiny_model, script):
    model = tiny_model("gpt2")
    path = script(model, "LoraConfig(r=8, target_modules=['c_attn'], task_type='CAUSAL_LM')  # loralint: ignore[LORA251]")
    run = run_cli(["check", "--verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    found = run.json["diagnostics"]
    assert "LORA251" not in [d["code"] for d in found]
    assert not [d for d in found if d["code"] == "LORA903" and "LORA251" in d["message"]], found


def test_ignore_applies_to_verify_codes(tiny_model, script):
    path = script(tiny_model("gpt2"), "LoraConfig(r=8, target_modules=['c_attn'], task_type='CAUSAL_LM')")
    run = run_cli(["check", "--verify", "--ignore", "LORA251", "--output-format", "json", "--no-cache", path.name],
                  cwd=path.parent)
    assert "LORA251" not in [d["code"] for d in run.json["diagnostics"]]


def test_text_output_folds_modules(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=16, lora_alpha=32, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM')")
    run = verify(path, fmt="text")
    assert run.exit_code == 0, run.stdout
    out = run.stdout
    assert "model.layers.{i}.self_attn.q_proj" in out and "× 3" in out and "i=0-2" in out
    assert "counted by PEFT" in out and "scaling     2.0" in out
    assert run.stderr == ""  # no progress bar when stderr is not a terminal


def test_without_torch_verify_fails_with_one_line(tiny_model, script, monkeypatch):
    """Simulated: the import of torch fails as it would where loralint[verify] is not installed."""
    import loralint.verify.stack as verify_module

    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'", name="torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(verify_module, "_STACK", None)
    monkeypatch.setattr(builtins, "__import__", no_torch)
    for args in (["check", "--verify"], ["verify"]):
        run = run_cli([*args, "--no-cache", path.name], cwd=path.parent)
        assert run.exit_code == 2
        assert run.stderr.strip().count("\n") == 0
        assert "pip install 'loralint[verify]'" in run.stderr
        assert "torch" in run.stderr


def test_the_cli_does_not_import_the_heavy_libraries():
    code = (
        "import sys, loralint.cli, loralint.verify\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.strip() == "[]", out.stderr


def test_static_count_mismatch_is_reported_and_peft_wins(tiny_model, script, monkeypatch):
    """LORA253: a (simulated) wrong prediction of the knowledge base is reported as loralint's bug."""
    from types import SimpleNamespace

    from loralint import resolve

    def wrong_prediction(site, resolution, *_):
        resolution.advice = SimpleNamespace(trainable_params=1, total_params=2, matched_modules={"x": 1})

    monkeypatch.setattr(resolve, "attach_architecture", wrong_prediction)
    path = script(tiny_model("llama"), "LoraConfig(r=8, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    run = run_cli(["check", "--verify", "--output-format", "json", "--no-cache", "--select", "LORA253", path.name],
                  cwd=path.parent)
    (diag,) = run.json["diagnostics"]
    assert diag["code"] == "LORA253" and diag["severity"] == "info"
    assert "predicts 1 trainable of 2 parameters" in diag["message"] and "bug in loralint" in diag["message"]
    (config,) = run.json["configs"]
    assert config["trainable_params"] == 3 * 8 * (64 + 64)  # PEFT's number replaces the prediction


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "gemma2", "phi3", "gpt2", "gpt_neox", "falcon", "opt",
                                  "bloom"])
def test_static_prediction_agrees_with_peft(arch, tiny_model, script):
    """The knowledge base (what `check` says without --verify) against PEFT, on all-linear."""
    path = script(tiny_model(arch), "LoraConfig(r=8, target_modules='all-linear', task_type='CAUSAL_LM')")
    run = run_cli(["check", "--verify", "--output-format", "json", "--no-cache", "--select", "LORA253", path.name],
                  cwd=path.parent)
    assert run.json["diagnostics"] == []


def test_progress_bar_only_on_a_terminal(monkeypatch):
    import io

    import loralint.verify.capture as verify_module

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with verify_module._progress(True) as bar:
        assert bar.progress is not None
        bar.start(2)
        bar.describe("building llama")
        bar.advance()
    with verify_module._progress(False) as bar:  # JSON, SARIF, GitHub, LSP output
        assert bar.progress is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    with verify_module._progress(True) as bar:
        assert bar.progress is None
