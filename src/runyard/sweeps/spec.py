"""Reading sweep and pipeline specs (YAML) into the checked dataclasses of ``model.py``.

``parse_sweep`` and ``parse_pipeline`` compose the YAML into its node tree (SafeLoader, never
``yaml.load``) and walk it, so every error names the 1-based line of the offending node and
its dotted key path: ``InvalidInput("sweep.yaml line 7: parameters.lr.values: ...",
field="parameters.lr.values")``. Duplicate keys, unknown keys (with a suggestion), tags other
than YAML's own and aliases are refused. Numbers follow YAML 1.1 as PyYAML reads them, with
two changes that avoid silent surprises: ``1e-5`` is a float (YAML 1.2; PyYAML reads a
string) and nothing is read as a base-60 number (``time: 1:30:00`` stays text).

``expand`` gives the params of a sweep's trials (grid, list, random; adaptive trials come
from Optuna), ``trial_count`` how many there are, ``trial_argv`` the command one trial runs.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import random
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, cast

import yaml  # type: ignore[import-untyped]

from runyard.errors import InvalidInput, PayloadTooLarge
from runyard.slurm.launch import MAX_ARRAY_TASKS, parse_mem_gb, parse_time_limit
from runyard.sweeps.model import EarlyStop, Method, Metric, Param, PipelineSpec, Step, SweepSpec, When

__all__ = [
    "MAX_SPEC_BYTES",
    "MAX_STEPS",
    "expand",
    "format_value",
    "parse_pipeline",
    "parse_sweep",
    "trial_argv",
    "trial_count",
]

MAX_SPEC_BYTES = 1024 * 1024
MAX_STEPS = 100
MAX_COUNT = MAX_ARRAY_TASKS  # trials of one sweep: one Slurm array, one run per task
MAX_SEED = 2**32 - 1  # numpy-based samplers take no larger seed

_JOB_NAME_RE = re.compile(r"[A-Za-z0-9_.+:@=-]{1,64}")
_PARAM_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")
_STEP_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"

_COMMON_KEYS = ("name", "project", "experiment", "workdir", "output_dir", "resources", "env", "tags")
_SWEEP_KEYS = ("name", "project", "experiment", "command", "args", "workdir", "output_dir",
               "method", "parameters", "trials", "count", "seed", "concurrency", "metric", "early_stop",
               "sampler", "resources", "env", "tags", "requeue", "max_restarts")  # fmt: skip
_PIPELINE_KEYS = (*_COMMON_KEYS, "steps")
_STEP_KEYS = ("command", "after", "resources", "env")
_METHODS = ("grid", "random", "list", "adaptive")
_GOALS = {"minimize": "minimize", "maximize": "maximize", "min": "minimize", "max": "maximize"}
_WHEN = ("ok", "any", "notok")

# LaunchResources' fields (server/routes/launch.py) with its bounds; the tests check they agree.
# ("int", low, high), ("float", low exclusive, high), ("str", max length)
_RESOURCE_RULES: dict[str, tuple[str, float, float]] = {
    "partition": ("str", 0, 200),
    "nodes": ("int", 1, 100_000),
    "ntasks_per_node": ("int", 1, 100_000),
    "cpus_per_task": ("int", 1, 100_000),
    "gpus_per_node": ("int", 0, 1024),
    "mem_gb": ("float", 0, 1_000_000),
    "time_limit_min": ("int", 1, 10_000_000),
    "account": ("str", 0, 200),
    "qos": ("str", 0, 200),
}
_RESOURCE_KEYS = (*_RESOURCE_RULES, "mem", "time")


# --------------------------------------------------------------------------- YAML reading


class _AliasRefused(yaml.composer.ComposerError):  # type: ignore[misc]
    pass


class _Resolver(yaml.resolver.Resolver):  # type: ignore[misc]
    """YAML 1.1's implicit types (PyYAML's SafeLoader) but ``1e-5`` is a float and nothing is
    a base-60 number."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    _FLOAT_TAG,
    re.compile(
        r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class _Composer(yaml.composer.Composer):  # type: ignore[misc]
    """PyYAML's composer (node tree with marks), refusing aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _AliasRefused(
                None, None, "aliases (*name) are not supported in specs: write the value out", mark
            )
        return super().compose_node(parent, index)


class _PyLoader(_Composer, _Resolver, yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader (pure Python) with our composer and resolver."""


_Loader: Any = _PyLoader
if getattr(yaml, "__with_libyaml__", False):  # libyaml parses about 4 times faster

    class _CLoader(_Composer, _Resolver, yaml.CSafeLoader):  # type: ignore[misc]
        """libyaml's parser (its events) with our composer and resolver."""

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)  # the parser, constructor and resolver
            yaml.composer.Composer.__init__(self)

    _Loader = _CLoader


