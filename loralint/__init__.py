"""loralint: a static linter and advisor for LoRA / QLoRA fine-tuning configurations."""

__version__ = "0.1.0"
