"""Model selection for servo system identification by validation on logs a fit did not see.

The logs are split in every way they vary: leave one trajectory family out ("family"), leave one P gain out
("gain"), leave one pendulum load out ("load"), each where the logs hold two or more of it; k-fold over the logs
when they vary in none. A model is fitted on each split's training logs (:func:`calibration.servo_sysid.fit`) and
scored on the logs it left out. Its validation error is the mean over the split kinds of the pooled error of every
log scored by the fit that did not see it; its training error is the mean over the same kinds of the fits' errors
on their own logs. Splits of different kinds ask different things: on the shared XL330 logs the quadratic model
predicts an unseen family as well as the Stribeck one (37.8 vs 37.6 mrad) but an unseen gain much worse (kp 800
predicted from kp 100-400: 100 mrad, the square term extrapolated past the loads it was fitted on).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibration.servo_sysid import ServoLog, SysidError, fit, pooled, score

#: ``--model auto`` chooses the model with the lowest validation error, or one with fewer parameters within this
#: relative margin of it (a term must earn its place).
PARSIMONY_MARGIN = 0.02
#: The report warns when a model's validation error over a split kind exceeds its training error by this factor.
OVERFIT_RATIO = 1.5
#: Split kinds: what a log is grouped by, and how a group is named in a split's name.
KINDS: dict[str, Callable[[ServoLog], str]] = {
    "family": lambda log: log.trajectory,
    "gain": lambda log: f"kp {log.kp:g}",
    "load": lambda log: f"{log.load.mass:g} kg at {log.load.length:g} m",
}

Split = tuple[str, list[int], list[int]]  # name, training log indices, validation log indices


def split_kinds(logs: Sequence[ServoLog]) -> dict[str, list[Split]]:
    """Validation splits of each kind the logs vary in (:data:`KINDS`: leave one group out, groups in sorted order;
    a family split needs every log to name its trajectory; a kind that splits the logs exactly as an earlier one is
    left out), or ``{"k-fold": ...}`` over the logs (k = min(4, logs)) when they vary in none. Every log is
    validated exactly once within a kind."""
    if len(logs) < 2:
        raise SysidError("validation needs at least two logs (better: two trajectory families)")
    out: dict[str, list[Split]] = {}
    seen: list[set[frozenset[int]]] = []
    for kind, group_of in KINDS.items():
        groups = [group_of(log) for log in logs]
        names = sorted(set(groups))
        if len(names) < 2 or not all(groups):
            continue
        splits = [
            (
                f"leave out {g}",
                [i for i, h in enumerate(groups) if h != g],
                [i for i, h in enumerate(groups) if h == g],
            )
            for g in names
        ]
        partition = {frozenset(val) for _, _, val in splits}
        if partition in seen:  # the same splits as a kind before (each family recorded at its own gain): once
            continue
        seen.append(partition)
        out[kind] = splits
    if out:
        return out
    k = min(4, len(logs))
    everyone = range(len(logs))
    return {
        "k-fold": [
            (f"fold {j + 1}/{k}", [i for i in everyone if i % k != j], [i for i in everyone if i % k == j])
            for j in range(k)
        ]
    }


@dataclass
class KindScore:
    """One split kind's figures for a model (rad, weighted by time): training error (mean over the kind's folds of
    each fit's error on its own logs) and validation error (every log scored by the fit that did not see it,
    pooled); ``folds`` per fold."""

    train_mae_rad: float
    val_mae_rad: float
    val_rms_rad: float
    folds: list[dict[str, Any]]

    @property
    def ratio(self) -> float | None:
        """Validation over training error; None when the fits explain their logs exactly."""
        return self.val_mae_rad / self.train_mae_rad if self.train_mae_rad > 0 else None


@dataclass
class Validation:
    """One model's cross-validation over every split kind (:func:`split_kinds`)."""

    model: str
    n_params: int
    kinds: dict[str, KindScore]

    @property
    def train_mae_rad(self) -> float:
        return float(np.mean([k.train_mae_rad for k in self.kinds.values()]))

    @property
    def val_mae_rad(self) -> float:
        return float(np.mean([k.val_mae_rad for k in self.kinds.values()]))

    @property
    def val_rms_rad(self) -> float:
        return float(np.mean([k.val_rms_rad for k in self.kinds.values()]))

    def overfit_kinds(self) -> list[str]:
        """The split kinds whose validation error exceeds :data:`OVERFIT_RATIO` times their training error."""
        return [name for name, k in self.kinds.items() if k.ratio is not None and k.ratio > OVERFIT_RATIO]


def _cpus() -> int:
    """The CPUs this process may run on (a container's share, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _fold(job: tuple[Sequence[ServoLog], str, str, list[int], list[int], int, int]) -> dict[str, Any]:
    """One fold: fit ``model`` on the training logs, score it on the validation logs (a worker's job)."""
    logs, model, name, train, val, iterations, seed = job
    result = fit([logs[i] for i in train], model=model, iterations=iterations, seed=seed, progress=False)
    held = score(result.params, [logs[i] for i in val])
    return {
        "model": model,
        "split": name,
        "train_logs": [logs[i].name for i in train],
        "val_logs": [logs[i].name for i in val],
        "train_mae_rad": result.mae_rad,
        "val_mae_rad": held["mae_rad"],
        "generations": result.generations,
        "stopped": result.stopped,
        "wall_s": result.wall_s,
        "n_free": len(result.free),
        "held": held["logs"],
    }


def cross_validate(
    logs: Sequence[ServoLog],
    models: Sequence[str],
    iterations: int = 150,
    seed: int = 0,
    progress: bool = True,
    workers: int | None = None,
) -> list[Validation]:
    """Fit each of ``models`` on each split of :func:`split_kinds` and score it on the logs it left out. The fits
    run in ``workers`` processes (default: one per CPU this process may use; 1: in this process); the result does
    not depend on how many (each fit is seeded)."""
    from tqdm import tqdm

    kinds = split_kinds(logs)
    jobs = [
        (logs, model, name, train, val, iterations, seed)
        for model in models
        for splits in kinds.values()
        for name, train, val in splits
    ]
    workers = min(workers or _cpus(), len(jobs))
    done: list[dict[str, Any]] = []
    if workers == 1:
        for job in tqdm(jobs, desc="validation fits", unit="fit", disable=not progress, leave=False):
            done.append(_fold(job))
    else:
        # the workers fork before the progress bar starts its thread; an error or Ctrl-C cancels the fits not begun
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(_fold, job) for job in jobs]
            try:
                for future in tqdm(futures, desc="validation fits", unit="fit", disable=not progress, leave=False):
                    done.append(future.result())
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    results = iter(done)
    out = []
    for model in models:
        scores: dict[str, KindScore] = {}
        n_free = 0
        for kind, splits in kinds.items():
            folds = [next(results) for _ in splits]
            n_free = max(n_free, *(f.pop("n_free") for f in folds))
            total = pooled({log: e for f in folds for log, e in f.pop("held").items()})
            train = float(np.mean([f["train_mae_rad"] for f in folds]))
            scores[kind] = KindScore(train, total["mae_rad"], total["rms_rad"], folds)
        out.append(Validation(model, n_free, scores))
    return out


def choose(validations: Sequence[Validation]) -> Validation:
    """The model with the lowest validation error, or one with fewer parameters within :data:`PARSIMONY_MARGIN` of
    it."""
    best = min(v.val_mae_rad for v in validations)
    close = [v for v in validations if v.val_mae_rad <= best * (1 + PARSIMONY_MARGIN)]
    return min(close, key=lambda v: (v.n_params, v.val_mae_rad))
