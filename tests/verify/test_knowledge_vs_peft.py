"""The static knowledge base against real PEFT (verify group: torch + transformers + peft on the CPU).

Every case builds the model from a small config.json fixture on the meta device, applies
``get_peft_model(model, LoraConfig(...), low_cpu_mem_usage=True)`` and compares PEFT's own
``get_nb_trainable_parameters()``, ``targeted_module_names`` and ``targeted_parameter_names`` with
what ``loralint.knowledge`` computes without torch. The fixtures use dimensions that differ from the
config-class defaults, so a shape taken from the defaults instead of the expressions would fail.
"""

from __future__ import annotations

import copy
import json
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.verify

import peft  # noqa: E402  (the verify extra is installed wherever this group runs: never skipped)
import torch  # noqa: E402
import transformers  # noqa: E402

from loralint.knowledge.models import DATA_DIR, load_model_info, peft_default_targets  # noqa: E402
from loralint.knowledge.targeting import analyze_lora  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name / "config.json").read_text())


def _real(model_type: str, cfg: dict, model_class: str, lora: dict):
    """PEFT's own answer: (trainable, total, targeted modules, targeted parameters) or ("error", message)."""
    from peft import LoraConfig, get_peft_model
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    d = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
    config = CONFIG_MAPPING[model_type].from_dict(d)
    cls = getattr(transformers, model_class)
    with torch.device("meta"):
        model = cls._from_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pm = get_peft_model(model, LoraConfig(**copy.deepcopy(lora)), low_cpu_mem_usage=True)
        except Exception as exc:  # noqa: BLE001 - compare the failure itself
            return ("error", f"{type(exc).__name__}: {exc}")
    trainable, total = pm.get_nb_trainable_parameters()
    tuner = pm.base_model
    return trainable, total, set(tuner.targeted_module_names), set(tuner.targeted_parameter_names)


def _static(model_type: str, cfg: dict, lora: dict):
    info = load_model_info(model_type, cfg, lora.get("task_type"))
    assert info is not None, f"{model_type} missing from the knowledge base"
    res = analyze_lora(info, copy.deepcopy(lora))
    return info, res


