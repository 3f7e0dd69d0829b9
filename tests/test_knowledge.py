"""The static knowledge base and PEFT's targeting/counting semantics, without torch.

Nothing here imports torch, transformers or peft: these tests run in the plain test environment.
The same numbers are checked against real PEFT in tests/verify/test_knowledge_vs_peft.py.
"""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import pytest

from loralint.knowledge import expr as kexpr
from loralint.knowledge import models as kmodels
from loralint.knowledge.models import (
    DATA_DIR,
    known_model_types,
    knowledge_versions,
    load_model_info,
    lookup_checkpoint,
    model_type_summary,
    peft_default_targets,
)
from loralint.knowledge.targeting import analyze_lora, get_pattern_key

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "models"


def _cfg(name: str) -> dict:
    return json.loads((FIXTURES / name / "config.json").read_text())


@pytest.fixture(scope="module")
def llama32_3b():
    return load_model_info("llama", _cfg("llama-3.2-3b"), "CAUSAL_LM")


# --------------------------------------------------------------------------------------------------
# the known answers
# --------------------------------------------------------------------------------------------------


def test_llama_3_2_3b_all_linear_r16(llama32_3b):
    res = analyze_lora(llama32_3b, r=16, target_modules="all-linear", task_type="CAUSAL_LM")
    assert res.ok
    assert (res.trainable_params, res.total_params) == (24_313_856, 3_237_063_680)
    # 28 layers x 7 projections; lm_head (tied to the embedding) is the output layer and excluded
    assert len(res.targeted) == 196
    assert res.all_linear_excluded == ["lm_head"]


def test_llama_3_2_3b_q_v_r8(llama32_3b):
    res = analyze_lora(llama32_3b, r=8, target_modules=["q_proj", "v_proj"])
    assert res.trainable_params == 2_293_760
    assert res.total_params == 3_212_749_824 + 2_293_760
    summary = res.folded_summary()
    assert summary["model.layers.{i}.self_attn.v_proj"] == {
        "count": 28, "lora_params": 28 * 8 * (3072 + 1024), "r": 8, "cls": "Linear", "in": 3072, "out": 1024}


def test_llama_3_2_3b_inventory(llama32_3b):
    info = llama32_3b
    assert info.model_class == "LlamaForCausalLM" and info.exact
    assert info.total_params == 3_212_749_824  # tied lm_head counted once
    assert info.tied_word_embeddings is True
    assert (info.num_layers, info.layers_path, info.layer_count_field) == (28, "model.layers", "num_hidden_layers")
    assert info.output_layer == "lm_head" and info.input_embeddings == "model.embed_tokens"
    q = info.get("model.layers.27.self_attn.k_proj")
    assert (q.kind, q.in_features, q.out_features, q.has_bias) == ("linear", 3072, 1024, False)
    assert info.get("model.layers.28.self_attn.k_proj") is None
    lm = info.get("lm_head")
    assert lm.params[0].tied_to == "model.embed_tokens.weight" and lm.num_params == 0
    folded = {f.name: f for f in info.folded_modules()}
    assert folded["model.layers.{i}.mlp.down_proj"].layer_indices == tuple(range(28))
    assert folded["model.layers.{i}.mlp"].kind == "container"
    names = list(info.module_names())
    assert names[0] == "" and "model.layers.0.self_attn.q_proj" in names and len(names) == len(set(names))


@pytest.mark.parametrize("model_id,total", [
    ("meta-llama/Llama-2-7b-hf", 6_738_415_616),
    ("meta-llama/Meta-Llama-3-8B", 8_030_261_248),
    ("meta-llama/Llama-3.2-1B", 1_235_814_400),
    ("mistralai/Mistral-7B-v0.1", 7_241_732_096),
    ("Qwen/Qwen2.5-0.5B", 494_032_768),
    ("gpt2", 124_439_808),
])
def test_published_parameter_counts(model_id, total):
    ck = lookup_checkpoint(model_id)
    info = load_model_info(ck["model_type"], ck["config"])
    assert info.exact and info.total_params == total


