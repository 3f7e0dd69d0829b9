"""QLoRA fine-tuning of Llama 3.1 8B on a local instruction set, then a merged checkpoint for serving."""

import torch
from datasets import load_dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, Trainer, TrainingArguments

BASE = "meta-llama/Llama-3.1-8B"

bnb_config = BitsAndBytesConfig(
    load_in_4bit=True,
    bnb_4bit_compute_dtype=torch.bfloat16,
    bnb_4bit_use_double_quant=True,
)
model = AutoModelForCausalLM.from_pretrained(BASE, quantization_config=bnb_config, device_map={"": 0})
tokenizer = AutoTokenizer.from_pretrained(BASE)

lora_config = LoraConfig(
    r=16,
    lora_alpha=32,
    lora_dropout=0.05,
    use_dora=True,
    target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    task_type="CAUSAL_LM",
)
model = get_peft_model(model, lora_config)

dataset = load_dataset("json", data_files="data/train.jsonl", split="train")
args = TrainingArguments(output_dir="out", per_device_train_batch_size=4, num_train_epochs=1, bf16=True)
trainer = Trainer(model=model, args=args, train_dataset=dataset)
trainer.train()

merged = model.merge_and_unload()
merged.save_pretrained("out/merged")
