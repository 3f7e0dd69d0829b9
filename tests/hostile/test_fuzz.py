"""Fuzzing: generated Python around LoraConfig calls, and generated trainer YAML/JSON configs.

Whatever the input, `loralint check` must finish with a report: no traceback (an exception
escapes `run_cli`, which does not catch them) and no LORA904 ("a bug in loralint"). The
strategies build plausible code (real imports, real field names, odd values, control flow
around the call, truncated or damaged text) rather than random bytes, which the parser would
reject before anything interesting runs."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import run_cli

FIELDS = [
    "r", "lora_alpha", "lora_dropout", "target_modules", "exclude_modules", "bias", "task_type",
    "use_rslora", "use_dora", "init_lora_weights", "modules_to_save", "layers_to_transform",
    "layers_pattern", "rank_pattern", "alpha_pattern", "fan_in_fan_out", "inference_mode",
    "lora_bias", "target_parameters", "loftq_config", "trainable_token_indices", "lora_alpah",
]
NAMES = ["q_proj", "v_proj", "c_attn", "all-linear", ".*", "(a+)+$", "q_proj[", "embed_tokens", "lm_head", ""]

_atoms = st.one_of(
    st.integers(-(10**6), 10**6).map(repr),
    st.sampled_from(["0", "-1", "1e9", "10**10**10", "2**64", "float('nan')", "None", "True", "False", "...",
                     "1.5", "-0.0", "1j", "b'x'", "r", "args.lora_r", "CONST", "undefined_name"]),
    st.text(max_size=12).map(repr),
    st.sampled_from(NAMES).map(repr),
)


def _compound(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda xs: f"[{', '.join(xs)}]"),
        st.lists(children, max_size=3).map(lambda xs: f"({', '.join(xs)},)"),
        st.lists(st.tuples(st.sampled_from(NAMES + FIELDS).map(repr), children), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"
        ),
        st.tuples(children, st.sampled_from(["+", "*", "-", "/", "//", "**", "%", "|", "if True else"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.tuples(st.sampled_from(["dict", "list", "str", "int", "len", "sorted", "f", "getattr"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        children.map(lambda x: f"[x for x in {x}]"),
        children.map(lambda x: f'f"""{{{x}}}"""'),
    )


VALUES = st.recursive(_atoms, _compound, max_leaves=8)

# (order, text): positional arguments first, as Python requires, so most calls parse.
ARGUMENT = st.one_of(
    st.tuples(st.just(1), st.tuples(st.sampled_from(FIELDS), VALUES).map(lambda kv: f"{kv[0]}={kv[1]}")),
    st.tuples(st.just(2), VALUES.map(lambda v: f"**{v}")),
    st.tuples(st.just(0), VALUES.map(lambda v: f"*{v}")),
    st.tuples(st.just(0), VALUES),
)

CALLEE = st.sampled_from(["LoraConfig", "LoraConfig", "LoraConfig", "peft.LoraConfig", "LC", "FastLanguageModel.get_peft_model", "ModelConfig",
                          "dict", "get_peft_model"])
IMPORTS = st.sampled_from([
    "from peft import LoraConfig, get_peft_model\nimport peft\nfrom peft import LoraConfig as LC\n"
    "from unsloth import FastLanguageModel\nfrom trl import ModelConfig\n",
    "from peft import LoraConfig, get_peft_model\nimport peft\n",
    "from peft import LoraConfig, get_peft_model\n",
    "import peft\n",
    "from peft import LoraConfig as LC\n",
    "from unsloth import FastLanguageModel\n",
    "from trl import ModelConfig, SFTTrainer\n",
    "",
])


@st.composite
def python_sources(draw) -> str:
    arguments = sorted(draw(st.lists(ARGUMENT, max_size=6)), key=lambda a: a[0])
    call = f"{draw(CALLEE)}({', '.join(text for _, text in arguments)})"
    assignment = f"config = {call}"
    wrapper = draw(st.sampled_from([
        "{stmt}\n",
        "if flag:\n    {stmt}\nelse:\n    config = None\n",
        "def build(r=8, alpha=16):\n    {stmt}\n    return config\n\nconfig = build()\n",
        "for i in range(3):\n    {stmt}\n",
        "try:\n    {stmt}\nexcept Exception:\n    pass\n",
        "class C:\n    {stmt}\n",
        "with ctx() as c:\n    {stmt}\n",
        "kw = {{'r': 8}}\nkw['use_dora'] = {value}\n{stmt}\n",
        "lambda: {call}\n",
        "async def main():\n    {stmt}\n    await x\n",
    ]))
    source = draw(IMPORTS) + wrapper.format(stmt=assignment, call=call, value=draw(VALUES))
    source += draw(st.sampled_from([
        "", "model = get_peft_model(model, config)\n", "model = prepare_model_for_kbit_training(model)\n",
        "trainer = SFTTrainer(model=model, peft_config=config)\n", "config = LoraConfig(r=4)\n",
    ]))
    cut = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(source))))
    if cut is not None:  # damaged text: an editor mid-keystroke
        source = source[:cut]
    return source


_json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**12), 10**12), st.floats(allow_nan=False),
              st.text(max_size=10), st.sampled_from(NAMES)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(FIELDS + NAMES), children, max_size=4)),
    max_leaves=10,
)

TRAINER_KEYS = {
    "config.yaml": ["base_model", "adapter", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
                    "lora_target_linear", "load_in_4bit", "lora_modules_to_save", "peft_use_dora", "datasets"],
    "train_lora.yaml": ["model_name_or_path", "finetuning_type", "lora_rank", "lora_alpha", "lora_target",
                        "quantization_bit", "lora_dropout", "use_dora", "additional_target"],
    "adapter_config.json": ["peft_type", "r", "lora_alpha", "target_modules", "base_model_name_or_path",
                            "task_type", "rank_pattern", "alpha_pattern", "use_rslora", "modules_to_save"],
}


@st.composite
def trainer_configs(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(TRAINER_KEYS)))
    data = draw(st.dictionaries(st.sampled_from(TRAINER_KEYS[name] + FIELDS), _json_values, min_size=1, max_size=8))
    if name == "adapter_config.json":
        data.setdefault("peft_type", "LORA")
        text = json.dumps(data)
    else:
        if draw(st.booleans()):
            data["model"] = {"_component_": "torchtune.models.llama3_2.lora_llama3_2_1b", "lora_rank": data.get("r", 8)}
        text = yaml.safe_dump(data, allow_unicode=True)
    cut = draw(st.one_of(st.none(), st.none(), st.none(), st.integers(0, len(text))))
    return name, text if cut is None else text[:cut]


def _assert_reported(tmp_path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    run = run_cli(["check", "--output-format", "json", "--no-cache", "--select", "ALL", name], cwd=tmp_path)
    assert run.exit_code in (0, 1), (run.exit_code, run.stdout, run.stderr, text)
    codes = run.codes()
    assert "LORA904" not in codes, (text, run.stdout)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])


@FUZZ
@given(python_sources())
def test_generated_python_never_breaks_the_run(tmp_path, source):
    _assert_reported(tmp_path, "train.py", source)


@FUZZ
@given(trainer_configs())
def test_generated_trainer_configs_never_break_the_run(tmp_path, case):
    name, text = case
    _assert_reported(tmp_path, name, text)
