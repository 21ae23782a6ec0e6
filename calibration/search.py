"""The parameter search of system identification: SciPy's differential evolution with a progress bar, a stopping
rule on improvement, and a local refinement of the best candidate.

Differential evolution needs no gradient (friction and stiction make the simulated error piecewise flat) and is
deterministic for a seed. A vectorized objective takes all candidates of a generation at once (shape (n, S)). The
global search stops when its best value has improved by less than ``min_improvement`` (relative) over the last
``patience`` generations, or at the generation cap; a compass search (Kolda, Lewis & Torczon, "Optimization by
direct search", SIAM Review 2003: try +-step on each parameter, move to the best, halve the steps when none is
better) then refines the best candidate, each round one vectorized call. SciPy's local methods take one
candidate per call, which costs a simulation each here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Stopping rule of the global search: generations without enough relative improvement of the best value.
PATIENCE = 30
MIN_IMPROVEMENT = 0.002
#: Local refinement: first step as a fraction of each parameter's range, and the most rounds.
REFINE_FIRST_STEP = 0.05
REFINE_ROUNDS = 30


@dataclass
class SearchResult:
    x: np.ndarray
    fun: float
    generations: int
    stopped: str  # "converged" (the stopping rule) or "generation cap"
    evaluations: int  # objective evaluations (candidates), global and local together
    refined_by: float  # how much the local refinement lowered the objective (its units)
    wall_s: float


def minimize(
    objective: Callable[[np.ndarray], Any],
    bounds: Sequence[tuple[float, float]],
    iterations: int,
    population: int,
    seed: int,
    desc: str,
    progress: bool = True,
    vectorized: bool = False,
    refine: bool = True,
) -> SearchResult:
    """Minimize ``objective`` within ``bounds`` for at most ``iterations`` generations of ``population``
    candidates per parameter, then refine locally (``refine``: worth it for a vectorized objective, where a round
    costs one call); the bar shows the best mean absolute error so far in mrad."""
    from scipy.optimize import differential_evolution
    from tqdm import tqdm

    start = time.monotonic()
    bar = tqdm(total=iterations, desc=desc, unit="gen", disable=not progress, leave=False)
    best: list[float] = []
    converged: list[bool] = []
    evaluations = 0

    def counted(x: np.ndarray) -> Any:
        nonlocal evaluations
        evaluations += x.shape[1] if vectorized and x.ndim == 2 else 1
        return objective(x)

    def callback(intermediate_result: Any) -> None:
        bar.update(1)
        bar.set_postfix(mae_mrad=f"{1000 * intermediate_result.fun:.2f}")
        best.append(float(intermediate_result.fun))
        if len(best) > PATIENCE and best[-1] > best[-1 - PATIENCE] * (1 - MIN_IMPROVEMENT):
            converged.append(True)
            raise StopIteration

    try:
        result = differential_evolution(
            counted,
            list(bounds),
            popsize=population,
            maxiter=iterations,
            seed=seed,
            vectorized=vectorized,
            updating="deferred" if vectorized else "immediate",
            polish=False,
            tol=0.0,
            callback=callback,
        )
    finally:
        bar.close()
    x, fun = np.asarray(result.x, dtype=float), float(result.fun)
    stopped = "converged" if converged or int(result.nit) < iterations else "generation cap"
    global_fun = fun
    if refine:
        x, fun = _compass(counted, x, fun, np.asarray(bounds, dtype=float), vectorized)
    return SearchResult(
        x, fun, int(result.nit), stopped, evaluations, global_fun - fun, round(time.monotonic() - start, 2)
    )


def _compass(
    objective: Callable[[np.ndarray], Any], x: np.ndarray, fun: float, bounds: np.ndarray, vectorized: bool
) -> tuple[np.ndarray, float]:
    """Compass search from ``x`` (value ``fun``) within ``bounds`` (n, 2): the best point found and its value."""
    span = bounds[:, 1] - bounds[:, 0]
    step = REFINE_FIRST_STEP * span
    n = len(x)
    for _ in range(REFINE_ROUNDS):
        trial = np.repeat(x[:, None], 2 * n, axis=1)
        trial[np.arange(n), np.arange(n)] += step
        trial[np.arange(n), n + np.arange(n)] -= step
        trial = np.clip(trial, bounds[:, :1], bounds[:, 1:])
        if vectorized:
            values = np.asarray(objective(trial), dtype=float).ravel()
        else:
            values = np.array([float(objective(trial[:, k])) for k in range(2 * n)])
        k = int(np.argmin(values))
        if values[k] < fun:
            x, fun = trial[:, k].copy(), float(values[k])
        else:
            step = step / 2
            if np.all(step < 1e-4 * span):
                break
    return x, fun