def test_bert_base_backbone_count():
    ck = lookup_checkpoint("google-bert/bert-base-uncased")
    info = load_model_info("bert", ck["config"], "FEATURE_EXTRACTION")
    assert info.model_class == "BertModel" and info.total_params == 109_482_240


# --------------------------------------------------------------------------------------------------
# expressions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,env,value", [
    ("2*intermediate_size", {"intermediate_size": 11008}, 22016),
    ("hidden_size // num_attention_heads", {"hidden_size": 3072, "num_attention_heads": 24}, 128),
    ("(num_attention_heads + 2*num_key_value_heads)*head_dim",
     {"num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128}, 6144),
    ("text_config.hidden_size - 1", {"text_config.hidden_size": 10}, 9),
    ("-7 // 2", {}, -4),
    ("i % 3 == 2 and i >= first_k_dense_replace", {"i": 5, "first_k_dense_replace": 3}, True),
    ('layer_types[i] == "full_attention"', {"i": 1, "layer_types": ["sliding", "full_attention"]}, True),
    ("i not in mlp_only_layers", {"i": 1, "mlp_only_layers": [1]}, False),
    ("(3*hidden_size) if new_decoder_architecture else (hidden_size + 2*head_dim)",
     {"hidden_size": 64, "new_decoder_architecture": False, "head_dim": 16}, 96),
    ("num_ln == None or not flag", {"num_ln": None, "flag": True}, True),
    ("len(layer_types)", {"layer_types": [1, 2, 3]}, 3),
])
def test_expressions(text, env, value):
    assert kexpr.evaluate(text, env) == value


@pytest.mark.parametrize("text", ["__import__('os')", "a.__class__", "1 +", "x ** 2", "open('f')", "a; b", "lambda: 1"])
def test_expressions_reject_anything_else(text):
    with pytest.raises((kexpr.ExprError, kexpr.UnknownName)):
        kexpr.evaluate(text, {"a": 1, "b": 2, "x": 3})


def test_expression_errors():
    with pytest.raises(kexpr.UnknownName):
        kexpr.evaluate("hidden_size * 2", {})
    with pytest.raises(kexpr.ExprError):
        kexpr.evaluate("a // b", {"a": 1, "b": 0})
    assert kexpr.names_in("a.b * c // 2 + d[i]") == {"a.b", "c", "d", "i"}


# --------------------------------------------------------------------------------------------------
# config resolution
# --------------------------------------------------------------------------------------------------


def test_derived_fields_reproduced_for_partial_configs():
    # Llama-2 config.json has no head_dim and no num_key_value_heads
    info = load_model_info("llama", {"hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 2,
                                     "intermediate_size": 11008, "vocab_size": 32000})
    assert info.config["head_dim"] == 128 and info.config["num_key_value_heads"] == 32
    assert info.get("model.layers.1.self_attn.k_proj").out_features == 4096
    assert info.num_layers == 2
    # what the caller did not give came from the LlamaConfig defaults: nothing shape-relevant here
    assert "hidden_size" not in info.defaulted_fields


def test_defaulted_fields_are_reported():
    info = load_model_info("llama", {"hidden_size": 512, "num_attention_heads": 8})
    assert "vocab_size" in info.defaulted_fields and "hidden_size" not in info.defaulted_fields
    assert info.get("model.embed_tokens").in_features == 32000  # LlamaConfig default vocab


def test_explicit_head_dim_wins_mistral_nemo():
    ck = lookup_checkpoint("mistralai/Mistral-Nemo-Instruct-2407")
    info = load_model_info(ck["model_type"], ck["config"])
    q = info.get("model.layers.0.self_attn.q_proj")
    assert (q.in_features, q.out_features) == (5120, 4096)


def test_gated_t5_from_feed_forward_proj():
    ck = lookup_checkpoint("google/flan-t5-base")
    info = load_model_info("t5", ck["config"], "SEQ_2_SEQ_LM")
    assert info.model_class == "T5ForConditionalGeneration"
    assert info.get("encoder.block.0.layer.1.DenseReluDense.wi_0") is not None
    assert info.get("encoder.block.0.layer.1.DenseReluDense.wi") is None
    plain = load_model_info("t5", lookup_checkpoint("t5-base")["config"], "SEQ_2_SEQ_LM")
    assert plain.get("encoder.block.0.layer.1.DenseReluDense.wi") is not None


