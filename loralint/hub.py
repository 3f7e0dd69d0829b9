"""The Hugging Face Hub, only with --online: one config.json per model and one card per data set,
a short timeout, no retry storm.

huggingface_hub's `hf_hub_download` retries a failed connection five times with backoff (23 s
per model here without a network, each line a warning on stderr). loralint first asks for the
file's metadata once, with a timeout of a few seconds and no retry; only when the Hub answers is
the file downloaded (into the usual cache). A connection that fails marks the Hub unreachable for
the rest of the run, so a run without a network costs one timeout and is said in one line.
"""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path

DEFAULT_TIMEOUT_S = 5.0  # seconds to connect and get the metadata; HF_HUB_ETAG_TIMEOUT overrides it

# A failure is remembered for this long: the rest of a run (and a while of a long-lived server)
# does not ask again.
_REMEMBER_S = 60.0

_unreachable: tuple[float, str] | None = None  # (when, why): the Hub itself did not answer
_failed: dict[str, tuple[float, str]] = {}  # model id → (when, why): the Hub answered no
# Data set cards the Hub gave, kept for a while so a long-lived process (the LSP server checking on
# every change) does not ask again each run; models need no such memo (config.json is in the HF cache).
_cards: dict[str, tuple[float, dict]] = {}
_CARD_KEEP_S = 600.0


def _no_telemetry() -> None:
    """Ask the Hub for the files loralint needs and nothing else. huggingface_hub's user-agent
    header (utils/_headers.py::_http_user_agent) otherwise reports torch's version and, once a
    day, fetches {ENDPOINT}/api/agent-harnesses (utils/_detect_agent.py) to name the calling
    agent. An explicit HF_HUB_DISABLE_TELEMETRY / DISABLE_TELEMETRY from the user is left as set."""
    if "HF_HUB_DISABLE_TELEMETRY" in os.environ or "DISABLE_TELEMETRY" in os.environ:
        return
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_TELEMETRY = True


def timeout_s() -> float:
    try:
        value = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", ""))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


def unreachable() -> str | None:
    """Why the Hub could not be reached in this run, or None."""
    if _unreachable is not None and time.monotonic() - _unreachable[0] < _REMEMBER_S:
        return _unreachable[1]
    return None


def failure(model_id: str) -> str | None:
    """Why `model_id`'s config.json did not come from the Hub in this run, or None."""
    found = _failed.get(model_id)
    if found is not None and time.monotonic() - found[0] < _REMEMBER_S:
        return found[1]
    return None


def fetch_config_path(model_id: str, cache_dir: Path, offline: bool = False) -> Path | None:
    """config.json of `model_id` downloaded into `cache_dir`, or None with the reason kept
    (`failure`, and `unreachable` when the Hub did not answer). Never raises. `offline`: only what
    huggingface_hub itself finds in the cache, no connection."""
    global _unreachable
    if offline:
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(model_id, "config.json", cache_dir=cache_dir, local_files_only=True))
        except Exception:  # noqa: BLE001 - not in the cache
            return None
    down = unreachable()
    if down is not None:
        _failed[model_id] = (time.monotonic(), down)
        return None
    try:
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

        _no_telemetry()
        timeout = timeout_s()
        probe: dict = {"timeout": timeout}
        if "retry_on_errors" in inspect.signature(get_hf_file_metadata).parameters:
            probe["retry_on_errors"] = False
        get_hf_file_metadata(hf_hub_url(model_id, "config.json"), **probe)
        return Path(hf_hub_download(model_id, "config.json", cache_dir=cache_dir, etag_timeout=timeout))
    except Exception as exc:  # noqa: BLE001 - no network, auth, gated, missing file: the run goes on
        answered = _answer(exc)
        if answered is None:
            why = f"cannot reach the Hugging Face Hub at {_endpoint()} ({_short(exc)})"
            _unreachable = (time.monotonic(), why)
        else:
            why = answered
        _failed[model_id] = (time.monotonic(), why)
        return None


def dataset_card(repo_id: str) -> dict | None:
    """The card data (the README's front matter) of a Hub data set, `{}` when it has none, or None
    with the reason kept (`failure("dataset:" + repo_id)`, and `unreachable`). One GET of
    /api/datasets/<id>?expand=cardData with the short timeout; huggingface_hub does not retry it
    (hf_api.py::dataset_info). Never raises."""
    global _unreachable
    from loralint.resolve import hub_offline

    if hub_offline():
        return None  # HF_HUB_OFFLINE=1 wins over --online, as for models
    key = f"dataset:{repo_id}"
    kept = _cards.get(repo_id)
    if kept is not None and time.monotonic() - kept[0] < _CARD_KEEP_S:
        return kept[1]
    down = unreachable()
    if down is not None:
        _failed[key] = (time.monotonic(), down)
        return None
    try:
        from huggingface_hub import HfApi

        _no_telemetry()
        info = HfApi().dataset_info(repo_id, timeout=timeout_s(), expand=["cardData"])
        card = info.card_data
        data = card.to_dict() if card is not None else {}
        data = data if isinstance(data, dict) else {}
        _cards[repo_id] = (time.monotonic(), data)
        return data
    except Exception as exc:  # noqa: BLE001 - no network, auth, gated, missing: the run goes on
        answered = _answer(exc, "dataset")
        if answered is None:
            why = f"cannot reach the Hugging Face Hub at {_endpoint()} ({_short(exc)})"
            _unreachable = (time.monotonic(), why)
        else:
            why = answered
        _failed[key] = (time.monotonic(), why)
        return None


def _answer(exc: Exception, kind: str = "model") -> str | None:
    """What the Hub answered, in words; None when it did not answer (no network, a timeout)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - huggingface_hub < 0.23
        return None
    if isinstance(exc, getattr(errors, "GatedRepoError", ())):
        return "a gated repository: accept its conditions on the Hub and log in (hf auth login, or HF_TOKEN)"
    if isinstance(exc, getattr(errors, "RepositoryNotFoundError", ())):
        return "no such repository on the Hugging Face Hub (or a private one: log in with hf auth login, or HF_TOKEN)"
    if isinstance(exc, getattr(errors, "RevisionNotFoundError", ())):
        return "no such revision on the Hugging Face Hub"
    if isinstance(exc, getattr(errors, "EntryNotFoundError", ())) and kind == "model":
        return "the repository on the Hugging Face Hub has no config.json"
    if isinstance(exc, getattr(errors, "HFValidationError", ())):
        return "not a valid Hugging Face Hub repository id"
    if isinstance(exc, getattr(errors, "HfHubHTTPError", ())):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int) and status < 500 and status != 429:
            return f"the Hugging Face Hub answered HTTP {status}"
    return None


def _endpoint() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)
    except Exception:  # noqa: BLE001
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
