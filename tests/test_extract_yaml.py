"""YAML trainer configurations: format detection, key mapping onto PEFT names, values the trainer
really passes, exact positions, and what users see from `loralint check` on each format."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from loralint.extract.source import SourceSyntaxError
from loralint.extract.yaml_formats import extract_yaml
from loralint.sites import Unknown, is_known

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"


def sites(text: str, path: str = "config.yaml"):
    return extract_yaml(path, textwrap.dedent(text).lstrip("\n"))


def one(text: str):
    found = sites(text)
    assert len(found) == 1, found
    return found[0]


def at(field) -> tuple[int, int, int, int]:
    s = field.span
    return (s.line, s.column, s.end_line, s.end_column)


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("base_model: m/x\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n", "axolotl"),
        ("adapter: qlora\nload_in_4bit: true\nlora_r: 8\n", "axolotl"),
        ("lora_target_linear: true\nlora_r: 8\n", "axolotl"),
        ("model_name_or_path: m/x\nfinetuning_type: lora\nlora_rank: 8\n", "llamafactory"),
        ("model_name_or_path: m/x\nlora_target: all\n", "llamafactory"),
        ("model: m/x\npeft_config:\n  name: lora\n  r: 16\n", "llamafactory"),
        (
            "model:\n  _component_: torchtune.models.llama3_2.lora_llama3_2_1b\n  lora_attn_modules: [q_proj]\n",
            "torchtune",
        ),
        (
            "model:\n  _component_: torchtune.models.llama3_1.qlora_llama3_1_8b\n  lora_attn_modules: [q_proj]\n",
            "torchtune",
        ),
        ("model_name_or_path: m/x\nuse_peft: true\nlora_r: 8\n", "trl"),
        ("model_name_or_path: m/x\nlora_r: 8\n", "trl"),
        ("model: m/x\nlora:\n  lora_r: 16\n  lora_alpha: 16\n", "unsloth"),
        ("training:\n  max_steps: 30\nlora:\n  finetune_vision_layers: false\n", "unsloth"),
    ],
)
def test_each_format_is_recognised_from_its_keys(text, origin):
    site = one(text)
    assert site.origin == origin
    assert site.syntax == "yaml"


@pytest.mark.parametrize(
    "text",
    [
        # not LoRA at all, or LoRA switched off
        "name: CI\non:\n  push: {}\njobs:\n  adapter:\n    runs-on: ubuntu-latest\n",
        "base_model: m/x\nlearning_rate: 1e-5\n",  # axolotl full fine-tune
        "base_model: m/x\nadapter: llama-adapter\nlora_r: 8\n",  # another adapter
        "model_name_or_path: m/x\nfinetuning_type: full\nlora_rank: 8\n",
        "model_name_or_path: m/x\nuse_peft: false\nlora_r: 8\n",
        "model:\n  _component_: torchtune.models.llama3_2.llama3_2_1b\n",  # full fine-tune builder
        "model: m/x\ntraining:\n  training_type: full\nlora:\n  lora_r: 16\n",
        "model: m/x\npeft_config:\n  name: freeze\n",
        # a project's own schema: unknown semantics and defaults, so nothing is guessed
        "run_name: x\nmodel:\n  name_or_path: m/x\nlora:\n  r: 16\n  alpha: 32\n",
        "model: m/x\nlora:\n  r: 16\n  target_modules: [q_proj]\n",
        # loads an adapter trained elsewhere (its adapter_config.json governs)
        "model_name_or_path: m/x\nadapter_name_or_path: saves/lora\ntemplate: llama3\nfinetuning_type: lora\n",
        "model: m/x\npeft_config:\n  name: lora\n  adapter_name_or_path: ./out\n  export_dir: ./merged\n",
        "",
        "# only a comment\n",
        "- a list\n- at the top\n",
        "just a string\n",
    ],
)
def test_files_that_are_not_lora_configurations_give_no_site(text):
    assert sites(text) == []


# --- axolotl -------------------------------------------------------------------------------


def test_axolotl_keys_map_to_peft_names_with_exact_spans():
    site = one(
        """
        base_model: NousResearch/Llama-3.2-1B
        adapter: lora
        lora_r: 16
        lora_alpha: 32
        lora_dropout: 0.05
        lora_target_modules:
          - q_proj
          - v_proj
        peft_use_rslora: true
        peft_layers_to_transform: [0, 1]
        """
    )
    assert site.span.line == 2 and site.span.column == 1  # the `adapter` key
    r = site.fields["r"]
    assert r.value == 16 and at(r) == (3, 9, 3, 11)
    assert r.raw_name == "lora_r" and r.provenance == "YAML key lora_r"
    assert (r.key_span.line, r.key_span.column, r.key_span.end_column) == (3, 1, 7)
    assert site.fields["lora_alpha"].value == 32
    targets = site.fields["target_modules"]
    assert targets.value == ["q_proj", "v_proj"]
    assert at(targets) == (7, 3, 8, 11)  # from the first `-` to the end of the last item
    assert site.fields["use_rslora"].value is True
    assert site.fields["layers_to_transform"].value == [0, 1]
    assert site.base_model.value == "NousResearch/Llama-3.2-1B"
    assert at(site.base_model) == (1, 13, 1, 38)
    assert site.hints.applied == ["trainer"]
    assert site.defaults["task_type"] == "CAUSAL_LM" and site.defaults["target_modules"] == []


def test_axolotl_lora_target_linear_means_every_linear_layer():
    site = one(
        "adapter: lora\nlora_r: 8\nlora_alpha: 16\nlora_target_modules: [q_proj]\nlora_target_linear: true\n"
    )
    targets = site.fields["target_modules"]
    assert targets.value == "all-linear"
    assert "lora_target_linear" in targets.provenance and "['q_proj']" in targets.provenance
    assert not targets.provenance.startswith("YAML key")  # derived: never rewritten in place
    assert at(targets) == (5, 21, 5, 25)


def test_axolotl_missing_rank_and_alpha_reach_peft_as_none():
    site = one("base_model: m/x\nadapter: lora\nlora_target_linear: true\n")
    assert site.fields["r"].value is None and site.fields["lora_alpha"].value is None
    assert site.fields["r"].provenance.startswith("axolotl default")
    # with an adapter to resume from, its saved config provides them
    site = one("base_model: m/x\nadapter: lora\nlora_model_dir: ./out\nlora_target_linear: true\n")
    assert "r" not in site.fields


def test_axolotl_qlora_loftq_and_dataset_slices_become_hints():
    site = one(
        """
        base_model: m/x
        adapter: qlora
        load_in_4bit: true
        lora_r: 16
        lora_alpha: 16
        peft:
          loftq_config:
            loftq_bits: 4
        datasets:
          - path: a/b
            split: train[:3000]
          - path: c/d
            split: train[1000:3000]
        """
    )
    assert site.hints.quantization == "4bit" and site.hints.quantization_span.line == 3
    assert site.fields["loftq_config"].value == {"loftq_bits": 4}
    assert site.fields["init_lora_weights"].value == "loftq"
    assert site.hints.dataset_size.value == 5000
    assert site.hints.dataset_size.span.line == 11


def test_axolotl_without_adapter_is_read_but_not_applied():
    site = one("lora_r: 8\nlora_alpha: 16\nlora_target_linear: true\n")
    assert site.hints.applied == []


def test_axolotl_sequence_classification_task_type_comes_from_the_model_class():
    site = one(
        "base_model: m/x\nmodel_type: AutoModelForSequenceClassification\nadapter: lora\nlora_r: 8\nlora_alpha: 8\n"
    )
    assert site.defaults["task_type"] == "SEQ_CLS"
    assert site.hints.model_class == "AutoModelForSequenceClassification"


@pytest.mark.parametrize(
    ("key", "reported"),
    [
        ("lora_aplha", True),  # misspelt
        ("lora_rank", True),  # LLaMA-Factory's name: axolotl silently drops it
        ("target_modules", True),  # PEFT's name
        ("use_rslora", True),
        ("lora_mlp_kernel", False),  # axolotl's own
        ("loraplus_lr_ratio", False),
        ("learning_rate", False),
        ("peft_base_model_path", False),  # a project's own key, not a near miss of a LoRA key
    ],
)
def test_axolotl_unknown_lora_keys_are_collected(key, reported):
    site = one(f"base_model: m/x\nadapter: lora\nlora_r: 8\nlora_alpha: 16\n{key}: 1\n")
    names = [f.name for f in site.unknown_args]
    assert names == ([key] if reported else [])
    if reported:
        f = site.unknown_args[0]
        assert (f.span.line, f.span.column, f.span.end_column) == (5, 1, 1 + len(key))


# --- LLaMA-Factory -------------------------------------------------------------------------


def test_llamafactory_splits_lora_target_and_derives_alpha():
    site = one(
        """
        model_name_or_path: Qwen/Qwen3-4B-Instruct-2507
        finetuning_type: lora
        lora_rank: 16
        lora_target: q_proj, v_proj
        additional_target: embed_tokens,lm_head
        """
    )
    targets = site.fields["target_modules"]
    assert targets.value == ["q_proj", "v_proj"]
    assert targets.provenance.startswith("LLaMA-Factory splits YAML key lora_target")
    assert at(targets) == (4, 14, 4, 28)
    assert site.fields["modules_to_save"].value == ["embed_tokens", "lm_head"]
    alpha = site.fields["lora_alpha"]
    assert alpha.value == 32 and alpha.provenance == "LLaMA-Factory default (2 × lora_rank)"
    assert alpha.span == site.fields["r"].span
    assert site.base_model.value == "Qwen/Qwen3-4B-Instruct-2507"


def test_llamafactory_all_is_all_linear_and_defaults_apply():
    site = one("model_name_or_path: m/x\nstage: sft\nfinetuning_type: lora\nlora_target: all\n")
    assert site.fields["target_modules"].value == "all-linear"
    assert "r" not in site.fields
    assert site.value("r") == 8 and site.value("lora_alpha") == 16 and site.value("lora_dropout") == 0.0


def test_llamafactory_zero_alpha_is_replaced_by_twice_the_rank():
    site = one("model_name_or_path: m/x\nlora_rank: 8\nlora_alpha: 0\n")
    assert site.fields["lora_alpha"].value == 16
    assert "treats as unset" in site.fields["lora_alpha"].provenance


def test_llamafactory_pissa_and_quantization():
    site = one(
        "model_name_or_path: m/x\nquantization_bit: 4\nlora_rank: 8\npissa_init: true\npissa_iter: -1\n"
    )
    assert site.fields["init_lora_weights"].value == "pissa"
    assert site.hints.quantization == "4bit" and site.hints.quantization_span.line == 2


def test_llamafactory_v1_peft_config():
    site = one(
        """
        model: Qwen/Qwen3-0.6B
        peft_config:
          name: lora
          r: 16
          lora_alpha: 32
          target_modules: all
          lora_dropuot: 0.1
        quant_config:
          name: bnb
          quantization_bit: 4
        """
    )
    assert site.origin == "llamafactory"
    assert site.fields["r"].provenance == "YAML key peft_config.r"
    assert site.fields["target_modules"].value == "all-linear"
    assert site.value("lora_dropout") == 0.05  # v1's default differs from v0's
    assert [f.name for f in site.unknown_args] == ["lora_dropuot"]
    assert site.hints.quantization == "4bit"
    assert site.base_model.value == "Qwen/Qwen3-0.6B"


# --- torchtune -----------------------------------------------------------------------------


def test_torchtune_builder_arguments_and_module_names():
    site = one(
        """
        # tune download meta-llama/Llama-3.2-1B-Instruct --output-dir /tmp/Llama-3.2-1B-Instruct
        model:
          _component_: torchtune.models.llama3_2.lora_llama3_2_1b
          lora_attn_modules: ['q_proj', 'v_proj', 'output_proj', 'o_proj']
          apply_lora_to_mlp: True
          apply_lora_to_output: True
          lora_rank: 64
          lora_alpha: 128
        checkpointer:
          checkpoint_dir: /tmp/Llama-3.2-1B-Instruct/
        dataset:
          _component_: torchtune.datasets.alpaca_cleaned_dataset
          split: train[:95%]
        """
    )
    assert site.origin == "torchtune" and (site.span.line, site.span.column) == (2, 1)
    assert site.fields["r"].value == 64 and site.fields["r"].provenance == "YAML key model.lora_rank"
    targets = site.fields["target_modules"]
    assert targets.value == ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj", "lm_head"]
    assert "output_proj→o_proj" in targets.provenance
    assert "['o_proj'] is not" in targets.provenance  # torchtune ignores the HF name silently
    assert at(targets) == (4, 22, 4, 67)
    assert site.value("lora_dropout") == 0.0
    assert site.base_model.value == "meta-llama/Llama-3.2-1B-Instruct"
    assert (site.base_model.span.line, site.base_model.span.column) == (1, 17)
    assert site.hints.dataset_size is None  # a percentage is not a count
    assert site.hints.quantization is None


def test_torchtune_qlora_builder_distillation_and_fused_families():
    site = one(
        """
        # tune download Qwen/Qwen2.5-14B-Instruct
        # tune download Qwen/Qwen2.5-7B-Instruct
        model:
          _component_: torchtune.models.qwen2_5.qlora_qwen2_5_7b
          lora_attn_modules: ['q_proj', 'v_proj']
        teacher_model:
          _component_: torchtune.models.qwen2_5.lora_qwen2_5_14b_instruct
          lora_attn_modules: ['q_proj', 'v_proj']
        checkpointer:
          checkpoint_dir: /tmp/Qwen2.5-7B-Instruct
        """
    )
    assert site.hints.quantization == "4bit" and site.hints.quantization_span.line == 4
    assert site.base_model.value == "Qwen/Qwen2.5-7B-Instruct"  # the student's, not the teacher's
    phi = one("model:\n  _component_: torchtune.models.phi3.lora_phi3_mini\n  lora_attn_modules: [q_proj]\n")
    assert not phi.fields["target_modules"].known  # HF fuses qkv_proj: torchtune's names do not apply


# --- TRL -----------------------------------------------------------------------------------


def test_trl_one_element_target_list_becomes_a_string():
    site = one("model_name_or_path: m/x\nuse_peft: true\nlora_target_modules: [q_proj]\n")
    targets = site.fields["target_modules"]
    assert targets.value == "q_proj"
    assert "one-element list" in targets.provenance and not targets.provenance.startswith("YAML key")
    assert at(targets) == (3, 22, 3, 30)
    two = one("model_name_or_path: m/x\nuse_peft: true\nlora_target_modules: [q_proj, v_proj]\n")
    assert two.fields["target_modules"].value == ["q_proj", "v_proj"]


def test_trl_defaults_quantization_and_dataset_mixture():
    site = one(
        """
        model_name_or_path: mistralai/Mistral-7B-v0.1
        load_in_4bit: true
        use_peft: true
        lora_r: 64
        dataset_mixture:
          datasets:
            - id: HuggingFaceH4/ultrachat_200k
              split: train_sft[:20000]
        """
    )
    assert site.value("lora_alpha") == 32 and site.value("lora_dropout") == 0.05
    assert site.value("task_type") == "CAUSAL_LM"
    assert site.hints.quantization == "4bit"
    assert site.hints.dataset_size.value == 20000


def test_trl_without_use_peft_is_not_applied():
    site = one("model_name_or_path: m/x\nlora_r: 8\nlora_alpha: 16\n")
    assert site.hints.applied == []


# --- Unsloth -------------------------------------------------------------------------------


def test_unsloth_cli_section_and_its_comma_string():
    site = one(
        """
        model: unsloth/Qwen2.5-0.5B
        training:
          training_type: lora
        lora:
          lora_r: 64
          lora_alpha: 16
          target_modules: "q_proj,k_proj, v_proj"
          use_loftq: true
        """
    )
    assert site.origin == "unsloth" and site.span.line == 4
    assert site.fields["r"].provenance == "YAML key lora.lora_r"
    assert site.fields["target_modules"].value == ["q_proj", "k_proj", "v_proj"]
    assert site.fields["loftq_config"].value == {"loftq_bits": 4, "loftq_iter": 1}
    assert "init_lora_weights" not in site.fields  # the reason LORA009 fires
    assert site.hints.quantization == "4bit"  # training.load_in_4bit defaults to true
    assert site.base_model.value == "unsloth/Qwen2.5-0.5B"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('["all-linear"]', "all-linear"),
        ('["all-linear", "q_proj"]', ["q_proj"]),
        ('""', None),  # empty: Unsloth's seven projections (a default, not a field)
        ("[]", None),
        ("[q_proj, v_proj]", ["q_proj", "v_proj"]),
    ],
)
def test_unsloth_target_modules_forms(value, expected):
    site = one(f"lora:\n  lora_r: 16\n  target_modules: {value}\n")
    if expected is None:
        assert "target_modules" not in site.fields
        assert site.value("target_modules") == [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ]
    else:
        assert site.fields["target_modules"].value == expected


def test_unsloth_vision_all_linear_makes_targets_unknown_and_every_unknown_key_is_reported():
    site = one("lora:\n  lora_r: 16\n  vision_all_linear: true\n  rank: 8\n")
    assert isinstance(site.fields["target_modules"].value, Unknown)
    assert [f.name for f in site.unknown_args] == ["rank"]  # the CLI forbids extra keys


# --- YAML itself ---------------------------------------------------------------------------


def test_every_document_of_a_stream_may_hold_a_site():
    found = sites(
        "model_name_or_path: a/b\nuse_peft: true\nlora_r: 8\n---\nname: other\n---\nbase_model: c/d\nadapter: lora\nlora_r: 4\n"
    )
    assert [(s.origin, s.span.line, s.fields["r"].value) for s in found] == [("trl", 2, 8), ("axolotl", 8, 4)]


def test_anchors_merge_keys_and_quoted_keys():
    site = one(
        """
        common: &lora
          lora_r: 8
          lora_alpha: 16
        model_name_or_path: m/x
        use_peft: true
        <<: *lora
        lora_alpha: 32
        'lora_aplha': 4
        """
    )
    assert site.fields["r"].value == 8 and site.fields["r"].span.line == 2  # written in the anchor
    assert site.fields["lora_alpha"].value == 32  # an explicit key overrides the merged one
    typo = site.unknown_args[0]
    assert typo.name == "lora_aplha"
    assert (typo.span.line, typo.span.column, typo.span.end_column) == (8, 2, 12)  # inside the quotes


def test_unsafe_tags_are_never_constructed():
    site = one(
        "model_name_or_path: m/x\nuse_peft: true\nlora_r: !!python/object/apply:os.system ['echo hi']\nlora_alpha: 16\n"
    )
    assert isinstance(site.fields["r"].value, Unknown)
    assert site.fields["lora_alpha"].value == 16


def test_alias_bombs_do_not_expand():
    levels = "".join(f"l{i + 1}: &l{i + 1} [{', '.join([f'*l{i}'] * 10)}]\n" for i in range(8))
    text = (
        "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n"
        + levels
        + "model_name_or_path: m/x\nuse_peft: true\nlora_target_modules: *l8\n"
    )
    site = one(text)
    assert not is_known(site.fields["target_modules"].value)


def test_block_scalars_end_on_their_last_line():
    site = one(
        "model_name_or_path: m/x\nuse_peft: true\nlora_target_modules: >-\n  .*\\.(q_proj|v_proj)\n\nlora_r: 8\n"
    )
    assert site.fields["target_modules"].value == ".*\\.(q_proj|v_proj)"
    assert at(site.fields["target_modules"]) == (3, 22, 4, 22)


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("adapter: lora\nlora_r: 8\nlora_target_modules: [q_proj, v_proj\nlora_alpha: 16\n", 4, 11),
        ("adapter: lora\nlora_r: 8\n  lora_alpha: 16\n", 3, 13),
        ("adapter: lora\nlora_r: 'eight\n", 3, 1),
    ],
)
def test_broken_yaml_raises_with_its_position(text, line, column):
    with pytest.raises(SourceSyntaxError) as info:
        extract_yaml("broken.yaml", text)
    assert (info.value.line, info.value.column) == (line, column)
    assert info.value.message.startswith("invalid YAML")


# --- what users see: `loralint check --output-format json` on each format -------------------


def diagnostics(report) -> list[tuple[str, str, int, int]]:
    return sorted((d["path"], d["code"], d["line"], d["column"]) for d in report["diagnostics"])


def config(report, path):
    matches = [c for c in report["configs"] if c["path"] == path]
    assert len(matches) == 1, report["configs"]
    return matches[0]


@pytest.fixture
def formats(tmp_path):
    target = tmp_path / "formats"
    shutil.copytree(FIXTURES, target)
    return target


def test_axolotl_mistakes_are_reported(check_json, formats):
    report = check_json("axolotl_mistakes.yml", cwd=formats).json
    assert diagnostics(report) == [
        ("axolotl_mistakes.yml", "LORA001", 22, 1),  # lora_fan_in_fanout: did you mean lora_fan_in_fan_out?
        ("axolotl_mistakes.yml", "LORA102", 14, 9),  # r=64, alpha 16 without rsLoRA: advice, one finding
        ("axolotl_mistakes.yml", "LORA104", 16, 15),  # dropout with split train[:250000]
        ("axolotl_mistakes.yml", "LORA205", 18, 3),  # attention-only targets on Mistral (advice)
    ]
    by_code = {d["code"]: d for d in report["diagnostics"]}
    assert "did you mean lora_fan_in_fan_out?" in by_code["LORA001"]["message"]
    assert by_code["LORA001"]["fix"]["edits"][0]["content"] == "lora_fan_in_fan_out"
    assert "set use_rslora=True, which keeps lora_alpha=16 at a scaling of lora_alpha/sqrt(r) = 2" in (
        by_code["LORA102"]["message"]
    )
    assert "250,000 training examples" in by_code["LORA104"]["message"]
    cfg = config(report, "axolotl_mistakes.yml")
    assert cfg["origin"] == "axolotl" and cfg["line"] == 6
    assert cfg["fields"] == {
        "r": 64,
        "lora_alpha": 16,
        "lora_dropout": 0.05,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    }
    assert cfg["base_model"] == "mistralai/Mistral-7B-v0.1"
    assert cfg["scaling"] == 0.25


def test_llamafactory_comma_target_is_fine_and_mistakes_are_reported(check_json, formats):
    report = check_json("llamafactory_mistakes.yaml", "llamafactory_clean.yaml", cwd=formats).json
    assert diagnostics(report) == [
        ("llamafactory_mistakes.yaml", "LORA001", 12, 1),  # use_rslroa
        ("llamafactory_mistakes.yaml", "LORA102", 9, 12),  # alpha 16 at rank 128: rsLoRA keeps it
        ("llamafactory_mistakes.yaml", "LORA205", 11, 14),  # q_proj,v_proj on Qwen3-4B: advice
        ("llamafactory_mistakes.yaml", "LORA301", 13, 13),  # PiSSA on a 4-bit model
    ]
    assert not any(
        d["code"] == "LORA209" for d in report["diagnostics"]
    )  # `q_proj,v_proj` is split by LLaMA-Factory
    clean = config(report, "llamafactory_clean.yaml")
    assert clean["origin"] == "llamafactory"
    assert clean["fields"] == {
        "r": 16,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "lora_alpha": 32,
    }
    assert clean["base_model"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert clean["scaling"] == 2.0


def test_trl_single_target_list_is_reported(check_json, formats):
    report = check_json("trl_single_target.yaml", "trl_clean.yaml", cwd=formats).json
    assert diagnostics(report) == [
        ("trl_single_target.yaml", "LORA005", 8, 17),  # lora_task_type: CAUSAL
        ("trl_single_target.yaml", "LORA209", 7, 22),  # [q_proj] → "q_proj", a regex matching nothing
    ]
    lora209 = next(d for d in report["diagnostics"] if d["code"] == "LORA209")
    assert (lora209["end_line"], lora209["end_column"]) == (7, 30)
    assert lora209["fix"] is None  # a one-element list is what the user wrote: no in-place fix
    cfg = config(report, "trl_single_target.yaml")
    assert cfg["fields"] == {"r": 16, "target_modules": "q_proj", "task_type": "CAUSAL"}
    assert cfg["scaling"] == 2.0  # TRL's default lora_alpha=32
    assert config(report, "trl_clean.yaml")["fields"]["target_modules"] == "all-linear"


def test_torchtune_mistakes_are_reported(check_json, formats):
    report = check_json("torchtune_mistakes.yaml", "torchtune_clean.yaml", cwd=formats).json
    assert diagnostics(report) == [
        ("torchtune_mistakes.yaml", "LORA001", 13, 3),  # use_rslora: no such builder argument
        ("torchtune_mistakes.yaml", "LORA102", 10, 14),
    ]
    cfg = config(report, "torchtune_mistakes.yaml")
    assert cfg["fields"]["target_modules"] == ["q_proj", "v_proj", "gate_proj", "down_proj", "up_proj"]
    assert cfg["base_model"] == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    clean = config(report, "torchtune_clean.yaml")
    assert clean["fields"] == {
        "r": 16,
        "lora_alpha": 32,
        "target_modules": ["q_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj"],
    }


def test_unsloth_mistakes_are_reported(check_json, formats):
    report = check_json("unsloth_mistakes.yaml", "unsloth_clean.yaml", cwd=formats).json
    assert diagnostics(report) == [
        ("unsloth_mistakes.yaml", "LORA001", 12, 3),  # lora_aplha
        ("unsloth_mistakes.yaml", "LORA009", 15, 3),  # use_loftq passes a LoftQ config PEFT ignores
        ("unsloth_mistakes.yaml", "LORA108", 13, 17),  # dropout leaves Unsloth's fast path
        ("unsloth_mistakes.yaml", "LORA205", 14, 19),  # attention-only targets (advice)
    ]
    lora001 = next(d for d in report["diagnostics"] if d["code"] == "LORA001")
    assert "did you mean lora_alpha?" in lora001["message"]
    clean = config(report, "unsloth_clean.yaml")
    assert clean["fields"]["target_modules"] == "all-linear"
    assert clean["base_model"] == "unsloth/Qwen2.5-1.5B-Instruct"


def test_clean_configurations_of_every_format_have_no_findings(check_json, formats):
    names = [
        "axolotl_clean.yml",
        "llamafactory_clean.yaml",
        "trl_clean.yaml",
        "torchtune_clean.yaml",
        "unsloth_clean.yaml",
    ]
    run = check_json(*names, cwd=formats)
    assert run.json["diagnostics"] == []
    assert run.exit_code == 0
    assert sorted(c["origin"] for c in run.json["configs"]) == [
        "axolotl",
        "llamafactory",
        "torchtune",
        "trl",
        "unsloth",
    ]


def test_broken_and_undecodable_yaml_are_reported_and_the_rest_is_checked(check_json, formats):
    run = check_json("broken.yaml", "latin1.yaml", "trl_single_target.yaml", cwd=formats)
    report = run.json
    assert report["files_checked"] == 3
    found = diagnostics(report)
    assert ("broken.yaml", "LORA901", 6, 13) in found  # where libyaml notices the unclosed `[`
    assert ("latin1.yaml", "LORA902", 1, 1) in found
    assert ("trl_single_target.yaml", "LORA209", 7, 22) in found
    messages = {d["code"]: d["message"] for d in report["diagnostics"]}
    assert "invalid YAML" in messages["LORA901"] and "UTF-8" in messages["LORA902"]
    assert run.exit_code == 1


def test_yaml_suppression_comments_apply(check_json, write, tmp_path):
    write(
        "train.yaml",
        """
        model_name_or_path: m/x
        use_peft: true
        lora_r: 32
        lora_alpha: 4  # loralint: ignore[LORA101]
        """,
    )
    codes = check_json("train.yaml", "--select", "LORA101,LORA903").codes()
    assert codes == []


def test_trl_string_targets_are_not_fixed_into_a_list_trl_would_collapse(check_json, write):
    write("sft.yaml", "model_name_or_path: m/x\nuse_peft: true\nlora_target_modules: q_proj\n")
    [lora209] = check_json("sft.yaml", "--select", "LORA209").json["diagnostics"]
    assert (lora209["line"], lora209["column"]) == (3, 22)
    assert lora209["fix"] is None