def test_heterogeneous_moe_layers():
    info = load_model_info("qwen3_moe", _cfg("tiny-qwen3-moe"))
    assert info.get("model.layers.1.mlp.gate_proj") is not None  # mlp_only_layers=[1] -> dense
    assert info.get("model.layers.0.mlp.experts").params[0].shape == (4, 96, 64)  # (experts, 2*moe_inter, hidden)
    assert [p.name for p in info.fused_expert_params] == [
        "model.layers.0.mlp.experts.gate_up_proj", "model.layers.0.mlp.experts.down_proj",
        "model.layers.2.mlp.experts.gate_up_proj", "model.layers.2.mlp.experts.down_proj"]


@pytest.mark.parametrize("model_type,task,cls", [
    ("llama", None, "LlamaForCausalLM"),
    ("llama", "CAUSAL_LM", "LlamaForCausalLM"),
    ("llama", "SEQ_CLS", "LlamaForSequenceClassification"),
    ("llama", "TOKEN_CLS", "LlamaForTokenClassification"),
    ("llama", "QUESTION_ANS", "LlamaForQuestionAnswering"),
    ("llama", "FEATURE_EXTRACTION", "LlamaModel"),
    ("t5", None, "T5ForConditionalGeneration"),
    ("t5", "SEQ_2_SEQ_LM", "T5ForConditionalGeneration"),
    ("bert", "SEQ_CLS", "BertForSequenceClassification"),
    ("gpt2", None, "GPT2LMHeadModel"),
])
def test_task_type_picks_the_class(model_type, task, cls):
    assert load_model_info(model_type, None, task).model_class == cls


def test_unknown_inputs():
    assert load_model_info("no_such_model_type") is None
    assert load_model_info("llama", None, "SEQ_2_SEQ_LM") is None or True  # llama has no seq2seq class
    assert load_model_info("llama", None, "NOT_A_TASK") is None
    assert lookup_checkpoint("someone/unknown-model") is None
    assert lookup_checkpoint("") is None


def test_checkpoint_lookup_is_case_insensitive():
    a = lookup_checkpoint("meta-llama/Llama-3.2-1B-Instruct")
    b = lookup_checkpoint("META-LLAMA/llama-3.2-1b-instruct")
    assert a == b and a["model_type"] == "llama" and a["config"]["tie_word_embeddings"] is True
    assert lookup_checkpoint("meta-llama/Llama-3.2-3B")["config"]["tie_word_embeddings"] is True
    assert lookup_checkpoint("unsloth/Llama-3.2-3B-Instruct-bnb-4bit")["config"]["hidden_size"] == 3072
    assert lookup_checkpoint("google/gemma-3-1b-it")["model_type"] == "gemma3_text"
    assert lookup_checkpoint("google/gemma-3-4b-it")["model_type"] == "gemma3"
    a["config"]["hidden_size"] = 1  # callers get copies
    assert lookup_checkpoint("meta-llama/Llama-3.2-1B-Instruct")["config"]["hidden_size"] == 2048


def test_every_checkpoint_resolves():
    raw = json.loads((DATA_DIR.parent / "checkpoints.json").read_text())
    for family in raw["checkpoints"]:
        info = load_model_info(family["model_type"], family["config"])
        assert info is not None, family["ids"][0]
        assert info.total_params > 0
        assert not [f for f in info.defaulted_fields if f in ("hidden_size", "vocab_size", "num_hidden_layers")
                    and f in family["config"]]


# --------------------------------------------------------------------------------------------------
# index, versions, PEFT facts
# --------------------------------------------------------------------------------------------------


