"""Adaptive sampling, early stopping and parameter importance for sweeps, with Optuna.

Stateless: the server keeps every trial of a sweep in its database (params = the run's config,
the metric's series = what the run logged) and hands the whole history to each function here.
Each call rebuilds a throw-away in-memory Optuna study from that history (``create_study`` +
``add_trial(create_trial(...))``), decides, and forgets it. No Optuna storage is shared between
jobs, threads or server restarts, and a call repeated with the same history gives the same
answer (samplers are seeded from the sweep's seed and the trial's index).

How a :class:`TrialRecord` enters a study:

====================  ===========================================================
``complete``          COMPLETE with its value; FAIL when the value is None/nan/inf
``pruned``            PRUNED (its last value tells TPE how far it got)
``failed``            FAIL
``running``           RUNNING with its params (TPE's constant liar keeps new
                      trials away from them)
``waiting``           RUNNING when it has params already, else left out
====================  ===========================================================

Only the sweep's own parameters go in (a run's config may hold more keys); a value outside
its parameter's range or choices is left out of that trial. Non-finite intermediate values
(nan, inf) are skipped everywhere. Of the series, a study gets only what its sampler or pruner
reads (a pruned trial's last value; the values at the judged step; the rung values), so a
call stays fast with hundreds of trials of thousands of steps each.

Optuna (and numpy, which it needs) is imported inside the functions that use it, so this
module imports without it; :func:`importance` and :func:`best` are plain Python.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from runyard.errors import InvalidInput
from runyard.sweeps.model import Param, SweepSpec

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

__all__ = [
    "HALVING_REDUCTION_FACTOR",
    "TrialRecord",
    "best",
    "distributions",
    "importance",
    "prune_reason",
    "suggest",
]

TrialState = Literal["waiting", "running", "complete", "pruned", "failed"]

# Successive halving keeps the best 1 in this many trials at each rung (Optuna's default);
# rungs sit at steps min_step, min_step*4, min_step*16, ...
HALVING_REDUCTION_FACTOR = 4

_MISSING_OPTUNA = "adaptive sweeps and early_stop need Optuna on the server: pip install 'runyard[server]'"


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a sweep as the server knows it."""

    index: int  # trial number in the sweep (0, 1, ...)
    run_id: str
    params: Mapping[str, Any]  # {} for an adaptive trial not asked yet
    state: TrialState
    value: float | None = None  # the metric's final value (complete trials)
    intermediate: Mapping[int, float] = field(default_factory=dict)  # step -> metric value as logged


# -- Optuna, lazily


def _require_optuna() -> None:
    """Import Optuna (or say how to install it) and keep it quiet; idempotent."""
    try:
        import optuna
    except ImportError as exc:
        raise InvalidInput(_MISSING_OPTUNA, field="method") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)


# -- search space


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    """The Optuna distribution of each of the spec's parameters, in the spec's order.

    ``values`` -> CategoricalDistribution of the values; a range -> FloatDistribution(low, high,
    log), or IntDistribution(low, high, log) when ``integer`` (bounds rounded inwards). A range
    Optuna refuses (e.g. a log range from 0) raises InvalidInput naming the parameter.
    """
    _require_optuna()
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, BaseDistribution] = {}
    for p in spec.parameters:
        path = f"parameters.{p.name}"
        try:
            if p.values is not None:
                out[p.name] = CategoricalDistribution(p.values)
            elif p.low is None or p.high is None:
                raise ValueError("a range needs min and max")
            elif p.integer:
                out[p.name] = IntDistribution(math.ceil(p.low), math.floor(p.high), log=p.log)
            else:
                out[p.name] = FloatDistribution(float(p.low), float(p.high), log=p.log)
        except ValueError as exc:
            raise InvalidInput(f"{path}: {exc}", field=path) from exc
    return out


@dataclass(frozen=True)
class _Dim:
    """One parameter inside a rebuilt study. Categorical parameters are stored by the index of
    their choice (CategoricalDistribution(range(n))), so values that compare equal across types
    (1, 1.0, True: all allowed side by side in a spec) never get mixed up."""

    name: str
    dist: BaseDistribution
    choices: tuple[Any, ...] | None  # categorical: the values, in the spec's order


