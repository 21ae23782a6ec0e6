"""Scale-out of independent, seeded work (evaluation episodes, distillation scenes and DAgger episodes, the
estimator's rollouts) over worker processes on this machine or over a Ray cluster (``--ray ADDRESS``).

Work is cut into jobs, each keyed by its index in the run (its seeds follow from it, never from the worker that
runs it), and :func:`run_jobs` hands the results back in job order: a run's results do not depend on how many
workers ran it or where. On Ray, a job whose worker dies (a killed process, a lost node) is run again on another
(Ray's task retries, :data:`RAY_RETRIES`); a job that raises is not retried and its error reaches the driver.
Ray is an optional extra (``pip install 'sim2real-pipeline[cluster]'``) and is imported only when an address is
given. Workers receive what they need by value (:class:`FolderValue` carries a bundle's files, :func:`module_bytes`
a network), so a cluster's other machines need the project installed, not the driver's files. Jobs run torch on one
thread (:func:`one_thread`), as the serial loops they replace do, so that their numbers agree bit for bit.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

#: The optional dependency group that installs Ray.
RAY_EXTRA = "cluster"
#: Times Ray runs a job again when its worker process dies before it returns.
RAY_RETRIES = 3
#: ``--ray local``: start a Ray instance on this machine for the run (its CPUs); any other value is an address
#: for ``ray.init`` (``auto``: the cluster this machine belongs to, ``ray://HOST:10001``: a remote one).
LOCAL = "local"

Job = TypeVar("Job")
Result = TypeVar("Result")


class ClusterError(RuntimeError):
    """Ray is missing or the cluster cannot be reached; the message says what to do."""


def ray_module() -> Any:
    """The ``ray`` package, or :class:`ClusterError` naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(
            f"--ray needs Ray, which is not installed: pip install 'sim2real-pipeline[{RAY_EXTRA}]' "
            "(or run without --ray)"
        ) from None
    return ray


