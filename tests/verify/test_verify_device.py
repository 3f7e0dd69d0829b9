"""--device: one training step with random weights on a real device. On CUDA it reports the peak
GPU memory; without a GPU it says so once and the rest of the run is unchanged. On the CPU, a step
that cannot fit in the memory the process can get is refused before any tensor is built."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from helpers import run_cli

pytestmark = pytest.mark.verify

NO_CUDA = not torch.cuda.is_available()


def run_verify(path, *args):
    return run_cli(["verify", "--output-format", "json", "--no-cache", *args, path.name], cwd=path.parent)


@pytest.mark.parametrize("arch, loader, source", [
    ("llama", "AutoModelForCausalLM", "LoraConfig(r=4, target_modules='all-linear', task_type='CAUSAL_LM')"),
    ("t5", "AutoModelForSeq2SeqLM", "LoraConfig(r=4, target_modules=['q', 'v'], task_type='SEQ_2_SEQ_LM')"),
    ("bert", "AutoModelForSequenceClassification", "LoraConfig(r=4, target_modules=['query'], task_type='SEQ_CLS')"),
])
def test_cpu_step_runs_forward_and_backward(arch, loader, source, tiny_model, script):
    path = script(tiny_model(arch), source, loader=loader)
    run = run_verify(path, "--device", "cpu", "--seq-len", "8", "--batch-size", "2")
    (config,) = run.json["configs"]
    device = config["device"]
    assert device["device"] == "cpu" and "error" not in device, device
    assert device["loss_finite"] is True
    assert (device["seq_len"], device["batch_size"]) == (8, 2)
    assert config["status"] == "verified"


@pytest.mark.skipif(not NO_CUDA, reason="checks the message shown where there is no GPU")
@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_without_a_gpu_the_measurement_is_skipped_once_and_nothing_suggests_it_ran(device, tiny_model, script):
    model = tiny_model("llama")
    path = script(model, "LoraConfig(r=4, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    script(model, "LoraConfig(r=8, target_modules=['v_proj'], task_type='CAUSAL_LM')", name="second.py")
    run = run_cli(["verify", "--output-format", "json", "--no-cache", "--device", device, "."], cwd=path.parent)
    assert run.exit_code == 0, run.stdout
    report = run.json
    assert [c["status"] for c in report["configs"]] == ["verified", "verified"]
    assert all(set(c["device"]) == {"device", "skipped"} for c in report["configs"])
    assert len([n for n in report["notes"] if "no CUDA device" in n]) == 1
    text = run_cli(["verify", "--no-cache", "--device", device, "."], cwd=path.parent)
    assert text.exit_code == 0
    assert text.stdout.count("no CUDA device") == 1, text.stdout
    assert "\n  device " not in text.stdout and "peak" not in text.stdout and "training step" not in text.stdout
    check = run_cli(["check", "--verify", "--no-cache", "--device", device, "."], cwd=path.parent)
    assert check.stderr.count("no CUDA device") == 1 and "peak" not in check.stdout + check.stderr


def test_a_cpu_step_that_cannot_fit_is_refused_before_building_it(tiny_model, script):
    # About 1 TiB of float32 weights: more than any machine's MemAvailable. On the meta device it
    # costs nothing; built on the CPU the kernel would kill the run instead of an answer.
    model = tiny_model("llama", hidden_size=65536, intermediate_size=262144, num_hidden_layers=4,
                       num_attention_heads=64, num_key_value_heads=64)
    path = script(model, "LoraConfig(r=4, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    run = run_verify(path, "--device", "cpu")
    assert run.exit_code == 0, run.stdout  # LORA256 is info: the counts were verified on the meta device
    (config,) = run.json["configs"]
    assert config["status"] == "verified" and config["trainable_params"] == 4 * 4 * (65536 + 65536)
    device = config["device"]
    assert device["needed_bytes"] > device["available_bytes"] and device["needed_bytes"] > 2**40
    (diag,) = [d for d in run.json["diagnostics"] if d["code"] == "LORA256"]
    assert diag["message"].startswith("the --device cpu step was not run: it needs about 10")  # 1,056 GiB
    assert "is available (" in diag["message"] and "--seq-len" in diag["message"]
    text = run_cli(["verify", "--no-cache", "--device", "cpu", path.name], cwd=path.parent)
    assert text.stdout.count("the --device cpu step was not run") == 1
    assert "one training step" not in text.stdout and "  device " not in text.stdout


def _run_limited(args: list[str], cwd, address_space_mb: int) -> tuple[int, str, str, float]:
    """The real CLI in a process under RLIMIT_AS: (exit code, stdout, stderr, peak RSS in MiB).
    The peak comes from wait4, as verify leaves through os._exit (no teardown to run code in)."""
    size = address_space_mb * 2**20
    code = (f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({size}, {size})); "
            "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); from loralint.cli import main; main()")
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    # One thread pool and few malloc arenas: the address space the imports take does not grow with the cores.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}
    env.pop("FORCE_COLOR", None)
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, stdout=o, stderr=e, env=env)
        guard = threading.Timer(300, proc.kill)  # a hang fails the test by its status, not by a timing
        guard.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            guard.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, out.read_text(), err.read_text(), usage.ru_maxrss / 1024


def _mem_available() -> int:
    meminfo = Path("/proc/meminfo")
    for line in (meminfo.read_text(encoding="ascii") if meminfo.exists() else "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.skipif(not sys.platform.startswith("linux") or _mem_available() < 4 * 2**30,
                    reason="needs Linux with more free memory than the 3 GiB limit the test sets")
def test_a_cpu_step_over_the_address_space_limit_is_refused_with_small_memory(tiny_model, script):
    # 668M parameters: 2.5 GiB of float32 weights, more than a 3 GiB address space leaves after
    # torch, transformers and peft are imported.
    model = tiny_model("llama", hidden_size=2048, intermediate_size=8192, num_hidden_layers=8,
                       num_attention_heads=16, num_key_value_heads=16, vocab_size=32000)
    path = script(model, "LoraConfig(r=4, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    code, stdout, stderr, peak_mb = _run_limited(["verify", "--no-cache", "--device", "cpu", path.name],
                                                  path.parent, 3072)
    assert code == 0, stdout + stderr
    assert "Traceback" not in stderr and "MemoryError" not in stdout + stderr
    assert "LORA256 [info] the --device cpu step was not run: it needs about" in stdout
    assert "is available (the address-space limit, ulimit -v 3145728)" in stdout
    assert peak_mb < 1500, peak_mb  # the imports only: no 2.5 GiB of weights was ever allocated


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_gpu_peak_memory_is_measured(tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=4, target_modules='all-linear', task_type='CAUSAL_LM')")
    run = run_verify(path, "--device", "cuda", "--seq-len", "64")
    device = run.json["configs"][0]["device"]
    assert "error" not in device, device
    assert device["peak_bytes"] >= device["weights_bytes"] > 0
    assert device["loss_finite"] is True


@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA GPU")
def test_gpu_qlora_step_with_bitsandbytes(tiny_model, script):
    pytest.importorskip("bitsandbytes")
    path = script(
        tiny_model("llama"),
        "LoraConfig(r=4, target_modules='all-linear', task_type='CAUSAL_LM')",
        extra="from transformers import BitsAndBytesConfig\nbnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_compute_dtype='bfloat16')",
    )
    source = path.read_text().replace(".from_pretrained(", ".from_pretrained(quantization_config=bnb, pretrained_model_name_or_path=")
    path.write_text(source)
    run = run_verify(path, "--device", "cuda", "--seq-len", "64")
    device = run.json["configs"][0]["device"]
    assert device.get("quantization") == "4bit", device
    assert "error" not in device, device
