"""QLoRA on Mistral 7B in 4-bit, the way many notebooks write it."""

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

BASE = "mistralai/Mistral-7B-v0.1"

bnb_config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)
model = AutoModelForCausalLM.from_pretrained(BASE, quantization_config=bnb_config, device_map="auto")

lora = LoraConfig(
    r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    target_modules="q_proj,k_proj,v_proj,o_proj",
    task_type="CAUSAL",
)
model = get_peft_model(model, lora)
model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
model.print_trainable_parameters()
