"""``s2r parity``: the same seeded episodes in simulation and through a mock robot's hardware path, side by side.

The simulation runs the task env with the reality's domain pinned (``randomization="none"``, as
:class:`mock.reality.Reality` builds the mock robot's world) on seeds ``seed, seed+1, ...``; the hardware path is
:func:`policies.deploy.deploy` on the mock robot with the same domain file and first seed (episode k: seed + k, the
same scene). What the two paths show the policy is compared from the simulated rollout and the deploy's log:

- success in each, and per-episode agreement (both succeed, both fail, simulation only, hardware only);
- the scene: the privileged vector's scene part at each episode's first step (grasp: object position; navigate:
  the goal in the robot frame), which must match when seed k built the same scene on both paths;
- the first pose: joint positions at each episode's first step (simulation: the PyBullet robot; hardware: the
  first ``/joint_states`` after the episode's start);
- camera policies: statistics of the first frame each episode, as the policy sees it (the logged 640x480 frame
  cropped and resized by :func:`robot.frame_reduction.reduce_frame`, as the deploy did): RGB mean and std per
  channel, the fraction of depth pixels without a reading (0), the median of the valid depths; and pixel differences;
- frame age: ``frame_age_ms`` of the log's ``/loop`` messages, when the deploy writes it (None otherwise).
"""

from __future__ import annotations

import dataclasses
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policies.parity_config import ParityConfig
from policies.rollout import wilson_interval
from robot.tasks import task_class


class ParityError(ValueError):
    """The two paths cannot be compared (a robot without a mock reality, a bundle for another task)."""


@dataclass
class _First:
    """What one path showed at an episode's first step."""

    joints: np.ndarray | None = None
    scene: np.ndarray | None = None
    rgb: np.ndarray | None = None  # h x w x 3 uint8, as the policy saw it
    depth: np.ndarray | None = None  # h x w (x 1) float32, m, 0 = no reading
    action: np.ndarray | None = None


# -- the simulation side ------------------------------------------------------------------------------------------


class _FirstStepRecorder:
    """Wraps an episode policy: records the first observation of every episode (and the true joint positions of the
    simulated robot then) before handing it on."""

    def __init__(self, inner: Any, env: Any, task: str, firsts: list[_First]) -> None:
        self.inner, self.env, self.task, self.firsts = inner, env, task, firsts
        self._first = True

    def reset(self) -> None:
        self.inner.reset()
        self._first = True

    def act(self, obs: dict, info: dict) -> np.ndarray:
        action = self.inner.act(obs, info)
        if self._first:
            self._first = False
            first = _First(
                joints=np.asarray(self.env.unwrapped.robot.read().position, dtype=float),
                scene=_scene(self.task, np.asarray(info["privileged"]["vector"], dtype=float)),
                action=np.asarray(action, dtype=float).copy(),
            )
            if "rgb" in obs:
                first.rgb, first.depth = np.array(obs["rgb"]), np.array(obs["depth"])
            self.firsts.append(first)
        return action


def _scene(task: str, privileged: np.ndarray) -> np.ndarray:
    """The part of the privileged vector that only the scene decides at the first step (the task's ``scene_dims``:
    the object's position for grasp, the goal in the robot frame for navigate)."""
    return privileged[: task_class(task).scene_dims]


def _simulate(cfg: ParityConfig, task: str) -> tuple[Any, list[_First]]:
    from policies.evaluate import evaluate, policy_factory

    source = policy_factory(cfg.policy, task, "adapt")
    firsts: list[_First] = []

    def make(env: Any) -> Any:
        inner = source.make(env)
        if cfg.max_steps is not None:
            env.unwrapped.max_episode_steps = int(cfg.max_steps)  # the envs enforce their own limit
        return _FirstStepRecorder(inner, env, task, firsts)

    summary = evaluate(
        cfg.policy,
        task,
        cfg.episodes,
        cfg.seed,
        randomization="none",
        domain=cfg.reality,
        progress=cfg.progress,
        factory=dataclasses.replace(source, make=make),
    )
    return summary, firsts


# -- the hardware side --------------------------------------------------------------------------------------------


