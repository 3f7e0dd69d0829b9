"""LORA104 on the data set's real size: local files counted by streaming, split slices, caps,
LLaMA-Factory's dataset_info.json, the datasets cache and the shipped Hub index. Each case is a
small project run through the CLI; assertions are on the finding and the source it names."""

from __future__ import annotations

import json
import struct
import textwrap

from helpers import run_cli
from hostile.conftest import run_bounded

AXOLOTL = """
base_model: meta-llama/Llama-3.2-3B
adapter: lora
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_linear: true
datasets:
  - path: {path}
    type: alpaca
"""


def lora104(tmp_path, name: str, env: dict | None = None) -> list[str]:
    env = {"HF_DATASETS_CACHE": str(tmp_path / "empty-cache"), **(env or {})}
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "LORA104", name], cwd=tmp_path, env=env)
    assert run.exit_code in (0, 1), run.stderr
    return [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA104"]


def jsonl(path, n: int, blank_every: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"q{i}", "output": "a"}) + "\n")
            if blank_every and i % blank_every == 0:
                f.write("\n")


def axolotl(tmp_path, data: str) -> None:
    (tmp_path / "config.yml").write_text(AXOLOTL.format(path=data).lstrip())


def test_a_200k_line_jsonl_in_an_axolotl_config_is_lora104(tmp_path):
    jsonl(tmp_path / "data" / "train.jsonl", 200_000)
    axolotl(tmp_path, "data/train.jsonl")
    [message] = lora104(tmp_path, "config.yml")
    assert "200,000 training examples (JSON lines counted in data/train.jsonl; axolotl datasets[0])" in message


def test_blank_lines_are_not_records_and_the_threshold_is_exact(tmp_path):
    jsonl(tmp_path / "data" / "train.jsonl", 99_999, blank_every=10)
    axolotl(tmp_path, "data/train.jsonl")
    assert lora104(tmp_path, "config.yml") == []
    jsonl(tmp_path / "data" / "train.jsonl", 100_000, blank_every=10)
    assert len(lora104(tmp_path, "config.yml")) == 1


def test_a_missing_data_file_keeps_the_rule_quiet(tmp_path):
    axolotl(tmp_path, "data/train.jsonl")
    assert lora104(tmp_path, "config.yml") == []


def test_json_array_items_are_counted_past_tricky_strings(tmp_path):
    item = {"text": 'a "quoted" ], {not} a, bracket \\', "nested": [1, {"k": "]"}]}
    (tmp_path / "data.json").write_text(json.dumps([item] * 100_000))
    axolotl(tmp_path, "data.json")
    [message] = lora104(tmp_path, "config.yml")
    assert "100,000 training examples (items of the JSON array counted in data.json" in message
    (tmp_path / "data.json").write_text(json.dumps([item] * 99_999))
    assert lora104(tmp_path, "config.yml") == []


def test_csv_records_with_quoted_newlines_count_once(tmp_path):
    def write(n: int) -> None:
        with (tmp_path / "train.csv").open("w") as f:
            f.write("instruction,output\n")
            for i in range(n):
                f.write(f'"line one\nline two {i}",answer\n')

    axolotl(tmp_path, "train.csv")
    write(99_999)  # about 200,000 physical lines, 99,999 records
    assert lora104(tmp_path, "config.yml") == []
    write(100_000)
    [message] = lora104(tmp_path, "config.yml")
    assert "100,000 training examples (CSV records counted in train.csv" in message


def _parquet(num_rows: int) -> bytes:
    """A Parquet file's frame with a FileMetaData footer in thrift's compact protocol: version
    (i32), schema (a list of one struct with a name), num_rows (i64)."""

    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    zigzag = lambda n: varint((n << 1) ^ (n >> 63))
    schema_element = b"\x48" + varint(6) + b"schema" + b"\x00"  # field 4 (name): binary
    footer = b"\x15" + zigzag(2) + b"\x19" + bytes([(1 << 4) | 12]) + schema_element + b"\x16" + zigzag(num_rows) + b"\x00"
    return b"PAR1" + b"\x00" * 16 + footer + struct.pack("<I", len(footer)) + b"PAR1"


def test_parquet_rows_come_from_the_footer(tmp_path):
    (tmp_path / "train.parquet").write_bytes(_parquet(300_000))
    axolotl(tmp_path, "train.parquet")
    [message] = lora104(tmp_path, "config.yml")
    assert "300,000 training examples (rows in the Parquet footer counted in train.parquet" in message
    (tmp_path / "train.parquet").write_bytes(b"PAR1 not really parquet")
    assert lora104(tmp_path, "config.yml") == []


def test_python_load_dataset_json_reaching_the_trainer(tmp_path):
    jsonl(tmp_path / "data" / "train.jsonl", 150_000)
    (tmp_path / "train.py").write_text(textwrap.dedent("""
        from datasets import load_dataset
        from peft import LoraConfig
        from trl import SFTTrainer
        ds = load_dataset("json", data_files={"train": "data/train.jsonl"})["train"].shuffle(seed=0)
        small = ds.select(range(2000))
        trainer = SFTTrainer(model="gpt2", train_dataset=TRAIN, peft_config=LoraConfig(lora_dropout=0.1, task_type="CAUSAL_LM"))
    """))
    source = (tmp_path / "train.py").read_text()
    (tmp_path / "train.py").write_text(source.replace("TRAIN", "ds"))
    [message] = lora104(tmp_path, "train.py")
    assert "150,000 training examples (JSON lines counted in data/train.jsonl; load_dataset at line 5)" in message
    (tmp_path / "train.py").write_text(source.replace("TRAIN", "small"))  # .select(range(2000)) trains on 2,000
    assert lora104(tmp_path, "train.py") == []


