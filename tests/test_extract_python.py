"""Extraction from Python source: every import style, value style and base-model link."""

from __future__ import annotations

import ast
import textwrap

import pytest

from loralint.extract.python import extract_python
from loralint.sites import Unknown


def sites(source: str):
    return extract_python("train.py", textwrap.dedent(source).lstrip("\n"))


def one(source: str):
    found = sites(source)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    "source",
    [
        "from peft import LoraConfig\nc = LoraConfig(r=4)\n",
        "import peft\nc = peft.LoraConfig(r=4)\n",
        "from peft import LoraConfig as LC\nc = LC(r=4)\n",
        "from peft.tuners.lora import LoraConfig\nc = LoraConfig(r=4)\n",
        "import peft as p\nc = p.LoraConfig(r=4)\n",
        "from peft import LoraConfig\nLC = LoraConfig\nc = LC(r=4)\n",
        "def f():\n    from peft import LoraConfig\n    return LoraConfig(r=4)\n",
    ],
)
def test_loraconfig_import_styles_are_recognised(source):
    site = one(source)
    assert site.origin == "peft.LoraConfig"
    assert site.fields["r"].value == 4


@pytest.mark.parametrize(
    "source",
    [
        "class LoraConfig:\n    pass\nc = LoraConfig(r=4)\n",
        "from mylib import LoraConfig\nc = LoraConfig(r=4)\n",
        "c = LoraConfig(r=4)\n",
        "from peft import LoraConfig\nclass LoraConfig:\n    pass\nc = LoraConfig(r=4)\n",
        "from peft import get_peft_model\nm = get_peft_model(model, cfg)\n",
    ],
)
def test_other_loraconfigs_are_not_sites(source):
    assert sites(source) == []


def test_unsloth_keywords_map_and_own_keywords_are_known():
    site = one(
        """
        from unsloth import FastLanguageModel
        model, tok = FastLanguageModel.from_pretrained(model_name="unsloth/Llama-3.2-3B-Instruct", load_in_4bit=True)
        model = FastLanguageModel.get_peft_model(model, r=32, lora_alpha=16, use_gradient_checkpointing="unsloth", random_state=3407, max_seq_length=2048)
        """
    )
    assert site.origin == "unsloth.get_peft_model"
    assert {n: f.value for n, f in site.fields.items()} == {"r": 32, "lora_alpha": 16}
    assert site.unknown_args == []
    assert site.base_model.value == "unsloth/Llama-3.2-3B-Instruct"
    assert site.hints.quantization == "4bit"
    assert site.value("target_modules")[0] == "q_proj"  # Unsloth's own default, not PEFT's None


def test_unsloth_vision_model_and_positional_arguments():
    site = one(
        """
        from unsloth import FastVisionModel
        model = FastVisionModel.get_peft_model(model, 8, finetune_vision_layers=False)
        """
    )
    assert site.fields["r"].value == 8
    assert site.unknown_args == []
    assert isinstance(site.value("target_modules"), Unknown)


def test_trl_model_config_maps_its_own_names():
    site = one(
        """
        from trl import ModelConfig
        cfg = ModelConfig(model_name_or_path="Qwen/Qwen2.5-0.5B", use_peft=True, lora_r=64, lora_target_modules=["q_proj"])
        """
    )
    assert site.origin == "trl.ModelConfig"
    assert site.fields["r"].value == 64 and site.fields["r"].raw_name == "lora_r"
    assert site.fields["target_modules"].value == "q_proj"  # ModelConfig.__post_init__ collapses a one-element list
    assert site.value("lora_alpha") == 32  # TRL's default
    assert site.base_model.value == "Qwen/Qwen2.5-0.5B"


def test_literals_constants_and_arithmetic_with_provenance():
    site = one(
        """
        from peft import LoraConfig
        RANK = 16
        ALPHA_MULT = 2
        c = LoraConfig(r=RANK, lora_alpha=ALPHA_MULT * RANK, lora_dropout=1 / 20, target_modules=("q_proj", "v_proj"), use_rslora=not False)
        """
    )
    f = site.fields
    assert f["r"].value == 16 and f["r"].provenance == "RANK at line 2"
    assert f["lora_alpha"].value == 32 and "ALPHA_MULT * RANK" in f["lora_alpha"].provenance
    assert f["lora_dropout"].value == 0.05
    assert f["target_modules"].value == ("q_proj", "v_proj")
    assert f["use_rslora"].value is True