def _line(node: Any) -> int:
    return int(node.start_mark.line) + 1


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    """A short rendering of a bad value for messages."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(node: Any) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a scalar"


def _suggest(word: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Map:
    """One YAML mapping's entries by key, with its node and path."""

    def __init__(self, doc: _Doc, node: Any, path: str, items: dict[str, tuple[Any, Any]]) -> None:
        self.doc = doc
        self.node = node
        self.path = path
        self.items = items

    def path_of(self, key: str) -> str:
        return _join(self.path, key)

    def get(self, key: str) -> Any | None:
        entry = self.items.get(key)
        return entry[1] if entry is not None else None

    def key_node(self, key: str) -> Any:
        return self.items[key][0]

    def require(self, key: str, why: str = "", at: Any = None) -> Any:
        """The key's value node; missing, an error at ``at`` (default: this mapping)."""
        node = self.get(key)
        if node is None:
            self.doc.fail(at if at is not None else self.node, self.path_of(key), f"is required{why}")
        return node

    def only(self, allowed: Sequence[str]) -> None:
        for key, (key_node, _) in self.items.items():
            if key not in allowed:
                self.doc.fail(
                    key_node,
                    self.path_of(key),
                    f"unknown key {key!r}{_suggest(key, allowed)}; allowed: {', '.join(allowed)}",
                )


