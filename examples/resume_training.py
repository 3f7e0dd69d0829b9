"""Start or resume LoRA fine-tuning from a saved adapter checkpoint (with three classic mistakes)."""

import os

from datasets import load_dataset
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

BASE = "meta-llama/Llama-3.2-1B"
CHECKPOINT = "out/llama-lora/checkpoint-1000"

tokenizer = AutoTokenizer.from_pretrained(BASE)
tokenizer.pad_token = tokenizer.eos_token

base = AutoModelForCausalLM.from_pretrained(BASE)
if os.path.isdir(CHECKPOINT):
    model = PeftModel.from_pretrained(base, CHECKPOINT)
else:
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    model = get_peft_model(base, config)

dataset = load_dataset("json", data_files="data/train.jsonl", split="train")
dataset = dataset.map(lambda row: tokenizer(row["text"], truncation=True, max_length=1024), remove_columns=["text"])

args = TrainingArguments(
    output_dir="out/llama-lora-resumed",
    per_device_train_batch_size=4,
    gradient_accumulation_steps=4,
    learning_rate=2e-4,
    num_train_epochs=1,
    bf16=True,
)
trainer = Trainer(
    model=model,
    args=args,
    train_dataset=dataset,
    data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    tokenizer=tokenizer,
)
trainer.train()
model.save_pretrained("out/llama-lora-resumed/final")
