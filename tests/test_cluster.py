"""Scale-out (policies/cluster.py): evaluation episodes and distillation scenes over local worker processes and a
local Ray cluster give exactly the results of one process, a job whose worker is killed is run again without
losing or repeating anything, and without Ray installed ``--ray`` names the extra to install."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from policies.cluster import ClusterError, Executor, FolderValue, run_jobs
from policies.evaluate import JOB_EPISODES, EpisodeJob, episode_jobs, evaluate, gather, run_episode_job, sweep

pytestmark = pytest.mark.slow


def _episodes(summary) -> list[tuple]:
    return [(r.seed, r.success, r.length, round(r.episode_return, 9), r.domain) for r in summary.per_episode]


def _square(x: int) -> int:
    return x * x


def test_jobs_come_back_in_order_over_local_processes():
    seen = []
    out = run_jobs(_square, list(range(7)), Executor(workers=2), progress=False, on_result=lambda i, r: seen.append(i))
    assert out == [x * x for x in range(7)] and sorted(seen) == list(range(7))
    with pytest.raises(ValueError, match="workers must be >= 1"):
        Executor(workers=0)


def _items(job: tuple[int, int]) -> list[int]:
    """Items first .. first + count - 1 of a run: item i amounts to 1 + i % 5."""
    first, count = job
    return [1 + i % 5 for i in range(first, first + count)]


def test_waves_of_jobs_stop_where_one_process_stops():
    """run_until over three or more waves keeps exactly the items a serial loop keeps, and leaves this process's
    torch threads as they were."""
    import torch

    from policies.cluster import one_thread, run_until

    threads = torch.get_num_threads()
    serial, total, i = [], 0, 0
    while total < 100:
        serial.append(1 + i % 5)
        total, i = total + serial[-1], i + 1
    waves = []
    got = run_until(_items, lambda f, c: (f, c), lambda x: x, 100, Executor(workers=2), 3, waves.append)
    assert got == serial and len(waves) >= 2 and waves[-1] >= 100
    assert torch.get_num_threads() == threads
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


def test_a_folder_value_is_its_name_and_files(tmp_path):
    """Two bundles with the same files under other names (a run's bundle/ and iterations/3/) are two values, each
    written where its name says; a value already written is found again, not rewritten."""
    for name in ("bundle", "3"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights.pt").write_bytes(b"same bytes")
    a, b = FolderValue.read(tmp_path / "bundle"), FolderValue.read(tmp_path / "3")
    assert a.digest != b.digest
    pa, pb = a.path(), b.path()
    assert pa.name == "bundle" and pb.name == "3" and (pb / "weights.pt").read_bytes() == b"same bytes"
    stamp = (pa / "weights.pt").stat().st_mtime_ns
    assert a.path() == pa and (pa / "weights.pt").stat().st_mtime_ns == stamp


def test_evaluation_over_workers_equals_one_process():
    """11 episodes (three jobs, the last short) of the state grasp policy in a randomized domain pinned in part."""
    domain = {"object_mass": 0.12}
    alone = evaluate("grasp_state", "grasp", 11, 4_100_000, "default", domain, progress=False)
    spread = evaluate(
        "grasp_state", "grasp", 11, 4_100_000, "default", domain, progress=False, executor=Executor(workers=2)
    )
    assert _episodes(spread) == _episodes(alone) and spread.policy == alone.policy
    assert spread.success_rate == alone.success_rate and spread.success_ci95 == alone.success_ci95
    assert all(r.domain["object_mass"] == pytest.approx(0.12) for r in spread.per_episode)


def test_workers_get_the_bundle_by_value_and_lost_seeds_are_caught(tmp_path):
    jobs = episode_jobs("grasp_state", "grasp", 7, 4_200_000, "default", None, None)
    assert [(j.seed, j.episodes) for j in jobs] == [(4_200_000, JOB_EPISODES), (4_200_005, 2)]
    value = jobs[0].policy
    assert value is not None and "weights.pt" in value.files and value.path().is_dir()
    assert FolderValue.read(value.path()).digest == value.digest  # written as read
    results = [run_episode_job(job) for job in jobs]
    assert [r.seed for r in gather(jobs, results)] == list(range(4_200_000, 4_200_007))
    with pytest.raises(RuntimeError, match="expected"):
        gather(jobs, [results[0], results[1][:1]])  # an episode lost


# -- Ray -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance on two CPUs whose workers can import this module (its job that dies on purpose)."""
    ray = pytest.importorskip("ray")
    from policies.cluster import LOCAL

    here = str(Path(__file__).parent)
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": here}}, log_to_driver=False)
    yield Executor(ray=LOCAL)  # policies.cluster.connect finds it started
    ray.shutdown()


def test_a_sweep_on_ray_equals_one_process(ray_cluster):
    """Two points of a sweep of the object's mass, 6 episodes each: every job submitted at once, the same curve."""
    values = np.array([0.05, 0.3])
    alone = sweep(["grasp_state"], "grasp", "object_mass", values, 6, 4_300_000, progress=False)
    on_ray = sweep(["grasp_state"], "grasp", "object_mass", values, 6, 4_300_000, progress=False, executor=ray_cluster)
    assert on_ray == alone


def test_scene_collection_on_ray_gives_the_same_frames(ray_cluster, tmp_path):
    from policies.distill import Distillation, DistillConfig

    config = DistillConfig(
        teacher="grasp_state", out=str(tmp_path / "student"), workers=1, channels=(8, 8, 8), supersample=1
    )
    alone = Distillation(config)
    alone.collect_scenes(8, progress=False, chunk=4)
    spread = Distillation(dataclasses.replace(config, ray="local"))
    assert spread.collect_scenes(8, progress=False, chunk=4) == {"scenes": 8, "samples": 8, "from_cache": 0}
    for name in ("rgb", "depth", "proprio", "action", "privileged"):
        np.testing.assert_array_equal(np.stack(getattr(spread.data, name)), np.stack(getattr(alone.data, name)))


def _die_once_then_run(job: tuple[str, EpisodeJob]) -> list:
    """The worker running this job the first time dies (its process exits, as a killed or crashed worker's does);
    the marker file tells the second attempt."""
    marker, episodes = job
    if not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        sys.stdout.flush()
        os._exit(1)
    return run_episode_job(episodes)


def test_a_killed_worker_is_replaced_and_nothing_is_lost_or_repeated(ray_cluster, tmp_path):
    jobs = episode_jobs("grasp_state", "grasp", 10, 4_400_000, "default", None, None)
    marked = [(str(tmp_path / f"died-{i}"), job) for i, job in enumerate(jobs)]
    results = run_jobs(_die_once_then_run, marked, ray_cluster, progress=False)
    assert all(Path(m).exists() for m, _ in marked)  # every job's first worker died
    episodes = gather(jobs, results)
    alone = evaluate("grasp_state", "grasp", 10, 4_400_000, "default", progress=False)
    assert [(r.seed, r.success, r.length) for r in episodes] == [
        (r.seed, r.success, r.length) for r in alone.per_episode
    ]


def test_without_ray_the_option_names_the_extra(monkeypatch):
    import policies.cluster as cluster

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ClusterError, match=r"pip install 'sim2real-pipeline\[cluster\]'"):
        cluster.ray_module()


