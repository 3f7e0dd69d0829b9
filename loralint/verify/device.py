"""One training step with random weights on a real device (--device): peak memory."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any

from loralint.verify.capture import _quiet_transformers
from loralint.verify.memory import Available, available_memory, cpu_step_refusal, step_needs
from loralint.verify.plan import _DATA_DEPENDENT_INITS
from loralint.verify.stack import Stack

if TYPE_CHECKING:  # the runner imports this module
    from loralint.verify.runner import _Job, _Verifier


def cpu_refusal(verifier: _Verifier, job: _Job, config: Any,
                available: Available | None = None) -> dict[str, Any] | None:
    """Before any real tensor: when the step's estimated needs do not fit in the memory this process
    can get, the device entry that says why (the kernel would kill the run instead, much later)."""
    rep = job.report
    if _quantization(job) or config is None or rep.total is None:
        return None  # a quantized step needs CUDA: measure_step says so without building
    needs = step_needs(config, rep.total, rep.trainable or 0, 4, "float32", verifier.batch_size, verifier.seq_len)
    available = available if available is not None else available_memory()
    reason = cpu_step_refusal(needs, available)
    if reason is None:
        return None
    return {"device": "cpu", "skipped": reason, "needed_bytes": needs.total,
            "available_bytes": available.bytes if available else None}


def _quantization(job: _Job) -> str | None:
    quant = job.report.site.hints.quantization
    return quant if quant in ("4bit", "8bit") else None


def measure_step(verifier: _Verifier, job: _Job, device: str) -> dict[str, Any]:
    """Random weights on `device`, the same LoraConfig, one forward+backward at --seq-len and
    --batch-size; on CUDA the peak memory (torch.cuda.max_memory_allocated)."""
    torch, peft = verifier.stack.torch, verifier.stack.peft
    site = job.report.site
    quant = _quantization(job)
    if quant and device != "cuda":  # before building: a CPU model of this size may take minutes
        raise RuntimeError(f"{quant} quantization (bitsandbytes) needs a CUDA device")
    bnb_config = site.hints.bnb_config or {}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.empty_cache()
        base_memory = torch.cuda.memory_allocated()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    else:
        base_memory = 0
        dtype = torch.float32
    if quant:
        compute = _torch_dtype(torch, bnb_config.get("bnb_4bit_compute_dtype")) or dtype
        dtype = compute
    start = time.perf_counter()
    with _quiet_transformers(verifier.stack):
        model = verifier.build(job, device=device, dtype=dtype)
        if quant:
            _quantize_bnb(verifier.stack, model, quant, bnb_config, dtype)
        weights = (torch.cuda.memory_allocated() - base_memory) if device == "cuda" else None
        kwargs = dict(job.kwargs)
        init = kwargs.get("init_lora_weights")
        if isinstance(init, str) and init.lower().startswith(_DATA_DEPENDENT_INITS):
            kwargs["init_lora_weights"] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peft_model = peft.get_peft_model(model, peft.LoraConfig(**kwargs))
        peft_model.train()
        batch = _dummy_batch(torch, peft_model, job.class_name, device, verifier.batch_size, verifier.seq_len)
        loss = _loss(torch, peft_model(**batch))
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    out: dict[str, Any] = {
        "device": device if device != "cuda" else f"cuda ({torch.cuda.get_device_name()})",
        "dtype": str(dtype).replace("torch.", ""),
        "quantization": quant,
        "seq_len": verifier.seq_len,
        "batch_size": verifier.batch_size,
        "seconds": round(seconds, 3),
        "loss_finite": bool(torch.isfinite(loss.detach()).item()),
    }
    if device == "cuda":
        out["weights_bytes"] = int(weights or 0)
        out["peak_bytes"] = int(torch.cuda.max_memory_allocated() - base_memory)
        out["note"] = "one forward+backward step, no optimizer state, no gradient checkpointing"
    del peft_model, model, loss, batch
    return out


def _torch_dtype(torch, value: Any):
    if value is None:
        return None
    name = str(value).replace("torch.", "")
    found = getattr(torch, name, None)
    return found if isinstance(found, torch.dtype) else None


def _quantize_bnb(stack: Stack, model, quant: str, bnb_config: dict[str, Any], compute_dtype) -> None:
    """Swap every nn.Linear but the output layer for a bitsandbytes layer holding the same random
    weights, as from_pretrained(quantization_config=...) would (transformers' bnb integration),
    and mark the model as loaded in k-bit so PEFT dispatches its bnb LoRA layers."""
    try:
        import bitsandbytes as bnb
    except ImportError:
        raise RuntimeError("QLoRA measurement needs bitsandbytes (pip install bitsandbytes)") from None
    torch = stack.torch
    skip = set(bnb_config.get("llm_int8_skip_modules") or [])
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    for name, module in list(model.named_modules()):
        if not isinstance(module, torch.nn.Linear) or module is output or name.rsplit(".", 1)[-1] in skip:
            continue
        parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
        has_bias = module.bias is not None
        if quant == "4bit":
            new = bnb.nn.Linear4bit(
                module.in_features, module.out_features, bias=has_bias, compute_dtype=compute_dtype,
                compress_statistics=bool(bnb_config.get("bnb_4bit_use_double_quant", False)),
                quant_type=str(bnb_config.get("bnb_4bit_quant_type", "fp4")), device="meta",
            )
            new.weight = bnb.nn.Params4bit(module.weight.data.to("cpu"), requires_grad=False,
                                           quant_type=str(bnb_config.get("bnb_4bit_quant_type", "fp4")))
        else:
            new = bnb.nn.Linear8bitLt(module.in_features, module.out_features, bias=has_bias,
                                      has_fp16_weights=False, threshold=float(bnb_config.get("llm_int8_threshold", 6.0)),
                                      device="meta")
            new.weight = bnb.nn.Int8Params(module.weight.data.to("cpu"), requires_grad=False, has_fp16_weights=False)
        if has_bias:
            new.bias = torch.nn.Parameter(module.bias.data, requires_grad=False)
        setattr(parent, name.rsplit(".", 1)[-1], new.to("cuda"))
        del module
    model.is_loaded_in_4bit = quant == "4bit"
    model.is_loaded_in_8bit = quant == "8bit"
    torch.cuda.empty_cache()


def _dummy_batch(torch, peft_model, cls: str, device: str, batch_size: int, seq_len: int) -> dict[str, Any]:
    config = peft_model.get_base_model().config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab = int(getattr(text, "vocab_size", None) or 1000)
    ids = torch.randint(0, max(vocab - 1, 1), (batch_size, seq_len), device=device)
    batch: dict[str, Any] = {"input_ids": ids}
    if cls.endswith(("SequenceClassification",)):
        batch["labels"] = torch.zeros(batch_size, dtype=torch.long, device=device)
    elif cls.endswith("TokenClassification"):
        batch["labels"] = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
    elif cls.endswith("QuestionAnswering"):
        batch["start_positions"] = torch.zeros(batch_size, dtype=torch.long, device=device)
        batch["end_positions"] = torch.zeros(batch_size, dtype=torch.long, device=device)
    elif cls != "AutoModel" and not cls.endswith("Model"):
        batch["labels"] = ids
        if getattr(config, "is_encoder_decoder", False):
            batch["decoder_input_ids"] = ids  # not every config names a decoder_start_token_id
    return batch


def _loss(torch, output):
    loss = getattr(output, "loss", None)
    if loss is not None:
        return loss
    first = output[0] if isinstance(output, (tuple, list)) else next(iter(output.values()))
    return first.float().mean()
