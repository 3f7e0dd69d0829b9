"""--online where the Hub cannot be reached, or says no: one short try, one clear line, the run goes on.

Nothing here touches the real network: HF_ENDPOINT points at this machine, at a port where nothing
listens, a socket that never answers, or a small server that answers "no such repository"."""

from __future__ import annotations

import socket
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SCRIPT = textwrap.dedent(
    """\
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model
    model = AutoModelForCausalLM.from_pretrained({model!r})
    model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    """
)


def _scripts(tmp_path, *models: str) -> None:
    for n, model in enumerate(models):
        (tmp_path / f"train{n}.py").write_text(SCRIPT.format(model=model))


def _env(endpoint: str, **extra: str) -> dict[str, str]:
    # HF_HUB_OFFLINE empty: online allowed; an empty cache: nothing resolves without the Hub.
    return {"HF_HUB_OFFLINE": "", "HF_ENDPOINT": endpoint, **extra}


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there: the connection is refused


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_unreachable_hub_is_one_line_naming_each_unresolved_model(bounded, tmp_path, closed_port):
    _scripts(tmp_path, "acme/first-model", "acme/second-model", "acme/first-model")
    run = bounded(["check", "--online", "--no-cache", "."], tmp_path,
                  env=_env(closed_port, HF_HUB_CACHE=str(tmp_path / "cache")), timeout=60)
    assert run.exit_code == 0, run.stderr
    assert not run.traceback and "Retrying" not in run.stderr
    (line,) = _warnings(run.stderr)
    assert line.startswith(f"loralint: warning: --online: cannot reach the Hugging Face Hub at {closed_port} (")
    assert line.endswith("not resolved: 'acme/first-model', 'acme/second-model'")


def test_a_hub_that_never_answers_costs_one_short_timeout(bounded, tmp_path):
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        _scripts(tmp_path, "acme/first-model", "acme/second-model")
        # A bound on a hang, not a measurement: huggingface_hub's own retries take minutes here.
        run = bounded(["check", "--online", "--no-cache", "."], tmp_path,
                      env=_env(endpoint, HF_HUB_CACHE=str(tmp_path / "cache")), timeout=60)
    assert run.exit_code == 0 and not run.traceback, run.stderr
    (line,) = _warnings(run.stderr)
    assert "cannot reach the Hugging Face Hub" in line and "imeout" in line, line
    assert "'acme/first-model', 'acme/second-model'" in line


def test_model_option_online_without_a_hub_exits_2_with_one_line(bounded, tmp_path, closed_port):
    _scripts(tmp_path, "acme/first-model")
    run = bounded(["check", "--online", "--no-cache", "--model", "acme/other", "."], tmp_path,
                  env=_env(closed_port, HF_HUB_CACHE=str(tmp_path / "cache")), timeout=60)
    assert run.exit_code == 2 and not run.traceback
    (line,) = _warnings(run.stderr)
    assert line.startswith("loralint: error: --model 'acme/other': no config.json found")
    assert "not from the Hub either: cannot reach the Hugging Face Hub" in line


class _NoSuchRepository(BaseHTTPRequestHandler):
    """What the Hub answers for a repository that does not exist (or is private)."""

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args) -> None:
        pass


def test_a_model_the_hub_does_not_have_is_said_once_per_model(bounded, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoSuchRepository)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _scripts(tmp_path, "acme/missing", "acme/missing", "acme/also-missing", "meta-llama/Llama-3.2-3B")
        run = bounded(["check", "--online", "--no-cache", "."], tmp_path,
                      env=_env(f"http://127.0.0.1:{server.server_address[1]}", HF_HUB_CACHE=str(tmp_path / "cache")),
                      timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert run.exit_code == 0 and not run.traceback, run.stderr
    # The index knows Llama-3.2-3B: resolved without the Hub, nothing to say about it.
    assert sorted(_warnings(run.stderr)) == [
        f"loralint: warning: --online: 'acme/{name}' was not resolved: no such repository on the Hugging Face "
        "Hub (or a private one: log in with hf auth login, or HF_TOKEN)"
        for name in ("also-missing", "missing")
    ]