def test_names_bound_more_than_once_are_unknown_not_guessed():
    site = one(
        """
        from peft import LoraConfig
        r = 8
        if big:
            r = 64
        c = LoraConfig(r=r, lora_alpha=unknown_name, target_modules=[m for m in mods])
        """
    )
    assert isinstance(site.fields["r"].value, Unknown)
    assert "assigned 2 times" in site.fields["r"].value.reason
    assert isinstance(site.fields["lora_alpha"].value, Unknown)
    assert isinstance(site.fields["target_modules"].value, Unknown)


def test_dict_literal_and_dict_call_unpacked_with_spans_inside_the_dict():
    site = one(
        """
        from peft import LoraConfig
        base = {"r": 16, "lora_alpha": 8}
        extra = dict(bias="all", lora_dropout=0.1)
        c = LoraConfig(**base, **extra, task_type="CAUSAL_LM")
        """
    )
    assert {n: f.value for n, f in site.fields.items()} == {
        "r": 16, "lora_alpha": 8, "bias": "all", "lora_dropout": 0.1, "task_type": "CAUSAL_LM"
    }
    assert (site.fields["lora_alpha"].span.line, site.fields["lora_alpha"].span.column) == (2, 32)
    assert (site.fields["bias"].span.line, site.fields["bias"].span.column) == (3, 19)
    assert site.opaque is None


def test_unreadable_kwargs_make_the_site_opaque():
    site = one(
        """
        from peft import LoraConfig
        c = LoraConfig(r=8, **load_yaml("lora.yaml"))
        """
    )
    assert site.opaque and "load_yaml" in site.opaque


def test_argparse_defaults_are_followed_with_their_flag():
    site = one(
        """
        import argparse
        from peft import LoraConfig
        p = argparse.ArgumentParser()
        p.add_argument("--lora-r", type=int, default="32")
        p.add_argument("--alpha", dest="lora_alpha", type=float, default=16)
        p.add_argument("--use-rslora", action="store_true")
        args = p.parse_args()
        c = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, use_rslora=args.use_rslora)
        """
    )
    assert site.fields["r"].value == 32 and site.fields["r"].provenance == "default of --lora-r"
    assert site.fields["lora_alpha"].value == 16
    assert site.fields["use_rslora"].value is False
    assert site.fields["r"].describe() == "r=32 (default of --lora-r)"


def test_dataclass_defaults_through_instances_hfargumentparser_and_annotations():
    found = sites(
        """
        from dataclasses import dataclass, field
        from peft import LoraConfig
        from transformers import HfArgumentParser

        @dataclass
        class LoraArgs:
            lora_r: int = field(default=8, metadata={"help": "rank"})
            lora_alpha: int = 16
            lora_target: list = field(default_factory=lambda: ["q_proj", "v_proj"])

        @dataclass
        class DataArgs:
            path: str = "x"

        data_args, lora_args = HfArgumentParser((DataArgs, LoraArgs)).parse_args_into_dataclasses()
        a = LoraConfig(r=lora_args.lora_r, target_modules=lora_args.lora_target)

        inst = LoraArgs(lora_r=4)
        b = LoraConfig(r=inst.lora_r, lora_alpha=inst.lora_alpha)

        def build(cfg: LoraArgs):
            return LoraConfig(r=cfg.lora_r)
        """
    )
    a, b, c = found
    assert a.fields["r"].value == 8 and a.fields["r"].provenance == "default of LoraArgs.lora_r"
    assert a.fields["target_modules"].value == ["q_proj", "v_proj"]
    assert b.fields["r"].value == 4 and b.fields["lora_alpha"].value == 16
    assert c.fields["r"].value == 8


def test_several_configs_in_functions_loops_and_conditionals_each_have_their_span():
    found = sites(
        """
        from peft import LoraConfig
        if small:
            c1 = LoraConfig(r=4)
        else:
            c1 = LoraConfig(r=64)
        for rank in (8, 16):
            c2 = LoraConfig(r=rank)
        def make():
            return LoraConfig(r=2)
        """
    )
    assert [(s.span.line, s.span.column) for s in found] == [(3, 10), (5, 10), (7, 10), (9, 12)]
    assert [s.fields["r"].value for s in found[:2]] == [4, 64]
    assert isinstance(found[2].fields["r"].value, Unknown) and "loop variable" in found[2].fields["r"].value.reason