def _dims(spec: SweepSpec, history: Iterable[TrialRecord]) -> list[_Dim]:
    from optuna.distributions import CategoricalDistribution

    params: list[Param] = list(spec.parameters)
    if not params and spec.trials:  # a list spec built without its parameters: the seen values
        seen: dict[str, list[Any]] = {name: [] for name in spec.trials[0]}
        for trial in (*spec.trials, *(r.params for r in history)):
            for name, values in seen.items():
                if name in trial and _choice_index(values, trial[name]) is None:
                    values.append(trial[name])
        params = [Param(name=name, values=tuple(values)) for name, values in seen.items()]
    dists = distributions(replace(spec, parameters=tuple(params)))
    return [
        _Dim(p.name, CategoricalDistribution(tuple(range(len(p.values)))), tuple(p.values))
        if p.values is not None
        else _Dim(p.name, dists[p.name], None)
        for p in params
    ]


def _choice_index(choices: Sequence[Any], value: Any) -> int | None:
    """Where ``value`` is among ``choices``: the same type and value first, else equal (a
    config may bring 1.0 back for 1)."""
    for i, choice in enumerate(choices):
        if type(choice) is type(value) and choice == value:
            return i
    for i, choice in enumerate(choices):
        if _is_number(choice) == _is_number(value) and choice == value:
            return i
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _internal_params(
    dims: Sequence[_Dim], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The params and distributions Optuna stores for a trial: those of the sweep's parameters
    that fit the space (others are left out)."""
    from optuna.distributions import FloatDistribution, IntDistribution

    values: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for dim in dims:
        if dim.name not in params:
            continue
        value = params[dim.name]
        if dim.choices is not None:
            index = _choice_index(dim.choices, value)
            if index is None:
                continue
            values[dim.name] = index
        elif isinstance(dim.dist, IntDistribution | FloatDistribution):
            if (
                not _is_number(value)
                or not math.isfinite(value)
                or not dim.dist.low <= value <= dim.dist.high
            ):
                continue
            if isinstance(dim.dist, IntDistribution):
                if not float(value).is_integer():
                    continue
                values[dim.name] = int(value)
            else:
                values[dim.name] = float(value)
        else:  # pragma: no cover - _dims makes no other kind
            continue
        dists[dim.name] = dim.dist
    return values, dists


def _plain(dims: Sequence[_Dim], params: Mapping[str, Any]) -> dict[str, Any]:
    """Optuna's params back as the spec's plain Python values (JSON-ready)."""
    from optuna.distributions import IntDistribution

    out: dict[str, Any] = {}
    for dim in dims:
        value = params[dim.name]
        if dim.choices is not None:
            out[dim.name] = dim.choices[int(value)]
        elif isinstance(dim.dist, IntDistribution):
            out[dim.name] = int(value)
        else:
            out[dim.name] = float(value)
    return out


# -- studies


def _finite(value: float | None) -> bool:
    return value is not None and _is_number(value) and math.isfinite(value)


def _series(intermediate: Mapping[int, float]) -> list[tuple[int, float]]:
    """The finite intermediate values, by step."""
    return sorted(
        (int(s), float(v)) for s, v in intermediate.items() if isinstance(v, float | int) and math.isfinite(v)
    )


def _direction(spec: SweepSpec, what: str) -> Literal["minimize", "maximize"]:
    if spec.metric is None:
        raise InvalidInput(f"{what} needs a metric to optimize", field="metric")
    return spec.metric.goal


def _frozen(
    record: TrialRecord,
    dims: Sequence[_Dim],
    *,
    intermediate: Mapping[int, float],
    system_attrs: Mapping[str, Any] | None = None,
    running: bool = False,
) -> optuna.trial.FrozenTrial | None:
    """The record as an Optuna trial (None: leave it out of the study)."""
    import optuna
    from optuna.trial import TrialState as S

    params, dists = _internal_params(dims, record.params)
    value: float | None = None
    if running or record.state == "running":
        state = S.RUNNING
    elif record.state == "waiting":
        if not params:
            return None
        state = S.RUNNING  # asked already, its job not started: as good as running for a sampler
    elif record.state == "complete" and _finite(record.value):
        state, value = S.COMPLETE, record.value
    elif record.state == "pruned":
        state = S.PRUNED
    else:  # failed, or complete without a finite value
        state = S.FAIL
    return optuna.trial.create_trial(
        state=state,
        value=value,
        params=params,
        distributions=dists,
        intermediate_values=dict(intermediate),
        system_attrs=dict(system_attrs or {}),
    )


def _pruning_study(
    direction: Literal["minimize", "maximize"], pruner: optuna.pruners.BasePruner
) -> optuna.Study:
    import optuna

    # The sampler never runs here; a random one is the cheapest to build.
    return optuna.create_study(
        direction=direction, sampler=optuna.samplers.RandomSampler(seed=0), pruner=pruner
    )


def _sampler_seed(seed: int, index: int) -> int:
    digest = hashlib.sha256(f"runyard-sweep:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


# -- the API


def suggest(spec: SweepSpec, history: Sequence[TrialRecord], index: int) -> dict[str, Any]:
    """The params of adaptive trial ``index``, as plain JSON values.

    The sampler (``spec.sampler``: "tpe" -> TPESampler with constant liar, "random" ->
    RandomSampler) is seeded from (spec.seed, index), and the study holds the history's trials
    in index order, so the same history gives the same answer. Trial ``index`` itself and
    trials without params (not asked yet) are left out of the study.
    """
    direction = _direction(spec, "an adaptive sweep")
    _require_optuna()
    import optuna

    dims = _dims(spec, history)
    seed = _sampler_seed(spec.seed, index)
    sampler: optuna.samplers.BaseSampler
    if spec.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    study = optuna.create_study(direction=direction, sampler=sampler)
    for record in sorted(history, key=lambda r: r.index):
        if record.index == index or not record.params:
            continue
        # TPE reads a pruned trial's last value (how far it got) and no other intermediate value.
        last = _series(record.intermediate)[-1:] if record.state == "pruned" else []
        frozen = _frozen(record, dims, intermediate=dict(last))
        if frozen is not None and frozen.params:
            study.add_trial(frozen)
    trial = study.ask(fixed_distributions={d.name: d.dist for d in dims})
    return _plain(dims, trial.params)


def prune_reason(spec: SweepSpec, history: Sequence[TrialRecord], trial: TrialRecord) -> str | None:
    """None: let ``trial`` go on. Else one sentence saying why it should stop.

    Call it each time the sweep's metric arrives for ``trial`` (its ``intermediate`` holds the
    whole series so far; the history may hold it too: it is left out by index). The verdict is
    Optuna's, with ``spec.early_stop``:

    * ``median``: MedianPruner(n_startup_trials=min_trials, n_warmup_steps=min_step,
      interval_steps=interval). The trial is judged at the first step it logged at or after
      the latest check point (min_step + k * interval), so a batch of steps arriving at once
      does not skip a check, and a repeated call gives the same answer.
    * ``halving``: SuccessiveHalvingPruner(min_resource=max(1, min_step), reduction_factor=
      HALVING_REDUCTION_FACTOR), judged at the highest rung the trial reached, with its value
      at the first step it logged at or after the rung's step; the other trials' rung values
      are rebuilt the same way (Optuna keeps them in trial attributes that a stateless study
      has lost; a pruned trial that logged on for a while after its verdict may so count at a
      later rung than it got to). Like the median rule it waits for ``min_trials`` complete
      trials (Optuna's halving never waits: with fewer than 4 trials at a rung, only the best
      goes on).

    Only what the pruners read goes into the study: the other trials' values at the judged
    step (median) or their rung values (halving), not their whole series.
    """
    rule = spec.early_stop
    if rule is None:
        return None
    direction = _direction(spec, "early_stop")
    assert spec.metric is not None
    series = _series(trial.intermediate)
    if not series:
        return None
    _require_optuna()
    others = sorted((r for r in history if r.index != trial.index), key=lambda r: r.index)
    dims = _dims(spec, [*others, trial])
    if rule.rule == "halving":
        return _halving(spec, direction, dims, others, trial, series)
    return _median(spec, direction, dims, others, trial, series)


def _median(
    spec: SweepSpec,
    direction: Literal["minimize", "maximize"],
    dims: Sequence[_Dim],
    others: Sequence[TrialRecord],
    trial: TrialRecord,
    series: Sequence[tuple[int, float]],
) -> str | None:
    import optuna
    from optuna.trial import TrialState as S

    assert spec.early_stop is not None and spec.metric is not None
    rule = spec.early_stop
    min_step, interval = max(0, rule.min_step), max(1, rule.interval)
    last = series[-1][0]
    if last < min_step:
        return None
    check = min_step + (last - min_step) // interval * interval
    step = next(s for s, _ in series if s >= check)
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=max(0, rule.min_trials), n_warmup_steps=min_step, interval_steps=interval
    )
    study = _pruning_study(direction, pruner)
    for record in others:
        value = record.intermediate.get(step)
        at_step = {step: float(value)} if value is not None and _finite(value) else {}
        frozen = _frozen(record, dims, intermediate=at_step)
        if frozen is not None:
            study.add_trial(frozen)
    judged = {s: v for s, v in series if s <= step}
    frozen = _frozen(trial, dims, intermediate=judged, running=True)
    assert frozen is not None
    study.add_trial(frozen)
    if not pruner.prune(study, study.get_trials(deepcopy=False)[-1]):
        return None
    finished = [
        t.intermediate_values[step]
        for t in study.get_trials(deepcopy=False, states=(S.COMPLETE,))
        if step in t.intermediate_values
    ]
    own = (min if direction == "minimize" else max)(judged.values())
    return (
        f"pruned at step {step}: {spec.metric.name} {own:.4g} (its best so far) is worse than the median "
        f"{statistics.median(finished):.4g} of {len(finished)} finished trials at that step "
        f"(median rule, from step {min_step})"
    )


def _rung_values(
    intermediate: Mapping[int, float], min_resource: int, factor: int
) -> tuple[list[float], list[int]]:
    """A trial's value at each rung it reached: at the first step it logged (a finite value)
    at or after the rung's step, min_resource * factor**rung; with the steps they come from."""
    values: list[float] = []
    steps: list[int] = []
    if not intermediate:
        return values, steps
    last = max(intermediate)
    series: list[tuple[int, float]] | None = None
    while (rung_step := min_resource * factor ** len(values)) <= last:
        value = intermediate.get(rung_step)
        if value is not None and _finite(value):  # the usual case: a value at that very step
            step = rung_step
        else:
            series = _series(intermediate) if series is None else series
            at = bisect.bisect_left(series, (rung_step, -math.inf))
            if at == len(series):
                break
            step, value = series[at]
        values.append(float(value))
        steps.append(step)
    return values, steps