def _read_deploy_log(
    path: str | Path, task: str, image_size: tuple[int, int] | None, crop: Any
) -> tuple[dict[int, _First], list[float], bool]:
    """Per episode (by the log's episode index) what the first step showed; every ``frame_age_ms`` of ``/loop``;
    whether any ``/loop`` message had the field at all."""
    from real.log_reader import LogDamageWarning, read_log
    from robot.frame_reduction import reduce_frame

    topics = ["/episode", "/joint_states", "/camera/color", "/camera/depth", "/loop", "/reality/privileged"]
    topics.append("/policy/action")
    firsts: dict[int, _First] = {}
    ages: list[float] = []
    has_age = False
    episode: int | None = None
    color: np.ndarray | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("error", LogDamageWarning)  # a damaged log is a failed comparison, not a quiet one
        for m in read_log(path, topics):
            if m.topic == "/episode":
                if m.data.get("event") == "start":
                    episode = int(m.data["episode"])
                    firsts[episode] = _First()
                    color = None
                elif m.data.get("event") == "end":
                    episode = None
                continue
            if m.topic == "/loop":
                if "frame_age_ms" in m.data:
                    has_age = True
                    if m.data["frame_age_ms"] is not None:
                        ages.append(float(m.data["frame_age_ms"]))
                continue
            if episode is None:
                continue
            first = firsts[episode]
            if m.topic == "/joint_states" and first.joints is None:
                first.joints = np.asarray(m.data["position"], dtype=float)
            elif m.topic == "/reality/privileged" and first.scene is None:
                first.scene = _scene(task, np.asarray(m.data["vector"], dtype=float))
            elif m.topic == "/policy/action" and first.action is None:
                first.action = np.asarray(m.data["action"], dtype=float)
            elif m.topic == "/camera/color" and first.rgb is None and color is None:
                color = m.data
            elif m.topic == "/camera/depth" and first.rgb is None and color is not None and image_size is not None:
                first.rgb, first.depth = reduce_frame(color, m.data, image_size, crop)
    return firsts, ages, has_age


def _deploy(cfg: ParityConfig, log: str, uses_images: bool, adaptive: bool) -> Any:
    from policies.deploy import DeployConfig, deploy

    return deploy(
        DeployConfig(
            robot=cfg.robot,
            policy=cfg.policy,
            episodes=cfg.episodes,
            max_steps=cfg.max_steps,
            log=log,
            reality=cfg.reality,
            seed=cfg.seed,
            adapt=adaptive,
            log_cameras=uses_images,
            status=cfg.progress,
        )
    )


# -- comparison ---------------------------------------------------------------------------------------------------


def image_stats(rgb: np.ndarray, depth: np.ndarray) -> dict[str, Any]:
    """RGB mean and std per channel (0-255), the fraction of depth pixels with no reading (0) and the median of the
    valid depths (m; None when there are none)."""
    pixels = np.asarray(rgb, dtype=float).reshape(-1, 3)
    d = np.asarray(depth, dtype=float).ravel()
    valid = d[d > 0]
    return {
        "rgb_mean": pixels.mean(axis=0).round(2).tolist(),
        "rgb_std": pixels.std(axis=0).round(2).tolist(),
        "depth_zero_fraction": round(float(np.mean(d <= 0)), 4),
        "depth_median_m": round(float(np.median(valid)), 4) if valid.size else None,
    }


def _pixel_diffs(sim: _First, hw: _First) -> dict[str, Any]:
    """Pixel by pixel: mean |RGB difference| (0-255) and mean |depth difference| over pixels valid in both (m)."""
    rgb = float(np.mean(np.abs(sim.rgb.astype(float) - hw.rgb.astype(float))))
    ds, dh = np.asarray(sim.depth, dtype=float).squeeze(), np.asarray(hw.depth, dtype=float).squeeze()
    both = (ds > 0) & (dh > 0)
    depth = float(np.mean(np.abs(ds[both] - dh[both]))) if both.any() else None
    return {"rgb_mean_abs_diff": round(rgb, 2), "depth_mean_abs_diff_m": None if depth is None else round(depth, 4)}


