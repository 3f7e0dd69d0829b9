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
    # the data file as the config names it (relative to dataset_dir), never this machine's absolute path
    assert "150,000 training examples (JSON lines counted in data/big.jsonl (big in data/dataset_info.json)" in message
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


# --- Arrow IPC, written per the Arrow columnar format spec (pyarrow is not installed here) ----------
def _fb_message(header_type: int, rows: int | None, body: int, version: int = 4) -> bytes:
    """A flatbuffer `Message { version, header_type, header, bodyLength }` (format/Message.fbs) with
    its header: a Schema with no fields, a RecordBatch of `rows` rows and no columns (empty `nodes`
    and `buffers`), or a DictionaryBatch holding only its `id`. The Message table sits at 16 with its
    vtable at 4; the header's vtable at 40, its table at 56, vectors after it."""
    out = struct.pack("<I", 16) + struct.pack("<6H", 12, 24, 4, 6, 8, 16)
    out += struct.pack("<ihBxI4xq", 16 - 4, version, header_type, 56 - 24, body)
    if header_type == 1:  # Schema: fields (slot 1) → an empty vector
        out += struct.pack("<4H8x", 8, 8, 0, 4) + struct.pack("<iII4x", 56 - 40, 64 - 60, 0)
    elif header_type == 3:  # RecordBatch: length (slot 0), nodes (1), buffers (2)
        out += struct.pack("<5H6x", 10, 24, 8, 4, 16)
        out += struct.pack("<iIqI4x", 56 - 40, 80 - 60, rows, 88 - 72) + struct.pack("<I4xI4x", 0, 0)
    else:  # DictionaryBatch: id (slot 0)
        out += struct.pack("<3H10x", 6, 16, 8) + struct.pack("<i4xq", 56 - 40, rows or 0)
    return out


def _frame(metadata: bytes, body: int, legacy: bool) -> bytes:
    prefix = struct.pack("<i", len(metadata)) if legacy else struct.pack("<Ii", 0xFFFFFFFF, len(metadata))
    return prefix + metadata + bytes(body)


def arrow_stream(batches: list[int], legacy: bool = False, dictionary: bool = False) -> bytes:
    """Schema, [a dictionary batch,] one RecordBatch message per entry (with a body), end of stream."""
    out = _frame(_fb_message(1, None, 0), 0, legacy)
    if dictionary:
        out += _frame(_fb_message(2, 7, 16), 16, legacy)  # its rows are the dictionary's, not the table's
    for rows in batches:
        out += _frame(_fb_message(3, rows, 64), 64, legacy)
    return out + (b"" if legacy else b"\xff\xff\xff\xff") + b"\0\0\0\0"


def arrow_file(batches: list[int]) -> bytes:
    """The IPC file format: magic, the stream, a `Footer { version, schema, recordBatches: [Block] }`
    (format/File.fbs) with a Block (offset, metaDataLength, bodyLength) per record batch, its size, magic."""
    stream = arrow_stream(batches)
    schema_frame, batch_frame = 8 + 72, 8 + 96 + 64
    footer = struct.pack("<I", 24) + struct.pack("<6H8x", 12, 16, 4, 8, 0, 12)
    footer += struct.pack("<ih2xII", 24 - 4, 4, 48 - 32, 68 - 36)  # the table at 24
    footer += struct.pack("<4H", 8, 8, 0, 4) + struct.pack("<iII4x", 48 - 40, 56 - 52, 0)  # its schema at 48
    footer += struct.pack("<4xI", len(batches))
    for i in range(len(batches)):
        footer += struct.pack("<qi4xq", 8 + schema_frame + i * batch_frame, 8 + 96, 64)
    return b"ARROW1\0\0" + stream + footer + struct.pack("<i", len(footer)) + b"ARROW1"


def test_arrow_stream_rows_are_summed_from_the_record_batch_headers(tmp_path):
    (tmp_path / "train.arrow").write_bytes(arrow_stream([1000] * 99 + [1000], dictionary=True))
    axolotl(tmp_path, "train.arrow")
    [message] = lora104(tmp_path, "config.yml")
    assert "100,000 training examples (rows in the Arrow record batches counted in train.arrow" in message
    (tmp_path / "train.arrow").write_bytes(arrow_stream([1000] * 99 + [999]))
    assert lora104(tmp_path, "config.yml") == []