def test_spans_point_at_the_argument_value_and_key():
    site = one(
        """
        from peft import LoraConfig
        c = LoraConfig(
            r=64,
            lora_alpha=16,
        )
        """
    )
    alpha = site.fields["lora_alpha"]
    assert (alpha.span.line, alpha.span.column, alpha.span.end_line, alpha.span.end_column) == (4, 16, 4, 18)
    assert (alpha.key_span.column, alpha.key_span.end_column) == (5, 18)
    assert (site.span.line, site.span.end_line) == (2, 5)


def test_base_model_from_get_peft_model_and_constants():
    site = one(
        """
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        from transformers import AutoModelForCausalLM, BitsAndBytesConfig
        MODEL = "meta-llama/Llama-3.2-3B"
        bnb = BitsAndBytesConfig(load_in_4bit=True)
        model = AutoModelForCausalLM.from_pretrained(MODEL, quantization_config=bnb)
        model = prepare_model_for_kbit_training(model)
        cfg = LoraConfig(r=8)
        model = get_peft_model(model, cfg)
        """
    )
    assert site.base_model.value == "meta-llama/Llama-3.2-3B"
    assert site.base_model.provenance == "MODEL at line 3"
    assert site.hints.applied == ["get_peft_model"]
    assert site.hints.model_class == "AutoModelForCausalLM"
    assert site.hints.quantization == "4bit"
    assert site.hints.kbit_prepared_after is None


def test_base_model_from_trainer_with_model_id_and_config_from_a_function():
    site = one(
        """
        from peft import LoraConfig
        from trl import SFTTrainer
        def lora():
            return LoraConfig(r=8)
        trainer = SFTTrainer(model="Qwen/Qwen2.5-0.5B", peft_config=lora())
        """
    )
    assert site.base_model.value == "Qwen/Qwen2.5-0.5B"
    assert site.hints.applied == ["trainer"]
    assert site.hints.model_class == "AutoModelForCausalLM"


def test_a_config_not_applied_to_a_model_has_no_base_model():
    site = one(
        """
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("gpt2")
        cfg = LoraConfig(r=8)
        """
    )
    assert site.base_model is None and site.hints.applied == []


def test_attribute_changes_after_construction_make_the_field_unknown():
    site = one(
        """
        from peft import LoraConfig
        cfg = LoraConfig(r=8, lora_alpha=16)
        cfg.lora_alpha = 128
        """
    )
    assert isinstance(site.fields["lora_alpha"].value, Unknown)


def test_task_type_enum_and_peft_sub_configs():
    site = one(
        """
        import peft
        from peft import LoftQConfig, TaskType
        cfg = peft.LoraConfig(task_type=TaskType.SEQ_CLS, loftq_config=LoftQConfig(loftq_bits=3), init_lora_weights="loftq")
        """
    )
    assert site.fields["task_type"].value == "SEQ_CLS"
    assert site.fields["loftq_config"].value == {"loftq_bits": 3}


def test_dataset_size_hint_from_a_sliced_split():
    site = one(
        """
        from datasets import load_dataset
        from peft import LoraConfig
        ds = load_dataset("tatsu-lab/alpaca", split="train[:20000]")
        cfg = LoraConfig(r=8)
        """
    )
    assert site.hints.dataset_size.value == 20000


def test_reused_config_and_prepare_after_peft_are_recorded():
    site = one(
        """
        from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
        cfg = LoraConfig(r=8)
        a = get_peft_model(m1, cfg)
        b = get_peft_model(m2, cfg)
        b = prepare_model_for_kbit_training(b)
        """
    )
    assert [s.line for s in site.hints.reapplied] == [4]
    assert site.hints.kbit_prepared_after.line == 5


