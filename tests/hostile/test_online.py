"""--online where the Hub cannot be reached, or says no: one short try, one clear line, the run goes on.

Nothing here touches the real network: HF_ENDPOINT points at this machine, at a port where nothing
listens, a socket that never answers, or a small server that answers "no such repository"."""

from __future__ import annotations

import socket
import textwrap

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


def _no_such_repository(method: str, path: str):
    """What the Hub answers for a repository that does not exist (or is private)."""
    return 404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, b""


def test_a_model_the_hub_does_not_have_is_said_once_per_model(bounded, tmp_path, stand_in_hub):
    hub = stand_in_hub(_no_such_repository)
    _scripts(tmp_path, "acme/missing", "acme/missing", "acme/also-missing", "meta-llama/Llama-3.2-3B")
    run = bounded(["check", "--online", "--no-cache", "."], tmp_path,
                  env=_env(hub.url, HF_HUB_CACHE=str(tmp_path / "cache")), timeout=60)
    assert run.exit_code == 0 and not run.traceback, run.stderr
    # The index knows Llama-3.2-3B: resolved without the Hub, nothing to say about it.
    assert sorted(_warnings(run.stderr)) == [
        f"loralint: warning: --online: 'acme/{name}' was not resolved: no such repository on the Hugging Face "
        "Hub (or a private one: log in with hf auth login, or HF_TOKEN)"
        for name in ("also-missing", "missing")
    ]


# --- data set sizes from the Hub (LORA104), only with --online ------------------------------------
DATASET_SCRIPT = textwrap.dedent(
    """\
    from datasets import load_dataset
    from peft import LoraConfig
    train = load_dataset({name!r}, split="train")
    config = LoraConfig(r=8, lora_dropout=0.1, target_modules=["q_proj"], task_type="CAUSAL_LM")
    """
)
CARD = {  # what the Hub gives for a data set pushed with push_to_hub: dataset_info in the card
    "id": "acme/big-chat",
    "cardData": {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        "dataset_info": {"features": [{"name": "text", "dtype": "string"}],
                         "splits": [{"name": "train", "num_bytes": 1, "num_examples": 300_000},
                                    {"name": "test", "num_bytes": 1, "num_examples": 3_000}]},
    },
}


def _dataset_hub(method: str, path: str):
    if path.startswith("/api/datasets/acme/big-chat"):
        return 200, {}, CARD
    return _no_such_repository(method, path)


def _lora104(run) -> list[str]:
    return [line for line in run.stdout.splitlines() if "LORA104" in line]


def test_online_reads_split_sizes_from_the_data_sets_card_and_nothing_is_asked_without_it(bounded, tmp_path, stand_in_hub):
    hub = stand_in_hub(_dataset_hub)
    (tmp_path / "train.py").write_text(DATASET_SCRIPT.format(name="acme/big-chat"))
    env = _env(hub.url, HF_HUB_CACHE=str(tmp_path / "cache"), HF_DATASETS_CACHE=str(tmp_path / "datasets"))
    args = ["check", "--no-cache", "--fail-level", "info", "--no-show-source", "."]
    run = bounded(args, tmp_path, env=env, timeout=60)
    assert run.exit_code == 0 and not run.traceback and _lora104(run) == [], run.stdout + run.stderr
    assert hub.requests == []  # no --online: the Hub is never asked
    run = bounded(["check", "--online", "--select", "LORA101", *args[1:]], tmp_path, env=env, timeout=60)
    assert hub.requests == []  # --online, but no selected rule reads the size
    run = bounded(["check", "--online", *args[1:]], tmp_path, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=60)
    assert hub.requests == [] and _lora104(run) == []  # HF_HUB_OFFLINE=1 wins
    run = bounded([*args[:1], "--online", *args[1:]], tmp_path, env=env, timeout=60)
    assert run.exit_code == 1 and not run.traceback, run.stderr
    [line] = _lora104(run)
    assert ("lora_dropout=0.1 with 300,000 training examples (acme/big-chat, split sizes from the data set's card"
            " on the Hugging Face Hub (--online); load_dataset at line 3)") in line
    # one request, and nothing else: not huggingface_hub's daily /api/agent-harnesses telemetry fetch
    assert hub.requests == ["GET /api/datasets/acme/big-chat?expand=cardData"]
    assert _warnings(run.stderr) == []


def test_a_data_set_the_hub_does_not_have_is_one_line_and_the_rule_stays_quiet(bounded, tmp_path, stand_in_hub):
    hub = stand_in_hub(_dataset_hub)
    (tmp_path / "train.py").write_text(DATASET_SCRIPT.format(name="acme/gone"))
    run = bounded(["check", "--online", "--no-cache", "--fail-level", "info", "."], tmp_path,
                  env=_env(hub.url, HF_HUB_CACHE=str(tmp_path / "cache"), HF_DATASETS_CACHE=str(tmp_path / "d")), timeout=60)
    assert not run.traceback and _lora104(run) == [], run.stderr
    assert _warnings(run.stderr) == [("loralint: warning: --online: data set 'acme/gone' was not sized: no such repository"
                                      " on the Hugging Face Hub (or a private one: log in with hf auth login, or HF_TOKEN)")]


def test_an_unreachable_hub_is_one_line_for_models_and_data_sets(bounded, tmp_path, closed_port):
    (tmp_path / "train.py").write_text(
        SCRIPT.format(model="acme/first-model").replace("r=8,", "r=8, lora_dropout=0.1,")
        + "from datasets import load_dataset\ntrain = load_dataset('acme/big-chat', split='train')\n"
    )
    run = bounded(["check", "--online", "--no-cache", "--fail-level", "info", "."], tmp_path,
                  env=_env(closed_port, HF_HUB_CACHE=str(tmp_path / "cache"), HF_DATASETS_CACHE=str(tmp_path / "d")),
                  timeout=60)
    assert not run.traceback and _lora104(run) == [], run.stderr
    (line,) = _warnings(run.stderr)
    assert line.startswith(f"loralint: warning: --online: cannot reach the Hugging Face Hub at {closed_port} (")
    assert line.endswith("; not resolved: 'acme/first-model'; data sets not sized: 'acme/big-chat'")