def test_dataset_from_json_is_counted(tmp_path):
    jsonl(tmp_path / "train.jsonl", 120_000)
    (tmp_path / "train.py").write_text(
        "from datasets import Dataset\nfrom peft import LoraConfig\n"
        "ds = Dataset.from_json('train.jsonl')\nc = LoraConfig(lora_dropout=0.1, task_type='CAUSAL_LM')\n"
    )
    [message] = lora104(tmp_path, "train.py")
    assert "120,000 training examples (JSON lines counted in train.jsonl; Dataset.from_json at line 3)" in message


def hub_script(tmp_path, call: str) -> None:
    (tmp_path / "train.py").write_text(
        f"from datasets import load_dataset\nfrom peft import LoraConfig\nds = {call}\n"
        "c = LoraConfig(lora_dropout=0.1, task_type='CAUSAL_LM')\n"
    )


def test_hub_data_sets_from_the_shipped_index_with_split_slices(tmp_path):
    hub_script(tmp_path, 'load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft")')
    [message] = lora104(tmp_path, "train.py")
    assert "207,865 training examples (HuggingFaceH4/ultrachat_200k split='train_sft', split sizes from loralint's index" in message
    hub_script(tmp_path, 'load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft[:10%]")')
    assert lora104(tmp_path, "train.py") == []  # 20,787
    hub_script(tmp_path, 'load_dataset("tatsu-lab/alpaca", split="train[:5000]")')
    assert lora104(tmp_path, "train.py") == []
    # rows selected by a call that is not followed to a trainer: the size is not known
    hub_script(tmp_path, 'load_dataset("HuggingFaceH4/ultrachat_200k", split="train_sft").select(range(1000))')
    assert lora104(tmp_path, "train.py") == []


def test_hub_data_sets_from_the_local_datasets_cache(tmp_path):
    cache = tmp_path / "hf-datasets"
    info = cache / "acme___big-chat" / "default" / "0.0.0" / "abc123" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"splits": {"train": {"name": "train", "num_examples": 300_000}}}))
    hub_script(tmp_path, 'load_dataset("acme/big-chat", split="train")')
    [message] = lora104(tmp_path, "train.py", env={"HF_DATASETS_CACHE": str(cache)})
    assert "300,000 training examples (acme/big-chat, split sizes from the local datasets cache's dataset_info.json" in message
    assert lora104(tmp_path, "train.py") == []  # another cache: not known


def test_llamafactory_dataset_info_and_max_samples(tmp_path):
    jsonl(tmp_path / "data" / "big.jsonl", 150_000)
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"big": {"file_name": "big.jsonl"}}))
    config = textwrap.dedent("""
        model_name_or_path: meta-llama/Llama-3.2-3B
        stage: sft
        finetuning_type: lora
        lora_rank: 8
        lora_dropout: 0.1
        lora_target: all
        dataset: big
        {extra}
    """)
    (tmp_path / "sft.yaml").write_text(config.format(extra=""))
    [message] = lora104(tmp_path, "sft.yaml")
    assert "150,000 training examples (JSON lines counted in" in message and "big in data/dataset_info.json" in message
    (tmp_path / "sft.yaml").write_text(config.format(extra="max_samples: 1000"))
    assert lora104(tmp_path, "sft.yaml") == []


def test_a_10mb_jsonl_is_counted_by_streaming_under_a_memory_bound(tmp_path):
    line = json.dumps({"instruction": "x" * 60, "output": "y" * 40}) + "\n"
    with (tmp_path / "train.jsonl").open("w") as f:
        f.write(line * 110_000)  # ~13 MB
    assert (tmp_path / "train.jsonl").stat().st_size > 10_000_000
    axolotl(tmp_path, "train.jsonl")
    run = run_bounded(["check", "--no-cache", "--fail-level", "info", "--select", "LORA104", "config.yml"], tmp_path,
                      address_space_mb=1024, env={"HF_DATASETS_CACHE": str(tmp_path / "none")})
    assert run.exit_code == 1 and not run.traceback
    assert "110,000 training examples (JSON lines counted in train.jsonl" in run.stdout
    # and a file above max-data-file-size is not read at all
    (tmp_path / "pyproject.toml").write_text('[tool.loralint]\nmax-data-file-size = "1 MB"\n')
    run = run_bounded(["check", "--no-cache", "--fail-level", "info", "--select", "LORA104", "config.yml"], tmp_path, address_space_mb=1024)
    assert run.exit_code == 0 and "LORA104" not in run.stdout


def test_the_cache_keeps_a_count_until_the_data_file_changes(tmp_path):
    # With the cache on, an unchanged data file (same size and modification time) is not read again;
    # any other change to it is counted afresh.
    import os

    def warm() -> list[str]:
        env = {"HF_DATASETS_CACHE": str(tmp_path / "empty-cache")}
        run = run_cli(["check", "--output-format", "json", "--select", "LORA104", "config.yml"], cwd=tmp_path, env=env)
        return [d["message"] for d in run.json["diagnostics"] if d["code"] == "LORA104"]

    data = tmp_path / "data" / "train.jsonl"
    jsonl(data, 100_000)
    axolotl(tmp_path, "data/train.jsonl")
    assert len(warm()) == 1
    stamp = data.stat()
    data.write_bytes(b"\n" * stamp.st_size)  # no records, same size, and the same time set back below
    os.utime(data, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    (tmp_path / "config.yml").write_text((tmp_path / "config.yml").read_text() + "# edited\n")  # no check-cache hit
    [message] = warm()
    assert "100,000 training examples" in message
    jsonl(data, 99_999)  # another size: counted again
    assert warm() == []