def test_index_and_versions():
    v = knowledge_versions()
    assert v["transformers"] == "5.24.0" and v["peft"] == "0.21.2"
    cov = v["coverage"]
    assert cov["covered"] + cov["failed"] <= cov["model_types_total"]
    types = known_model_types()
    for t in ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3_text", "phi3",
              "gpt2", "gpt_neox", "falcon", "opt", "bloom", "t5", "bert", "roberta", "deepseek_v3"):
        assert t in types, t
    assert model_type_summary("llama")["exact"] is True
    assert "failed" in (model_type_summary("chatglm") or {"failed": ""})
    # Every model type is either covered or listed with the reason it is not.
    assert cov["covered"] + cov["failed"] == cov["model_types_total"]


def test_readme_quotes_the_shipped_coverage():
    cov = knowledge_versions()["coverage"]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"cover {cov['covered']} of transformers' {cov['model_types_total']} model types" in readme
    assert f"({cov['failed_no_auto_class']} are sub-configurations" in readme
    assert f"{cov['failed'] - cov['failed_no_auto_class']} cannot be built" in readme


def test_peft_default_targets():
    assert peft_default_targets("llama") == ["q_proj", "v_proj"]
    assert peft_default_targets("gpt2") == ["c_attn"]
    assert peft_default_targets("phi3") is None
    assert isinstance(peft_default_targets("gemma4"), str)


def test_every_shipped_file_parses_and_its_expressions_compile():
    idx = json.loads((DATA_DIR / "index.json").read_text())
    n = 0
    for mt, entry in idx["model_types"].items():
        doc = json.loads((DATA_DIR / entry["file"]).read_text())
        assert doc["model_type"] == mt
        for rec in doc["classes"].values():
            for m in rec["modules"]:
                for key in ("in", "out", "ks", "groups", "w"):
                    if isinstance(m.get(key), str):
                        kexpr.compile_expr(m[key])
                        n += 1
                for pent in m.get("p", ()):
                    for d in pent[1]:
                        if isinstance(d, str):
                            kexpr.compile_expr(d)
                            n += 1
    assert n > 1000


# --------------------------------------------------------------------------------------------------
# PEFT's matching semantics
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama():
    return load_model_info("llama", _cfg("tiny-llama"))


def test_list_entries_match_exactly_or_as_dotted_suffix(tiny_llama):
    res = analyze_lora(tiny_llama, target_modules=["self_attn.q_proj", "q_pro", "FAKE"])
    assert res.targeted_names == [f"model.layers.{i}.self_attn.q_proj" for i in range(3)]
    assert res.unmatched_target_entries == ["FAKE", "q_pro"]
    assert res.entry_matches["self_attn.q_proj"] == 3


def test_entries_naming_one_layer_reach_that_layer_only(tiny_llama):
    # (what PEFT 0.21.2 adapts here, checked with get_peft_model on this config)
    res = analyze_lora(tiny_llama, target_modules=["layers.1.self_attn.q_proj", "v_proj"],
                       exclude_modules=["2.self_attn.v_proj"])
    assert res.targeted_names == ["model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj",
                                  "model.layers.1.self_attn.v_proj"]
    assert res.excluded == ["model.layers.2.self_attn.v_proj"]
    assert res.entry_matches == {"layers.1.self_attn.q_proj": 1, "v_proj": 2}
    # modules_to_save keeps a whole layer's attention out of reach (and SEQ_CLS's score)
    seq_cls = load_model_info("llama", _cfg("tiny-llama"), "SEQ_CLS")
    res = analyze_lora(seq_cls, target_modules=["q_proj", "score"], task_type="SEQ_CLS",
                       modules_to_save=["layers.2.self_attn"])
    assert res.targeted_names == ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj"]
    assert {"model.layers.2.self_attn.q_proj", "score"} <= set(res.excluded)
    assert res.trainable_params == 27_840


def test_string_is_a_full_regex(tiny_llama):
    assert analyze_lora(tiny_llama, target_modules="q_proj").errors  # must match the WHOLE name
    res = analyze_lora(tiny_llama, target_modules=r".*\.layers\.[02]\.self_attn\.(q|v)_proj")
    assert len(res.targeted) == 4 and res.ok


