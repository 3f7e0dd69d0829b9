"""A training script driven by command-line options; the defaults are what runs in CI."""

import argparse

from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForCausalLM


def parse_args():
    parser = argparse.ArgumentParser(description="LoRA fine-tune")
    parser.add_argument("--model_name_or_path", default="Qwen/Qwen2.5-7B")
    parser.add_argument("--lora_r", type=int, default=128)
    parser.add_argument("--lora_alpha", type=int, default=16)
    parser.add_argument("--lora_dropout", type=float, default=0.5)
    return parser.parse_args()


def main():
    args = parse_args()
    model = AutoModelForCausalLM.from_pretrained(args.model_name_or_path)
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=["q_proj", "v_proj"],
        task_type=TaskType.CAUSAL_LM,
    )
    model = get_peft_model(model, config)
    model.print_trainable_parameters()


if __name__ == "__main__":
    main()
