"""JSON: PEFT's adapter_config.json and JSON versions of the trainer formats (same mapping as YAML)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loralint.extract.adapter_json import extract_json
from loralint.extract.source import SourceSyntaxError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"


def at(field) -> tuple[int, int, int, int]:
    s = field.span
    return (s.line, s.column, s.end_line, s.end_column)


def test_adapter_config_fields_are_peft_names_with_exact_spans():
    text = (FIXTURES / "adapter_config.json").read_text()
    [site] = extract_json("adapter_config.json", text)
    assert site.origin == "adapter_config" and site.syntax == "json"
    assert site.fields["r"].value == 16 and at(site.fields["r"]) == (12, 8, 12, 10)
    assert site.fields["r"].provenance == "JSON key r"
    assert site.fields["bias"].value == "all" and at(site.fields["bias"]) == (3, 11, 3, 16)
    assert at(site.fields["target_modules"]) == (13, 21, 13, 41)
    assert site.fields["target_modules"].provenance.startswith("JSON key target_modules (as saved")
    assert "peft_type" not in site.fields and "base_model_name_or_path" not in site.fields
    assert site.base_model.value == "Qwen/Qwen2.5-0.5B"
    assert site.hints.applied == []  # a saved adapter: nothing is applied here
    [typo] = site.unknown_args
    assert typo.name == "loftq_confg"
    assert (typo.span.line, typo.span.column, typo.span.end_column) == (9, 4, 15)  # inside the quotes


@pytest.mark.parametrize(
    "text",
    [
        '{"peft_type": "IA3", "target_modules": ["k", "v"]}',  # another PEFT method
        '{"base_model": "lerobot/smolvla_base"}',  # not a PEFT file
        '{"r": 8, "lora_alpha": 16}',  # no peft_type: PEFT refuses it, not a configuration we can place
        "[1, 2, 3]",
        '"just a string"',
        '{"model": {"vocab": {"r": 1, "lora": 2}}}',  # a tokenizer-like file that passed the byte prefilter
    ],
)
def test_json_that_is_not_a_lora_configuration_gives_no_site(text):
    assert extract_json("x.json", text) == []


def test_adapter_config_details_tabs_unicode_and_numbers():
    text = '{\n\t"peft_type": "LORA",\n\t"r": 8, "lora_alpha": 1e1,\n\t"task_type": "CAUSAL_LM", "n\\u00e4me": "\u00e9t\u00e9", "lora_dropout": 0.1\n}'
    [site] = extract_json("a.json", text)
    assert site.fields["lora_alpha"].value == 10.0 and at(site.fields["lora_alpha"]) == (3, 24, 3, 27)
    # columns count characters, not bytes: the value after "été" starts where an editor shows it
    assert at(site.fields["lora_dropout"]) == (4, 64, 4, 67)
    assert [f.name for f in site.unknown_args] == ["n\u00e4me"]


def test_old_peft_keys_in_adapter_config_are_unknown():
    [site] = extract_json(
        "a.json", '{"peft_type": "LORA", "r": 8, "enable_lora": null, "merge_weights": false}'
    )
    assert [f.name for f in site.unknown_args] == ["enable_lora", "merge_weights"]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('{\n  "peft_type": "LORA",\n  "r": 8,\n}\n', 4, 1),
        ('{"peft_type": "LORA", "r": 8', 1, 29),
        ("{'peft_type': 'LORA'}", 1, 2),
    ],
)
def test_invalid_json_raises_with_its_position(text, line, column):
    with pytest.raises(SourceSyntaxError) as info:
        extract_json("a.json", text)
    assert (info.value.line, info.value.column) == (line, column)
    assert info.value.message.startswith("invalid JSON")


def test_trainer_formats_written_as_json_use_the_same_mapping():
    llamafactory = json.dumps(
        {
            "model_name_or_path": "m/x",
            "finetuning_type": "lora",
            "lora_rank": 16,
            "lora_target": "q_proj,v_proj",
        },
        indent=2,
    )
    [site] = extract_json("train.json", llamafactory)
    assert site.origin == "llamafactory" and site.syntax == "json"
    assert site.fields["r"].provenance == "JSON key lora_rank"
    assert site.fields["target_modules"].value == ["q_proj", "v_proj"]
    assert site.fields["target_modules"].provenance.startswith("LLaMA-Factory splits JSON key lora_target")
    assert site.fields["lora_alpha"].value == 32
    assert at(site.fields["r"]) == (4, 16, 4, 18)
    trl = '{"model_name_or_path": "m/x", "use_peft": true, "lora_target_modules": ["q_proj"]}'
    [site] = extract_json("trl.json", trl)
    assert site.origin == "trl" and site.fields["target_modules"].value == "q_proj"
    torchtune = '{"model": {"_component_": "torchtune.models.llama3_2.lora_llama3_2_1b", "lora_attn_modules": ["q_proj"], "lora_rank": 4}}'
    [site] = extract_json("tt.json", torchtune)
    assert site.origin == "torchtune" and site.fields["r"].provenance == "JSON key model.lora_rank"


def test_a_large_json_file_without_a_configuration_is_not_a_site():
    vocab = {f"tok{i}": i for i in range(300_000)} | {"r": 1}
    text = json.dumps({"model": {"vocab": vocab}})
    assert extract_json("tokenizer.json", text) == []


# --- what users see ------------------------------------------------------------------------


@pytest.fixture
def formats(tmp_path):
    target = tmp_path / "formats"
    shutil.copytree(FIXTURES, target)
    return target


def test_adapter_config_mistakes_are_reported(check_json, formats):
    run = check_json("adapter_config.json", "clean_adapter/adapter_config.json", cwd=formats)
    report = run.json
    found = sorted(
        (d["path"], d["code"], d["line"], d["column"], d["end_column"]) for d in report["diagnostics"]
    )
    assert found == [
        ("adapter_config.json", "LORA001", 9, 4, 15),  # loftq_confg: PEFT drops it with a warning
        ("adapter_config.json", "LORA106", 3, 11, 16),  # bias "all" (Qwen2.5 has q/k/v biases)
        ("adapter_config.json", "LORA205", 13, 21, 41),  # attention-only targets on the base model (advice)
    ]
    by_code = {d["code"]: d for d in report["diagnostics"]}
    # 24 layers x (896 + 128 + 128) q/k/v biases: what bias="all" trains on this model
    assert "(27,648 parameters here)" in by_code["LORA106"]["message"]
    assert "did you mean loftq_config?" in by_code["LORA001"]["message"]
    assert by_code["LORA001"]["fix"]["edits"][0]["content"] == "loftq_config"  # the quotes stay
    # bias="all" trained the biases saved with this adapter: "none" would drop them at load time, so a
    # saved adapter gets the advice and no fix.
    assert by_code["LORA106"]["fix"] is None
    configs = {c["path"]: c for c in report["configs"]}
    cfg = configs["adapter_config.json"]
    assert cfg["origin"] == "adapter_config"
    assert cfg["base_model"] == "Qwen/Qwen2.5-0.5B"
    assert cfg["fields"]["r"] == 16 and cfg["fields"]["lora_alpha"] == 32 and cfg["fields"]["bias"] == "all"
    assert cfg["fields"]["target_modules"] == ["q_proj", "v_proj"]
    assert "loftq_confg" not in cfg["fields"]
    clean = configs["clean_adapter/adapter_config.json"]
    assert clean["base_model"] == "Qwen/Qwen2.5-7B-Instruct" and clean["scaling"] == 2.0


def test_clean_adapter_config_has_no_findings(check_json, formats):
    run = check_json("clean_adapter", cwd=formats)
    assert run.json["diagnostics"] == [] and run.exit_code == 0
    assert [c["origin"] for c in run.json["configs"]] == ["adapter_config"]


def test_invalid_adapter_config_is_reported_with_its_position(check_json, write):
    write("adapter_config.json", '{\n  "peft_type": "LORA",\n  "r": 8,\n}\n')
    report = check_json("adapter_config.json").json
    assert [(d["code"], d["line"], d["column"]) for d in report["diagnostics"]] == [("LORA901", 4, 1)]