def test_arrow_file_format_and_the_pre_0_15_stream_prefix(tmp_path):
    from loralint.datasets.count import count_file

    (tmp_path / "a.arrow").write_bytes(arrow_file([60_000, 60_000]))
    (tmp_path / "b.arrow").write_bytes(arrow_stream([5, 6], legacy=True))
    assert count_file(tmp_path / "a.arrow", "arrow").records == 120_000
    assert count_file(tmp_path / "b.arrow", "arrow").records == 11
    axolotl(tmp_path, "a.arrow")
    [message] = lora104(tmp_path, "config.yml")
    assert "120,000 training examples (rows in the Arrow record batches counted in a.arrow" in message


def test_truncated_or_corrupt_arrow_files_are_not_counted(tmp_path):
    from loralint.datasets.count import NotCounted, count_file

    for whole in (arrow_stream([3, 4]), arrow_file([3, 4]), arrow_stream([3, 4], legacy=True)):
        assert count_file(_put(tmp_path, whole), "arrow").records == 7
        for cut in range(len(whole)):  # cut short anywhere: never counted, never another exception
            try:
                count_file(_put(tmp_path, whole[:cut]), "arrow")
            except NotCounted:
                continue
            raise AssertionError(f"a file cut at byte {cut} of {len(whole)} was counted")
    bad = [
        arrow_stream([3])[:8] + struct.pack("<I", 1 << 31) + arrow_stream([3])[12:],  # root offset outside
        _frame(_fb_message(1, None, 0, version=1), 0, False) + b"\xff\xff\xff\xff\0\0\0\0",  # metadata V2
        _frame(_fb_message(3, 5, 0), 0, False) + b"\xff\xff\xff\xff\0\0\0\0",  # no schema first
        _frame(_fb_message(1, None, 0), 0, False) + _frame(_fb_message(3, -1, 0), 0, False) + b"\xff\xff\xff\xff\0\0\0\0",
        b"\xff\xff\xff\xff" + struct.pack("<i", -8) + bytes(64),  # a negative metadata size
        b"\xff\xff\xff\xff\0\0\0\0",  # an empty stream: no schema
    ]
    for data in bad:
        try:
            count_file(_put(tmp_path, data), "arrow")
        except NotCounted:
            continue
        raise AssertionError(f"counted: {data!r}")


def _put(tmp_path, data: bytes):
    path = tmp_path / "cut.arrow"
    path.write_bytes(data)
    return path


def test_dataset_from_file_counts_an_arrow_file(tmp_path):
    (tmp_path / "cache-train.arrow").write_bytes(arrow_stream([70_000, 30_000]))
    (tmp_path / "train.py").write_text(
        "from datasets import Dataset\nfrom peft import LoraConfig\n"
        "ds = Dataset.from_file(filename='cache-train.arrow')\nc = LoraConfig(lora_dropout=0.1, task_type='CAUSAL_LM')\n"
    )
    [message] = lora104(tmp_path, "train.py")
    assert "100,000 training examples (rows in the Arrow record batches counted in cache-train.arrow; Dataset.from_file at line 3)" in message
    source = (tmp_path / "train.py").read_text()
    (tmp_path / "train.py").write_text(source.replace(")\nc =", ", indices_filename='indices.arrow')\nc ="))
    assert lora104(tmp_path, "train.py") == []


def test_a_corrupt_arrow_file_leaves_the_rule_quiet_without_a_traceback(tmp_path):
    (tmp_path / "train.arrow").write_bytes(arrow_stream([200_000])[:-3])
    axolotl(tmp_path, "train.arrow")
    run = run_bounded(["check", "--no-cache", "--fail-level", "info", "config.yml"], tmp_path,
                      env={"HF_DATASETS_CACHE": str(tmp_path / "none")})
    assert run.exit_code in (0, 1) and not run.traceback, run.stderr
    assert "LORA104" not in run.stdout


