"""--device: one training step with random weights on a real device. On CUDA it reports the peak
GPU memory; without a GPU it says so and the rest of the run is unchanged."""

from __future__ import annotations

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
def test_without_a_gpu_the_measurement_is_skipped_cleanly(device, tiny_model, script):
    path = script(tiny_model("llama"), "LoraConfig(r=4, target_modules=['q_proj'], task_type='CAUSAL_LM')")
    run = run_verify(path, "--device", device)
    assert run.exit_code == 0, run.stdout
    report = run.json
    assert report["configs"][0]["status"] == "verified"
    assert "skipped" in report["configs"][0]["device"]
    assert any("no CUDA device" in note for note in report["notes"])
    text = run_cli(["verify", "--no-cache", "--device", device, path.name], cwd=path.parent)
    assert "no CUDA device" in text.stdout and text.exit_code == 0


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