def connect(address: str, num_cpus: int | None = None) -> Any:
    """Join the Ray cluster at ``address`` (:data:`LOCAL` starts one here with ``num_cpus``, default all) unless
    this process already has; returns the ``ray`` module."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except ConnectionError as exc:
        message = f"--ray {address}: cannot reach a Ray cluster there ({exc}); start one with 'ray start'"
        raise ClusterError(message) from None
    return ray


@dataclass(frozen=True)
class Executor:
    """Where jobs run: ``ray`` (an address, see :data:`LOCAL`) or else ``workers`` local processes (1: in this
    process)."""

    workers: int = 1
    ray: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")

    @property
    def remote(self) -> bool:
        return self.ray is not None

    def describe(self) -> str:
        return f"Ray at {self.ray}" if self.remote else f"{self.workers} local process(es)"


def run_jobs(
    fn: Callable[[Job], Result],
    jobs: Sequence[Job],
    executor: Executor,
    *,
    sizes: Sequence[int] | None = None,
    desc: str = "",
    unit: str = "job",
    progress: bool = True,
    on_result: Callable[[int, Result], None] | None = None,
) -> list[Result]:
    """``[fn(job) for job in jobs]``, run where ``executor`` says. ``fn`` must be a module-level function and each
    job picklable. ``sizes``: the units of work in each job (the progress bar counts them, e.g. episodes);
    ``on_result(index, result)`` is called in this process as each job finishes (in finishing order), e.g. to
    save it."""
    if not jobs:
        return []
    sizes = list(sizes) if sizes is not None else [1] * len(jobs)
    if len(sizes) != len(jobs):
        raise ValueError(f"{len(sizes)} sizes for {len(jobs)} jobs")
    results: dict[int, Result] = {}
    bar = tqdm(total=sum(sizes), desc=desc, unit=unit, disable=not progress, mininterval=1.0, leave=False)

    def done(index: int, result: Result) -> None:
        results[index] = result
        if on_result is not None:
            on_result(index, result)
        bar.update(sizes[index])

    try:
        if executor.remote:
            _run_on_ray(fn, jobs, executor.ray or LOCAL, done)
        elif executor.workers == 1:
            for i, job in enumerate(jobs):
                done(i, fn(job))
        else:
            _run_in_processes(fn, jobs, executor.workers, done)
    finally:
        bar.close()
    return [results[i] for i in range(len(jobs))]


def run_until(
    fn: Callable[[Job], list[Result]],
    make_job: Callable[[int, int], Job],
    amount: Callable[[Result], int],
    needed: int,
    executor: Executor,
    per_job: int,
    on_progress: Callable[[int], None] | None = None,
) -> list[Result]:
    """The shortest run of items (episodes) ``0, 1, ...`` whose ``amount`` (steps, samples) sums to ``needed`` or
    more: what a loop in one process that stops once it has enough would produce. ``make_job(first, count)`` makes
    the job of items ``first .. first + count - 1`` and ``fn`` runs it to their list; jobs go out in waves sized by
    the amounts seen so far (a first small wave to learn them, then a little more than the rest needs).
    ``on_progress(total)`` after each wave."""
    items: list[Result] = []
    total = 0
    while total < needed:
        mean = total / len(items) if items else 1.0
        wanted = max(per_job, int(math.ceil(1.1 * (needed - total) / max(mean, 1e-9))))
        if not items:  # nothing seen yet: one job per worker's share first, to learn the amounts cheaply
            wanted = min(wanted, per_job * (2 if executor.remote else executor.workers))
        first = len(items)
        sizes = [(first + k, min(per_job, wanted - k)) for k in range(0, wanted, per_job)]
        jobs = [make_job(start, count) for start, count in sizes]
        for job_items, (_, count) in zip(run_jobs(fn, jobs, executor, progress=False), sizes, strict=True):
            assert len(job_items) == count, f"a job returned {len(job_items)} items for {count}"
            items.extend(job_items)
        total = sum(amount(item) for item in items)
        if on_progress is not None:
            on_progress(total)
    cumulative = np.cumsum([amount(item) for item in items])
    return items[: int(np.searchsorted(cumulative, needed)) + 1]


def _run_in_processes(fn: Callable, jobs: Sequence, workers: int, done: Callable[[int, Any], None]) -> None:
    context = multiprocessing.get_context("spawn")  # each worker builds its own PyBullet client
    pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context)
    try:
        pending = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                done(pending.pop(future), future.result())
    except BaseException:  # a job's error (or Ctrl-C) stops the run now, not after every queued job
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _run_on_ray(fn: Callable, jobs: Sequence, address: str, done: Callable[[int, Any], None]) -> None:
    ray = connect(address)
    remote = ray.remote(num_cpus=1, max_retries=RAY_RETRIES, retry_exceptions=False)(fn)
    pending = {remote.remote(job): i for i, job in enumerate(jobs)}
    try:
        while pending:
            finished, _ = ray.wait(list(pending), num_returns=1)
            for ref in finished:
                done(pending.pop(ref), ray.get(ref))
    finally:  # after an error: the jobs still queued or running are cancelled, not left to run on the cluster
        for ref in pending:
            ray.cancel(ref)


@dataclass(frozen=True)
class FolderValue:
    """A folder's files carried by value (a policy bundle sent to a cluster's workers): :meth:`path` writes them
    once per worker machine, under a folder named by their digest, and returns it."""

    name: str
    files: dict[str, bytes] = field(repr=False)

    @classmethod
    def read(cls, folder: str | Path) -> FolderValue:
        folder = Path(folder)
        files = {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}
        return cls(folder.name, files)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(self.name.encode() + b"\0")
        for name, data in sorted(self.files.items()):
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return h.hexdigest()[:16]

    def path(self) -> Path:
        base = Path(tempfile.gettempdir()) / f"s2r-values-{os.getuid()}"  # this user's: no one else writes there
        root = base / self.digest
        if not root.exists():  # written aside, then renamed into place: a worker never sees half a folder
            base.mkdir(mode=0o700, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=base))
            try:
                for name, data in self.files.items():
                    (staging / self.name / name).parent.mkdir(parents=True, exist_ok=True)
                    (staging / self.name / name).write_bytes(data)
                staging.rename(root)
            except OSError:
                if not root.exists():  # not merely another worker of this machine first
                    raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return root / self.name


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch on one thread inside (a job's work, and the serial loops jobs replace), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def module_bytes(module: Any) -> bytes:
    """A torch module as bytes for a worker (plain bytes: pickling a module to a process pool would move its
    tensors into shared memory, of which containers often have little)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(module, buffer)
    return buffer.getvalue()


def module_from_bytes(data: bytes) -> Any:
    """The module :func:`module_bytes` wrote (our own code's classes; the bytes come from this run's driver)."""
    import io

    import torch

    return torch.load(io.BytesIO(data), weights_only=False)