# (fixture, model_type, LoraConfig kwargs)
CASES: list[tuple[str, str, dict]] = [
    # llama: list, all-linear, regex, layers, patterns, DoRA, lora_bias, exclusions, heads
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}),
    ("tiny-llama", "llama", {"r": 16, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}),
    ("tiny-llama", "llama", {"r": 4, "target_modules": r".*\.(q_proj|down_proj)", "task_type": "CAUSAL_LM"}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "k_proj"], "layers_to_transform": [0, 2],
                             "layers_pattern": "layers", "task_type": "CAUSAL_LM"}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["o_proj"], "layers_to_transform": 1}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "v_proj", "gate_proj"],
                             "rank_pattern": {"layers.0.self_attn.v_proj": 32, "gate_proj": 4},
                             "alpha_pattern": {"q_proj": 64}, "lora_alpha": 16, "task_type": "CAUSAL_LM"}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": "all-linear", "use_dora": True}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "up_proj"], "lora_bias": True}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": "all-linear", "exclude_modules": ["down_proj"]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "embed_tokens", "lm_head"]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj"], "modules_to_save": ["lm_head", "embed_tokens"]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": "all-linear", "task_type": "SEQ_CLS"}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": "all-linear", "task_type": "TOKEN_CLS"}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "v_proj"], "task_type": "QUESTION_ANS"}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj", "FAKE"]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["nope"]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["mlp"]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": None}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["v_proj"], "layers_to_transform": [5]}),
    ("tiny-llama", "llama", {"r": 8, "target_modules": ["q_proj"], "trainable_token_indices": [1, 5, 7]}),
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": ["v_proj"], "trainable_token_indices": [0, 2]}),
    # mistral with an explicit head_dim that differs from hidden_size // num_attention_heads (Mistral-Nemo)
    ("tiny-mistral-nemo", "mistral", {"r": 8, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]}),
    ("tiny-mistral-nemo", "mistral", {"r": 16, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}),
    # qwen2: q/k/v biases, tied embeddings
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": ["q_proj", "v_proj"], "bias": "all"}),
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": ["q_proj", "o_proj"], "bias": "lora_only"}),
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}),
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": ["q_proj"], "modules_to_save": ["embed_tokens"]}),
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": ["q_proj"], "modules_to_save": ["lm_head"]}),
    ("tiny-qwen2", "qwen2", {"r": 8, "target_modules": ["q_proj", "lm_head"]}),
    # gemma2
    ("tiny-gemma2", "gemma2", {"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}),
    ("tiny-gemma2", "gemma2", {"r": 4, "target_modules": ["embed_tokens", "q_proj"]}),
    # phi3 (fused qkv_proj / gate_up_proj)
    ("tiny-phi3", "phi3", {"r": 8, "target_modules": ["qkv_proj", "o_proj"]}),
    ("tiny-phi3", "phi3", {"r": 8, "target_modules": "all-linear"}),
    ("tiny-phi3", "phi3", {"r": 8, "target_modules": ["q_proj", "v_proj"]}),
    # gpt2 (Conv1D)
    ("tiny-gpt2", "gpt2", {"r": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True}),
    ("tiny-gpt2", "gpt2", {"r": 8, "target_modules": "all-linear", "bias": "all"}),
    ("tiny-gpt2", "gpt2", {"r": 8, "target_modules": ["c_attn", "c_proj"], "layers_to_transform": [1],
                           "layers_pattern": "h"}),
    ("tiny-gpt2", "gpt2", {"r": 8, "target_modules": ["c_fc"], "layers_to_transform": [1], "layers_pattern": "layers"}),
    ("tiny-gpt2", "gpt2", {"r": 8, "target_modules": None, "use_dora": True}),
    # gpt_neox
    ("tiny-gpt-neox", "gpt_neox", {"r": 8, "target_modules": None}),
    ("tiny-gpt-neox", "gpt_neox", {"r": 8, "target_modules": "all-linear", "bias": "lora_only"}),
    # falcon (FalconLinear), both attention layouts
    ("tiny-falcon-7b-like", "falcon", {"r": 8, "target_modules": "all-linear"}),
    ("tiny-falcon-7b-like", "falcon", {"r": 8, "target_modules": None}),
    ("tiny-falcon-40b-like", "falcon", {"r": 8, "target_modules": ["query_key_value", "dense"]}),
    ("tiny-falcon-40b-like", "falcon", {"r": 8, "target_modules": "all-linear"}),
    # opt with project_in / project_out (word_embed_proj_dim != hidden_size)
    ("tiny-opt-350m-like", "opt", {"r": 8, "target_modules": "all-linear", "bias": "all"}),
    ("tiny-opt-350m-like", "opt", {"r": 8, "target_modules": ["q_proj", "v_proj", "project_in"]}),
    # bloom
    ("tiny-bloom", "bloom", {"r": 8, "target_modules": ["query_key_value"], "bias": "lora_only"}),
    ("tiny-bloom", "bloom", {"r": 8, "target_modules": "all-linear", "task_type": "SEQ_CLS"}),
    # t5 seq2seq, plain and gated (flan-t5)
    ("tiny-t5", "t5", {"r": 8, "target_modules": ["q", "v"], "task_type": "SEQ_2_SEQ_LM"}),
    ("tiny-t5", "t5", {"r": 8, "target_modules": "all-linear", "task_type": "SEQ_2_SEQ_LM"}),
    ("tiny-t5", "t5", {"r": 8, "target_modules": ["q", "k"], "layers_to_transform": [1], "layers_pattern": "block",
                       "task_type": "SEQ_2_SEQ_LM"}),
    ("tiny-flan-t5", "t5", {"r": 16, "target_modules": "all-linear", "task_type": "SEQ_2_SEQ_LM"}),
    ("tiny-flan-t5", "t5", {"r": 8, "target_modules": ["wi_0", "wi_1", "wo"], "task_type": "SEQ_2_SEQ_LM",
                            "modules_to_save": ["lm_head"]}),
    # bert sequence classification: the classifier goes to modules_to_save
    ("tiny-bert", "bert", {"r": 8, "target_modules": ["query", "value"], "task_type": "SEQ_CLS"}),
    ("tiny-bert", "bert", {"r": 8, "target_modules": "all-linear", "task_type": "SEQ_CLS", "bias": "all"}),
    ("tiny-bert", "bert", {"r": 8, "target_modules": ["query", "value"], "task_type": "SEQ_CLS",
                           "modules_to_save": ["classifier", "pooler"]}),
    ("tiny-bert", "bert", {"r": 8, "target_modules": "all-linear", "task_type": "FEATURE_EXTRACTION"}),
    ("tiny-bert", "bert", {"r": 8, "target_modules": ["query"], "task_type": "TOKEN_CLS"}),
    # MoE under transformers v5: PEFT's conversion of v4-style targets
    ("tiny-mixtral", "mixtral", {"r": 8, "target_modules": ["q_proj", "v_proj", "w1", "w2", "w3"]}),
    ("tiny-mixtral", "mixtral", {"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}),
    ("tiny-mixtral", "mixtral", {"r": 8, "target_modules": ["w1"]}),
    ("tiny-mixtral", "mixtral", {"r": 8, "target_modules": None}),
    ("tiny-mixtral", "mixtral", {"r": 4, "target_modules": ["q_proj"], "target_parameters": ["experts.gate_up_proj"]}),
    ("tiny-qwen3-moe", "qwen3_moe", {"r": 8, "target_modules": ["q_proj", "gate_proj", "up_proj", "down_proj"]}),
    ("tiny-qwen3-moe", "qwen3_moe", {"r": 8, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}),
    ("tiny-qwen3-moe", "qwen3_moe", {"r": 8, "target_modules": r".*\.(q_proj|v_proj)"}),
    ("tiny-qwen3-moe", "qwen3_moe", {"r": 8, "target_modules": ["o_proj"],
                                     "target_parameters": ["mlp.experts.down_proj"], "rank_pattern": {"down_proj": 4}}),
]


def _case_id(case: tuple[str, str, dict]) -> str:
    fx, _, lora = case
    tm = lora.get("target_modules")
    tm = "None" if tm is None else (tm if isinstance(tm, str) else "+".join(tm))
    extra = "-".join(f"{k}={v}" for k, v in lora.items() if k not in ("target_modules", "r"))
    return f"{fx}[{tm}]{('-' + extra) if extra else ''}"[:120]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_static_matches_peft(case):
    fixture, model_type, lora = case
    cfg = _fixture(fixture)
    info, res = _static(model_type, cfg, lora)
    real = _real(model_type, cfg, info.model_class, lora)
    if real[0] == "error":
        assert res.errors, f"PEFT raised {real[1]!r} but loralint predicted success"
        return
    assert not res.errors, f"loralint predicted {res.errors} but PEFT succeeded"
    trainable, total, modules, params = real
    assert set(res.targeted_names) == modules
    assert {p.name for p in res.targeted_parameters} == params
    assert (res.trainable_params, res.total_params) == (trainable, total)


def test_llama_3_2_3b_acceptance_against_peft():
    """The known answer from the design notes, computed by real PEFT on the meta device."""
    cfg = _fixture("llama-3.2-3b")
    for lora, expected in (
        ({"r": 16, "target_modules": "all-linear", "task_type": "CAUSAL_LM"}, (24_313_856, 3_237_063_680)),
        ({"r": 8, "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}, (2_293_760, 3_215_043_584)),
    ):
        info, res = _static("llama", cfg, lora)
        real = _real("llama", cfg, info.model_class, lora)
        assert real[:2] == expected
        assert (res.trainable_params, res.total_params) == expected
        assert set(res.targeted_names) == real[2]


@pytest.mark.parametrize("fixture,model_type,task", [
    ("tiny-llama", "llama", "CAUSAL_LM"), ("tiny-mistral-nemo", "mistral", "CAUSAL_LM"),
    ("tiny-qwen2", "qwen2", "CAUSAL_LM"), ("tiny-gemma2", "gemma2", "CAUSAL_LM"), ("tiny-phi3", "phi3", None),
    ("tiny-gpt2", "gpt2", None), ("tiny-gpt-neox", "gpt_neox", None), ("tiny-falcon-7b-like", "falcon", None),
    ("tiny-falcon-40b-like", "falcon", None), ("tiny-opt-350m-like", "opt", None), ("tiny-bloom", "bloom", None),
    ("tiny-t5", "t5", "SEQ_2_SEQ_LM"), ("tiny-flan-t5", "t5", "SEQ_2_SEQ_LM"), ("tiny-bert", "bert", "SEQ_CLS"),
    ("tiny-bert", "bert", "FEATURE_EXTRACTION"), ("tiny-mixtral", "mixtral", None),
    ("tiny-qwen3-moe", "qwen3_moe", None), ("llama-3.2-3b", "llama", None),
])
def test_module_inventory_matches_transformers(fixture, model_type, task):
    """Every concrete module (name, class, in/out features, parameter shapes) and the total count."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    from transformers.pytorch_utils import Conv1D

    cfg = _fixture(fixture)
    info = load_model_info(model_type, cfg, task)
    assert info is not None and info.exact
    d = {k: v for k, v in cfg.items() if k not in ("architectures", "model_type")}
    config = CONFIG_MAPPING[model_type].from_dict(d)
    with torch.device("meta"):
        model = getattr(transformers, info.model_class)._from_config(config)
    real = {}
    for name, mod in model.named_modules():
        shapes = tuple((pn, tuple(p.shape)) for pn, p in mod.named_parameters(recurse=False))
        io = None
        if isinstance(mod, torch.nn.Linear):
            io = (mod.in_features, mod.out_features)
        elif isinstance(mod, Conv1D):
            io = (mod.nx, mod.nf)
        elif isinstance(mod, torch.nn.Embedding):
            io = (mod.num_embeddings, mod.embedding_dim)
        real[name] = (type(mod).__name__, io, shapes)
    static = {}
    for m in info.modules:
        io = (m.in_features, m.out_features) if m.kind in ("linear", "conv1d", "embedding") else None
        static[m.name] = (m.cls, io, tuple((p.local_name, p.shape) for p in m.params))
    assert static == real
    assert info.total_params == sum(p.numel() for p in model.parameters())
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = {id(mm): n for n, mm in model.named_modules()}
    assert info.output_layer == (names[id(out)] if out is not None else None)
    inp = model.get_input_embeddings()
    assert info.input_embeddings == names[id(inp)]
    if out is not None:
        assert info.tied_word_embeddings == (out.weight is inp.weight)


def test_default_targets_mirror_installed_peft():
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as M

    for model_type, targets in M.items():
        assert peft_default_targets(model_type) == (list(targets) if not isinstance(targets, str) else targets)


def test_minimal_target_set_is_peft_s():
    # Lists of >= 20 entries are condensed as PEFT's inject_adapter does it; loralint's step skips PEFT's repeated
    # suffix splits and must still pick the very same suffixes, for target and other names as inject_adapter
    # passes them (no other name equal to a target or ending with "." + a target).
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from peft.tuners.tuners_utils import _find_minimal_target_modules as peft_minimal

    from loralint.knowledge.targeting import _find_minimal_target_modules

    name = st.lists(st.sampled_from(["model", "layers", "0", "1", "q_proj", "v_proj", "mlp", "attn", "a.b", "x"]),
                    min_size=1, max_size=5).map(".".join)

    @settings(max_examples=300, deadline=None)
    @given(st.sets(name, min_size=1, max_size=12), st.sets(name, max_size=12))
    def same(targets: set[str], others: set[str]) -> None:
        others = {o for o in others if o not in targets and not o.endswith(tuple("." + t for t in targets))}
        assert _find_minimal_target_modules(targets, others) == peft_minimal(targets, others)

    same()


def test_versions_match_installed_libraries():
    from loralint.knowledge.models import knowledge_versions

    v = knowledge_versions()
    assert v["transformers"] == transformers.__version__
    assert v["peft"] == peft.__version__


REGEN_SAMPLE = ["llama", "gpt2", "t5", "qwen3_moe"]


@pytest.mark.parametrize("model_type", REGEN_SAMPLE)
def test_regenerating_a_sample_reproduces_the_shipped_data(model_type):
    """The generator's own functions, run now, give the files that ship (timing fields aside)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import generate_knowledge as gen
    finally:
        sys.path.pop(0)
    gen._worker_init()
    fresh = gen.analyse_model_type(model_type, time_limit=600)
    shipped = json.loads((DATA_DIR / "arch" / f"{model_type}.json").read_text())
    for doc in (fresh, shipped):
        doc.pop("seconds", None)
        doc.pop("class_seconds", None)
    fresh = json.loads(json.dumps(fresh))
    assert fresh == shipped


def _families() -> list[dict]:
    raw = json.loads((ROOT / "loralint" / "knowledge" / "checkpoints.json").read_text())
    return raw["checkpoints"]


@pytest.mark.parametrize("family", _families(), ids=[f["ids"][0] for f in _families()])
def test_curated_checkpoint_shapes_match_transformers(family):
    """Every hand-curated hub config, built for real on the meta device: same modules, same count."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type, cfg = family["model_type"], family["config"]
    info = load_model_info(model_type, cfg)
    assert info is not None
    config = CONFIG_MAPPING[model_type].from_dict(copy.deepcopy(cfg))
    with torch.device("meta"):
        model = getattr(transformers, info.model_class)._from_config(config)
    real = dict(model.named_modules())
    if info.unmodelled_nulls:
        # The knowledge base says it cannot name these modules (a null field it never saw null), and
        # rightly so: the real names differ. Once the generator models nulls, this branch goes.
        assert not info.exact
        assert sorted(m.name for m in info.modules) != sorted(real)
        return
    assert info.exact, family["ids"][0]
    assert sorted(m.name for m in info.modules) == sorted(real)
    for m in info.modules:
        if m.kind == "linear":
            assert (m.in_features, m.out_features) == (real[m.name].in_features, real[m.name].out_features), m.name
    assert info.total_params == sum(p.numel() for p in model.parameters())
