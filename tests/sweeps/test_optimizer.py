"""The sweep optimizer: Optuna studies rebuilt from the server's trial history on every call."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from runyard.errors import InvalidInput
from runyard.sweeps.model import EarlyStop, Metric, Param, SweepSpec
from runyard.sweeps.optimizer import (
    TrialRecord,
    best,
    distributions,
    importance,
    prune_reason,
    suggest,
)

PARAMS = (
    Param("lr", low=1e-5, high=1e-1, log=True),
    Param("layers", low=1, high=8, integer=True),
    Param("dropout", low=0.0, high=0.5),
    Param("opt", values=("adam", "sgd", True, 3)),
)


def make_spec(**kw: Any) -> SweepSpec:
    fields: dict[str, Any] = {
        "name": "sweep",
        "command": ("python", "train.py"),
        "method": "adaptive",
        "parameters": PARAMS,
        "count": 50,
        "seed": 7,
        "metric": Metric("val/loss"),
    }
    fields.update(kw)
    return SweepSpec(**fields)


def rec(
    index: int,
    state: str = "complete",
    value: float | None = None,
    params: Mapping[str, Any] | None = None,
    intermediate: Mapping[int, float] | None = None,
) -> TrialRecord:
    return TrialRecord(
        index=index,
        run_id=f"run{index}",
        params=dict(params or {}),
        state=state,  # type: ignore[arg-type]
        value=value,
        intermediate=dict(intermediate or {}),
    )


# -- distributions


def test_distributions_map_each_kind_of_parameter() -> None:
    dists = distributions(make_spec())
    assert list(dists) == ["lr", "layers", "dropout", "opt"]
    assert dists["lr"] == FloatDistribution(1e-5, 1e-1, log=True)
    assert dists["layers"] == IntDistribution(1, 8)
    assert dists["dropout"] == FloatDistribution(0.0, 0.5)
    assert dists["opt"] == CategoricalDistribution(("adam", "sgd", True, 3))
    log_int = distributions(make_spec(parameters=(Param("batch", low=16, high=256, log=True, integer=True),)))
    assert log_int["batch"] == IntDistribution(16, 256, log=True)


def test_distributions_refuse_a_range_optuna_cannot_sample() -> None:
    with pytest.raises(InvalidInput) as info:
        distributions(make_spec(parameters=(Param("lr", low=0.0, high=1.0, log=True),)))
    assert info.value.field == "parameters.lr"


# -- suggest


def _history(n: int) -> list[TrialRecord]:
    rng = random.Random(3)
    out = []
    for i in range(n):
        params = {
            "lr": 10 ** rng.uniform(-5, -1),
            "layers": rng.randint(1, 8),
            "dropout": rng.uniform(0, 0.5),
            "opt": rng.choice(["adam", "sgd", True, 3]),
        }
        out.append(rec(i, value=rng.random(), params=params))
    return out


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_suggest_is_deterministic_and_stays_in_the_space(sampler: str) -> None:
    spec = make_spec(sampler=sampler)
    history = [*_history(12), rec(12, "running", params=_history(13)[12].params), rec(13, "waiting")]
    seen = []
    for index in range(13, 25):
        params = suggest(spec, history, index)
        assert params == suggest(spec, history, index)  # same history, same answer
        assert set(params) == {"lr", "layers", "dropout", "opt"}
        assert type(params["lr"]) is float and 1e-5 <= params["lr"] <= 1e-1
        assert type(params["layers"]) is int and 1 <= params["layers"] <= 8
        assert type(params["dropout"]) is float and 0.0 <= params["dropout"] <= 0.5
        assert any(params["opt"] == c and type(params["opt"]) is type(c) for c in ("adam", "sgd", True, 3))
        seen.append(params)
    assert len({p["lr"] for p in seen}) == len(seen)  # each index its own draw
    # Another seed, other draws.
    assert suggest(replace(spec, seed=8), history, 13) != suggest(spec, history, 13)


def test_suggest_ignores_the_asked_trial_and_what_does_not_fit() -> None:
    spec = make_spec()
    history = _history(12)
    first = suggest(spec, history, 12)
    # Once the server recorded trial 12's params (waiting, then running), asking again gives
    # the same answer.
    assert suggest(spec, [*history, rec(12, "waiting", params=first)], 12) == first
    assert suggest(spec, [*history, rec(12, "running", params=first)], 12) == first
    # Extra config keys, values outside the space, non-finite values, failures: no crash.
    odd = [
        rec(20, params={**history[0].params, "batch": 64}, value=0.5),
        rec(21, params={"lr": 5.0, "layers": 2.5, "dropout": "x", "opt": "rmsprop"}, value=0.1),
        rec(22, params=history[1].params, value=math.nan),
        rec(23, params=history[2].params, value=None),
        rec(24, "failed", params=history[3].params),
        rec(25, "pruned", params=history[4].params, intermediate={1: 0.9, 2: math.inf}),
        rec(26, "complete", params={}, value=0.2),
    ]
    params = suggest(spec, [*history, *odd], 30)
    assert 1e-5 <= params["lr"] <= 1e-1


def test_tpe_prefers_the_good_region() -> None:
    """15 trials spread over x in [0, 10] with loss (x - 2)^2 and a useless y: TPE's next
    suggestions crowd around x = 2, far more than random ones (fixed seeds: deterministic)."""
    grid = [(i * 7 % 15) / 14 * 10 for i in range(15)]
    history = [
        rec(i, value=(x - 2) ** 2, params={"x": x, "y": (i * 4 % 15) / 14 * 10}) for i, x in enumerate(grid)
    ]
    spec = make_spec(parameters=(Param("x", low=0, high=10), Param("y", low=0, high=10)), seed=1)
    tpe = [suggest(spec, history, i)["x"] for i in range(15, 35)]
    rnd = [suggest(replace(spec, sampler="random"), history, i)["x"] for i in range(15, 35)]
    assert sum(x < 4 for x in tpe) >= 16  # 80%; the good region is 40% of the range
    assert sum(abs(x - 2) for x in tpe) < 0.5 * sum(abs(x - 2) for x in rnd)


def test_suggest_maximizes_when_asked() -> None:
    grid = [(i * 7 % 15) / 14 * 10 for i in range(15)]
    history = [rec(i, value=-((x - 8) ** 2), params={"x": x}) for i, x in enumerate(grid)]
    spec = make_spec(parameters=(Param("x", low=0, high=10),), metric=Metric("acc", "maximize"))
    assert sum(suggest(spec, history, i)["x"] > 6 for i in range(15, 30)) >= 12


def test_suggest_needs_a_metric() -> None:
    with pytest.raises(InvalidInput) as info:
        suggest(make_spec(metric=None), [], 0)
    assert info.value.field == "metric"


# -- prune_reason: median rule


def curve(level: float, steps: int = 10) -> dict[int, float]:
    """A loss curve: falls from level + 1 towards level."""
    return {s: level + 1 / (s + 1) for s in range(steps)}


def median_spec(**kw: Any) -> SweepSpec:
    rule = {"rule": "median", "min_step": 5, "min_trials": 3, "interval": 1, **kw}
    return make_spec(
        method="grid", parameters=(Param("lr", values=(0.1, 0.01)),), early_stop=EarlyStop(**rule)
    )


def finished(n: int, goal_sign: float = 1.0) -> list[TrialRecord]:
    out = []
    for i in range(n):
        c = {s: goal_sign * v for s, v in curve(0.1 * i).items()}
        out.append(rec(i, value=c[9], params={"lr": 0.1}, intermediate=c))
    return out


def test_median_rule_prunes_a_bad_trial_from_min_step() -> None:
    spec = median_spec()
    history = finished(4)
    bad = {s: 3.0 - 0.01 * s for s in range(10)}
    judged = [
        prune_reason(
            spec,
            history,
            rec(9, "running", params={"lr": 0.01}, intermediate=dict(list(bad.items())[: s + 1])),
        )
        for s in range(10)
    ]
    assert judged[:5] == [None] * 5  # never before min_step
    assert all(j is not None for j in judged[5:])
    assert judged[5] == (
        "pruned at step 5: val/loss 2.95 (its best so far) is worse than the median 0.3167 of 4 finished "
        "trials at that step (median rule, from step 5)"
    )
    # A good trial goes on; so does one in the middle of the pack.
    assert prune_reason(spec, history, rec(9, "running", intermediate=curve(0.0))) is None
    assert prune_reason(spec, history, rec(9, "running", intermediate=curve(0.15))) is None


def test_median_rule_waits_for_min_trials_complete_trials() -> None:
    spec = median_spec(min_trials=3)
    bad = rec(9, "running", intermediate={s: 5.0 for s in range(10)})
    two = finished(2)
    others = [rec(5, "running", intermediate=curve(0.0)), rec(6, "pruned", intermediate=curve(0.0, 6))]
    assert prune_reason(spec, [*two, *others], bad) is None
    assert prune_reason(spec, [*two, rec(7, "complete", value=None, intermediate=curve(0))], bad) is None
    assert prune_reason(spec, [*finished(3), *others], bad) is not None


def test_median_rule_respects_maximize() -> None:
    spec = replace(median_spec(), metric=Metric("val/acc", "maximize"))
    history = finished(4, goal_sign=-1.0)  # accuracies -1.1 .. -0.4: higher is better
    low = rec(9, "running", intermediate={s: -5.0 for s in range(10)})
    high = rec(9, "running", intermediate={s: 5.0 for s in range(10)})
    reason = prune_reason(spec, history, low)
    assert reason is not None and reason.startswith("pruned at step 9: val/acc -5 (its best so far)")
    assert prune_reason(spec, history, high) is None
    # The same two under minimize: the other way round.
    assert prune_reason(median_spec(), finished(4), high) is not None
    assert prune_reason(median_spec(), finished(4), low) is None


def test_median_rule_skips_non_finite_values_and_honours_the_interval() -> None:
    spec = median_spec(interval=3)
    history = finished(4)
    # Checks at steps 5, 8; a batch of steps 5..7 arriving at once is judged at step 5.
    reason = prune_reason(spec, history, rec(9, "running", intermediate={s: 3.0 for s in range(8)}))
    assert reason is not None and reason.startswith("pruned at step 5:")
    # A check point without a value: judged at the first step logged after it.
    reason = prune_reason(spec, history, rec(9, "running", intermediate={0: 3.0, 4: 3.0, 6: 3.0, 7: 3.0}))
    assert reason is not None and reason.startswith("pruned at step 6:")
    # nan/inf are skipped: the last finite step (4) is before min_step.
    nan_tail = {0: 3.0, 4: 3.0, 5: math.nan, 6: math.inf}
    assert prune_reason(median_spec(), history, rec(9, "running", intermediate=nan_tail)) is None
    assert prune_reason(median_spec(), history, rec(9, "running", intermediate={7: math.nan})) is None
    assert prune_reason(median_spec(), history, rec(9, "running")) is None
    # The trial itself in the history (as running) does not count against itself.
    trial = rec(9, "running", intermediate={s: 3.0 for s in range(6)})
    assert prune_reason(median_spec(), [*history, trial], trial) == prune_reason(
        median_spec(), history, trial
    )
    # No early_stop, no verdict.
    assert prune_reason(replace(spec, early_stop=None), history, trial) is None


def test_pruning_works_for_list_and_random_sweeps() -> None:
    history = [
        rec(i, value=c[9], params={"opt": o, "width": w}, intermediate=c)
        for i, (o, w, c) in enumerate(
            [("adam", 64, curve(0.1)), ("sgd", 128, curve(0.2)), ("adam", 32, curve(0.3))]
        )
    ]
    bad = rec(3, "running", params={"opt": "lion", "width": 64}, intermediate={s: 4.0 for s in range(7)})
    listed = make_spec(
        method="list",
        parameters=(),
        trials=({"opt": "adam", "width": 64}, {"opt": "sgd", "width": 128}),
        early_stop=EarlyStop(min_step=5, min_trials=3),
    )
    assert prune_reason(listed, history, bad) is not None
    rnd = make_spec(method="random", parameters=(Param("width", low=1, high=100),), early_stop=EarlyStop())
    assert prune_reason(rnd, history, bad) is not None


# -- prune_reason: successive halving


def halving_spec(**kw: Any) -> SweepSpec:
    rule = {"rule": "halving", "min_step": 1, "min_trials": 1, **kw}
    return make_spec(early_stop=EarlyStop(**rule))


def test_halving_prunes_a_clearly_bad_trial_at_its_rung() -> None:
    spec = halving_spec()
    history = [rec(i, value=curve(0.1 * i, 20)[19], intermediate=curve(0.1 * i, 20)) for i in range(8)]
    bad = {s: 5.0 for s in range(20)}
    # Rungs at steps 1, 4, 16: nothing to judge before step 1.
    assert prune_reason(spec, history, rec(9, "running", intermediate={0: 5.0})) is None
    reason = prune_reason(spec, history, rec(9, "running", intermediate={0: 5.0, 1: 5.0}))
    assert reason == (
        "pruned at step 1: val/loss 5 is not among the best 2 of the 9 trials that reached step 1 "
        "(cut-off 0.6; successive halving keeps 1 in 4, from step 1)"
    )
    # Judged at the highest rung it reached, with its value there (step 4 for steps 4..15).
    reason = prune_reason(spec, history, rec(9, "running", intermediate=dict(list(bad.items())[:10])))
    assert reason is not None and reason.startswith("pruned at step 4: val/loss 5 ")
    # The best trial is promoted at every rung.
    assert prune_reason(spec, history, rec(9, "running", intermediate=curve(-0.5, 20))) is None


def test_halving_waits_for_min_trials_and_respects_maximize() -> None:
    history = [rec(i, value=curve(0.1 * i)[9], intermediate=curve(0.1 * i)) for i in range(4)]
    bad = rec(9, "running", intermediate={s: 5.0 for s in range(10)})
    assert prune_reason(halving_spec(min_trials=5), history, bad) is None
    assert prune_reason(halving_spec(min_trials=4), history, bad) is not None
    maximize = replace(halving_spec(), metric=Metric("val/loss", "maximize"))
    assert prune_reason(maximize, history, bad) is None


# -- importance


def test_importance_ranks_the_param_that_drives_the_metric_first() -> None:
    rng = random.Random(5)
    history = []
    for i in range(20):
        x, noise, opt = rng.uniform(0, 1), rng.uniform(0, 1), rng.choice(["adam", "sgd"])
        params = {"x": x, "noise": noise, "opt": opt, "fixed": 1}
        history.append(rec(i, value=(x - 0.3) ** 2 + 0.01 * rng.random(), params=params))
    history.append(
        rec(20, "pruned", params={"x": 0.9, "noise": 0.1, "opt": "sgd", "fixed": 1}, intermediate={1: 9.0})
    )
    spec = make_spec(
        parameters=(
            Param("noise", low=0, high=1),
            Param("x", low=0, high=1),
            Param("opt", values=("adam", "sgd")),
            Param("fixed", values=(1, 2)),
        )
    )
    result = importance(spec, history)
    assert result is not None
    names = [name for name, _ in result]
    shares = dict(result)
    assert names[0] == "x" and shares["x"] > 0.6
    assert shares["x"] > shares["noise"]
    assert shares["fixed"] == 0.0 and names[-1] == "fixed"
    assert sum(shares.values()) == pytest.approx(1.0)
    assert [s for _, s in result] == sorted(shares.values(), reverse=True)
    assert importance(spec, list(reversed(history))) == result  # deterministic, order-free


def test_importance_on_a_grid_of_values() -> None:
    spec = make_spec(
        method="grid",
        parameters=(Param("lr", values=(0.1, 0.01, 0.001)), Param("seed", values=(1, 2, 3))),
    )
    loss = {0.1: 1.0, 0.01: 0.5, 0.001: 0.8}
    history = [
        rec(i, value=loss[lr] + 0.01 * seed, params={"lr": lr, "seed": seed})
        for i, (lr, seed) in enumerate((lr, s) for lr in loss for s in (1, 2, 3))
    ]
    result = importance(spec, history)
    assert result is not None and result[0][0] == "lr" and result[0][1] > 0.9


def test_importance_needs_three_complete_trials_and_a_varying_param() -> None:
    spec = make_spec(parameters=(Param("x", low=0, high=1), Param("y", values=("a", "b"))))
    two = [rec(0, value=1.0, params={"x": 0.1, "y": "a"}), rec(1, value=2.0, params={"x": 0.2, "y": "b"})]
    assert importance(spec, [*two, rec(2, "pruned", params={"x": 0.3}), rec(3, value=None)]) is None
    same = [rec(i, value=float(i), params={"x": 0.5, "y": "a"}) for i in range(5)]
    assert importance(spec, same) is None
    # No param explains more than chance: equal shares among those that vary.
    flat = [rec(i, value=1.0, params={"x": i / 10, "y": "a"}) for i in range(5)]
    assert importance(spec, flat) == [("x", 1.0), ("y", 0.0)]


# -- best


def test_best_picks_the_best_finite_complete_trial() -> None:
    spec = make_spec()
    history = [
        rec(0, value=0.5),
        rec(1, value=0.2),
        rec(2, value=0.2),
        rec(3, "pruned", value=0.01),
        rec(4, "running", value=0.0),
        rec(5, value=math.nan),
        rec(6, value=None),
        rec(7, value=-math.inf),
    ]
    found = best(spec, history)
    assert found is not None and found.index == 1  # ties: the lowest index
    assert best(spec, list(reversed(history))) == found
    top = best(replace(spec, metric=Metric("acc", "maximize")), history)
    assert top is not None and top.index == 0
    assert best(spec, [rec(0, value=None), rec(1, "failed")]) is None
    assert best(spec, []) is None


# -- without Optuna


def test_the_module_imports_without_optuna_and_says_how_to_get_it() -> None:
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "from runyard.errors import InvalidInput\n"
        "from runyard.sweeps import optimizer as o\n"
        "from runyard.sweeps.model import SweepSpec, Metric\n"
        "spec = SweepSpec(name='s', command=('x',), method='adaptive', metric=Metric('m'))\n"
        "print(o.best(spec, [o.TrialRecord(0, 'r', {}, 'complete', 1.0)]).index)\n"
        "try:\n"
        "    o.suggest(spec, [], 0)\n"
        "except InvalidInput as exc:\n"
        "    print(exc.field, exc.message)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "0",
        "method adaptive sweeps and early_stop need Optuna on the server: pip install 'runyard[server]'",
    ]