# A module that names the words only where no value is made from them (imports without `as`, annotations,
# strings, comments) is left out before its program model is built: peft's own tuners import LoraConfig
# for their annotations. INERT_TEXT is told so from its text, before any parse (extract/inert_text.py);
# INERT, whose f-strings and docstring write the words as calls, on its parse (extract/inert_names.py). Each
# use below must still be analysed, and leaving a module out must change nothing.
INERT = '''\
"""A tuner. Example: config = LoraConfig(r=8); model = get_peft_model(model, config)."""
from peft import LoraConfig, get_peft_model  # LoraConfig(r=8) in a comment
from trl import ModelConfig


class Layer:
    config: LoraConfig

    def update(self, config: LoraConfig, *, args: "ModelConfig" = None) -> LoraConfig:
        # get_peft_model(model, config)
        message = "pass a LoraConfig"
        if config is None:
            raise ValueError(f"{self} needs a LoraConfig; " "see get_peft_model" f" ({args!r:>{len('LoraConfig')}})")
        return config


def helper(x: dict[str, LoraConfig] | None = None) -> list[ModelConfig]:
    return []
'''
INERT_TEXT = '''\
"""A tuner for a LoraConfig, in a docstring."""
from peft import (  # ( a comment with a bracket
    LoraConfig,
    get_peft_model,
)
from trl import ModelConfig; import peft.tuners.lora.LoraConfig


class Layer:
    config: LoraConfig
    other: "LoraConfig" = None
    self_config: dict[str, LoraConfig | None] = {"(": None}

    def update(
        self,
        config: Optional[LoraConfig],  # a comment: (
        *args: LoraConfig,
        scale: float = 1.0,
        **kwargs: Annotated[LoraConfig, "]"],
    ) -> dict[str, LoraConfig]:
        return get_peft_model(self, config)


async def helper(x: LoraConfig = None, y: int = (1, 2)) -> ModelConfig:
    label = "LoraConfig: (" + 'ModelConfig' + f"{label}"
    return x
'''
INERT_MODULES = {"told from the text": INERT_TEXT, "told on the parse": INERT}
USES = {
    "a call": "c = LoraConfig(r=8)\n",
    "an alias by import": "from peft import LoraConfig as L\nc = L(r=8)\n",
    "an alias by assignment": "make = LoraConfig\nc = make(r=8)\n",
    "an attribute": "import peft\nc = peft.LoraConfig(r=8)\n",
    "a base class": "class Mine(LoraConfig):\n    pass\n",
    "a default": "def f(c=LoraConfig(r=8)):\n    return c\n",
    "an mmengine dict": "c = dict(type=LoraConfig, r=8)\n",
    "an isinstance test": "def f(c):\n    return isinstance(c, LoraConfig)\n",
    "an f-string field": 'print(f"{LoraConfig(r=8)}")\n',
    "an f-string field beside the word as text": 'print(f"LoraConfig: {LoraConfig(r=8)}")\n',
    "an f-string's format spec": 'print(f"{1:{LoraConfig(r=8)}}")\n',
    "a decorator": "@LoraConfig\ndef f():\n    pass\n",
    "a def's name": "def LoraConfig(**kwargs):\n    return kwargs\n",
    "a keyword's name": "f(LoraConfig=1)\n",
    "Unsloth's get_peft_model": "from unsloth import FastLanguageModel\nm = FastLanguageModel.get_peft_model(m, r=8)\n",
    "a parameter's default after its annotation": "def f(c: object = LoraConfig):\n    return c\n",
    "a lambda's body among a def's defaults": "def f(make=lambda a, b: LoraConfig):\n    return make\n",
    "a one-line body": "if True: LoraConfig(r=8)\n",
    "a body after a def's header": "def f() -> None: return LoraConfig\n",
    "a statement after `;`": "import os; make = LoraConfig\n",
    "a lambda": "make = lambda: LoraConfig(r=8)\n",
    "a class body's value": "class A:\n    config: LoraConfig = LoraConfig(r=8)\n",
    "a subscript": "configs = {'lora': LoraConfig}\nc = configs['lora'](r=8)\n",
}


def _walked(monkeypatch) -> list[str]:
    import loralint.program.model as model

    walked: list[str] = []
    real_walk, real_parse = model.walk, model.parse
    monkeypatch.setattr(model, "walk", lambda tree: walked.append("walk") or real_walk(tree))
    monkeypatch.setattr(model, "parse", lambda text: walked.append("parse") or real_parse(text))
    return walked


def test_a_module_naming_the_words_only_in_imports_annotations_strings_and_comments_is_left_out(monkeypatch):
    from loralint.extract import extract_source

    walked = _walked(monkeypatch)
    for module, parsed in ((INERT_TEXT, []), (INERT, ["parse"])):
        walked.clear()
        result = extract_source("layer.py", module.encode(), "python")
        assert (result.sites, result.loaded, result.diagnostics, walked) == ([], [], [], parsed)
        for what, use in USES.items():
            walked.clear()
            extract_source("layer.py", (module + use).encode(), "python")
            assert walked == ["parse", "walk"], what