def _max_abs(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None or a.shape != b.shape:
        return None
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def _mean_stats(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Episode-mean of each image statistic."""
    out: dict[str, Any] = {}
    for key in ("rgb_mean", "rgb_std"):
        out[key] = np.mean([s[key] for s in stats], axis=0).round(2).tolist()
    out["depth_zero_fraction"] = round(float(np.mean([s["depth_zero_fraction"] for s in stats])), 4)
    medians = [s["depth_median_m"] for s in stats if s["depth_median_m"] is not None]
    out["depth_median_m"] = round(float(np.mean(medians)), 4) if medians else None
    return out


@dataclass
class _Setup:
    """What a parity run compares: the robot, the policy, and the image the policy sees."""

    config: Any
    bundle: Any
    task: str
    adaptive: bool
    uses_images: bool
    image_size: tuple[int, int] | None
    crop: Any


def _setup(cfg: ParityConfig) -> _Setup:
    """The robot and the policy, refused (:class:`ParityError`) when they cannot be compared episode by episode."""
    from policies.adaptive import AdaptivePolicy
    from policies.loader import load
    from robot.config_file import load_hardware_config

    if cfg.episodes < 1:
        raise ParityError(f"episodes must be at least 1, not {cfg.episodes}")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise ParityError(f"max_steps must be at least 1, not {cfg.max_steps}")
    config = load_hardware_config(cfg.robot)
    if config.mock is None:
        raise ParityError(
            f"{cfg.robot} is not a mock robot: parity needs a reality that judges each episode (hardware_configs/mock/)"
        )
    bundle = load(cfg.policy)
    task = config.mock.task
    if bundle.task != task:
        raise ParityError(
            f"{cfg.policy} is a {bundle.task} policy; {cfg.robot} is a mock {task} robot: no episode of one is an "
            "episode of the other"
        )
    bundle.check_robot(config)  # BundleError naming what differs
    uses_images = "rgb" in bundle.obs_spec.keys
    image_size = crop = None
    if uses_images:
        h, w = bundle.obs_spec.shapes["rgb"][:2]
        image_size, crop = (w, h), (bundle.meta.get("camera") or {}).get("crop")
    return _Setup(config, bundle, task, isinstance(bundle, AdaptivePolicy), uses_images, image_size, crop)


def parity(cfg: ParityConfig) -> dict[str, Any]:
    """Run ``cfg.episodes`` seeded episodes in simulation and on the mock robot; the report (a JSON-able dict)."""
    setup = _setup(cfg)
    # the hardware path first: a reality it refuses (or a setup it cannot start) fails before the simulation runs
    with tempfile.TemporaryDirectory(prefix="s2r-parity-") as tmp:
        log = cfg.log or str(Path(tmp) / "parity.mcap")
        try:
            hw_summary = _deploy(cfg, log, setup.uses_images, setup.adaptive)
        except ValueError as e:  # deploy's refusals of the setup, before anything moved
            raise ParityError(str(e)) from e
        if hw_summary.ended == "error" and not hw_summary.episodes:
            raise ParityError(f"the hardware path did not run: {hw_summary.message}")
        hw_firsts, ages, has_age = ({}, [], False)
        if Path(log).exists():
            hw_firsts, ages, has_age = _read_deploy_log(log, setup.task, setup.image_size, setup.crop)
    sim_summary, sim_firsts = _simulate(cfg, setup.task)
    rows = _Rows(setup.uses_images)
    for k, s in enumerate(sim_summary.per_episode):
        h = hw_summary.episodes[k] if k < len(hw_summary.episodes) else None
        rows.add(k, s, h, sim_firsts[k] if k < len(sim_firsts) else _First(), hw_firsts.get(k, _First()))
    report = _report(cfg, setup, sim_summary.per_episode, hw_summary, rows)
    report["frame_age_ms"] = _frame_age(ages, has_age, hw_summary.camera or {})
    return report


class _Rows:
    """The per-episode comparison, with what the summary needs of it."""

    def __init__(self, uses_images: bool) -> None:
        self.uses_images = uses_images
        self.counts = {"both_succeed": 0, "both_fail": 0, "sim_only": 0, "hardware_only": 0}
        self.per_episode: list[dict[str, Any]] = []
        self.pose_diffs: list[np.ndarray] = []
        self.sim_stats: list[dict[str, Any]] = []
        self.hw_stats: list[dict[str, Any]] = []
        self.pixel: list[dict[str, Any]] = []

    def add(self, k: int, s: Any, h: Any, sf: _First, hf: _First) -> None:
        """Episode ``k``: ``s`` the simulated result, ``h`` the hardware one (None: it did not run), ``sf`` and
        ``hf`` what each path showed at its first step."""
        row: dict[str, Any] = {
            "episode": k,
            "seed": s.seed,
            "sim": {"success": s.success, "steps": s.length},
            "hardware": None if h is None else {"success": h.success, "outcome": h.outcome, "steps": h.steps},
        }
        if h is not None and h.success is not None and h.seed == s.seed:
            key = {
                (True, True): "both_succeed",
                (False, False): "both_fail",
                (True, False): "sim_only",
                (False, True): "hardware_only",
            }[(bool(s.success), bool(h.success))]
            self.counts[key] += 1
            row["agreement"] = key
        if sf.joints is not None and hf.joints is not None:
            diff = np.abs(sf.joints - hf.joints)
            self.pose_diffs.append(diff)
            row["first_pose"] = {
                "sim": sf.joints.round(4).tolist(),
                "hardware": hf.joints.round(4).tolist(),
                "max_abs_diff": round(float(diff.max()), 4),
            }
        row["scene_max_abs_diff"] = _max_abs(sf.scene, hf.scene)
        row["first_action_max_abs_diff"] = _max_abs(sf.action, hf.action)
        if self.uses_images and sf.rgb is not None and hf.rgb is not None:
            ss, hs = image_stats(sf.rgb, sf.depth), image_stats(hf.rgb, hf.depth)
            self.sim_stats.append(ss)
            self.hw_stats.append(hs)
            px = _pixel_diffs(sf, hf)
            self.pixel.append(px)
            row["first_frame"] = {"sim": ss, "hardware": hs, **px}
        self.per_episode.append(row)


def _report(cfg: ParityConfig, setup: _Setup, sim_eps: list[Any], hw_summary: Any, rows: _Rows) -> dict[str, Any]:
    """The report: success on each path, agreement, scene, first pose and image differences."""
    counts, hw_eps = rows.counts, hw_summary.episodes
    compared = sum(counts.values())
    sim_wins = sum(bool(e.success) for e in sim_eps)
    judged = [e for e in hw_eps if e.success is not None]
    hw_wins = sum(bool(e.success) for e in judged)
    scene = [r["scene_max_abs_diff"] for r in rows.per_episode if r["scene_max_abs_diff"] is not None]
    agreement = (counts["both_succeed"] + counts["both_fail"]) / compared if compared else None
    report: dict[str, Any] = {
        "policy": str(cfg.policy),
        "robot": setup.config.name,
        "task": setup.task,
        "reality": cfg.reality,
        "episodes": cfg.episodes,
        "seed": cfg.seed,
        "max_steps": cfg.max_steps,
        "sim": {
            "episodes": len(sim_eps),
            "successes": sim_wins,
            "success_rate": sim_wins / len(sim_eps),
            "success_ci95": list(wilson_interval(sim_wins, len(sim_eps))),
            "seeds": [e.seed for e in sim_eps],
        },
        "hardware": {
            "episodes": len(judged),
            "successes": hw_wins,
            "success_rate": hw_wins / len(judged) if judged else None,
            "success_ci95": list(wilson_interval(hw_wins, len(judged))) if judged else None,
            "seeds": [e.seed for e in hw_eps],
            "ended": hw_summary.ended,
            "message": hw_summary.message,
            "loop": hw_summary.loop,
            "camera": hw_summary.camera,
            "safety_events": hw_summary.safety_events,
            "log": cfg.log,
        },
        "agreement": {**counts, "compared": compared, "rate": agreement},
        "scene": {"max_abs_diff": max(scene) if scene else None, "episodes": len(scene)},
        "first_pose": None,
        "images": None,
        "frame_age_ms": None,
        "per_episode": rows.per_episode,
    }
    if rows.pose_diffs:
        joint_names = list(setup.config.joint_names)
        stacked = np.stack(rows.pose_diffs)
        report["first_pose"] = {
            "joints": joint_names,
            "max_abs_diff": dict(zip(joint_names, stacked.max(axis=0).round(4).tolist(), strict=True)),
            "mean_abs_diff": dict(zip(joint_names, stacked.mean(axis=0).round(4).tolist(), strict=True)),
            "max_abs_diff_overall": round(float(stacked.max()), 4),
            "episodes": len(rows.pose_diffs),
        }
    if rows.sim_stats:
        pixel = rows.pixel
        depth_diffs = [p["depth_mean_abs_diff_m"] for p in pixel if p["depth_mean_abs_diff_m"] is not None]
        report["images"] = {
            "image_size": list(setup.image_size),
            "crop": setup.crop,
            "episodes": len(rows.sim_stats),
            "sim": _mean_stats(rows.sim_stats),
            "hardware": _mean_stats(rows.hw_stats),
            "rgb_mean_abs_diff": round(float(np.mean([p["rgb_mean_abs_diff"] for p in pixel])), 2),
            "depth_mean_abs_diff_m": round(float(np.mean(depth_diffs)), 4) if depth_diffs else None,
        }
    return report


def _frame_age(ages: list[float], has_age: bool, camera: dict[str, Any]) -> dict[str, Any] | None:
    """How old the frames the policy acted on were: from the log's /loop messages, else the deploy summary."""
    if has_age:
        if not ages:
            return {"source": "/loop", "count": 0}
        return {"source": "/loop", "count": len(ages)} | {
            q: _pct(ages, v) for q, v in (("p50", 50), ("p90", 90), ("max", 100))
        }
    if camera.get("frame_age_ms_p50") is not None:  # the deploy summary's own figures, when the log has none
        return {
            "source": "deploy summary",
            "p50": camera["frame_age_ms_p50"],
            "p90": camera.get("frame_age_ms_p90"),
            "max": camera.get("frame_age_ms_max"),
        }
    return None