def save_to_disk(folder, shards: list[list[int]], splits: list[str] | None = None) -> None:
    """What datasets' save_to_disk writes: state.json listing data-*.arrow streams (per split folder
    and a dataset_dict.json for a DatasetDict) and a dataset_info.json (of the original data set)."""
    for split in splits or [None]:
        where = folder / split if split else folder
        where.mkdir(parents=True, exist_ok=True)
        names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
        for name, batches in zip(names, shards):
            (where / name).write_bytes(arrow_stream(batches))
        (where / "state.json").write_text(json.dumps({
            "_data_files": [{"filename": n} for n in names], "_fingerprint": "0123", "_format_columns": None,
            "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False, "_split": split}))
        # before a filter: the split sizes here are not the rows saved
        (where / "dataset_info.json").write_text(json.dumps({"splits": {"train": {"num_examples": 9_999_999}}}))
    if splits:
        (folder / "dataset_dict.json").write_text(json.dumps({"splits": splits}))


def trainer_script(tmp_path, load: str, train: str) -> None:
    (tmp_path / "train.py").write_text(textwrap.dedent(f"""
        from datasets import Dataset, load_from_disk
        from peft import LoraConfig
        from trl import SFTTrainer
        ds = {load}
        trainer = SFTTrainer(model="gpt2", train_dataset={train}, peft_config=LoraConfig(lora_dropout=0.1, task_type="CAUSAL_LM"))
    """))


def test_load_from_disk_counts_the_saved_arrow_shards(tmp_path):
    save_to_disk(tmp_path / "data" / "prepared", [[50_000, 10_000], [40_000]])
    trainer_script(tmp_path, 'load_from_disk("data/prepared")', "ds")
    [message] = lora104(tmp_path, "train.py")
    assert ("100,000 training examples (rows in the Arrow record batches of the save_to_disk folder data/prepared"
            " (2 files); load_from_disk at line 5)") in message
    trainer_script(tmp_path, 'Dataset.load_from_disk("data/prepared")', "ds.shuffle(seed=1)")
    [message] = lora104(tmp_path, "train.py")
    assert "(2 files); Dataset.load_from_disk at line 5)" in message
    save_to_disk(tmp_path / "data" / "prepared", [[50_000, 9_999], [40_000]])
    assert lora104(tmp_path, "train.py") == []


def test_load_from_disk_dataset_dict_needs_its_split_named(tmp_path):
    save_to_disk(tmp_path / "dd", [[120_000]], splits=["train", "test"])
    trainer_script(tmp_path, 'load_from_disk("dd")', 'ds["train"]')
    [message] = lora104(tmp_path, "train.py")
    assert "120,000 training examples (rows in the Arrow record batches of the save_to_disk folder dd split 'train'" in message
    trainer_script(tmp_path, 'load_from_disk("dd")', "ds")  # a DatasetDict given whole: not a training set
    assert lora104(tmp_path, "train.py") == []
    trainer_script(tmp_path, 'load_from_disk("dd")', 'ds["validation"]')  # a split it does not have
    assert lora104(tmp_path, "train.py") == []
    # a state.json pointing outside its folder is not followed
    save_to_disk(tmp_path / "one", [[120_000]])
    (tmp_path / "one" / "state.json").write_text(json.dumps({"_data_files": [{"filename": "../dd/train/data-00000-of-00001.arrow"}]}))
    trainer_script(tmp_path, 'load_from_disk("one")', "ds")
    assert lora104(tmp_path, "train.py") == []


# --- evaluation splits taken out of the training set ---------------------------------------------
def test_axolotl_val_set_size_fraction_and_count_leave_the_rest(tmp_path):
    jsonl(tmp_path / "train.jsonl", 105_000)
    axolotl(tmp_path, "train.jsonl")
    config = (tmp_path / "config.yml").read_text()
    (tmp_path / "config.yml").write_text(config + "val_set_size: 0.04\n")  # ceil(4,200) out: 100,800 left
    [message] = lora104(tmp_path, "config.yml")
    assert ("100,800 training examples (JSON lines counted in train.jsonl; axolotl datasets[0]; 105,000 in all,"
            " 4,200 held out for evaluation by val_set_size=0.04)") in message
    (tmp_path / "config.yml").write_text(config + "val_set_size: 0.05\n")  # 99,750 left
    assert lora104(tmp_path, "config.yml") == []
    (tmp_path / "config.yml").write_text(config + "val_set_size: 5001\n")  # a count: 99,999 left
    assert lora104(tmp_path, "config.yml") == []
    (tmp_path / "config.yml").write_text(config + "val_set_size: 5000\n")
    assert "105,000 in all, 5,000 held out for evaluation by val_set_size=5000" in lora104(tmp_path, "config.yml")[0]
    (tmp_path / "config.yml").write_text(config + "dataset_exact_deduplication: true\n")  # duplicates dropped: unknown
    assert lora104(tmp_path, "config.yml") == []


def test_llamafactory_val_size_is_taken_after_max_samples(tmp_path):
    jsonl(tmp_path / "data" / "big.jsonl", 150_000)
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"big": {"file_name": "big.jsonl"}}))
    config = textwrap.dedent("""
        model_name_or_path: meta-llama/Llama-3.2-3B
        stage: sft
        finetuning_type: lora
        lora_dropout: 0.1
        lora_target: all
        dataset: big
    """)
    (tmp_path / "sft.yaml").write_text(config + "val_size: 0.1\n")  # 135,000 left
    [message] = lora104(tmp_path, "sft.yaml")
    assert message.startswith("lora_dropout=0.1 with 135,000 training examples (")
    assert "150,000 in all, 15,000 held out for evaluation by val_size=0.1" in message
    (tmp_path / "sft.yaml").write_text(config + "max_samples: 110000\nval_size: 0.1\n")  # 99,000 left
    assert lora104(tmp_path, "sft.yaml") == []


