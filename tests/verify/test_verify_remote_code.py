"""A model whose architecture lives in its repository's code: nothing of it is imported or run
unless --trust-remote-code is given."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import FIXTURES
from helpers import run_cli, run_subprocess

pytestmark = pytest.mark.verify

REMOTE = FIXTURES / "verify-remote-code"


@pytest.fixture
def remote_script(tmp_path, script, monkeypatch):
    marker = tmp_path / "remote-code-ran"
    monkeypatch.setenv("LORALINT_REMOTE_CODE_MARKER", str(marker))
    path = script(REMOTE, "LoraConfig(r=8, target_modules=['q_proj', 'v_proj'], task_type='CAUSAL_LM')",
                  extra="# trust_remote_code=True in a real script")
    return path, marker


def _evil_modules() -> list[str]:
    return [m for m in sys.modules if "evil" in m or m.startswith("transformers_modules")]


def test_refused_without_the_flag_and_nothing_runs(remote_script):
    path, marker = remote_script
    before = set(_evil_modules())
    for args in (["verify", "--output-format", "json"], ["check", "--verify", "--output-format", "json"]):
        run = run_cli([*args, "--no-cache", path.name], cwd=path.parent)
        assert run.exit_code == 0, run.stdout
        found = [d for d in run.json["diagnostics"] if d["code"] == "LORA255"]
        assert len(found) == 1, run.stdout
        assert "--trust-remote-code" in found[0]["message"] and "configuration_evil.py" in found[0]["message"]
        assert not marker.exists(), "repository code was executed"
        assert set(_evil_modules()) == before, "repository code was imported"


def test_refused_in_a_fresh_process_too(remote_script, tmp_path):
    path, marker = remote_script
    env = {"LORALINT_REMOTE_CODE_MARKER": str(marker), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    run = run_subprocess(["verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent, env=env)
    assert run.exit_code == 0, run.stderr
    assert [d["code"] for d in json.loads(run.stdout)["diagnostics"]] == ["LORA255"]
    assert not marker.exists()
    assert not (tmp_path / "modules").exists()  # transformers did not even copy the code


def test_with_the_flag_the_repository_code_builds_the_model(remote_script, tmp_path):
    path, marker = remote_script
    env = {"LORALINT_REMOTE_CODE_MARKER": str(marker), "HF_MODULES_CACHE": str(tmp_path / "modules"),
           "HF_HUB_OFFLINE": "1"}
    run = run_subprocess(["verify", "--trust-remote-code", "--output-format", "json", "--no-cache", path.name],
                         cwd=path.parent, env=env)
    assert run.exit_code == 0, run.stderr
    config = json.loads(run.stdout)["configs"][0]
    assert config["status"] == "verified"
    assert config["trainable_params"] == 2 * 8 * (64 + 64) + 2 * 8 * (64 + 32)
    assert marker.read_text().splitlines() == ["configuration_evil.py was executed", "modeling_evil.py was executed"]


def test_unknown_model_type_without_auto_map(tmp_path, script):
    model = tmp_path / "mystery"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "mystery_arch_9000", "hidden_size": 64}))
    path = script(model, "LoraConfig(r=8, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    run = run_cli(["verify", "--output-format", "json", "--no-cache", path.name], cwd=path.parent)
    (diag,) = run.json["diagnostics"]
    assert diag["code"] == "LORA255"
    assert "does not know model_type 'mystery_arch_9000'" in diag["message"]