def test_all_linear_forms(tiny_llama):
    assert analyze_lora(tiny_llama, target_modules="ALL-LINEAR").ok
    bad = analyze_lora(tiny_llama, target_modules=["all-linear"])
    assert bad.errors and "not found in the base model" in bad.errors[0]
    assert analyze_lora(tiny_llama, target_modules="all_linear").errors


def test_container_hit_is_an_error(tiny_llama):
    res = analyze_lora(tiny_llama, target_modules=["mlp"])
    assert res.containers_hit == ["model.layers.0.mlp", "model.layers.1.mlp", "model.layers.2.mlp"]
    assert res.errors and "is not supported" in res.errors[0]


def test_layers_to_transform_needs_a_parent_segment():
    base = load_model_info("llama", _cfg("tiny-llama"), "FEATURE_EXTRACTION")  # names start with "layers."
    assert analyze_lora(base, target_modules=["q_proj"], layers_to_transform=[0]).errors
    ok = analyze_lora(base, target_modules=["q_proj"], layers_to_transform=[0], layers_pattern="layers")
    assert ok.targeted_names == ["layers.0.self_attn.q_proj"]


def test_layers_to_transform_out_of_range(tiny_llama):
    res = analyze_lora(tiny_llama, target_modules=["q_proj"], layers_to_transform=[7])
    assert res.errors and "layers_to_transform" in res.errors[0]


def test_rank_pattern_first_match_wins(tiny_llama):
    res = analyze_lora(tiny_llama, r=8, target_modules=["q_proj"],
                       rank_pattern={"q_proj": 4, "layers.0.self_attn.q_proj": 16})
    assert {t.r for t in res.targeted} == {4}
    res = analyze_lora(tiny_llama, r=8, target_modules=["q_proj"],
                       rank_pattern={"layers.0.self_attn.q_proj": 16, "q_proj": 4, "^q_proj": 2})
    assert [t.r for t in res.targeted] == [16, 4, 4]
    assert res.unmatched_rank_pattern_keys == ["^q_proj"]
    assert get_pattern_key(["a", "b"], "x.b") == "b"


def test_scaling_and_rslora(tiny_llama):
    t = analyze_lora(tiny_llama, r=16, lora_alpha=32, target_modules=["q_proj"]).targeted[0]
    assert t.scaling == 2.0
    t = analyze_lora(tiny_llama, r=16, lora_alpha=32, use_rslora=True, target_modules=["q_proj"]).targeted[0]
    assert t.scaling == 8.0


def test_exclude_modules(tiny_llama):
    res = analyze_lora(tiny_llama, target_modules="all-linear", exclude_modules=["down_proj", "nothing"])
    assert not [n for n in res.targeted_names if n.endswith("down_proj")]
    assert res.unmatched_exclude_entries == ["nothing"]
    res = analyze_lora(tiny_llama, target_modules=["q_proj"], exclude_modules=["visual"])
    assert res.warnings and "no modules were excluded" in res.warnings[0]


def test_modules_to_save_plain_suffix_matching(tiny_llama):
    res = analyze_lora(tiny_llama, target_modules=["q_proj"], modules_to_save=["head"])
    assert [k for k, _ in res.modules_to_save_wrapped] == ["lm_head"]  # no dot boundary
    lm = 500 * 96
    assert res.trainable_params == 3 * 8 * (96 + 96) + lm
    assert res.total_params == tiny_llama.total_params + 3 * 8 * (96 + 96) + lm


def test_modules_to_save_as_a_string_is_iterated(tiny_llama):
    res = analyze_lora(tiny_llama, target_modules=["q_proj"], modules_to_save="lm_head")
    assert res.warnings and "character by character" in res.warnings[0]
    assert len(res.modules_to_save_wrapped) > 3  # every module ending in l, m, _, h, e, a or d


def test_seq_cls_head_is_saved_not_adapted():
    info = load_model_info("llama", _cfg("tiny-llama"), "SEQ_CLS")
    res = analyze_lora(info, target_modules="all-linear", task_type="SEQ_CLS")
    assert "score" not in res.targeted_names
    assert [k for k, _ in res.modules_to_save_wrapped] == ["score"]
    # without task_type the head gets LoRA and stays random and frozen
    res = analyze_lora(info, target_modules="all-linear")
    assert "score" in res.targeted_names and not res.modules_to_save_wrapped


