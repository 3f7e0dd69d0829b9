"""What the quantization rules claim about PEFT and transformers, confirmed on the CPU with a tiny model.

bitsandbytes is not installed here (and needs a GPU), so what is confirmed is the part PEFT and
transformers decide without it: what prepare_model_for_kbit_training does to an unquantized model,
that PEFT turns on input gradients only for an unquantized model (LORA404), that transformers 5
rejects the load_in_4bit keyword (LORA306), and that olora_init has a bitsandbytes path while
pissa_init refuses non-float weights (LORA301). Not confirmed here: the merge rounding of LORA405,
FSDP's uint8 flattening error (LORA307), DoRA's step time on a 4-bit base (LORA305).
"""

from __future__ import annotations

import inspect

import pytest

pytestmark = pytest.mark.verify

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    transformers.LlamaForCausalLM(config).save_pretrained(path)
    return path


def test_prepare_model_for_kbit_training_freezes_everything_and_upcasts_16bit_parameters(tiny_dir):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    prepared = peft.prepare_model_for_kbit_training(model)
    assert not any(p.requires_grad for p in prepared.parameters())  # why LORA401: after get_peft_model it freezes the adapter
    assert {p.dtype for p in prepared.parameters()} == {torch.float32}  # layer norms etc. to fp32
    # On a model that is not quantized it does not turn gradient checkpointing on: that part needs k-bit.
    assert not prepared.is_gradient_checkpointing


def test_peft_enables_input_gradients_only_for_unquantized_models(tiny_dir):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir)
    model.gradient_checkpointing_enable()  # PEFT prepares input gradients for a checkpointed model
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    peft_model = peft.get_peft_model(model, config)
    embeddings = peft_model.get_input_embeddings()
    out = embeddings(torch.tensor([[1, 2, 3]]))
    assert out.requires_grad  # PEFT's hook on an unquantized base
    # ...and the source that skips it for a quantized one (LORA404's premise).
    source = inspect.getsource(peft.PeftModel._prepare_model_for_gradient_checkpointing)
    assert "is_loaded_in_4bit" in source and "enable_input_require_grads" in source


@pytest.mark.parametrize("keyword", ["load_in_4bit", "load_in_8bit"])
def test_transformers_5_rejects_the_kbit_keywords(tiny_dir, keyword):
    if int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip("transformers 4.x accepted the keyword with a deprecation warning")
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{keyword}'"):
        transformers.AutoModelForCausalLM.from_pretrained(tiny_dir, **{keyword: True})


def test_olora_has_a_bitsandbytes_path_and_pissa_refuses_non_float_weights():
    from peft.tuners.lora.layer import LoraLayer

    olora = inspect.getsource(LoraLayer.olora_init)
    assert "get_bnb_param_type" in olora and "dequantize_module_weight" in olora
    pissa = inspect.getsource(LoraLayer.pissa_init)
    assert "Please initialize PiSSA under float32, float16, or bfloat16" in pissa
    assert "dequantize" not in pissa
