"""The pipeline's performance features keep results identical: prefilter, cache, worker processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_cli

CFG = 'from peft import LoraConfig\nc = LoraConfig(r={r}, lora_alpha=4, target_modules=["q_proj"], task_type="CAUSAL_LM")\n'


def report(tmp_path, *args):
    return run_cli(["check", "--output-format", "json", *args, "."], cwd=tmp_path).json


def test_cache_is_written_reused_and_invalidated_by_content(write, tmp_path, monkeypatch):
    write("t.py", CFG.format(r=16))
    first = report(tmp_path)
    assert (tmp_path / ".loralint_cache").is_dir()
    assert (tmp_path / ".loralint_cache" / ".gitignore").read_text().strip().endswith("*")
    # A cached file is not parsed again.
    import loralint.extract as extract

    calls = []
    real = extract.extract_source
    monkeypatch.setattr("loralint.engine.extract_source", lambda *a: calls.append(a) or real(*a))
    assert report(tmp_path) == first
    assert calls == []
    write("t.py", CFG.format(r=32))
    changed = report(tmp_path)
    assert len(calls) == 1
    assert changed["configs"][0]["fields"]["r"] == 32


def test_process_pool_gives_the_same_results_as_one_process(write, tmp_path):
    for i in range(40):
        write(f"pkg/m{i:02d}.py", CFG.format(r=8 + i))
    for i in range(200):
        write(f"pkg/plain{i:03d}.py", "x = 1\n")
    serial = report(tmp_path, "--no-cache", "--jobs", "1")
    parallel = report(tmp_path, "--no-cache", "--jobs", "2")
    assert serial == parallel
    assert serial["files_checked"] == 240 and len(serial["configs"]) == 40


@pytest.mark.parametrize("padding", [0, 3000])
def test_workers_read_refuse_and_cache_files_as_one_process_does(write, tmp_path, monkeypatch, padding):
    # With many files, forked workers parse the candidates this process read (padding 0), or, with much Python
    # to read (padding 3000: over 400 KB), they read, prefilter, look up the cache and parse too: what they find
    # unreadable, refuse, skip or take from the cache must come out as one process says it.
    import os

    import loralint.engine as engine

    write("pyproject.toml", '[tool.loralint]\nmax-file-size = "30 KB"\n')
    for i in range(30):
        write(f"pkg/m{i:02d}.py", CFG.format(r=8 + i))
        write(f"pkg/plain{i:02d}.py", "x = 1\n" * (padding + 1))
    write("broken.py", "from peft import LoraConfig\nLoraConfig(r=\n")  # LORA901
    write("large.py", "from peft import LoraConfig\n" + "x = 1\n" * 6000)  # over max-file-size: LORA905
    write("data/train.json", '[{"lora_r": 1, "text": "' + "a" * 40_000 + '"}]')  # a data set, walked: skipped
    os.mkfifo(tmp_path / "pipe.py")  # not a regular file: LORA905, never blocks the run
    serial = run_cli(["check", "--output-format", "json", "--no-cache", "--jobs", "1", "."], cwd=tmp_path)
    assert serial.json["files_checked"] == 64
    assert sorted(d["code"] for d in serial.json["diagnostics"] if d["code"] >= "LORA9") == [
        "LORA901", "LORA905", "LORA905"]

    started = []
    real = engine._start_workers
    monkeypatch.setattr(engine, "_start_workers",
                        lambda items, *rest: started.append({item[2] is None for item in items}) or real(items, *rest))

    def parallel() -> tuple[int, str]:
        run = run_cli(["check", "--output-format", "json", "--jobs", "2", "."], cwd=tmp_path)
        return run.exit_code, run.stdout

    assert parallel() == (serial.exit_code, serial.stdout)  # cold: the workers fill the cache
    for path in tmp_path.rglob("*.py"):
        if path.is_file():
            os.utime(path, ns=(0, 0))  # a changed stat: every file is read again, its entry found by content
    assert parallel() == (serial.exit_code, serial.stdout)
    assert started == [{padding > 0}] * 2  # workers forked with every file still to read, or with the candidates


def test_no_more_workers_than_there_is_python_for(write, tmp_path, monkeypatch):
    # --jobs 16 (a CI runner's cores) on ~500 KB of Python: each fork costs the main process time, so one
    # worker per 256 KB of it at most; the findings are those of one process.
    import loralint.workers as workers

    for i in range(30):
        write(f"pkg/m{i:02d}.py", CFG.format(r=8 + i) + "x = 1\n" * 2800)  # ~17 KB each
    forks = []
    real = workers._fork
    monkeypatch.setattr(workers, "_fork", lambda *args: forks.append(1) or real(*args))
    parallel = report(tmp_path, "--no-cache", "--jobs", "16")
    assert len(forks) == 1
    assert parallel == report(tmp_path, "--no-cache", "--jobs", "1")


def test_without_os_fork_a_run_with_jobs_is_one_process(write, tmp_path, monkeypatch):
    # Windows has no os.fork: --jobs 2 on a tree worth workers parses everything in the main process, and says
    # what one process says.
    import loralint.workers as workers

    for i in range(30):
        write(f"pkg/m{i:02d}.py", CFG.format(r=8 + i) + "x = 1\n" * 3000)
    serial = report(tmp_path, "--no-cache", "--jobs", "1")
    monkeypatch.setattr(workers, "FORKS", False)
    monkeypatch.setattr(workers, "_fork", lambda *args: pytest.fail("forked without os.fork"))
    assert report(tmp_path, "--no-cache", "--jobs", "2") == serial
    assert len(serial["configs"]) == 30


def test_notes_and_findings_do_not_depend_on_the_order_files_are_parsed_in(write, tmp_path):
    # Pooled, files reach resolve and the checks as they are parsed (by the workers, largest first, or by the
    # main process, smallest first, while none is ready): the run must say the same as when parsed one by
    # one, with the notes about unusable config.json files in path order (train_z.py, the larger, comes first
    # out of the pool).
    for name, padding in (("a", 0), ("z", 3000)):
        write(f"m_{name}/config.json", "{not json")
        write(f"train_{name}.py", "from peft import LoraConfig, get_peft_model\n"
              "from transformers import AutoModelForCausalLM\n" + "".join(f"x{i} = {i}\n" for i in range(padding))
              + f'model = AutoModelForCausalLM.from_pretrained("./m_{name}")\n'
              'model = get_peft_model(model, LoraConfig(r=8, lora_alpha=64, target_modules=["q_proj"]))\n')
    for i in range(30):  # enough files for the process pool
        write(f"pkg/m{i:02d}.py", CFG.format(r=8 + i))
    serial = run_cli(["check", "--no-cache", "--jobs", "1", "."], cwd=tmp_path)
    for _ in range(3):
        parallel = run_cli(["check", "--no-cache", "--jobs", "2", "."], cwd=tmp_path)
        said = (parallel.exit_code, parallel.stdout, parallel.stderr)
        assert said == (serial.exit_code, serial.stdout, serial.stderr)
    notes = [line for line in serial.stderr.splitlines() if "config.json: invalid JSON" in line]
    assert [("m_a" in line, "m_z" in line) for line in notes] == [(True, False), (False, True)]
    assert "train_a.py" in serial.stdout and "train_z.py" in serial.stdout


def test_a_file_nested_near_pythons_recursion_limit_gets_one_answer_whoever_parses_it():
    # Pooled, a file is parsed by a worker (forked deep inside the run) or by the main process (which takes
    # files itself while no result is ready, as timing decides): Python's recursion limit counts the frames
    # above the parse too, so a chain of `+` parsed where it just fits (LORA906, nested deeper than loralint
    # follows) must not become "cannot parse" (LORA901) a few frames further down.
    import pytest

    from loralint.engine import _extract
    from loralint.extract import extract_source

    def source(n: int) -> bytes:
        return ("from peft import LoraConfig\nc = LoraConfig(r=" + "+".join(["1"] * n) + ")\n").encode()

    def codes(extract, n: int, frames: int) -> list[str]:
        if frames:
            return codes(extract, n, frames - 1)
        return [d.code for d in extract("f.py", source(n), "python").diagnostics]

    def longest(extract, frames: int) -> int:  # the longest chain still followed, by bisection
        low, high = 100, 20_000
        assert codes(extract, low, frames) == ["LORA906"] and codes(extract, high, frames) == ["LORA901"]
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if codes(extract, middle, frames) == ["LORA906"] else (low, middle)
        return low

    if longest(extract_source, 0) == longest(extract_source, 40):
        pytest.skip("this Python's parser does not count the caller's frames")
    assert longest(_extract, 0) == longest(_extract, 40)


def test_prefilter_skips_files_without_trigger_words(write, tmp_path, monkeypatch):
    write("a.py", "import peft\nprint('LoRA is great')\n")
    write("b.py", CFG.format(r=16))
    # the words only where they name nothing: a docstring's example, a comment, a message
    write("c.py", '"""Example:\n\n    config = LoraConfig(r=8)\n"""\n# get_peft_model(model, config)\n'
                  'raise ValueError("pass a LoraConfig")\n')
    # PEFT's get_peft_model applies a config made elsewhere; only Unsloth's makes one (the file names unsloth)
    write("d.py", "from peft import get_peft_model\n\ndef wrap(model, config):\n    return get_peft_model(model, config)\n")
    write("e.py", "from unsloth import FastLanguageModel\nmodel = FastLanguageModel.get_peft_model(model, r=16)\n")
    # a saved adapter loaded to generate with; one that is then merged (LORA405's) is read
    write("f.py", "from peft import PeftModel\nmodel = PeftModel.from_pretrained(base, 'out')\nmodel.generate()\n")
    write("g.py", "from peft import PeftModel\nmodel = PeftModel.from_pretrained(base, 'out').merge_and_unload()\n")
    # YAML's words count as keys: a docs table of contents that links the LoRA pages holds no configuration
    write("toc.yml", "- title: LoRA\n  sections:\n  - local: package_reference/lora_utils\n    title: adapter utilities\n"
                     "guides/adapter: package_reference/lora\n")
    write("axolotl.yml", "base_model: gpt2\n'adapter' : lora\n")
    seen = []
    import loralint.engine as engine

    real = engine.extract_source
    monkeypatch.setattr(engine, "extract_source", lambda display, data, fmt: seen.append(display) or real(display, data, fmt))
    result = report(tmp_path, "--no-cache")
    assert sorted(seen) == ["axolotl.yml", "b.py", "e.py", "g.py"] and result["files_checked"] == 9
    assert {c["path"] for c in result["configs"]} == {"axolotl.yml", "b.py", "e.py"}


def test_paths_in_cached_results_follow_the_command_line(write, tmp_path):
    write("d/t.py", CFG.format(r=16))
    a = run_cli(["check", "--output-format", "json", "d"], cwd=tmp_path).json
    b = run_cli(["check", "--output-format", "json", "./d"], cwd=tmp_path).json
    assert {x["path"] for x in a["diagnostics"]} == {"d/t.py"}
    assert {x["path"] for x in b["diagnostics"]} == {"./d/t.py"}
    assert Path(tmp_path / ".loralint_cache").exists()


def test_prefilter_substring_shortcut_refuses_only_what_its_pattern_refuses():
    # is_candidate tries the pattern only where one of a format's literal words begins a match (shifted back
    # for `use_peft`, `AutoPeftModel`): for any text, it must answer as a search of the pattern alone does
    # (a word added to one and not the other, or a start it misses, fails).
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from loralint.extract import PREFILTERS, is_candidate, prefilter

    words = ["LoraConfig", "get_peft_model", "get_peft_config", "ModelConfig", "AutoPeftModelForCausalLM",
             "PeftModel", ".from_pretrained", "unsloth", "Trainer", "merge_adapter", "é", "lora_r", "LORA_alpha",
             "lora", "Lora :", "adapter", "peft_type", "use_peft", "finetuning_type",
             "_component_: torchtune.models.lora_llama", "peft_config", '"', "r", '"r"', "_", ":", " ", "\n", "x", ".",
             "Auto", "USE_Peft", "_component_:", "LoRA", "Adapter"]
    texts = st.lists(st.sampled_from(words), max_size=8).map("".join)

    @settings(max_examples=400, deadline=None)
    @given(texts, st.sampled_from(sorted(PREFILTERS)))
    @example("x = AutoPeftModelForCausalLM.from_pretrained(p)", "python")
    @example("x: 1\nUSE_Peft: true", "yaml")
    @example("get_peft_model(model, r=16)", "notebook")
    @example("unsloth.get_peft_model", "python")
    @example("PeftModel.from_pretrained", "notebook")
    @example("Trainer PeftModel.from_pretrained", "python")
    def same(text: str, fmt: str) -> None:
        data = text.encode()
        if fmt == "python" and any(c in text for c in "#'\""):
            # a word in a comment or string does not count in Python (the next test): never a candidate more
            assert not is_candidate(data, fmt) or prefilter(data, fmt).search(data) is not None
        else:
            assert is_candidate(data, fmt) == (prefilter(data, fmt).search(data) is not None)

    same()


def test_a_python_word_counts_only_in_code_as_the_tokenizer_reads_it():
    # is_candidate finds Python's comments and strings with one pattern: for any text that tokenizes, it must
    # answer as the prefilter's search does on the text with every comment and every string but an f-string
    # blanked (the tokenizer's own reading). A text that does not tokenize is a candidate only if the search
    # finds a word (the parser then says what is wrong, LORA901).
    import io
    import tokenize

    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from loralint.extract import is_candidate, prefilter

    words = ["LoraConfig", "get_peft_model", "PeftModel", ".from_pretrained", "unsloth", "load_in_", "x = ", "(", ")",
             "\n", " ", "#", "'", '"', "'''", '"""', "\\", "f", "rb", "t", "if", "=", ":", "\\\n"]

    def blanked(text: str) -> str | None:
        offsets = [0]
        for line in text.splitlines(keepends=True):
            offsets.append(offsets[-1] + len(line))
        chars = list(text)
        try:
            for token in tokenize.generate_tokens(io.StringIO(text).readline):
                if token.type == tokenize.ERRORTOKEN and token.string.strip():
                    return None  # Python 3.11 goes on after a quote that opens no string; 3.12 raises
                start = offsets[token.start[0] - 1] + token.start[1]
                end = offsets[token.end[0] - 1] + token.end[1]
                # an f- or t-string: an f or t in the two characters before its quote (its prefix, or a name
                # ending so: Python before 3.14 reads t'...' as a name and a string, loralint as a t-string)
                quote = start + len(token.string[:2].split("'")[0].split('"')[0])
                fields = set(text[max(quote - 2, 0):quote].lower()) & {"f", "t"}
                if token.type == tokenize.COMMENT or (token.type == tokenize.STRING and not fields):
                    chars[start:end] = " " * (end - start)
        except (tokenize.TokenError, SyntaxError):
            return None
        return "".join(chars)

    @settings(max_examples=600, deadline=None)
    @given(st.lists(st.sampled_from(words), max_size=10).map("".join))
    @example('"""a LoraConfig"""\n')
    @example("x = 1  # LoraConfig\n")
    @example("'it''s' + LoraConfig\n")
    @example('x = f"{LoraConfig(r=8)}"\n')
    @example('x = "a\\\nLoraConfig"\n')
    @example("'''LoraConfig\n")  # an unterminated string: a candidate, as before
    @example("# unsloth\nget_peft_model(m, r=8)\n")
    def same(text: str) -> None:
        data = text.encode()
        pattern = prefilter(data, "python")  # `unsloth`, `load_in_` written anywhere make more words count
        found = pattern.search(data) is not None
        code = blanked(text)
        if code is None:
            assert is_candidate(data, "python") <= found
        else:
            assert is_candidate(data, "python") == (pattern.search(code.encode()) is not None)

    same()


def test_a_run_leaves_the_garbage_collector_as_it_found_it(write, tmp_path):
    # A run raises the collector's first threshold while it works; a long-lived caller (the LSP server,
    # an editor's plugin) gets its own settings back, after a run that ends in a usage error too.
    import gc

    write("t.py", CFG.format(r=16))
    before = gc.get_threshold()
    try:
        gc.set_threshold(500, 7, 9)
        assert report(tmp_path, "--no-cache")["configs"]
        assert gc.get_threshold() == (500, 7, 9)
        failed = run_cli(["check", "--no-cache", "--model", "no/such-model-anywhere", "."], cwd=tmp_path)
        assert failed.exit_code == 2
        assert gc.get_threshold() == (500, 7, 9)
    finally:
        gc.set_threshold(*before)
