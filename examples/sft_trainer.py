"""Supervised fine-tuning of Llama 3.2 3B with PEFT + TRL (a typical tutorial script)."""

from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

MODEL_ID = "meta-llama/Llama-3.2-3B"

tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
model = AutoModelForCausalLM.from_pretrained(MODEL_ID, dtype="bfloat16")
dataset = load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft[:150000]")

# The rank was raised from 16 to 64, the alpha kept from the old recipe.
peft_config = LoraConfig(
    r=64,
    lora_alpha=16,
    lora_dropout=0.1,
    bias="all",
    target_modules="all-linear",
)

trainer = SFTTrainer(
    model=model,
    args=SFTConfig(output_dir="llama-3.2-3b-sft", num_train_epochs=1, learning_rate=2e-4),
    train_dataset=dataset,
    processing_class=tokenizer,
    peft_config=peft_config,
)
trainer.train()