def test_token_cls_all_linear_crashes_in_peft():
    info = load_model_info("llama", _cfg("tiny-llama"), "TOKEN_CLS")
    res = analyze_lora(info, target_modules="all-linear", task_type="TOKEN_CLS")
    assert res.errors and "modules_to_save cannot be applied" in res.errors[0]


def test_bias_modes():
    info = load_model_info("qwen2", _cfg("tiny-qwen2"))
    lora = 3 * 8 * ((64 + 64) + (64 + 32))  # q: 64->64, v: 64->32
    none = analyze_lora(info, r=8, target_modules=["q_proj", "v_proj"])
    assert none.trainable_params == lora
    only = analyze_lora(info, r=8, target_modules=["q_proj", "v_proj"], bias="lora_only")
    assert only.trainable_params == lora + 3 * (64 + 32)
    every = analyze_lora(info, r=8, target_modules=["q_proj", "v_proj"], bias="all")
    assert every.trainable_params == lora + 3 * (64 + 32 + 32)  # q, k, v biases of every layer
    assert analyze_lora(info, target_modules=["q_proj"], bias="foo").errors


def test_dora_and_lora_bias(tiny_llama):
    plain = analyze_lora(tiny_llama, r=8, target_modules=["v_proj"]).lora_params
    assert analyze_lora(tiny_llama, r=8, target_modules=["v_proj"], use_dora=True).lora_params == plain + 3 * 32
    assert analyze_lora(tiny_llama, r=8, target_modules=["v_proj"], lora_bias=True).lora_params == plain + 3 * 32


def test_embedding_lora(tiny_llama):
    res = analyze_lora(tiny_llama, r=4, target_modules=["embed_tokens"])
    assert res.targeted[0].kind == "embedding" and res.lora_params == 4 * (500 + 96)


def test_gpt2_conv1d():
    info = load_model_info("gpt2", _cfg("tiny-gpt2"))
    m = info.get("transformer.h.0.attn.c_attn")
    assert (m.kind, m.in_features, m.out_features) == ("conv1d", 48, 144)
    res = analyze_lora(info, r=8, target_modules=None)
    assert res.default_targets_used and res.targeted_names == [f"transformer.h.{i}.attn.c_attn" for i in range(3)]
    assert res.lora_params == 3 * 8 * (48 + 144)


def test_default_targets_missing_is_an_error():
    info = load_model_info("phi3", _cfg("tiny-phi3"))
    res = analyze_lora(info, target_modules=None)
    assert res.errors and "Please specify `target_modules`" in res.errors[0]


def test_mixtral_moe_conversion():
    info = load_model_info("mixtral", _cfg("tiny-mixtral"))
    res = analyze_lora(info, r=8, lora_alpha=16, target_modules=["q_proj", "w1", "w2", "w3"])
    assert res.moe_converted and res.ok
    assert res.target_parameters == ["down_proj", "gate_up_proj"]
    assert res.rank_pattern == {r".*\.gate_up_proj": 16} and res.alpha_pattern == {r".*\.gate_up_proj": 32}
    gu = [p for p in res.targeted_parameters if p.name.endswith("gate_up_proj")][0]
    assert gu.shape == (4, 192, 64) and gu.r == 16 and gu.lora_params == 16 * 4 * (192 + 64)
    # half of a fused pair cannot be converted
    assert "fused into gate_up_proj" in analyze_lora(info, target_modules=["w1"]).errors[0]
    # target_modules=None is turned into an empty set before the default mapping is consulted
    assert "No `target_modules` passed" in analyze_lora(info, target_modules=None).errors[0]


# --------------------------------------------------------------------------------------------------
# cost: no heavy imports, one file per model type
# --------------------------------------------------------------------------------------------------


def test_import_is_light():
    code = ("import sys, loralint.knowledge.models, loralint.knowledge.targeting;"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'peft', 'numpy')))")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert not [ln for ln in out.stderr.splitlines() if ln.rstrip().endswith((" torch", " transformers", " peft"))]