def test_explain_says_the_training_set_size_and_where_it_came_from(tmp_path):
    jsonl(tmp_path / "train.jsonl", 1_050)
    axolotl(tmp_path, "train.jsonl")
    (tmp_path / "config.yml").write_text((tmp_path / "config.yml").read_text() + "val_set_size: 50\n")
    env = {"HF_DATASETS_CACHE": str(tmp_path / "none")}
    out = run_cli(["explain", "--no-cache", "config.yml"], cwd=tmp_path, env=env).stdout
    assert ("training set     1,000 examples (JSON lines counted in train.jsonl; axolotl datasets[0]; 1,050 in all,"
            " 50 held out for evaluation by val_set_size=50)") in out
    [entry] = run_cli(["explain", "--no-cache", "--output-format", "json", "config.yml"], cwd=tmp_path, env=env).json["configs"]
    assert entry["dataset_size"] == 1_000 and entry["dataset_size_source"].startswith("JSON lines counted in train.jsonl")
    (tmp_path / "train.jsonl").unlink()
    [entry] = run_cli(["explain", "--no-cache", "--output-format", "json", "config.yml"], cwd=tmp_path, env=env).json["configs"]
    assert entry["dataset_size"] is None and entry["dataset_size_source"] is None


def test_card_split_sizes_follow_the_configuration_load_dataset_would_load():
    from loralint.datasets.hub import card_split_sizes

    def info(name: str, n: int) -> dict:
        return {"config_name": name, "splits": [{"name": "train", "num_examples": n}]}

    one = {"dataset_info": {"splits": [{"name": "train", "num_examples": 5}, {"name": "test", "num_examples": 1}]}}
    assert card_split_sizes(one, None) == {"train": 5, "test": 1}
    assert card_split_sizes(one, "default") == {"train": 5, "test": 1} and card_split_sizes(one, "other") is None
    two = {"dataset_info": [info("en", 10), info("fr", 20)],
           "configs": [{"config_name": "en"}, {"config_name": "fr"}]}
    assert card_split_sizes(two, None) is None  # load_dataset raises: a configuration must be named
    assert card_split_sizes(two, "fr") == {"train": 20}
    two["configs"][1]["default"] = True
    assert card_split_sizes(two, None) == {"train": 20}
    bad = {"dataset_info": {"splits": [{"name": "train", "num_examples": "many"}]}}
    assert card_split_sizes(bad, None) is None and card_split_sizes({}, None) is None


