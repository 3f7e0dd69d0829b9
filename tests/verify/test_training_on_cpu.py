"""The training facts LORA413 and LORA407 rest on, confirmed with real torch / transformers / peft on
the CPU: tiny models built from a config, nothing downloaded."""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers import run_cli

pytestmark = pytest.mark.verify


def _tiny_vit():
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                                    image_size=16, patch_size=8, num_labels=3)
    return transformers.ViTForImageClassification(config)


def _backward(model) -> None:
    import torch

    model.train()
    out = model(pixel_values=torch.randn(2, 3, 16, 16), labels=torch.tensor([0, 1]))
    out.loss.backward()


def _lora(model):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))


def test_reentrant_checkpointing_on_a_frozen_vision_base_raises_and_loralint_says_so(tmp_path):
    model = _lora(_tiny_vit())
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        _backward(model)

    # the same with the inputs given gradients, or non-reentrant: LoRA B gets a gradient
    for fix in ("inputs", "non_reentrant"):
        model = _lora(_tiny_vit())
        if fix == "inputs":
            model.enable_input_require_grads()
        reentrant = fix == "inputs"
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
        _backward(model)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)

    script = textwrap.dedent("""\
        from peft import LoraConfig, get_peft_model
        from transformers import ViTForImageClassification

        model = ViTForImageClassification.from_pretrained("google/vit-base-patch16-224-in21k")
        model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
        """)
    (tmp_path / "train.py").write_text(script)
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "LORA413", "train.py"], cwd=tmp_path)
    assert [d["line"] for d in run.json["diagnostics"]] == [6]


def test_reentrant_checkpointing_on_a_text_model_is_safe_in_transformers_5():
    """Why LORA413 leaves text models alone: checkpointing an input_ids model enables input grads."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model

    config = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                      num_key_value_heads=2, vocab_size=64)
    model = get_peft_model(transformers.LlamaForCausalLM(config), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    model.train()
    ids = torch.randint(0, 64, (2, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    assert any(p.grad is not None for n, p in model.named_parameters() if "lora_B" in n)


def test_adapter_resumed_without_is_trainable_has_nothing_to_train(tmp_path):
    from peft import PeftModel

    _lora(_tiny_vit()).save_pretrained(tmp_path / "adapter")
    frozen = PeftModel.from_pretrained(_tiny_vit(), tmp_path / "adapter")
    assert sum(p.numel() for p in frozen.parameters() if p.requires_grad) == 0
    resumed = PeftModel.from_pretrained(_tiny_vit(), tmp_path / "adapter", is_trainable=True)
    assert sum(p.numel() for p in resumed.parameters() if p.requires_grad) > 0
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