def test_nothing_imports_ray_unless_asked():
    import subprocess

    code = (
        "import sys, policies.cli, policies.evaluate, policies.distill, policies.cluster; print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def _training_envs(config):
    from policies.train import TrainingRun, state_spec
    from sim.envs.factory import task_env

    run = TrainingRun(config)
    probe = task_env(config.task, config.randomization)
    run.spec = state_spec(probe)
    probe.close()
    return run.make_vec_env()


def test_training_envs_in_ray_actors_step_as_local_processes(ray_cluster, tmp_path):
    """Two grasp envs under the default randomization, the same random actions for 130 steps (at least four
    episode ends in all): observations, rewards, ends and terminal observations equal SubprocVecEnv's."""
    from policies.train_config import TrainConfig

    config = TrainConfig(task="grasp", n_envs=2, seed=3, out=str(tmp_path / "run"))
    local, remote = _training_envs(config), _training_envs(dataclasses.replace(config, ray="local"))
    try:
        np.testing.assert_array_equal(remote.reset(), local.reset())
        actions = np.random.default_rng(0).uniform(-1, 1, (130, 2, local.action_space.shape[0])).astype(np.float32)
        ends = 0
        for a in actions:
            obs_l, rew_l, done_l, info_l = local.step(a)
            obs_r, rew_r, done_r, info_r = remote.step(a)
            np.testing.assert_array_equal(obs_r, obs_l)
            np.testing.assert_array_equal(rew_r, rew_l)
            np.testing.assert_array_equal(done_r, done_l)
            for i in np.flatnonzero(done_l):
                np.testing.assert_array_equal(info_r[i]["terminal_observation"], info_l[i]["terminal_observation"])
                assert info_r[i]["episode"]["r"] == info_l[i]["episode"]["r"]  # VecMonitor's episode record
                ends += 1
        assert ends >= 4
        assert remote.get_attr("max_episode_steps") == local.get_attr("max_episode_steps")
    finally:
        local.close()
        remote.close()


def test_dagger_collection_over_workers_equals_one_process(tmp_path):
    """Two rounds of collection with teacher share 0.5 (the student drives half the steps): over two local
    processes the same episodes, samples and episode count as in this process."""
    from policies.distill import Distillation, DistillConfig

    config = DistillConfig(teacher="grasp_state", out=str(tmp_path / "a"), workers=1, channels=(8, 8, 8), detours=0.3)
    alone = Distillation(config)
    spread = Distillation(dataclasses.replace(config, workers=2, out=str(tmp_path / "b")))
    spread.student.load_state_dict(alone.student.state_dict())
    for _ in range(2):
        assert spread.collect(40, 0.5, progress=False) == alone.collect(40, 0.5, progress=False)
    assert spread.episodes == alone.episodes >= 4
    for name in ("rgb", "depth", "proprio", "action", "privileged"):
        np.testing.assert_array_equal(np.stack(getattr(spread.data, name)), np.stack(getattr(alone.data, name)))