@pytest.mark.parametrize("module", INERT_MODULES)
@pytest.mark.parametrize("use", [None, *USES])
@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\r"])
def test_leaving_a_module_out_changes_no_result(monkeypatch, module, use, line_break):
    # The same bytes with both shortcuts off give the same result (a lone \r counts lines as ast does not
    # here: such a file is analysed whole). A Latin-1 coding line takes the whole analysis too.
    import loralint.extract.inert_names as inert
    import loralint.extract.inert_text as inert_text
    from loralint.cache_format import dumps
    from loralint.extract import extract_source

    text = (INERT_MODULES[module] + (USES[use] if use else "")).replace("\n", line_break)
    for data in (text.encode(), ("# -*- coding: latin-1 -*-" + line_break + text + "# é" + line_break).encode("latin-1")):
        fast = dumps(extract_source("layer.py", data, "python"))
        monkeypatch.setattr(inert, "only_inert", lambda *args: False)
        monkeypatch.setattr(inert_text, "only_inert_text", lambda *args: False)
        slow = dumps(extract_source("layer.py", data, "python"))
        monkeypatch.undo()
        assert fast == slow


def test_what_the_text_tells_inert_the_parse_tells_inert_too():
    # extract/inert_text.py leaves a module out unparsed: for any text that parses, each word it calls inert
    # (an import without `as`, an annotation) must be inert on the parse, where inert_names reads the AST.
    # The pieces mix both with uses that look like them (a lambda's `:` among a def's defaults, `else:`, a
    # body after `:` on one line, brackets in strings and comments, `;`, backslash continuations).
    from hypothesis import example, given, settings
    from hypothesis import strategies as st

    from loralint.extract import every_word_start
    from loralint.extract.inert_names import only_inert
    from loralint.extract.inert_text import only_inert_text

    pieces = [
        "from peft import W\n", "from peft import (W,\n  x as y,\n)\n", "import peft.W\n", "from . import W as L\n",
        "from .m import (a, W)  # c\n", "import a, W\n", "from x import W; W\n", "import a \\\n , W\n",
        "def f(self, config: W, *a: W, **k: W) -> W:\n    return 1\n", "def f(c: Optional[W] = None) -> list[W]:\n    pass\n",
        "def f(c=W):\n    pass\n", "def f(g=lambda a, b: W):\n    pass\n", "def f(c: int = W):\n    pass\n",
        "def f() -> W: return W\n", "async def f(\n    x: W,  # ( comment\n    y: \"(\" = 1,\n) -> None:\n    pass\n",
        "def f(a: Annotated[int, lambda x, y: W]): pass\n", "def f(a=(1, 2), b: W = 3): pass\n", "def f(W: int): pass\n",
        "class A:\n    config: W\n    other: W = None\n", "class A(W):\n    pass\n", "class A: x: W\n", "x: W\n",
        "self.x: W = W\n", "x: list[W] = []\n", "x = W\n", "y = {'a': W}\n", "if x: W\n", "else_: W\n",
        "try:\n    pass\nfinally: W\n", "x = lambda a, b: W\n", "print(W)\n", "@W\ndef g(): pass\n", "f(x=W)\n",
        "x = (\n  W,\n)\n", "x: (\n  W\n)\n", "s = '(W'\n", 's = """\n(\n"""\n', "# (\n", "x = f'{ W }'\n", "x = f'W'\n",
        "x: int; y: W\n", "x: int = 1; W\n", "x \\\n : W\n", "x: \\\n W\n", "for a in b: c: W\n", "match: W\n",
        "x[W]: int\n", "x.y[0]: W\n", "x: W == 1\n", "(x): W\n", "W: int = 1\n", "x = W.y\n", "x = W[0]\n", "\tx: W\n",
    ]
    programs = st.lists(st.sampled_from(pieces), min_size=1, max_size=6).map(lambda p: "".join(p).replace("W", "LoraConfig"))

    @settings(max_examples=1500, deadline=None)
    @given(programs, st.sampled_from(["\n", "\r\n"]))
    @example("def f(g=lambda a, b: LoraConfig):\n    pass\n", "\n")
    @example("from peft import (LoraConfig,\n  x as y,\n)\nclass A:\n    config: LoraConfig\n", "\r\n")
    def same(text: str, line_break: str) -> None:
        data = text.replace("\n", line_break).encode()
        starts = every_word_start(data)
        try:
            tree = ast.parse(data)
        except SyntaxError:
            return  # left out unparsed or not, it holds no configuration to miss
        if only_inert_text(data, starts):
            assert only_inert(tree, data, starts), text

    same()
