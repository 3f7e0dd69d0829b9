"""Memory for a --device cpu step: what it will need, and what this process can still get.

A step on real tensors that does not fit is killed by the kernel (no message, minutes lost):
loralint compares the step's needs with the tightest limit it can read and refuses before
building anything when they do not fit. The limits are read on Linux; elsewhere nothing is
known and the step runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30

# cgroup v1 writes "no limit" as a page-rounded 2**63; anything this large is no limit.
_UNLIMITED = 2**60


@dataclass(frozen=True, slots=True)
class Available:
    bytes: int
    source: str  # where the figure comes from, for the message


@dataclass(frozen=True, slots=True)
class StepNeeds:
    """About what one forward+backward step takes: the weights and gradients exactly, the activations
    as the tensors autograd keeps (never less than that, for a standard decoder)."""

    weights: int  # every parameter (base and adapter) at the materialised dtype
    gradients: int  # the trainable parameters' gradients
    activations: int  # tensors kept for the backward pass
    dtype: str
    tokens: str  # "batch × seq_len"

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.activations

    def describe(self) -> str:
        return (f"weights {gib(self.weights)} in {self.dtype}, gradients {gib(self.gradients)}, "
                f"activations {gib(self.activations)} for {self.tokens} tokens")


def gib(n: int) -> str:
    """A size as people read it: 12.1 GiB, 96 MiB."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{max(n, 0) / 2**20:.0f} MiB"


def step_needs(config: Any, total_params: int, trainable_params: int, itemsize: int, dtype: str,
               batch_size: int, seq_len: int) -> StepNeeds:
    """What a training step of this model needs. Activations, per token: in each layer what the
    backward pass keeps with frozen base weights (the inputs of the two norms, the attention's
    query, key, value and output: 4 × hidden; the gated MLP's activation input and both operands of
    its product: 3 × intermediate), and the logits (kept, their log-softmax, their gradient:
    3 × vocabulary); attention scores are left out (a fused kernel does not keep them)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = _int(text, "hidden_size", "d_model", "n_embd")
    layers = _int(text, "num_hidden_layers", "num_layers", "n_layer")
    inner = _int(text, "intermediate_size", "d_ff", "n_inner", "ffn_dim") or (4 * hidden if hidden else None)
    vocab = _int(text, "vocab_size") or 0
    tokens = batch_size * seq_len
    activations = 0
    if hidden and layers:
        if getattr(config, "is_encoder_decoder", False):
            layers += _int(text, "num_decoder_layers") or layers
        activations = tokens * (layers * (4 * hidden + 3 * (inner or 0)) + 3 * vocab) * itemsize
    return StepNeeds(total_params * itemsize, trainable_params * itemsize, activations, dtype,
                     f"{batch_size} × {seq_len}")


def _int(config: Any, *names: str) -> int | None:
    for name in names:
        try:
            value = getattr(config, name, None)
        except Exception:  # noqa: BLE001 - a config property may raise on a partial config
            value = None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def available_memory() -> Available | None:
    """The tightest of: MemAvailable, the address-space limit (ulimit -v) less what the process
    already maps, the cgroup memory limit less its usage. None where none can be read."""
    found = [a for a in (_meminfo(), _address_space(), *_cgroups()) if a is not None]
    return min(found, key=lambda a: a.bytes) if found else None


def _read(path: str | Path) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read(1 << 16)  # pseudo files: small, but never read without a bound
    except OSError:
        return None


def _field_kb(text: str | None, name: str) -> int | None:
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        if key == name:
            parts = rest.split()
            if parts and parts[0].isdigit():
                return int(parts[0]) * 1024
    return None


def _meminfo() -> Available | None:
    value = _field_kb(_read("/proc/meminfo"), "MemAvailable")
    return Available(value, "MemAvailable in /proc/meminfo") if value is not None else None


def _address_space() -> Available | None:
    try:
        import resource
    except ImportError:  # not Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    mapped = _field_kb(_read("/proc/self/status"), "VmSize") or 0
    return Available(max(soft - mapped, 0), f"the address-space limit, ulimit -v {soft // 1024}")


def _cgroups() -> list[Available]:
    """Each memory cgroup this process is in, and its ancestors: limit less usage (page cache that
    can be dropped, inactive_file, counts as free)."""
    out = []
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            root, limit_file, usage_file, cache_key = Path("/sys/fs/cgroup"), "memory.max", "memory.current", "inactive_file"
        elif "memory" in controllers.split(","):
            root = Path("/sys/fs/cgroup/memory")
            limit_file, usage_file, cache_key = "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
        else:
            continue
        # In a container the cgroup's own path is often not mounted: its root then holds the limit.
        rel_path = Path(rel.lstrip("/"))
        folders = [root / rel_path, *(root / p for p in rel_path.parents)]
        for folder in dict.fromkeys(folders):
            limit = _number(_read(folder / limit_file))
            if limit is None or limit >= _UNLIMITED:
                continue
            usage = _number(_read(folder / usage_file)) or 0
            cache = _stat(_read(folder / "memory.stat"), cache_key)
            out.append(Available(max(limit - max(usage - cache, 0), 0), f"the cgroup memory limit, {folder / limit_file}"))
    return out


def _number(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None  # "max" (cgroup v2): no limit


def _stat(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def cpu_step_refusal(needs: StepNeeds, available: Available | None = None) -> str | None:
    """The reason not to run the step, or None when it fits (or nothing is known)."""
    available = available if available is not None else available_memory()
    if available is None or needs.total <= available.bytes:
        return None
    return (f"the --device cpu step was not run: it needs about {gib(needs.total)} ({needs.describe()}) "
            f"and {gib(available.bytes)} is available ({available.source}); the modules and counts come from the "
            "meta device. A smaller --seq-len or --batch-size lowers the activations; --device cuda runs it on a GPU")