class _Doc:
    """A composed spec and the typed readers that fail with its source, line and path."""

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        if not isinstance(text, str):
            raise InvalidInput(f"{source}: a spec is text, got {type(text).__name__}")
        if len(text) > MAX_SPEC_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SPEC_BYTES:
            raise PayloadTooLarge(f"{source}: the spec is larger than 1 MiB ({MAX_SPEC_BYTES} bytes)")
        try:
            self.loader = _Loader(text)
            self.root = self.loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = self._clamp(mark.line + 1 if mark is not None else 1, text)
            problem = exc.problem or exc.context or "unreadable"
            kind = "" if isinstance(exc, _AliasRefused) else "YAML syntax: "
            raise InvalidInput(f"{source} line {line}: {kind}{problem}") from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow
            code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
            line = text.count("\n", 0, max(text.find(chr(code)), 0)) + 1
            rule = f"YAML syntax: {exc.reason} (character #x{code:04x})"
            raise InvalidInput(f"{source} line {line}: {rule}") from None
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{source}: YAML syntax: {exc}") from None
        except UnicodeError:
            found = re.search("[\ud800-\udfff]", text)
            line = text.count("\n", 0, found.start()) + 1 if found else 1
            raise InvalidInput(
                f"{source} line {line}: the spec is not valid text (an unpaired surrogate)"
            ) from None
        except RecursionError:
            raise InvalidInput(f"{source}: the spec nests too deeply") from None

    @staticmethod
    def _clamp(line: int, text: str) -> int:
        """A line number within the text (parsers report the end of input one line on)."""
        lines = text.count("\n") + (0 if text.endswith("\n") else 1)
        return max(1, min(line, lines))

    def fail(self, node: Any, path: str, rule: str) -> NoReturn:
        line = _line(node) if node is not None else 1
        if path:
            raise InvalidInput(f"{self.source} line {line}: {path}: {rule}", field=path)
        raise InvalidInput(f"{self.source} line {line}: {rule}")

    # -- collections

    def top(self, what: str) -> _Map:
        if self.root is None:
            raise InvalidInput(f"{self.source} line 1: the spec is empty; a {what} spec is a mapping")
        if not isinstance(self.root, yaml.MappingNode):
            self.fail(
                self.root, "", f"the top level must be a mapping (key: value lines), got {_kind(self.root)}"
            )
        return self.mapping(self.root, "")

    def mapping(self, node: Any, path: str, what: str = "a mapping") -> _Map:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"must be {what}, got {self._describe(node)}")
        if node.tag != _MAP_TAG:
            self.fail(node, path, f"unsupported tag {node.tag!r}")
        items: dict[str, tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.fail(
                    key_node, _join(path, "<<"), "merge keys (<<) are not supported: write the keys out"
                )
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, path, f"keys must be plain strings, got {_kind(key_node)}")
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                self.fail(key_node, path, f"keys must be strings, got {_show(key)} (quote it)")
            if key in items:
                first = _line(items[key][0])
                self.fail(key_node, _join(path, key), f"duplicate key {key!r} (first on line {first})")
            items[key] = (key_node, value_node)
        return _Map(self, node, path, items)

    def sequence(self, node: Any, path: str, what: str = "a list") -> list[Any]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"must be {what}, got {self._describe(node)}")
        if node.tag != _SEQ_TAG:
            self.fail(node, path, f"unsupported tag {node.tag!r}")
        return list(node.value)

    # -- scalars

    def scalar(self, node: Any, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"must be a single value, got {_kind(node)}")
        try:
            return self.loader.construct_object(node)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            self.fail(node, path, f"unreadable value: {problem}")

    def _describe(self, node: Any) -> str:
        if not isinstance(node, yaml.ScalarNode):
            return _kind(node)
        try:
            return _show(self.loader.construct_object(node))
        except yaml.YAMLError:
            return repr(node.value)

    def string(self, node: Any, path: str, *, max_len: int = 200, empty: bool = False) -> str:
        value = self.scalar(node, path)
        if not isinstance(value, str):
            hint = f' (quote it: "{node.value}")' if value is not None else ""
            self.fail(node, path, f"must be a string, got {_show(value)}{hint}")
        if not value and not empty:
            self.fail(node, path, "must not be empty")
        if len(value) > max_len:
            self.fail(node, path, f"must be at most {max_len} characters, got {len(value)}")
        return value

    def job_name(self, node: Any, path: str) -> str:
        value = self.string(node, path, max_len=1000)
        if not _JOB_NAME_RE.fullmatch(value):
            self.fail(
                node, path, f"must be 1-64 letters, digits and _.+:@=- (a Slurm job name), got {_show(value)}"
            )
        return value

    def integer(self, node: Any, path: str, low: int, high: int) -> int:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, path, f"must be a whole number from {low} to {high}, got {_show(value)}")
        if not low <= value <= high:
            self.fail(node, path, f"must be from {low} to {high}, got {value}")
        return value

    def number(self, node: Any, path: str) -> int | float:
        value = self.scalar(node, path)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(node, path, f"must be a number, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, path, f"must be a finite number, got {value}")
        return value

    def boolean(self, node: Any, path: str) -> bool:
        value = self.scalar(node, path)
        if not isinstance(value, bool):
            self.fail(node, path, f"must be true or false, got {_show(value)}")
        return value

    def choice(self, node: Any, path: str, options: Sequence[str]) -> str:
        value = self.scalar(node, path)
        if value not in options or not isinstance(value, str):
            self.fail(node, path, f"must be one of {', '.join(options)}, got {_show(value)}")
        return value

    def param_value(self, node: Any, path: str) -> str | int | float | bool:
        """A parameter's value: a string, whole number, finite float or boolean."""
        value = self.scalar(node, path)
        if not isinstance(value, str | int | float):  # bool is an int
            self.fail(node, path, f"must be a string, number or boolean, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(node, path, f"must be a finite number, got {value}")
        return value

    # -- shared keys

    def optional_string(self, m: _Map, key: str, max_len: int = 200) -> str | None:
        node = m.get(key)
        return None if node is None else self.string(node, m.path_of(key), max_len=max_len)

    def command(self, node: Any, path: str) -> tuple[str, ...]:
        if isinstance(node, yaml.ScalarNode):
            text = self.string(node, path, max_len=100_000)
            try:
                argv = shlex.split(text)
            except ValueError as exc:
                self.fail(node, path, f"cannot split the command like a shell would: {exc}")
            if not argv:
                self.fail(node, path, "must not be empty")
            return tuple(argv)
        items = self.sequence(node, path, "a list of strings or one command string")
        if not items:
            self.fail(node, path, "must not be empty")
        if len(items) > 10_000:
            self.fail(node, path, f"must have at most 10000 items, got {len(items)}")
        argv = [
            self.string(item, f"{path}[{i}]", max_len=100_000, empty=i > 0) for i, item in enumerate(items)
        ]
        return tuple(argv)

    def env(self, m: _Map) -> dict[str, str]:
        node = m.get("env")
        if node is None:
            return {}
        env = self.mapping(node, m.path_of("env"), "a mapping NAME: value")
        out: dict[str, str] = {}
        for key, (key_node, value_node) in env.items.items():
            path = env.path_of(key)
            if not _ENV_RE.fullmatch(key):
                self.fail(key_node, path, f"environment variable names look like MY_VAR, got {key!r}")
            value = self.scalar(value_node, path)
            if value is None or not isinstance(value, str | int | float):
                self.fail(value_node, path, f"must be a string, number or boolean, got {_show(value)}")
            out[key] = format_value(value)
            if "\x00" in out[key]:
                self.fail(value_node, path, "must not contain NUL characters")
        return out

    def tags(self, m: _Map) -> tuple[str, ...]:
        node = m.get("tags")
        if node is None:
            return ()
        items = self.sequence(node, m.path_of("tags"), "a list of strings")
        if len(items) > 100:
            self.fail(node, m.path_of("tags"), f"at most 100 tags, got {len(items)}")
        return tuple(self.string(item, f"{m.path_of('tags')}[{i}]") for i, item in enumerate(items))

    def resources(self, m: _Map) -> dict[str, Any]:
        node = m.get("resources")
        if node is None:
            return {}
        res = self.mapping(node, m.path_of("resources"))
        res.only(_RESOURCE_KEYS)
        for short, full in (("mem", "mem_gb"), ("time", "time_limit_min")):
            if short in res.items and full in res.items:
                self.fail(res.key_node(full), res.path_of(full), f"give {short} or {full}, not both")
        out: dict[str, Any] = {}
        for key, (_, value_node) in res.items.items():
            path = res.path_of(key)
            if key == "mem":
                value = self.scalar(value_node, path)
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    self.fail(value_node, path, f"must be a size like 500M, 4G or 1T, got {_show(value)}")
                try:
                    gb = parse_mem_gb(str(value), field=path)
                except InvalidInput as exc:
                    self.fail(value_node, path, exc.message.removeprefix(f"{path} "))
                if not 0 < gb <= _RESOURCE_RULES["mem_gb"][2]:
                    self.fail(
                        value_node, path, f"must be more than 0 and at most 1000000G, got {_show(value)}"
                    )
                out["mem_gb"] = gb
            elif key == "time":
                value = self.scalar(value_node, path)
                if isinstance(value, bool) or not isinstance(value, str | int):
                    self.fail(
                        value_node, path, f"must be minutes or a Slurm time like 1:30:00, got {_show(value)}"
                    )
                try:
                    minutes = parse_time_limit(str(value), field=path)
                except InvalidInput as exc:
                    self.fail(value_node, path, exc.message.removeprefix(f"{path} "))
                if minutes is not None:  # 0, INFINITE, UNLIMITED: no limit of ours
                    if minutes > _RESOURCE_RULES["time_limit_min"][2]:
                        self.fail(value_node, path, f"must be at most 10000000 minutes, got {_show(value)}")
                    out["time_limit_min"] = minutes
            else:
                kind, low, high = _RESOURCE_RULES[key]
                if kind == "str":
                    out[key] = self.string(value_node, path, max_len=int(high))
                elif kind == "int":
                    out[key] = self.integer(value_node, path, int(low), int(high))
                else:
                    number = self.number(value_node, path)
                    if not low < number <= high:
                        self.fail(
                            value_node,
                            path,
                            f"must be more than {int(low)} and at most {int(high)}, got {number}",
                        )
                    out[key] = float(number)
        return out


# --------------------------------------------------------------------------- templates


def _template_parts(item: str) -> tuple[list[tuple[bool, str]], str | None]:
    """Split a command item into (is placeholder, text) parts; ``{{``/``}}`` are literal
    braces. The second value is the first problem found (an unmatched brace), or None."""
    parts: list[tuple[bool, str]] = []
    buf: list[str] = []
    problem: str | None = None
    i = 0
    while i < len(item):
        c = item[i]
        if c == "{" and item.startswith("{{", i):
            buf.append("{")
            i += 2
        elif c == "}" and item.startswith("}}", i):
            buf.append("}")
            i += 2
        elif c == "{":
            end = item.find("}", i + 1)
            if end < 0 or "{" in item[i + 1 : end]:
                problem = problem or "unmatched '{' (write {{ for a literal brace)"
                buf.append(c)
                i += 1
                continue
            if buf:
                parts.append((False, "".join(buf)))
                buf = []
            parts.append((True, item[i + 1 : end]))
            i = end + 1
        elif c == "}":
            problem = problem or "unmatched '}' (write }} for a literal brace)"
            buf.append(c)
            i += 1
        else:
            buf.append(c)
            i += 1
    if buf:
        parts.append((False, "".join(buf)))
    return parts, problem


def _uses_placeholders(command: Sequence[str], names: Sequence[str]) -> bool:
    known = set(names)
    return any(is_name and text in known for item in command for is_name, text in _template_parts(item)[0])


def _check_template(doc: _Doc, node: Any, command: tuple[str, ...], names: Sequence[str]) -> None:
    """With args template: every placeholder names a parameter, every parameter is used."""
    items = list(node.value) if isinstance(node, yaml.SequenceNode) else None
    used: set[str] = set()
    for i, item in enumerate(command):
        where = items[i] if items is not None else node
        path = f"command[{i}]" if items is not None else "command"
        parts, problem = _template_parts(item)
        if problem:
            doc.fail(where, path, f"{problem} in {item!r}")
        for is_name, text in parts:
            if not is_name:
                continue
            if text not in names:
                doc.fail(
                    where,
                    path,
                    f"placeholder {{{text}}} names no parameter{_suggest(text, names)}; "
                    f"parameters: {', '.join(names)} (write {{{{ and }}}} for literal braces)",
                )
            used.add(text)
    unused = [n for n in names if n not in used]
    if unused:
        doc.fail(
            node,
            "command",
            f"args is template but parameter {unused[0]!r} appears in no {{placeholder}}: its trials "
            f"would run the same command (add {{{unused[0]}}} or use args: append)",
        )


# --------------------------------------------------------------------------- sweeps


def _param(doc: _Doc, name: str, node: Any, path: str, method: str) -> Param:
    line = _line(node)
    if isinstance(node, yaml.SequenceNode):
        return Param(name=name, values=_values(doc, node, path), line=line)
    if not isinstance(node, yaml.MappingNode):
        doc.fail(
            node,
            path,
            f"must be a list of values, {{values: [...]}} or a range {{min: ..., max: ...}}, got "
            f"{doc._describe(node)} (for one fixed value write [{node.value}])",
        )
    m = doc.mapping(node, path)
    m.only(("values", "min", "max", "log", "int"))
    if "values" in m.items:
        for key in ("min", "max", "log", "int"):
            if key in m.items:
                doc.fail(m.key_node(key), m.path_of(key), "give values or a range (min, max), not both")
        return Param(name=name, values=_values(doc, m.items["values"][1], m.path_of("values")), line=line)
    if method == "grid":
        doc.fail(
            node,
            path,
            "a grid needs values for every parameter; ranges (min, max) are for random and adaptive",
        )
    low_node = m.require("min", " (or give values)")
    high_node = m.require("max", " (or give values)")
    low = doc.number(low_node, m.path_of("min"))
    high = doc.number(high_node, m.path_of("max"))
    log = doc.boolean(m.items["log"][1], m.path_of("log")) if "log" in m.items else False
    integer = doc.boolean(m.items["int"][1], m.path_of("int")) if "int" in m.items else False
    if integer:
        for bound, bound_node, key in ((low, low_node, "min"), (high, high_node, "max")):
            if not float(bound).is_integer():
                doc.fail(bound_node, m.path_of(key), f"an int range needs whole-number bounds, got {bound}")
    if not low < high:
        doc.fail(high_node, m.path_of("max"), f"must be greater than min ({low}), got {high}")
    if log and low <= 0:
        doc.fail(low_node, m.path_of("min"), f"a log range needs min > 0, got {low}")
    return Param(name=name, low=float(low), high=float(high), log=log, integer=integer, line=line)


def _check_param_name(doc: _Doc, node: Any, path: str, name: str) -> None:
    if not _PARAM_RE.fullmatch(name):
        doc.fail(
            node,
            path,
            "parameter names start with a letter or _ and use letters, digits and _.- "
            f"(at most 100 characters), got {name!r}",
        )


def _values(doc: _Doc, node: Any, path: str) -> tuple[Any, ...]:
    items = doc.sequence(node, path, "a list of values")
    if not items:
        doc.fail(node, path, "must list at least one value")
    if len(items) > MAX_COUNT:
        doc.fail(node, path, f"at most {MAX_COUNT} values, got {len(items)}")
    seen: dict[tuple[type, Any], int] = {}
    out: list[Any] = []
    for i, item in enumerate(items):
        value = doc.param_value(item, f"{path}[{i}]")
        key = (type(value), value)
        if key in seen:
            doc.fail(item, f"{path}[{i}]", f"duplicate value {_show(value)} (also item {seen[key]})")
        seen[key] = i
        out.append(value)
    return tuple(out)


def _parameters(doc: _Doc, top: _Map, method: str, method_node: Any) -> tuple[Param, ...]:
    node = top.get("parameters")
    if method == "list":
        if node is not None:
            doc.fail(
                top.key_node("parameters"),
                "parameters",
                "not used by method list: its trials give the params",
            )
        return ()
    if node is None:
        doc.fail(method_node, "parameters", f"is required for method {method}")
    m = doc.mapping(node, "parameters", "a mapping of parameter names to their values or ranges")
    if not m.items:
        doc.fail(node, "parameters", "must name at least one parameter")
    params: list[Param] = []
    for name, (key_node, value_node) in m.items.items():
        _check_param_name(doc, key_node, m.path_of(name), name)
        params.append(_param(doc, name, value_node, m.path_of(name), method))
    if method == "grid":
        size = math.prod(len(p.values or ()) for p in params)
        if size > MAX_COUNT:
            shape = " x ".join(str(len(p.values or ())) for p in params)
            doc.fail(
                node,
                "parameters",
                f"the grid has {shape} = {size} trials; at most {MAX_COUNT} (one Slurm array)",
            )
    return tuple(params)


def _trials(
    doc: _Doc, top: _Map, method: str, method_node: Any
) -> tuple[tuple[dict[str, Any], ...], tuple[Param, ...]]:
    node = top.get("trials")
    if method != "list":
        if node is not None:
            doc.fail(
                top.key_node("trials"), "trials", f"only for method list (this sweep's method is {method})"
            )
        return (), ()
    if node is None:
        doc.fail(method_node, "trials", "is required for method list (a list of {param: value} mappings)")
    items = doc.sequence(node, "trials", "a list of {param: value} mappings")
    if not 1 <= len(items) <= MAX_COUNT:
        doc.fail(node, "trials", f"must list 1 to {MAX_COUNT} trials, got {len(items)}")
    trials: list[dict[str, Any]] = []
    names: list[str] = []
    first_lines: dict[str, int] = {}
    for i, item in enumerate(items):
        path = f"trials[{i}]"
        m = doc.mapping(item, path, "a mapping {param: value}")
        if not m.items:
            doc.fail(item, path, "must give at least one parameter")
        if i == 0:
            for name, (key_node, _) in m.items.items():
                _check_param_name(doc, key_node, m.path_of(name), name)
                names.append(name)
                first_lines[name] = _line(key_node)
        else:
            for name, (key_node, _) in m.items.items():
                if name not in first_lines:
                    doc.fail(
                        key_node,
                        m.path_of(name),
                        f"not in trials[0]: every trial gives the same keys ({', '.join(names)})",
                    )
            missing = [n for n in names if n not in m.items]
            if missing:
                doc.fail(
                    item, path, f"misses {missing[0]!r}: every trial gives the same keys ({', '.join(names)})"
                )
        values = {name: doc.param_value(m.items[name][1], m.path_of(name)) for name in names}
        trials.append(values)
    params = []
    for name in names:
        distinct: dict[tuple[type, Any], Any] = {}
        for trial in trials:
            distinct.setdefault((type(trial[name]), trial[name]), trial[name])
        params.append(Param(name=name, values=tuple(distinct.values()), line=first_lines[name]))
    return tuple(trials), tuple(params)


def _metric(doc: _Doc, top: _Map) -> Metric | None:
    node = top.get("metric")
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        return Metric(name=_metric_name(doc, node, "metric"))
    m = doc.mapping(node, "metric", "a metric name or {name: ..., goal: minimize|maximize}")
    m.only(("name", "goal"))
    name = _metric_name(doc, m.require("name"), "metric.name")
    goal = "minimize"
    if "goal" in m.items:
        goal = _GOALS[doc.choice(m.items["goal"][1], "metric.goal", tuple(_GOALS))]
    return Metric(name=name, goal="maximize" if goal == "maximize" else "minimize")


def _metric_name(doc: _Doc, node: Any, path: str) -> str:
    name = doc.string(node, path, max_len=250)
    if _CONTROL_RE.search(name):
        doc.fail(node, path, "must not contain control characters")
    return name


def _early_stop(doc: _Doc, top: _Map, metric: Metric | None) -> EarlyStop | None:
    node = top.get("early_stop")
    if node is None:
        return None
    m = doc.mapping(node, "early_stop", "a mapping {rule: median|halving, ...}")
    m.only(("rule", "min_step", "min_trials", "interval"))
    if metric is None:
        doc.fail(top.key_node("early_stop"), "early_stop", "needs metric (the value trials are judged by)")
    rule = (
        doc.choice(m.items["rule"][1], "early_stop.rule", ("median", "halving"))
        if "rule" in m.items
        else "median"
    )
    min_step = (
        doc.integer(m.items["min_step"][1], "early_stop.min_step", 0, 10**9) if "min_step" in m.items else 0
    )
    min_trials = (
        doc.integer(m.items["min_trials"][1], "early_stop.min_trials", 1, MAX_COUNT)
        if "min_trials" in m.items
        else 1
    )
    interval = (
        doc.integer(m.items["interval"][1], "early_stop.interval", 1, 10**9) if "interval" in m.items else 1
    )
    return EarlyStop(
        rule="halving" if rule == "halving" else "median",
        min_step=min_step,
        min_trials=min_trials,
        interval=interval,
    )


def parse_sweep(text: str, *, source: str = "sweep.yaml") -> SweepSpec:
    """Read and check a sweep spec; every error is an ``InvalidInput`` naming the line."""
    doc = _Doc(text, source)
    top = doc.top("sweep")
    top.only(_SWEEP_KEYS)
    name = doc.job_name(top.require("name"), "name")
    method_node = top.require("method")
    method = doc.choice(method_node, "method", _METHODS)
    command_node = top.require("command")
    command = doc.command(command_node, "command")

    params = _parameters(doc, top, method, method_node)
    trials, list_params = _trials(doc, top, method, method_node)
    if method == "list":
        params = list_params
    names = [p.name for p in params]

    count: int | None = None
    if method in ("random", "adaptive"):
        count = doc.integer(
            top.require("count", f" for method {method} (how many trials)", method_node),
            "count",
            1,
            MAX_COUNT,
        )
    elif "count" in top.items:
        what = "the grid's size" if method == "grid" else "the number of trials"
        doc.fail(
            top.key_node("count"), "count", f"only for random and adaptive (a {method} sweep runs {what})"
        )
    seed = 0
    if "seed" in top.items:
        if method not in ("random", "adaptive"):
            doc.fail(
                top.key_node("seed"), "seed", f"only for random and adaptive (a {method} sweep draws nothing)"
            )
        seed = doc.integer(top.items["seed"][1], "seed", 0, MAX_SEED)
    sampler = "tpe"
    if "sampler" in top.items:
        if method != "adaptive":
            doc.fail(top.key_node("sampler"), "sampler", f"only for method adaptive, not {method}")
        sampler = doc.choice(top.items["sampler"][1], "sampler", ("tpe", "random"))
    concurrency = None
    if "concurrency" in top.items:
        concurrency = doc.integer(top.items["concurrency"][1], "concurrency", 1, MAX_COUNT)

    metric = _metric(doc, top)
    if method == "adaptive" and metric is None:
        doc.fail(method_node, "metric", "is required for method adaptive (the value it optimizes)")
    early_stop = _early_stop(doc, top, metric)

    if "args" in top.items:
        args = doc.choice(top.items["args"][1], "args", ("append", "template"))
    else:
        args = "template" if _uses_placeholders(command, names) else "append"
    if args == "template":
        _check_template(doc, command_node, command, names)

    requeue = doc.boolean(top.items["requeue"][1], "requeue") if "requeue" in top.items else None
    max_restarts = (
        doc.integer(top.items["max_restarts"][1], "max_restarts", 0, 1000)
        if "max_restarts" in top.items
        else None
    )
    return SweepSpec(
        name=name,
        command=command,
        method=cast(Method, method),
        parameters=params,
        trials=trials,
        count=count,
        seed=seed,
        concurrency=concurrency,
        metric=metric,
        early_stop=early_stop,
        sampler="random" if sampler == "random" else "tpe",
        args="template" if args == "template" else "append",
        project=doc.optional_string(top, "project"),
        experiment=doc.optional_string(top, "experiment"),
        workdir=doc.optional_string(top, "workdir", 4096),
        output_dir=doc.optional_string(top, "output_dir", 4096),
        resources=doc.resources(top),
        env=doc.env(top),
        tags=doc.tags(top),
        requeue=requeue,
        max_restarts=max_restarts,
    )


# --------------------------------------------------------------------------- pipelines


def _after(doc: _Doc, node: Any, path: str) -> list[tuple[str, str, Any, str]]:
    """(step, when, node, field) per entry of a step's ``after``."""
    entries: list[tuple[str, str, Any, str]] = []
    if isinstance(node, yaml.MappingNode):
        m = doc.mapping(node, path)
        for name, (key_node, value_node) in m.items.items():
            when = doc.choice(value_node, m.path_of(name), _WHEN)
            entries.append((name, when, key_node, m.path_of(name)))
        return entries
    items = (
        [node]
        if isinstance(node, yaml.ScalarNode)
        else doc.sequence(node, path, "a step name or a list of them")
    )
    for i, item in enumerate(items):
        field = path if isinstance(node, yaml.ScalarNode) else f"{path}[{i}]"
        text = doc.string(item, field, max_len=100)
        name, sep, when = text.rpartition(":")
        if not sep:
            name, when = text, "ok"
        if when not in _WHEN:
            doc.fail(item, field, f"entries look like STEP or STEP:ok|any|notok, got {text!r}")
        entries.append((name, when, item, field))
    return entries


def parse_pipeline(text: str, *, source: str = "pipeline.yaml") -> PipelineSpec:
    """Read and check a pipeline spec; its steps come out in a dependency order."""
    doc = _Doc(text, source)
    top = doc.top("pipeline")
    top.only(_PIPELINE_KEYS)
    name = doc.job_name(top.require("name"), "name")
    steps_node = top.require("steps")
    steps = doc.mapping(steps_node, "steps", "a mapping of step names to steps")
    if not 1 <= len(steps.items) <= MAX_STEPS:
        doc.fail(steps_node, "steps", f"must have 1 to {MAX_STEPS} steps, got {len(steps.items)}")
    base_resources = doc.resources(top)
    base_env = doc.env(top)

    parsed: dict[str, Step] = {}
    after_nodes: dict[tuple[str, str], tuple[Any, str]] = {}  # (step, earlier) -> (node, field)
    for step_name, (key_node, value_node) in steps.items.items():
        path = steps.path_of(step_name)
        if not _STEP_RE.fullmatch(step_name):
            doc.fail(key_node, path, f"step names use 1-64 letters, digits and _.-, got {step_name!r}")
        m = doc.mapping(value_node, path, "a mapping {command: ..., after: ...}")
        m.only(_STEP_KEYS)
        command = doc.command(m.require("command"), m.path_of("command"))
        after: list[tuple[str, str]] = []
        if "after" in m.items:
            others = [n for n in steps.items if n != step_name]
            for earlier, when, node, field in _after(doc, m.items["after"][1], m.path_of("after")):
                if earlier == step_name:
                    doc.fail(node, field, f"step {step_name!r} cannot wait for itself")
                if earlier not in steps.items:
                    doc.fail(
                        node,
                        field,
                        f"unknown step {earlier!r}{_suggest(earlier, others)}; "
                        f"steps: {', '.join(steps.items)}",
                    )
                if (step_name, earlier) in after_nodes:
                    doc.fail(node, field, f"step {earlier!r} is listed twice")
                after_nodes[(step_name, earlier)] = (node, field)
                after.append((earlier, when))
        parsed[step_name] = Step(
            name=step_name,
            command=command,
            after=tuple((earlier, cast(When, when)) for earlier, when in after),
            resources={**base_resources, **doc.resources(m)},
            env={**base_env, **doc.env(m)},
            line=_line(key_node),
        )

    ordered = _topological(parsed)
    if len(ordered) < len(parsed):
        cycle = _cycle(parsed, {s.name for s in ordered})
        node, field = after_nodes[(cycle[0], cycle[1])]
        doc.fail(
            node,
            field,
            f"the steps wait for each other in a cycle: {' -> '.join(cycle)} (each waits for the next)",
        )
    return PipelineSpec(
        name=name,
        steps=tuple(ordered),
        project=doc.optional_string(top, "project"),
        experiment=doc.optional_string(top, "experiment"),
        workdir=doc.optional_string(top, "workdir", 4096),
        output_dir=doc.optional_string(top, "output_dir", 4096),
        resources=base_resources,
        env=base_env,
        tags=doc.tags(top),
    )


def _topological(steps: Mapping[str, Step]) -> list[Step]:
    """Steps in dependency order, each time taking the first written step that is ready; the
    steps of a cycle (and those waiting on one) are left out."""
    placed: set[str] = set()
    ordered: list[Step] = []
    pending = list(steps.values())
    while pending:
        ready = next((s for s in pending if all(e in placed for e, _ in s.after)), None)
        if ready is None:
            break
        pending.remove(ready)
        placed.add(ready.name)
        ordered.append(ready)
    return ordered


def _cycle(steps: Mapping[str, Step], placed: set[str]) -> list[str]:
    """A cycle among the unplaced steps (every one waits for another unplaced one), starting
    and ending at its first written step: ``[a, b, a]``."""
    name = next(n for n in steps if n not in placed)
    path: list[str] = []
    while name not in path:
        path.append(name)
        name = next(e for e, _ in steps[name].after if e not in placed)
    cycle = path[path.index(name) :]
    order = list(steps)
    first = min(range(len(cycle)), key=lambda i: order.index(cycle[i]))
    cycle = cycle[first:] + cycle[:first]
    return [*cycle, cycle[0]]


# --------------------------------------------------------------------------- trials


def trial_count(spec: SweepSpec) -> int | None:
    """How many trials the sweep runs: the grid's size, the list's length, or ``count``."""
    if spec.method == "grid":
        return math.prod(len(p.values or ()) for p in spec.parameters)
    if spec.method == "list":
        return len(spec.trials)
    return spec.count


def _draw(param: Param, rng: random.Random) -> Any:
    if param.values is not None:
        return rng.choice(param.values)
    low, high = float(param.low or 0.0), float(param.high or 0.0)
    if param.integer:
        if param.log:  # log-uniform over [low - 0.5, high + 0.5), rounded: each whole number its share
            value = round(math.exp(rng.uniform(math.log(low - 0.5), math.log(high + 0.5))))
            return int(min(max(value, low), high))
        return rng.randint(int(low), int(high))
    if param.log:
        return min(max(math.exp(rng.uniform(math.log(low), math.log(high))), low), high)
    return rng.uniform(low, high)


def expand(spec: SweepSpec, start: int = 0, count: int | None = None) -> list[dict[str, Any]]:
    """The params of trials ``start`` .. ``start + count - 1`` (count None: to the end).

    Grid: the cartesian product in the order the parameters are written, the last varying
    fastest. List: the spec's trials. Random: trial ``i`` draws from ``random.Random(f"{seed}:{i}")``
    alone, so the same seed gives the same trials and trials past ``count`` (an extended
    sweep) continue the sequence. Grid and list stop at their last trial; adaptive sweeps
    have no params before Optuna asks for them (ValueError).
    """
    if start < 0 or (count is not None and count < 0):
        raise ValueError(f"start and count must be >= 0, got {start} and {count}")
    if spec.method == "adaptive":
        raise ValueError("an adaptive sweep's params come from its sampler as trials finish, not from expand")
    total = trial_count(spec) or 0
    end = total if count is None else start + count
    if spec.method == "random":
        return [
            {p.name: _draw(p, rng) for p in spec.parameters}
            for rng in (random.Random(f"{spec.seed}:{i}") for i in range(start, end))
        ]
    end = min(end, total)
    if start >= end:
        return []
    if spec.method == "list":
        return [dict(trial) for trial in spec.trials[start:end]]
    axes = [p.values or () for p in spec.parameters]
    names = [p.name for p in spec.parameters]
    product = itertools.islice(itertools.product(*axes), start, end)
    return [dict(zip(names, combo, strict=True)) for combo in product]


def format_value(value: Any) -> str:
    """A param value as a command-line word: strings as they are, ``true``/``false``,
    ``null``, the shortest float that reads back the same (``0.001``, ``1e-05``), lists and
    mappings as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return str(value)


def trial_argv(spec: SweepSpec, params: Mapping[str, Any]) -> list[str]:
    """The command of the trial with ``params``: ``--name=value`` words appended in parameter
    order (args append), or each ``{name}`` in the command replaced (args template)."""
    if spec.args == "template":
        argv: list[str] = []
        for item in spec.command:
            parts, _ = _template_parts(item)
            argv.append("".join(format_value(params[text]) if is_name else text for is_name, text in parts))
        return argv
    order = [p.name for p in spec.parameters if p.name in params]
    order += [name for name in params if name not in order]
    return [*spec.command, *(f"--{name}={format_value(params[name])}" for name in order)]
