"""A checked repository's settings may narrow what loralint does, never widen what it touches:
network use comes from the user (--online, LORALINT_ONLINE, the user-level config), never from a
pyproject.toml or .loralint.toml that came with a clone.

A local stand-in for the Hugging Face Hub (HF_ENDPOINT) records every request and serves a tiny
config.json: whether loralint went online is read from the server, and from where the run says the
model came from."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest

CONFIG = json.dumps({
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 100,
}).encode()
TRAIN = """\
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("acme/tiny-model")
model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"], task_type="CAUSAL_LM"))
"""
NOTE = "`online` is ignored in repository settings; pass --online or set LORALINT_ONLINE=1"


class _Hub(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def _answer(self, body: bool) -> None:
        type(self).requests.append(self.path)
        if not self.path.endswith("/config.json"):
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", '"0123"')
        self.send_header("X-Repo-Commit", "a" * 40)
        self.send_header("Content-Length", str(len(CONFIG)))
        self.end_headers()
        if body:
            self.wfile.write(CONFIG)

    def do_HEAD(self) -> None:
        self._answer(False)

    def do_GET(self) -> None:
        self._answer(True)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def run(hub, bounded, tmp_path):
    """run(project, *args, env=...) → (Bounded, the configs of the JSON report, paths the Hub was asked for)."""

    def _run(project: Path, *args: str, env: dict | None = None, expect: int = 0):
        _Hub.requests.clear()
        full_env = {
            "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_port}", "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
            "XDG_CONFIG_HOME": str(tmp_path / "user-config"), "XDG_CACHE_HOME": str(tmp_path / "user-cache"),
            "LORALINT_ONLINE": "", **(env or {}),
        }
        result = bounded(["check", "--no-cache", "--output-format", "json", *args, "."], cwd=project, env=full_env)
        assert not result.traceback, result.stderr
        assert result.exit_code == expect, result.stderr
        configs = json.loads(result.stdout)["configs"] if expect != 2 else []
        return result, configs, list(_Hub.requests)

    return _run


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "clone"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    return root


@pytest.mark.parametrize("settings_file", ["pyproject.toml", ".loralint.toml", "--config"])
def test_repository_settings_cannot_turn_the_network_on(run, project, settings_file):
    if settings_file == "pyproject.toml":
        (project / "pyproject.toml").write_text("[project]\nname = 'x'\n\n[tool.loralint]\nonline = true\n")
        args = ()
    else:
        (project / ".loralint.toml").write_text("online = true\n")
        args = ("--config", ".loralint.toml") if settings_file == "--config" else ()
    result, [config], requests = run(project, *args)
    assert requests == []
    assert config["resolved_from"] != "the Hugging Face Hub" and config["trainable_params"] is None
    name = "pyproject.toml" if settings_file == "pyproject.toml" else ".loralint.toml"
    assert result.stderr.strip() == f"loralint: warning: {name}: {NOTE}"


def test_a_repository_model_setting_does_not_go_online_either(run, project):
    (project / ".loralint.toml").write_text('online = true\nmodel = "acme/tiny-model"\n')
    result, _, requests = run(project, expect=2)
    assert requests == []
    assert "--online fetches it from the Hugging Face Hub" in result.stderr


@pytest.mark.parametrize("how", ["--online", "LORALINT_ONLINE=1", "user config"])
def test_the_user_can_still_allow_the_network(run, project, tmp_path, how):
    (project / "pyproject.toml").write_text("[tool.loralint]\nonline = false\n")
    args, env = (), {}
    if how == "--online":
        args = ("--online",)
    elif how == "LORALINT_ONLINE=1":
        env = {"LORALINT_ONLINE": "1"}
    else:
        user = tmp_path / "user-config" / "loralint"
        user.mkdir(parents=True)
        (user / "loralint.toml").write_text("online = true\n")
    result, [config], requests = run(project, *args, env=env)
    assert "/acme/tiny-model/resolve/main/config.json" in requests
    assert config["resolved_from"] == "the Hugging Face Hub" and config["trainable_params"] == 2 * 8 * (64 + 64)
    assert result.stderr.strip() == ""


@pytest.mark.parametrize("how", ["LORALINT_ONLINE=0", "HF_HUB_OFFLINE=1"])
def test_the_user_can_keep_it_off(run, project, tmp_path, how):
    user = tmp_path / "user-config" / "loralint"
    user.mkdir(parents=True)
    (user / "loralint.toml").write_text("online = true\n")
    name, value = how.split("=")
    _, [config], requests = run(project, env={name: value})
    assert requests == [] and config["resolved_from"] != "the Hugging Face Hub"


@pytest.mark.parametrize("problem, message", [
    ("LORALINT_ONLINE=maybe", "LORALINT_ONLINE='maybe': expected 1 or 0"),
    ("user config: online = 'yes'", 'online: must be true or false, not "yes"'),
    ("user config: select = ['LORA1']",
     "select: unknown setting (the user-level config takes online, max-file-size, max-data-file-size)"),
    ("user config: max-file-size = 'lots'", "max-file-size: 'lots' is not a size"),
])
def test_a_malformed_user_setting_is_a_usage_error(run, project, tmp_path, problem, message):
    env = {}
    if problem.startswith("LORALINT_ONLINE"):
        env = {"LORALINT_ONLINE": "maybe"}
    else:
        user = tmp_path / "user-config" / "loralint"
        user.mkdir(parents=True)
        (user / "loralint.toml").write_text(problem.split(": ", 1)[1].replace("'", '"') + "\n")
    result, _, requests = run(project, env=env, expect=2)
    assert message in result.stderr and requests == []


BIG = "from peft import LoraConfig\nconfig = LoraConfig(r=8, lora_alpha=0)\n" + "# padding\n" * 1_100_000  # ~11 MB


def test_a_repository_may_lower_the_size_limit_but_only_the_user_may_raise_it(bounded, project, tmp_path):
    (project / "big.py").write_text(BIG)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "user-config"), "LORALINT_ONLINE": ""}
    (project / ".loralint.toml").write_text('max-file-size = "1 GB"\n')
    result = bounded(["check", "--no-cache", "--output-format", "json", "big.py"], cwd=project, env=env)
    assert [d["code"] for d in json.loads(result.stdout)["diagnostics"]] == ["LORA905"]
    assert "`max-file-size` above 10 MB is ignored in repository settings" in result.stderr

    user = tmp_path / "user-config" / "loralint"
    user.mkdir(parents=True)
    (user / "loralint.toml").write_text('max-file-size = "20 MB"\n')
    result = bounded(["check", "--no-cache", "--output-format", "json", "big.py"], cwd=project, env=env)
    assert "LORA905" not in [d["code"] for d in json.loads(result.stdout)["diagnostics"]], result.stdout

    (project / ".loralint.toml").write_text('max-file-size = "1 KB"\n')  # lowering is the repository's right
    result = bounded(["check", "--no-cache", "--output-format", "json", "big.py"], cwd=project, env=env)
    assert "larger than max-file-size (1 KB)" in result.stdout
