"""What vLLM, the default serving engine of LORA412, serves of a LoRA adapter: facts shared by the rules
that mention serving (LORA203, LORA412)."""

from __future__ import annotations

# Model types whose vLLM class lists no embedding_modules, so LoRA on embed_tokens / lm_head is refused at
# load (vllm-project/vllm#32599; #33234 proposes adding them). Other families (Llama, Mistral) list them
# and serve it.
NO_EMBEDDING_LORA = frozenset({"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"})