def test_an_axolotl_path_that_is_a_local_folder_is_not_a_hub_data_set(tmp_path):
    # "acme/big-chat" would be 300,000 examples in the datasets cache; a local folder of that name wins
    cache = tmp_path / "hf-datasets"
    info = cache / "acme___big-chat" / "default" / "0.0.0" / "abc123" / "dataset_info.json"
    info.parent.mkdir(parents=True)
    info.write_text(json.dumps({"splits": {"train": {"name": "train", "num_examples": 300_000}}}))
    axolotl(tmp_path, "acme/big-chat")
    env = {"HF_DATASETS_CACHE": str(cache)}
    assert "split sizes from the local datasets cache" in lora104(tmp_path, "config.yml", env=env)[0]
    (tmp_path / "acme" / "big-chat").mkdir(parents=True)  # a folder of raw files: not sized
    assert lora104(tmp_path, "config.yml", env=env) == []
    save_to_disk(tmp_path / "acme" / "big-chat", [[110_000]], splits=["train", "test"])  # axolotl: load_from_disk
    [message] = lora104(tmp_path, "config.yml", env=env)
    assert ("110,000 training examples (rows in the Arrow record batches of the save_to_disk folder acme/big-chat"
            " split 'train' (1 file); axolotl datasets[0])") in message
    axolotl(tmp_path, "./acme/big-chat")  # not a Hub id: only ever a local folder
    [message] = lora104(tmp_path, "config.yml", env=env)
    assert "save_to_disk folder ./acme/big-chat split 'train' (1 file); axolotl datasets[0])" in message


def test_arrow_bytes_changed_anywhere_are_counted_or_refused_never_a_crash(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from loralint.datasets.count import NotCounted, count_file

    whole = arrow_file([3, 4])
    path = tmp_path / "x.arrow"

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(st.tuples(st.integers(0, len(whole) - 1), st.integers(0, 255)), min_size=1, max_size=6))
    def changed(edits):
        data = bytearray(whole)
        for at, value in edits:
            data[at] = value
        path.write_bytes(bytes(data))
        try:
            assert count_file(path, "arrow").records >= 0
        except NotCounted:
            pass

    changed()


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


def test_a_small_json_array_decoded_whole_counts_as_the_scanner_does(tmp_path, monkeypatch):
    """Arrays under SMALL_JSON are decoded by the C decoder; larger ones are scanned. Both give the
    number of items datasets would load, whatever strings, escapes and nesting the items hold."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from loralint.datasets import count

    scalars = st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\]},[{ \n\u00e9')
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text("k]\"", max_size=2), inner, max_size=3), max_leaves=8)
    path = tmp_path / "data.json"

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(items=st.lists(values, max_size=6), indent=st.sampled_from([None, 2]))
    def same(items, indent):
        path.write_text(json.dumps(items, indent=indent, ensure_ascii=False), encoding="utf-8")
        decoded = count.count_file(path, "json").records
        monkeypatch.setattr(count, "SMALL_JSON", 0)
        scanned = count.count_file(path, "json").records
        monkeypatch.setattr(count, "SMALL_JSON", 4 << 20)
        assert decoded == scanned == len(items)

    same()


def test_which_size_wins_settings_file_and_command_line(tmp_path):
    # --dataset-size, then per-file-dataset-size, then the data set as counted; dataset-size is the fallback.
    jsonl(tmp_path / "data" / "train.jsonl", 150_000)
    axolotl(tmp_path, "data/train.jsonl")
    (tmp_path / ".loralint.toml").write_text("dataset-size = 5000\n")
    [message] = lora104(tmp_path, "config.yml")
    assert "150,000 training examples (JSON lines counted in data/train.jsonl" in message
    (tmp_path / ".loralint.toml").write_text('dataset-size = 5000\nper-file-dataset-size = { "config.yml" = 300000 }\n')
    [message] = lora104(tmp_path, "config.yml")
    assert "300,000 training examples (per-file-dataset-size in .loralint.toml)" in message
    (tmp_path / "data" / "train.jsonl").unlink()
    (tmp_path / ".loralint.toml").write_text("dataset-size = 200000\n")
    [message] = lora104(tmp_path, "config.yml")
    assert "200,000 training examples (dataset-size in .loralint.toml)" in message


def test_a_data_path_is_also_found_from_the_top_of_the_git_checkout(tmp_path):
    # `axolotl train configs/x.yml` runs from the checkout's top, where data/ is; checked from configs/ (or from
    # anywhere else) the size, and so LORA104, must not depend on the folder loralint was started in.
    (tmp_path / ".git").mkdir()
    jsonl(tmp_path / "data" / "train.jsonl", 150_000)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "config.yml").write_text(AXOLOTL.format(path="data/train.jsonl").lstrip())
    [message] = lora104(tmp_path / "configs", "config.yml")
    assert "150,000 training examples (JSON lines counted in data/train.jsonl; axolotl datasets[0])" in message
    assert lora104(tmp_path, "configs/config.yml") == [message]
