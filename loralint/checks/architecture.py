"""LORA2xx checks that need the base model's architecture (filled in by issue 3)."""
