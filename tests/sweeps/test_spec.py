"""Sweep and pipeline specs: parsing, every rule's error (line and field), trials and argv."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from runyard.errors import InvalidInput, PayloadTooLarge
from runyard.sweeps import spec as spec_module
from runyard.sweeps.model import EarlyStop, Metric, Param
from runyard.sweeps.spec import (
    MAX_SPEC_BYTES,
    expand,
    format_value,
    parse_pipeline,
    parse_sweep,
    trial_argv,
    trial_count,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, params=["libyaml", "python"])
def yaml_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with libyaml's parser (used when PyYAML has it) and the pure Python one."""
    if request.param == "python":
        monkeypatch.setattr(spec_module, "_Loader", spec_module._PyLoader)
    elif not hasattr(spec_module, "_CLoader"):
        pytest.skip("PyYAML without libyaml")


EXAMPLES = ROOT / "examples" / "sweeps"


def y(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def sweep_error(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_sweep(y(text))
    return info.value


def pipeline_error(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        parse_pipeline(y(text))
    return info.value


def check(exc: InvalidInput, line: int, field: str | None, *words: str, source: str = "sweep.yaml") -> None:
    """The error names the line and field as the message format says, and the words."""
    assert exc.field == field, exc.message
    prefix = f"{source} line {line}: " + (f"{field}: " if field else "")
    assert exc.message.startswith(prefix), exc.message
    for word in words:
        assert word in exc.message, exc.message


GRID = """
name: lr-sweep
command: [python, train.py]
method: grid
parameters:
  lr: [0.1, 0.01]
"""


# --------------------------------------------------------------------------- happy paths


def test_grid_sweep_with_every_common_key() -> None:
    spec = parse_sweep(
        y("""
        name: lr-sweep
        project: demo
        experiment: lr
        command: [python, train.py, --epochs, "3"]
        workdir: .
        output_dir: logs
        method: grid
        parameters:
          lr: [0.1, 0.01, 0.001]
          batch_size: {values: [32, 64]}
        concurrency: 3
        metric: {name: val/loss, goal: max}
        early_stop: {rule: halving, min_step: 5, min_trials: 3, interval: 2}
        resources: {partition: debug, cpus_per_task: 2, gpus_per_node: 0, mem: 2G, time: "00:10:00",
                    nodes: 1, ntasks_per_node: 1, account: x, qos: y}
        env: {A: text, B: 3, C: true, D: 0.5}
        tags: [a, b]
        requeue: false
        max_restarts: 2
        """)
    )
    assert spec.name == "lr-sweep" and spec.project == "demo" and spec.experiment == "lr"
    assert spec.command == ("python", "train.py", "--epochs", "3")
    assert spec.method == "grid" and spec.args == "append"
    assert spec.parameters == (
        Param(name="lr", values=(0.1, 0.01, 0.001), line=9),
        Param(name="batch_size", values=(32, 64), line=10),
    )
    assert spec.workdir == "." and spec.output_dir == "logs"
    assert spec.concurrency == 3 and spec.count is None and spec.seed == 0
    assert spec.metric == Metric("val/loss", "maximize")
    assert spec.early_stop == EarlyStop(rule="halving", min_step=5, min_trials=3, interval=2)
    assert spec.resources == {
        "partition": "debug",
        "cpus_per_task": 2,
        "gpus_per_node": 0,
        "mem_gb": 2.0,
        "time_limit_min": 10,
        "nodes": 1,
        "ntasks_per_node": 1,
        "account": "x",
        "qos": "y",
    }
    assert spec.env == {"A": "text", "B": "3", "C": "true", "D": "0.5"}
    assert spec.tags == ("a", "b") and spec.requeue is False and spec.max_restarts == 2
    assert trial_count(spec) == 6


def test_grid_order_last_parameter_fastest_and_slices() -> None:
    spec = parse_sweep(
        y("""
        name: g
        command: [run]
        method: grid
        parameters:
          a: [1, 2]
          b: [x, y, z]
        """)
    )
    combos = [(t["a"], t["b"]) for t in expand(spec)]
    assert combos == [(1, "x"), (1, "y"), (1, "z"), (2, "x"), (2, "y"), (2, "z")]
    assert list(expand(spec)[0]) == ["a", "b"]  # parameter order
    assert expand(spec, 2, 3) == expand(spec)[2:5]
    assert expand(spec, 4) == expand(spec)[4:]
    assert expand(spec, 5, 10) == expand(spec)[5:] and expand(spec, 6) == []


def test_random_sweep_is_deterministic_and_extends() -> None:
    text = y("""
        name: r
        command: [python, train.py]
        method: random
        count: 10
        seed: 3
        parameters:
          lr: {min: 1.0e-5, max: 1.0e-1, log: true}
          dropout: {min: 0.0, max: 0.5}
          layers: {min: 1, max: 4, int: true}
          width: {min: 16, max: 1024, int: true, log: true}
          opt: [sgd, adam]
        """)
    spec = parse_sweep(text)
    assert trial_count(spec) == 10 and spec.seed == 3
    trials = expand(spec)
    assert len(trials) == 10
    assert trials == expand(parse_sweep(text))  # same seed, same params
    assert expand(spec, 5, 3) == trials[5:8]
    assert expand(spec, 8, 5)[:2] == trials[8:]  # extending continues the sequence
    other = parse_sweep(text.replace("seed: 3", "seed: 4"))
    assert expand(other) != trials
    for t in expand(spec, 0, 500):
        assert 1e-5 <= t["lr"] <= 1e-1 and 0.0 <= t["dropout"] <= 0.5
        assert isinstance(t["layers"], int) and 1 <= t["layers"] <= 4
        assert isinstance(t["width"], int) and 16 <= t["width"] <= 1024
        assert t["opt"] in ("sgd", "adam")
    assert {t["layers"] for t in expand(spec, 0, 500)} == {1, 2, 3, 4}


def test_random_range_param_fields() -> None:
    spec = parse_sweep(
        y("""
        name: r
        command: [run]
        method: random
        count: 1
        parameters:
          wd: {min: 1.0e-5, max: 1.0e-2, log: true}
          layers: {min: 1, max: 4, int: true}
        """)
    )
    wd, layers = spec.parameters
    assert (wd.kind, wd.low, wd.high, wd.log, wd.integer) == ("range", 1e-5, 1e-2, True, False)
    assert (layers.kind, layers.low, layers.high, layers.integer) == ("range", 1.0, 4.0, True)
    assert spec.seed == 0  # default


def test_list_sweep() -> None:
    spec = parse_sweep(
        y("""
        name: l
        command: [run]
        method: list
        trials:
          - {lr: 0.1, batch_size: 32}
          - {batch_size: 64, lr: 0.01}
          - {lr: 0.1, batch_size: 64}
        """)
    )
    assert trial_count(spec) == 3
    assert expand(spec) == [
        {"lr": 0.1, "batch_size": 32},
        {"lr": 0.01, "batch_size": 64},
        {"lr": 0.1, "batch_size": 64},
    ]
    assert [list(t) for t in spec.trials] == [["lr", "batch_size"]] * 3  # first trial's key order
    assert [p.name for p in spec.parameters] == ["lr", "batch_size"]
    assert spec.parameters[0].values == (0.1, 0.01)  # distinct values, in order
    assert expand(spec, 1, 1) == [{"lr": 0.01, "batch_size": 64}]
    assert trial_argv(spec, expand(spec)[1]) == ["run", "--lr=0.01", "--batch_size=64"]


def test_adaptive_sweep() -> None:
    spec = parse_sweep(
        y("""
        name: a
        command: [run]
        method: adaptive
        count: 20
        sampler: random
        metric: val/loss
        early_stop: {min_step: 5}
        parameters:
          lr: {min: 0.0001, max: 0.1, log: true}
          bs: [32, 64]
        """)
    )
    assert spec.method == "adaptive" and spec.count == 20 and spec.sampler == "random"
    assert spec.metric == Metric("val/loss", "minimize")
    assert spec.early_stop == EarlyStop(rule="median", min_step=5, min_trials=1, interval=1)
    assert trial_count(spec) == 20
    with pytest.raises(ValueError):
        expand(spec)
    assert parse_sweep(y(GRID)).sampler == "tpe"


def test_expand_rejects_negative_slices() -> None:
    spec = parse_sweep(y(GRID))
    with pytest.raises(ValueError):
        expand(spec, -1)
    with pytest.raises(ValueError):
        expand(spec, 0, -1)


def test_command_as_one_string_is_split_like_a_shell() -> None:
    spec = parse_sweep(y(GRID).replace("[python, train.py]", "python train.py --note 'two words'"))
    assert spec.command == ("python", "train.py", "--note", "two words")


def test_metric_goal_aliases() -> None:
    for goal, want in (
        ("min", "minimize"),
        ("max", "maximize"),
        ("minimize", "minimize"),
        ("maximize", "maximize"),
    ):
        spec = parse_sweep(y(GRID) + f"metric: {{name: acc, goal: {goal}}}\n")
        assert spec.metric == Metric("acc", want)


def test_resources_numbers_and_times() -> None:
    spec = parse_sweep(y(GRID) + "resources: {mem_gb: 1.5, time_limit_min: 30}\n")
    assert spec.resources == {"mem_gb": 1.5, "time_limit_min": 30}
    spec = parse_sweep(y(GRID) + "resources: {mem: 512M, time: 1:30:00}\n")  # not base 60
    assert spec.resources == {"mem_gb": 0.5, "time_limit_min": 90}
    spec = parse_sweep(y(GRID) + "resources: {mem: 2048, time: 45}\n")  # bare numbers: MB, minutes
    assert spec.resources == {"mem_gb": 2.0, "time_limit_min": 45}
    spec = parse_sweep(y(GRID) + "resources: {time: UNLIMITED}\n")
    assert spec.resources == {}


def test_resource_rules_match_launch_resources() -> None:
    from runyard.server.routes.launch import LaunchResources

    assert set(spec_module._RESOURCE_RULES) == set(LaunchResources.model_fields)
    for name, info in LaunchResources.model_fields.items():
        kind, low, high = spec_module._RESOURCE_RULES[name]
        bounds: dict[str, Any] = {}
        for item in info.metadata:
            for attr in ("ge", "gt", "le", "max_length"):
                if getattr(item, attr, None) is not None:
                    bounds[attr] = getattr(item, attr)
        if kind == "str":
            assert bounds == {"max_length": high}, name
        elif kind == "int":
            assert bounds == {"ge": low, "le": high}, name
        else:
            assert bounds == {"gt": low, "le": high}, name


def test_yaml_numbers_without_surprises() -> None:
    spec = parse_sweep(y(GRID).replace("[0.1, 0.01]", "[1e-5, 1.0e-3, 2E3, .5, 10:00]"))
    assert spec.parameters[0].values == (1e-5, 1e-3, 2000.0, 0.5, "10:00")


def test_every_example_parses() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert {f.name for f in files} >= {"grid.yaml", "random.yaml", "adaptive.yaml", "pipeline.yaml"}
    for path in files:
        text = path.read_text()
        if "steps:" in text:
            pipeline = parse_pipeline(text, source=path.name)
            assert pipeline.steps
        else:
            spec = parse_sweep(text, source=path.name)
            if spec.method != "adaptive":
                for params in expand(spec):
                    assert trial_argv(spec, params)[:2] == ["python", "train.py"]


def test_examples_pass_only_flags_the_example_scripts_take() -> None:
    train, steps = EXAMPLES / "train.py", EXAMPLES / "steps.py"
    if not train.exists() or not steps.exists():
        pytest.skip("the example scripts are not there")
    declared = train.read_text()
    for path in EXAMPLES.glob("*.yaml"):
        text = path.read_text()
        if "steps:" in text:
            for step in parse_pipeline(text).steps:
                assert step.command[:2] == ("python", "steps.py")
                assert f'"{step.command[2]}"' in steps.read_text(), (path.name, step.name)
            continue
        spec = parse_sweep(text)
        trials = expand(spec, 0, 3) if spec.method != "adaptive" else []
        if spec.method == "adaptive":
            trials = [{p.name: p.values[0] if p.values else p.low for p in spec.parameters}]
        for params in trials:
            for word in trial_argv(spec, params):
                if word.startswith("--"):
                    assert f'"{word.split("=")[0]}"' in declared, (path.name, word)


# --------------------------------------------------------------------------- argv


def test_format_value() -> None:
    assert format_value("a b") == "a b"
    assert format_value(True) == "true" and format_value(False) == "false"
    assert format_value(3) == "3" and format_value(None) == "null"
    assert format_value(0.001) == "0.001" and format_value(1e-5) == "1e-05" and format_value(2.0) == "2.0"
    assert format_value([1, "a"]) == '[1,"a"]' and format_value({"k": [1]}) == '{"k":[1]}'


def test_trial_argv_append_in_parameter_order() -> None:
    spec = parse_sweep(y(GRID) + "  flag: [true]\n  name_: [x y]\n  n: [3]\n")
    argv = trial_argv(spec, {"n": 3, "flag": True, "name_": "x y", "lr": 1e-5})
    assert argv == ["python", "train.py", "--lr=1e-05", "--flag=true", "--name_=x y", "--n=3"]


def test_trial_argv_template() -> None:
    spec = parse_sweep(
        y("""
        name: t
        command: [python, train.py, "--lr={lr}", --opt, "{opt}", "--json={{\\"bs\\": {bs}}}"]
        method: grid
        parameters:
          lr: [0.001]
          opt: [adam]
          bs: [32]
        """)
    )
    assert spec.args == "template"  # default: the command names parameters
    argv = trial_argv(spec, expand(spec)[0])
    assert argv == ["python", "train.py", "--lr=0.001", "--opt", "adam", '--json={"bs": 32}']


def test_template_from_one_command_string() -> None:
    spec = parse_sweep(y(GRID).replace("[python, train.py]", "python train.py --lr {lr}"))
    assert spec.args == "template"
    assert trial_argv(spec, {"lr": 0.1}) == ["python", "train.py", "--lr", "0.1"]


def test_braces_that_name_no_parameter_keep_args_append() -> None:
    spec = parse_sweep(y(GRID).replace("[python, train.py]", '[python, train.py, "{other}", "{{lr}}"]'))
    assert spec.args == "append"
    assert trial_argv(spec, {"lr": 0.1}) == ["python", "train.py", "{other}", "{{lr}}", "--lr=0.1"]


def test_explicit_args_append_keeps_placeholders_verbatim() -> None:
    spec = parse_sweep(y(GRID).replace("[python, train.py]", '[python, "{lr}"]') + "args: append\n")
    assert trial_argv(spec, {"lr": 0.1}) == ["python", "{lr}", "--lr=0.1"]


# --------------------------------------------------------------------------- document errors


def test_yaml_syntax_error_names_the_line() -> None:
    exc = sweep_error("""
        name: x
        command: [python
        method: grid
        """)
    assert exc.field is None
    assert exc.message.startswith("sweep.yaml line 3: YAML syntax:"), exc.message


def test_source_names_the_file() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_sweep("name: [", source="my/sweep.yml")
    assert info.value.message.startswith("my/sweep.yml line 1: ")


def test_top_level_must_be_a_mapping() -> None:
    check(sweep_error("- a\n- b\n"), 1, None, "mapping")
    check(sweep_error("just text\n"), 1, None, "mapping")
    check(sweep_error("# nothing\n"), 1, None, "empty")


def test_characters_yaml_refuses() -> None:
    check(sweep_error("name: x\nmethod: \x01\n"), 2, None, "character #x0001")
    check(sweep_error("name: x\nmethod: \ud800\n"), 2, None)


def test_deep_nesting_is_an_error() -> None:
    exc = sweep_error("[" * 100_000)
    assert exc.message == "sweep.yaml: the spec nests too deeply"


def test_too_large_spec_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        parse_sweep("#" * (MAX_SPEC_BYTES + 1))
    with pytest.raises(PayloadTooLarge):  # counted in bytes
        parse_sweep("#" + "é" * (MAX_SPEC_BYTES // 2))


def test_duplicate_keys() -> None:
    check(sweep_error(GRID + "name: again\n"), 6, "name", "duplicate key 'name'", "line 1")
    exc = sweep_error(GRID.replace("  lr: [0.1, 0.01]", "  lr: [0.1]\n  lr: [0.2]"))
    check(exc, 6, "parameters.lr", "duplicate")


def test_unknown_key_suggests_and_lists_allowed() -> None:
    exc = sweep_error(GRID.replace("parameters:", "paramters:"))
    check(exc, 4, "paramters", "unknown key 'paramters' (did you mean 'parameters'?); allowed: name, project")
    exc = sweep_error(GRID + "resources: {gpus: 1}\n")
    check(exc, 6, "resources.gpus", "unknown key 'gpus'", "gpus_per_node")
    exc = sweep_error(GRID.replace("[0.1, 0.01]", "{value: [1]}"))
    check(exc, 5, "parameters.lr.value", "did you mean 'values'?")


def test_aliases_and_tags_are_refused() -> None:
    exc = sweep_error(GRID.replace("[0.1, 0.01]", "&v [0.1]") + "  wd: *v\n")
    assert exc.message.startswith("sweep.yaml line 6: ") and "aliases" in exc.message
    exc = sweep_error(GRID.replace("name: lr-sweep", "name: !!python/name:os.system x"))
    check(exc, 1, "name")
    check(sweep_error("<<: {name: x}\n"), 1, "<<", "merge keys")


def test_non_string_keys() -> None:
    check(sweep_error(GRID + "3: x\n"), 6, None, "keys must be strings")


# --------------------------------------------------------------------------- sweep rules


@pytest.mark.parametrize(
    ("name", "ok"),
    [("lr-sweep", True), ("a.b+c:d@e=f_1", True), ("x" * 64, True), ("x" * 65, False), ("has space", False),
     ("slash/no", False), ("", False)],
)  # fmt: skip
def test_name_rule(name: str, ok: bool) -> None:
    text = y(GRID).replace("name: lr-sweep", f"name: {name!r}")
    if ok:
        assert parse_sweep(text).name == name
    else:
        check(sweep_error(text), 1, "name")


def test_required_keys() -> None:
    check(sweep_error(GRID.replace("name: lr-sweep\n", "")), 1, "name", "is required")
    check(sweep_error(GRID.replace("command: [python, train.py]\n", "")), 1, "command", "is required")
    check(sweep_error(GRID.replace("method: grid\n", "")), 1, "method", "is required")
    exc = sweep_error(GRID.split("parameters:")[0])
    check(exc, 3, "parameters", "required for method grid")


def test_method_rule() -> None:
    check(
        sweep_error(GRID.replace("method: grid", "method: bayes")),
        3,
        "method",
        "grid, random, list, adaptive",
    )


def test_name_must_be_a_string() -> None:
    check(sweep_error(GRID.replace("name: lr-sweep", "name: 42")), 1, "name", "must be a string", '"42"')


def test_command_rules() -> None:
    check(sweep_error(GRID.replace("[python, train.py]", "[]")), 2, "command", "must not be empty")
    check(sweep_error(GRID.replace("[python, train.py]", '""')), 2, "command", "must not be empty")
    check(sweep_error(GRID.replace("[python, train.py]", "python 'unclosed")), 2, "command", "split")
    exc = sweep_error(GRID.replace("[python, train.py]", "\n  - python\n  - --epochs\n  - 3"))
    check(exc, 5, "command[2]", "must be a string", '"3"')
    check(sweep_error(GRID.replace("[python, train.py]", "{a: b}")), 2, "command", "a mapping")


def test_args_rule() -> None:
    check(sweep_error(GRID + "args: both\n"), 6, "args", "append, template")


def test_template_placeholders_must_name_parameters() -> None:
    exc = sweep_error(GRID.replace("[python, train.py]", '[python, train.py, "--lr={lr}", "{l}"]'))
    check(exc, 2, "command[3]", "placeholder {l} names no parameter", "(did you mean 'lr'?)")
    exc = sweep_error(GRID.replace("[python, train.py]", '\n  - python\n  - "{lr}"\n  - "{oops"'))
    check(exc, 5, "command[2]", "unmatched '{'")
    exc = sweep_error(GRID.replace("[python, train.py]", '[python, "{lr}", "a}b"]'))
    check(exc, 2, "command[2]", "unmatched '}'")


def test_template_must_use_every_parameter() -> None:
    exc = sweep_error(GRID.replace("[python, train.py]", '[python, "{lr}"]') + "  wd: [1, 2]\n")
    check(exc, 2, "command", "'wd'", "same command")
    exc = sweep_error(GRID + "args: template\n")
    check(exc, 2, "command", "'lr'")


def test_parameter_name_rule() -> None:
    check(sweep_error(GRID.replace("  lr:", "  1lr:")), 5, "parameters.1lr", "parameter names")
    check(sweep_error(GRID.replace("  lr:", "  'l r':")), 5, "parameters.l r", "parameter names")
    assert parse_sweep(y(GRID).replace("  lr:", "  model.lr-x_1:")).parameters[0].name == "model.lr-x_1"


def test_parameters_must_not_be_empty() -> None:
    check(
        sweep_error(GRID.replace("parameters:\n  lr: [0.1, 0.01]", "parameters: {}")),
        4,
        "parameters",
        "at least one",
    )


def test_parameter_shapes() -> None:
    check(sweep_error(GRID.replace("[0.1, 0.01]", "0.1")), 5, "parameters.lr", "[0.1]")
    exc = sweep_error(GRID.replace("[0.1, 0.01]", "{values: [1], min: 0}"))
    check(exc, 5, "parameters.lr.min", "not both")


def test_values_rules() -> None:
    check(sweep_error(GRID.replace("[0.1, 0.01]", "[]")), 5, "parameters.lr", "at least one value")
    check(sweep_error(GRID.replace("[0.1, 0.01]", "{values: []}")), 5, "parameters.lr.values", "at least one")
    exc = sweep_error(GRID.replace("[0.1, 0.01]", "\n    - 0.1\n    - [1, 2]"))
    check(exc, 7, "parameters.lr[1]", "a single value")
    check(sweep_error(GRID.replace("[0.1, 0.01]", "[0.1, null]")), 5, "parameters.lr[1]", "got null")
    check(sweep_error(GRID.replace("[0.1, 0.01]", "[0.1, .nan]")), 5, "parameters.lr[1]", "finite")
    check(sweep_error(GRID.replace("[0.1, 0.01]", "[2024-01-01]")), 5, "parameters.lr[0]", "string, number")
    exc = sweep_error(GRID.replace("[0.1, 0.01]", "{values: [0.1, 0.01, 0.1]}"))
    check(exc, 5, "parameters.lr.values[2]", "duplicate value 0.1")
    spec = parse_sweep(y(GRID).replace("[0.1, 0.01]", "[1, 1.0, true, '1']"))  # distinct on the command line
    assert [format_value(v) for v in spec.parameters[0].values or ()] == ["1", "1.0", "true", "1"]


def test_grid_needs_values() -> None:
    exc = sweep_error(GRID.replace("[0.1, 0.01]", "{min: 0.0, max: 1.0}"))
    check(exc, 5, "parameters.lr", "a grid needs values")


def test_grid_size_limit() -> None:
    values = "[" + ", ".join(str(i) for i in range(101)) + "]"
    exc = sweep_error(GRID + f"  a: {values}\n  b: {values}\n")
    check(exc, 5, "parameters", "2 x 101 x 101 = 20402 trials; at most 10000")
    values = "[" + ", ".join(str(i) for i in range(100)) + "]"
    assert trial_count(parse_sweep(y(GRID).replace("[0.1, 0.01]", values) + f"  b: {values}\n")) == 10000


RANDOM = """
name: r
command: [run]
method: random
count: 5
parameters:
  x: {min: 0, max: 1}
"""


def test_range_rules() -> None:
    check(
        sweep_error(RANDOM.replace("{min: 0, max: 1}", "{min: 1, max: 1}")), 6, "parameters.x.max", "greater"
    )
    check(
        sweep_error(RANDOM.replace("{min: 0, max: 1}", "{min: 2, max: 1}")), 6, "parameters.x.max", "greater"
    )
    exc = sweep_error(RANDOM.replace("{min: 0, max: 1}", "{min: 0, max: 1, log: true}"))
    check(exc, 6, "parameters.x.min", "min > 0")
    exc = sweep_error(RANDOM.replace("{min: 0, max: 1}", "{min: 0.5, max: 4, int: true}"))
    check(exc, 6, "parameters.x.min", "whole-number")
    assert parse_sweep(y(RANDOM).replace("max: 1}", "max: 4.0, int: true}")).parameters[0].high == 4.0
    check(sweep_error(RANDOM.replace("{min: 0, max: 1}", "{max: 1}")), 6, "parameters.x.min", "is required")
    check(sweep_error(RANDOM.replace("max: 1", "max: high")), 6, "parameters.x.max", "must be a number")
    check(sweep_error(RANDOM.replace("max: 1", "max: .inf")), 6, "parameters.x.max", "finite")
    check(
        sweep_error(RANDOM.replace("max: 1", "max: 1, log: yes please")),
        6,
        "parameters.x.log",
        "true or false",
    )


def test_count_rules() -> None:
    check(sweep_error(RANDOM.replace("count: 5\n", "")), 3, "count", "is required")
    check(sweep_error(RANDOM.replace("count: 5", "count: 0")), 4, "count", "from 1 to 10000, got 0")
    check(sweep_error(RANDOM.replace("count: 5", "count: 10001")), 4, "count", "10000")
    check(sweep_error(RANDOM.replace("count: 5", "count: 2.5")), 4, "count", "whole number")
    check(sweep_error(GRID + "count: 3\n"), 6, "count", "only for random and adaptive")


def test_seed_rules() -> None:
    check(sweep_error(RANDOM + "seed: -1\n"), 7, "seed", "from 0")
    check(sweep_error(GRID + "seed: 1\n"), 6, "seed", "only for random and adaptive")


def test_concurrency_rule() -> None:
    check(sweep_error(GRID + "concurrency: 0\n"), 6, "concurrency", "from 1 to 10000")
    assert parse_sweep(y(GRID) + "concurrency: 10000\n").concurrency == 10000


def test_metric_rules() -> None:
    check(sweep_error(GRID + "metric: {name: loss, goal: lowest}\n"), 6, "metric.goal", "minimize, maximize")
    check(sweep_error(GRID + "metric: {goal: min}\n"), 6, "metric.name", "is required")
    check(sweep_error(GRID + "metric: ''\n"), 6, "metric", "must not be empty")
    check(sweep_error(GRID + "metric: {name: l, direction: min}\n"), 6, "metric.direction", "unknown key")


def test_adaptive_needs_metric() -> None:
    exc = sweep_error(RANDOM.replace("method: random", "method: adaptive"))
    check(exc, 3, "metric", "required for method adaptive")


def test_early_stop_rules() -> None:
    check(sweep_error(GRID + "early_stop: {rule: median}\n"), 6, "early_stop", "needs metric")
    base = GRID + "metric: loss\n"
    check(sweep_error(base + "early_stop: {rule: hyperband}\n"), 7, "early_stop.rule", "median, halving")
    check(sweep_error(base + "early_stop: {min_step: -1}\n"), 7, "early_stop.min_step", "from 0")
    check(sweep_error(base + "early_stop: {min_trials: 0}\n"), 7, "early_stop.min_trials", "from 1")
    check(sweep_error(base + "early_stop: {interval: 0}\n"), 7, "early_stop.interval", "from 1")
    check(sweep_error(base + "early_stop: median\n"), 7, "early_stop", "mapping")


def test_sampler_rules() -> None:
    check(sweep_error(GRID + "sampler: tpe\n"), 6, "sampler", "only for method adaptive")
    adaptive = RANDOM.replace("method: random", "method: adaptive") + "metric: loss\n"
    check(sweep_error(adaptive + "sampler: cmaes\n"), 8, "sampler", "tpe, random")


def test_list_rules() -> None:
    base = "name: l\ncommand: [run]\nmethod: list\n"
    check(sweep_error(base), 3, "trials", "is required for method list")
    check(sweep_error(base + "trials: []\n"), 4, "trials", "1 to 10000 trials, got 0")
    check(sweep_error(base + "trials: [3]\n"), 4, "trials[0]", "mapping")
    check(sweep_error(base + "trials: [{}]\n"), 4, "trials[0]", "at least one parameter")
    exc = sweep_error(base + "trials:\n  - {a: 1, b: 2}\n  - {a: 1, c: 2}\n")
    check(exc, 6, "trials[1].c", "same keys (a, b)")
    exc = sweep_error(base + "trials:\n  - {a: 1, b: 2}\n  - {a: 1}\n")
    check(exc, 6, "trials[1]", "misses 'b'")
    check(sweep_error(base + "trials: [{a: [1]}]\n"), 4, "trials[0].a", "single value")
    check(sweep_error(base + "trials: [{1a: 1}]\n"), 4, "trials[0].1a", "parameter names")
    exc = sweep_error(base + "trials: [{a: 1}]\nparameters: {a: [1]}\n")
    check(exc, 5, "parameters", "not used by method list")
    check(sweep_error(GRID + "trials: [{lr: 1}]\n"), 6, "trials", "only for method list")


def test_resources_rules() -> None:
    check(sweep_error(GRID + "resources: {cpus_per_task: 0}\n"), 6, "resources.cpus_per_task", "from 1")
    check(sweep_error(GRID + "resources: {gpus_per_node: 1025}\n"), 6, "resources.gpus_per_node", "to 1024")
    check(sweep_error(GRID + "resources: {mem: lots}\n"), 6, "resources.mem", "500M, 4G or 1T", "'lots'")
    check(sweep_error(GRID + "resources: {time: soon}\n"), 6, "resources.time", "Slurm time", "'soon'")
    check(sweep_error(GRID + "resources: {mem_gb: 0}\n"), 6, "resources.mem_gb", "more than 0")
    check(sweep_error(GRID + "resources: {mem: 1G, mem_gb: 1}\n"), 6, "resources.mem_gb", "not both")
    check(sweep_error(GRID + "resources: {partition: 3}\n"), 6, "resources.partition", "must be a string")
    check(sweep_error(GRID + "resources: [debug]\n"), 6, "resources", "mapping")


def test_env_tags_requeue_rules() -> None:
    check(sweep_error(GRID + "env: {1BAD: x}\n"), 6, "env.1BAD", "MY_VAR")
    check(sweep_error(GRID + "env: {A: [1]}\n"), 6, "env.A", "single value")
    check(sweep_error(GRID + "env: {A: null}\n"), 6, "env.A", "got null")
    check(sweep_error(GRID + "tags: a\n"), 6, "tags", "list")
    check(sweep_error(GRID + "tags: [a, 1]\n"), 6, "tags[1]", "must be a string")
    check(sweep_error(GRID + "requeue: maybe\n"), 6, "requeue", "true or false")
    check(sweep_error(GRID + "max_restarts: 1001\n"), 6, "max_restarts", "from 0 to 1000")
    check(sweep_error(GRID + "project: ''\n"), 6, "project", "must not be empty")


# --------------------------------------------------------------------------- pipelines

PIPELINE = """
name: prep-train-eval
project: demo
resources: {cpus_per_task: 1, mem: 1G}
env: {A: "1", B: "2"}
steps:
  preprocess:
    command: [python, steps.py, prep]
    resources: {cpus_per_task: 2}
    env: {B: "3"}
  train:
    command: python steps.py train
    after: [preprocess]
  evaluate:
    command: [python, steps.py, evaluate]
    after: train
"""


def test_pipeline_happy_path() -> None:
    spec = parse_pipeline(y(PIPELINE))
    assert spec.name == "prep-train-eval" and spec.project == "demo"
    assert [s.name for s in spec.steps] == ["preprocess", "train", "evaluate"]
    prep, train, evaluate = spec.steps
    assert prep.command == ("python", "steps.py", "prep") and prep.line == 6
    assert prep.resources == {"cpus_per_task": 2, "mem_gb": 1.0}  # the step wins
    assert prep.env == {"A": "1", "B": "3"}
    assert train.command == ("python", "steps.py", "train") and train.after == (("preprocess", "ok"),)
    assert train.resources == {"cpus_per_task": 1, "mem_gb": 1.0} and train.env == {"A": "1", "B": "2"}
    assert evaluate.after == (("train", "ok"),)
    assert spec.resources == {"cpus_per_task": 1, "mem_gb": 1.0}


def test_after_forms() -> None:
    spec = parse_pipeline(
        y("""
        name: p
        steps:
          a: {command: run}
          b: {command: run}
          c: {command: run, after: ["a:any", "b:notok"]}
          d: {command: run, after: {a: ok, c: any}}
          e: {command: run, after: "d:ok"}
        """)
    )
    steps = {s.name: s for s in spec.steps}
    assert steps["c"].after == (("a", "any"), ("b", "notok"))
    assert steps["d"].after == (("a", "ok"), ("c", "any"))
    assert steps["e"].after == (("d", "ok"),)


def test_topological_order_is_stable() -> None:
    spec = parse_pipeline(
        y("""
        name: p
        steps:
          report: {command: run, after: [eval, train]}
          train: {command: run, after: prep}
          fetch: {command: run}
          eval: {command: run, after: [train]}
          prep: {command: run, after: fetch}
          lint: {command: run}
        """)
    )
    assert [s.name for s in spec.steps] == ["fetch", "prep", "train", "eval", "report", "lint"]
    independent = parse_pipeline("name: p\nsteps: {c: {command: x}, a: {command: x}, b: {command: x}}\n")
    assert [s.name for s in independent.steps] == ["c", "a", "b"]


def test_cycle_is_named() -> None:
    exc = pipeline_error("""
        name: p
        steps:
          start: {command: run}
          a:
            command: run
            after: [start, c]
          b: {command: run, after: a}
          c: {command: run, after: [b]}
        """)
    check(exc, 6, "steps.a.after[1]", "cycle: a -> c -> b -> a", source="pipeline.yaml")
    exc = pipeline_error("name: p\nsteps:\n  x: {command: run, after: y}\n  y: {command: run, after: x}\n")
    check(exc, 3, "steps.x.after", "x -> y -> x", source="pipeline.yaml")


def test_pipeline_step_rules() -> None:
    A = "name: p\nsteps:\n  a: {command: run}\n"

    def bad(text: str, line: int, field: str | None, *words: str) -> None:
        check(pipeline_error(text), line, field, *words, source="pipeline.yaml")

    bad("name: p\nsteps:\n  a: {command: run, after: [b]}\n", 3, "steps.a.after[0]", "unknown step 'b'")
    two = "name: p\nsteps:\n  train: {command: run}\n  trial: {command: run, after: trian}\n"
    bad(two, 4, "steps.trial.after", "unknown step 'trian' (did you mean 'train'?); steps: train, trial")
    bad("name: p\nsteps:\n  a: {command: run, after: a}\n", 3, "steps.a.after", "itself")
    bad(A + "  b: {command: run, after: 'a:sometimes'}\n", 4, "steps.b.after",
        "STEP:ok|any|notok")  # fmt: skip
    bad(A + "  b: {command: run, after: {a: maybe}}\n", 4, "steps.b.after.a",
        "ok, any, notok")  # fmt: skip
    bad(A + "  b: {command: run, after: [a, 'a:any']}\n", 4,
        "steps.b.after[1]", "listed twice")  # fmt: skip
    bad(A + "  b: {command: run, after: [[a]]}\n", 4, "steps.b.after[0]",
        "single value")  # fmt: skip
    bad("name: p\nsteps:\n  a: {after: []}\n", 3, "steps.a.command", "is required")
    bad("name: p\nsteps:\n  a: {command: run, comand: x}\n", 3, "steps.a.comand", "did you mean 'command'?")
    bad("name: p\nsteps:\n  a b: {command: run}\n", 3, "steps.a b", "step names")
    bad("name: p\nsteps:\n  a: run\n", 3, "steps.a", "mapping")
    bad("name: p\nsteps: {}\n", 2, "steps", "1 to 100 steps, got 0")
    bad("name: p\nsteps: [a, b]\n", 2, "steps", "mapping")
    bad(
        "name: p\nsteps:\n  a: {command: run, resources: {nodes: 0}}\n",
        3,
        "steps.a.resources.nodes",
        "from 1",
    )
    bad("name: p\nsteps:\n  a: {command: run, env: {A-B: x}}\n", 3, "steps.a.env.A-B", "MY_VAR")
    bad("steps:\n  a: {command: run}\n", 1, "name", "is required")
    bad("name: p\n", 1, "steps", "is required")
    bad("name: p\nmethod: grid\nsteps:\n  a: {command: run}\n", 2, "method", "unknown key", "steps")
    bad("name: p\nname: q\nsteps:\n  a: {command: run}\n", 2, "name", "duplicate")
    many = "".join(f"  s{i}: {{command: run}}\n" for i in range(101))
    bad("name: p\nsteps:\n" + many, 3, "steps", "got 101")


def test_pipeline_syntax_and_top_level_errors() -> None:
    check(
        pipeline_error("name: p\nsteps:\n  a: {command: run\n"),
        3,
        None,
        "YAML syntax",
        source="pipeline.yaml",
    )
    check(pipeline_error("[1, 2]\n"), 1, None, "mapping", source="pipeline.yaml")


def test_docs_show_the_examples_and_their_specs_parse() -> None:
    doc = (ROOT / "docs" / "sweeps.md").read_text()
    for path in EXAMPLES.glob("*.yaml"):
        assert f"```yaml\n{path.read_text()}```" in doc, f"docs/sweeps.md does not show {path.name} as it is"
    blocks = doc.split("```yaml\n")[1:]
    whole = [block.split("```")[0] for block in blocks if block.startswith(("name:", "#"))]
    assert len(whole) >= 5
    for text in whole:
        if "steps:" in text:
            parse_pipeline(text)
        else:
            parse_sweep(text)


def test_docs_template_example() -> None:
    spec = parse_sweep(
        "name: t\nmethod: grid\nparameters: {lr: [0.1], batch_size: [32]}\n"
        'command: [python, train.py, "--lr={lr}", --batch-size, "{batch_size}", --tag, "{{fixed}}"]\n'
    )
    argv = trial_argv(spec, expand(spec)[0])
    assert argv == ["python", "train.py", "--lr=0.1", "--batch-size", "32", "--tag", "{fixed}"]