def test_loading_a_model_type_reads_only_its_file(monkeypatch):
    kmodels._index.cache_clear()
    kmodels._arch.cache_clear()
    opened: list[str] = []
    real_open = builtins.open

    def spy(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    info = load_model_info("gpt2", _cfg("tiny-gpt2"))
    assert info is not None
    data = [Path(p).relative_to(DATA_DIR).as_posix() for p in opened if str(DATA_DIR) in p]
    assert data == ["index.json", "arch/gpt2.json"]


# --------------------------------------------------------------------------------------------------
# shortcuts of the analysis: each gives what the step it replaces gives
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model_type", ["llama", "mixtral", "qwen2_vl", "gemma3", "gpt2", "bert", "t5", "bloom",
                                        "deepseek_v3", "whisper", "llava"])
def test_unadapted_count_without_the_tree_is_the_trees(model_type):
    # _count_plain takes the base model's parameter count and reachable names from the inventory itself when it is
    # laid out as named_modules() gives it; the torch-free module tree must give the same facts.
    from loralint.knowledge.targeting import _built_tree_facts, _plain_tree_facts

    for task in (None, "SEQ_CLS", "FEATURE_EXTRACTION"):
        info = load_model_info(model_type, None, task)
        if info is None:
            continue
        plain = _plain_tree_facts(info)
        assert plain is None or plain == _built_tree_facts(info)
        if model_type == "llama":
            assert plain is not None and plain[0] == info.total_params


def test_nested_target_check_matches_the_prefix_definition():
    # _count_plain leaves a target under another target to the tree; _nested finds one by sorting, and must agree
    # with "some name has a dotted prefix that is also a name" for any names (dots, empty parts, odd characters).
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.knowledge.targeting import _nested

    part = st.sampled_from(["a", "b", "a-", "a!", "", "0", "ab"])
    names = st.sets(st.lists(part, min_size=1, max_size=4).map(".".join), max_size=6)

    @settings(max_examples=400, deadline=None)
    @given(names)
    def same(ns: set[str]) -> None:
        expected = any(n[:k] in ns for n in ns for k, ch in enumerate(n) if ch == ".")
        assert _nested(ns) == expected

    same()


def _shortcut_agrees_with_tree(monkeypatch, shortcut: str, counted, info, fields: dict) -> None:
    """analyze_lora with the count's shortcut `shortcut` (wrapped by `counted`) gives what it gives with the
    shortcut refused, which leaves the count to the adapted tree."""
    import dataclasses

    from loralint.knowledge import targeting

    info._analyses.clear()
    monkeypatch.setattr(targeting, shortcut, counted)
    fast = dataclasses.asdict(analyze_lora(info, fields))
    info._analyses.clear()
    monkeypatch.setattr(targeting, shortcut, lambda *a: False)
    assert fast == dataclasses.asdict(analyze_lora(info, fields))


def test_modules_to_save_count_without_the_tree_is_the_trees(monkeypatch):
    # _count_saved_plain counts modules_to_save (and SEQ_CLS's classifier/score) without building the adapted tree
    # when _set_trainable would only wrap; for any names, targets and task it must give what the tree gives, or
    # leave the count to the tree. The names mix the models' own leaves with suffixes of them and of what LoRA and
    # the wrapper add (plain str.endswith matches those too).

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.knowledge import targeting

    shortcut = targeting._count_saved_plain
    infos = {(mt, task): load_model_info(mt, None, task)
             for mt in ("llama", "gpt2", "bert", "roberta", "t5", "bloom", "qwen2_vl", "gemma2", "opt", "mixtral")
             for task in (None, "CAUSAL_LM", "SEQ_CLS", "TOKEN_CLS")}
    infos = {k: v for k, v in infos.items() if v is not None}
    leaves = sorted({m.leaf_name for info in infos.values() for m in info.modules if m.name})
    words = [*leaves, "head", "score", "classifier", "embed_token", "tokens", "proj", "default", "A", "layer",
             "module", "save", "model", "_model", "base_model", "lm_head.weight", "model.embed_tokens", "0", "s"]
    fired = []

    def counted(*args):
        took = shortcut(*args)
        fired.append(took)
        return took

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(sorted(infos, key=repr)), st.sampled_from([None, "all-linear", ["q_proj", "v_proj"], ["query"],
                                                            ["c_attn"], ["lm_head"], ["embed_tokens", "q_proj"]]),
           st.one_of(st.none(), st.lists(st.sampled_from(words), min_size=1, max_size=3)),
           st.sampled_from([None, "CAUSAL_LM", "SEQ_CLS", "TOKEN_CLS"]), st.booleans())
    def same(key, targets, saved, task, dora) -> None:
        fields = {"r": 4, "target_modules": targets, "modules_to_save": saved, "task_type": task, "use_dora": dora}
        _shortcut_agrees_with_tree(monkeypatch, "_count_saved_plain", counted, infos[key], fields)

    same()
    assert sum(fired) >= 30  # the shortcut was taken often enough for the comparison to mean something