def _rung_key(rung: int) -> str:
    try:
        from optuna.pruners._successive_halving import _completed_rung_key
    except ImportError:  # pragma: no cover - the name Optuna has used since 1.x
        return f"completed_rung_{rung}"
    return _completed_rung_key(rung)


def _halving(
    spec: SweepSpec,
    direction: Literal["minimize", "maximize"],
    dims: Sequence[_Dim],
    others: Sequence[TrialRecord],
    trial: TrialRecord,
    series: Sequence[tuple[int, float]],
) -> str | None:
    import optuna

    assert spec.early_stop is not None and spec.metric is not None
    rule = spec.early_stop
    complete = sum(1 for r in others if r.state == "complete" and _finite(r.value))
    if complete < rule.min_trials:
        return None
    min_resource, factor = max(1, rule.min_step), HALVING_REDUCTION_FACTOR
    reached, steps = _rung_values(trial.intermediate, min_resource, factor)
    if not reached:
        return None
    rung = len(reached) - 1  # judged at the highest rung it reached, with its value there
    pruner = optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource, reduction_factor=factor, min_early_stopping_rate=0
    )
    study = _pruning_study(direction, pruner)
    competing = [reached[rung]]
    for record in others:
        values, _ = _rung_values(record.intermediate, min_resource, factor)
        if len(values) > rung:
            competing.append(values[rung])
        frozen = _frozen(
            record, dims, intermediate={}, system_attrs={_rung_key(r): v for r, v in enumerate(values)}
        )
        if frozen is not None:
            study.add_trial(frozen)
    step = steps[rung]
    frozen = _frozen(
        trial,
        dims,
        intermediate={s: v for s, v in series if s <= step},
        system_attrs={_rung_key(r): v for r, v in enumerate(reached[:rung])},
        running=True,
    )
    assert frozen is not None
    study.add_trial(frozen)
    if not pruner.prune(study, study.get_trials(deepcopy=False)[-1]):
        return None
    keep = max(1, len(competing) // factor)
    ranked = sorted(competing, reverse=direction == "maximize")
    return (
        f"pruned at step {step}: {spec.metric.name} {reached[rung]:.4g} is not among the best {keep} of the "
        f"{len(competing)} trials that reached step {min_resource * factor**rung} "
        f"(cut-off {ranked[keep - 1]:.4g}; successive halving keeps 1 in {factor}, from step {min_resource})"
    )


def importance(spec: SweepSpec, history: Sequence[TrialRecord]) -> list[tuple[str, float]] | None:
    """How much each parameter explains the metric, high to low, summing to 1.

    Over complete trials with a finite value only (a pruned trial's last value comes from an
    earlier step than the others' final values, so it is not comparable). None when fewer
    than 3 such trials, or when no parameter took 2 distinct values among them.

    Method (plain Python, deterministic; Optuna's default PED-ANOVA was less reliable with the
    few trials of a sweep, fANOVA needs scikit-learn): the metric is replaced by its ranks
    (outliers such as a diverged run weigh no more than any other bad run), the trials are
    grouped by the parameter's value (numbers taking more than round(sqrt(n)) distinct values
    are cut into that many rank bins of equal size), and the share of the rank variance the
    groups explain is corrected for chance, epsilon-squared = (SSB - (k-1) * MSW) / SST,
    floored at 0. A parameter with one value gets 0; when no parameter explains more than
    chance, those with 2+ values share equally.
    """
    trials = [r for r in sorted(history, key=lambda r: r.index) if r.state == "complete" and _finite(r.value)]
    names = [p.name for p in spec.parameters] or (list(spec.trials[0]) if spec.trials else [])
    if len(trials) < 3 or not names:
        return None
    ranks = _ranks([float(r.value) for r in trials if r.value is not None])
    scores: dict[str, float] = {}
    varying: list[str] = []
    for name in names:
        column = [r.params.get(name, _ABSENT) for r in trials]
        groups = _groups(column)
        if len(set(groups)) >= 2:
            varying.append(name)
        scores[name] = _epsilon_squared(groups, ranks)
    if not varying:
        return None
    total = sum(scores.values())
    if total > 0:
        shares = {n: s / total for n, s in scores.items()}
    else:
        shares = {n: (1 / len(varying) if n in varying else 0.0) for n in names}
    return sorted(shares.items(), key=lambda item: -item[1])


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()


def _ranks(values: Sequence[float]) -> list[float]:
    """0-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in order[i : j + 1]:
            ranks[k] = (i + j) / 2
        i = j + 1
    return ranks


def _group_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool):
        return ("bool", value)
    if _is_number(value):
        return ("number", float(value))
    if isinstance(value, str):
        return ("str", value)
    return ("other", repr(value))


def _groups(column: Sequence[Any]) -> list[tuple[str, Any]]:
    """Each trial's group for one parameter: its value, or its rank bin for a number that
    takes many values."""
    keys = [_group_key(v) for v in column]
    n = len(column)
    bins = max(2, round(math.sqrt(n)))
    if all(_is_number(v) and math.isfinite(v) for v in column) and len(set(keys)) > bins:
        ranks = _ranks([float(v) for v in column])
        return [("bin", min(int(r * bins / n), bins - 1)) for r in ranks]
    return keys


def _epsilon_squared(groups: Sequence[tuple[str, Any]], y: Sequence[float]) -> float:
    n = len(y)
    members: dict[tuple[str, Any], list[float]] = {}
    for g, v in zip(groups, y, strict=True):
        members.setdefault(g, []).append(v)
    k = len(members)
    mean = sum(y) / n
    sst = sum((v - mean) ** 2 for v in y)
    if k < 2 or n <= k or sst <= 0:
        return 0.0
    ssb = sum(len(vs) * (sum(vs) / len(vs) - mean) ** 2 for vs in members.values())
    msw = (sst - ssb) / (n - k)
    return max(0.0, (ssb - (k - 1) * msw) / sst)


def best(spec: SweepSpec, history: Sequence[TrialRecord]) -> TrialRecord | None:
    """The complete trial with the best finite value for the metric's goal (ties: the lowest
    index); None when there is none, or the spec has no metric."""
    if spec.metric is None:
        return None
    sign = -1.0 if spec.metric.goal == "maximize" else 1.0
    candidates = [r for r in history if r.state == "complete" and _finite(r.value)]
    if not candidates:
        return None
    return min(candidates, key=lambda r: (sign * float(r.value or 0.0), r.index))