def test_parameter_target_count_without_the_tree_is_the_trees(monkeypatch):
    # _count_plain also counts ParamWrappers (target_parameters, and the MoE conversion's) without building the
    # adapted tree when each wraps a module the tree reaches, outside every LoRA layer; for any targets, parameter
    # targets and ranks on MoE models it must give what the tree gives, or leave the count to the tree.

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.knowledge import targeting

    shortcut = targeting._count_plain
    infos = {mt: load_model_info(mt, None, "CAUSAL_LM") for mt in ("mixtral", "qwen2_moe", "qwen3_moe", "gpt_oss",
                                                                     "deepseek_v3", "olmoe", "granitemoe", "jamba")}
    infos = {k: v for k, v in infos.items() if v is not None}
    fired = []

    def counted(info, res, *args):
        took = shortcut(info, res, *args)
        fired.append(took and bool(res.targeted_parameters))
        return took

    params = ["experts.gate_up_proj", "mlp.experts.down_proj", "gate_up_proj", "down_proj", "experts.w1", "weight",
              "mlp.gate.weight", "gate.weight", "experts.gate_up_proj_bias", "experts", "embed_tokens.weight"]

    @settings(max_examples=200, deadline=None)
    @given(st.sampled_from(sorted(infos)),
           st.sampled_from([None, "all-linear", ["q_proj"], ["q_proj", "w1", "w2", "w3"], ["gate_proj", "up_proj"],
                            ["experts"], ["gate"], ["mlp"], ["self_attn"], ["down_proj", "o_proj"]]),
           st.one_of(st.none(), st.lists(st.sampled_from(params), min_size=1, max_size=3)),
           st.sampled_from([4, 8, 0, True]), st.sampled_from([{}, {"down_proj": 2}, {"experts": 3}]))
    def same(model_type, targets, tparams, r, ranks) -> None:
        fields = {"r": r, "target_modules": targets, "target_parameters": tparams, "rank_pattern": ranks}
        _shortcut_agrees_with_tree(monkeypatch, "_count_plain", counted, infos[model_type], fields)

    same()
    assert sum(fired) >= 30  # the shortcut was taken with parameter targets often enough to mean something


def test_first_suffix_entry_is_the_first_entry_the_name_ends_with():
    # check_target_module_exists finds the list entry a module name ends with (after a dot) by lookups, not by
    # PEFT's scan; for any entries (with dots or without, repeated, empty) and names it must answer as the scan.
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loralint.knowledge.targeting import _Cfg

    part = st.sampled_from(["q_proj", "proj", "j", "a", "0", "", "self_attn", "layers"])
    name = st.lists(part, min_size=1, max_size=4).map(".".join)
    entries = st.one_of(st.lists(name, max_size=10), st.sets(name, max_size=10))

    @settings(max_examples=500, deadline=None)
    @given(entries, st.lists(name, min_size=1, max_size=6))
    def same(tm, keys) -> None:
        cfg = _Cfg(tm, None, None, None, None, None)
        for key in keys:
            assert cfg.first_suffix_entry(key) == next((t for t in tm if key.endswith(f".{t}")), None)

    same()
