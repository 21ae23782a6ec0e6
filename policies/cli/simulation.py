"""``s2r`` commands of simulation: the scripted experts, the demo, evaluation and sweeps, randomization previews.

Each command is a dataclass (its fields are the flags, their docstrings the help) and a ``run_*`` function."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from policies.cli.common import print_summary, write_json
from robot.tasks import TaskName


@dataclass(kw_only=True)
class Demo:
    """Experts in sim, then a policy deployed on the mock arm in an unseen reality, logged and replayed."""

    out: str = "demo_out"
    """output folder"""
    episodes: int = 20
    """episodes per task"""
    video_episodes: int = 3
    """episodes per task to record"""
    seed: int = 0
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    policy: str = "grasp_state"
    """grasp bundle to deploy: a path, or a shipped bundle's name"""
    deploy_episodes: int = 5
    """episodes on the mock arm"""
    reality: str | None = None
    """domain file of the mock arm's reality"""


def run_demo(args: Demo) -> int:
    """The whole story on the built-in mock arm: experts in simulation, then a trained policy deployed through the
    hardware layer into a reality outside its training ranges, logged, replay-checked and reported."""
    from calibration import robot_sysid
    from calibration.sim_replay import sim_replay
    from policies.deploy import DeployConfig, deploy
    from policies.evaluate import evaluate
    from policies.replay_check import check_policy
    from policies.rollout import run_expert
    from robot.config_file import HARDWARE_CONFIG_DIR
    from sim.randomization.config import load_domain

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {}
    t0 = time.monotonic()
    print("1. the scripted experts in simulation, under the default randomization")
    for task in ("grasp", "navigate"):
        video = out / f"{task}_expert.mp4"
        summary = run_expert(
            task,
            args.episodes,
            args.seed,
            video=video,
            video_episodes=args.video_episodes,
            randomization=args.randomization,
        )
        print_summary(summary)
        print(f"  video of the first {args.video_episodes} episodes: {video}")
        report[f"{task}_expert"] = summary.to_dict()
    policy = args.policy
    print(f"2. the grasp policy {policy} in simulation, on held-out randomized domains")
    summary = evaluate(policy, "grasp", args.episodes, 1_000_000, "default")
    print_summary(summary)
    report["policy_in_sim"] = summary.to_dict()
    reality = args.reality or str(HARDWARE_CONFIG_DIR / "mock" / "realities" / "grasp_heavy_laggy.yaml")
    print(f"3. deployed on the mock arm (real driver code, servo emulator, safety filter) in the reality {reality}")
    log = out / "deploy_grasp.mcap"
    deployed = deploy(
        DeployConfig(
            robot="mock/openmanipulator_x",
            policy=policy,
            episodes=args.deploy_episodes,
            log=str(log),
            reality=reality,
            seed=args.seed + 3_000_000,
        )
    )
    report["deployment"] = deployed.to_dict()
    loop = deployed.loop
    print(
        f"  {deployed.ended}: success {deployed.success_rate:.0%} over {len(deployed.episodes)} episodes; loop "
        f"{1e3 / loop['cycle_ms_p50']:.1f} Hz (p99 cycle {loop['cycle_ms_p99']} ms), overruns {loop['overruns']}; "
        f"safety events {deployed.safety_events or 'none'}; log {log}"
    )
    _demo_second_engine(args, policy, reality, deployed, report)
    print("4. replaying the log")
    check = check_policy(log, policy)
    drift = sim_replay(log)
    report["replay"] = {"check_policy": check, "sim_replay": drift}
    print(
        f"  the policy recomputed from the logged observations: largest action difference "
        f"{check['max_abs_difference']:.2g} ({'matches' if check['matches'] else 'DIFFERS'})"
    )
    worst = max(drift["rms_error"], key=drift["rms_error"].get)
    print(
        f"  the nominal sim driven by the logged commands drifts from the reality by RMS "
        f"{drift['rms_error'][worst]:.3g} at most ({worst})"
    )
    print("5. system identification: the sim's servos fitted to the log (s2r sysid)")
    config, logs = robot_sysid.load_robot_logs([log])
    targets, _ = robot_sysid.fit(config, logs, iterations=12, seed=args.seed)
    fitted, nominal = robot_sysid.score(config, logs, targets), robot_sysid.score(config, logs, {})
    domain = robot_sysid.domain_from_targets("grasp", targets)
    truth = load_domain(reality)
    report["sysid"] = {"domain": domain, "mae_rad": fitted["mae_rad"], "nominal_mae_rad": nominal["mae_rad"]}
    print(
        f"  latency {1000 * domain['latency_s']:.0f} ms (the reality: {1000 * truth.get('latency_s', 0):.0f} ms), "
        f"position gain x{domain['servo_position_gain_scale']:.2f}; replay error MAE "
        f"{1000 * nominal['mae_rad']:.1f} -> {1000 * fitted['mae_rad']:.1f} mrad"
    )
    write_json(out / "demo.json", report)
    print(f"demo finished in {time.monotonic() - t0:.1f} s; report in {out / 'demo.json'}")
    return 0 if deployed.ended == "completed" and check["matches"] else 1


def _demo_second_engine(args: Demo, policy: str, reality: str, deployed: Any, report: dict) -> None:
    """Step 3 again on the MuJoCo reality (same reality file, same scenes), reported beside the PyBullet one."""
    from policies.deploy import DeployConfig, deploy

    print("   the same episodes in the same reality on a second engine (MuJoCo: its contacts, servos as DC motors)")
    try:
        import mock.mujoco_scene  # noqa: F401 - the optional engine is installed

        second = deploy(
            DeployConfig(
                robot="mock/openmanipulator_x",
                policy=policy,
                episodes=args.deploy_episodes,
                reality=reality,
                seed=args.seed + 3_000_000,
                engine="mujoco",
            )
        )
        report["deployment_mujoco"] = second.to_dict()
        print(
            f"  success PyBullet reality {deployed.success_rate:.0%}, MuJoCo reality {second.success_rate:.0%} "
            f"({len(second.episodes)} episodes each, same scenes); {second.ended}"
        )
    except ImportError as e:
        print(f"  skipped: {e.name} is not installed (pip install '.[mujoco]', Python >= 3.11)")


@dataclass(kw_only=True)
class Expert:
    """Run a task's scripted expert (privileged state) and report its success rate."""

    task: TaskName
    episodes: int = 20
    seed: int = 0
    """episode i uses seed SEED + i"""
    obs_mode: Literal["state", "rgbd"] = "state"
    json: str | None = None
    """write the summary (success_rate, episodes, mean_episode_length, ...) here"""
    video: Path | None = None
    """record the configured camera to this MP4 file"""
    randomization: str = "none"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    domain: str | None = None
    """domain values to pin (name: value): a YAML path, or the name of a shipped reality or test domain"""
    robot: str | None = None
    """simulate this robot (a hardware config name, e.g. so101) instead of the task's own"""


def run_expert(args: Expert) -> int:
    from policies.rollout import run_expert

    pinned = f", domain {args.domain} pinned" if args.domain else ""
    print(f"the scripted {args.task} expert under the randomization {args.randomization!r}{pinned}")
    summary = run_expert(
        args.task,
        args.episodes,
        args.seed,
        obs_mode=args.obs_mode,
        video=args.video,
        randomization=args.randomization,
        domain=args.domain,
        robot=args.robot,
    )
    print_summary(summary)
    if args.json:
        write_json(args.json, summary.to_dict())
    return 0


@dataclass(kw_only=True)
class Eval:
    """Success rate of policy bundles (or 'expert'), or a robustness sweep with a plot."""

    policy: list[str]
    """bundle folders or run folders, or 'expert'"""
    task: TaskName
    episodes: int = 100
    seed: int = 1000000
    """episode i uses seed SEED + i"""
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    domain: str | None = None
    """domain values to pin (name: value): a YAML path, or the name of a shipped reality or test domain"""
    sweep: str | None = None
    """NAME=LO:HI:K: evaluate at K values of one domain parameter"""
    plot: str | None = None
    """PNG: with --sweep, success vs parameter (one line per policy); else the online estimate of mu vs its true
    value over the first episodes (bundles with an estimator, --adapt)"""
    plot_episodes: int = 4
    """episodes drawn in the estimate plot"""
    adapt: bool = False
    """bundles with an estimator act on their online estimate"""
    oracle: bool = False
    """bundles with an estimator act on the true mu"""
    record: str | None = None
    """write the episodes as a LeRobotDataset in this new folder (one policy, no sweep)"""
    json: str | None = None
    """write the results here"""
    workers: int = 1
    """run the episodes (and a sweep's points) over this many local processes (the same results)"""
    ray: str | None = None
    """run them on this Ray cluster instead (auto: the cluster this machine is in; local: one started here; the same
    results; needs the cluster extra; docs/cluster.md)"""


def run_eval(args: Eval) -> int:
    import torch

    from policies.adaptive import AdaptivePolicy
    from policies.cluster import Executor
    from policies.evaluate import evaluate, parse_sweep, plot_estimates, plot_sweep, sweep
    from policies.loader import load
    from sim.randomization.config import load_domain

    torch.set_num_threads(1)  # one observation at a time: more threads only wait on each other
    modes = [m for m in ("adapt", "oracle") if getattr(args, m)]
    adaptive = {spec for spec in args.policy if spec != "expert" and isinstance(load(spec), AdaptivePolicy)}
    if modes and not adaptive:
        raise SystemExit(f"--{modes[0]} needs a universal policy with an estimator among --policy (s2r train-osi)")
    # each adaptive bundle runs once per requested mode (adapt when none is), every other policy once
    runs = [(spec, m) for spec in args.policy for m in ((modes or ["adapt"]) if spec in adaptive else [None])]
    if args.record and (args.sweep or len(runs) > 1):
        raise SystemExit("--record writes the episodes of one policy: give one --policy and no --sweep")
    if args.plot and not args.sweep and "adapt" not in [m for _, m in runs]:
        raise SystemExit("--plot without --sweep draws online estimates: give a bundle with an estimator (--adapt)")
    executor = Executor(args.workers, args.ray)
    if (executor.remote or executor.workers > 1) and (args.record or (args.plot and not args.sweep)):
        raise SystemExit("--record and the estimate plot are made in this process: leave out --workers and --ray")
    if args.sweep:
        name, values = parse_sweep(args.sweep)
        curves: dict[str, list] = {}
        for spec, mode in runs:
            result = sweep(
                [spec],
                args.task,
                name,
                values,
                args.episodes,
                args.seed,
                args.randomization,
                load_domain(args.domain),
                mode=mode,
                executor=executor,
            )
            curves[spec if mode is None else f"{spec} ({mode})"] = result["curves"][spec]
        result["curves"] = curves
        for label, points in curves.items():
            print(f"{label}: " + ", ".join(f"{pt['value']:g} -> {pt['success_rate']:.0%}" for pt in points))
        if args.plot:
            plot_sweep(result, args.plot, title=f"{args.task}: success vs {name}")
            print(f"plot: {args.plot}")
        if args.json:
            write_json(args.json, result)
        return 0
    results = {}
    for spec, mode in runs:
        traced = args.plot is not None and mode == "adapt"
        summary = evaluate(
            spec,
            args.task,
            args.episodes,
            args.seed,
            args.randomization,
            args.domain,
            mode=mode,
            trace_episodes=args.plot_episodes if traced else 0,
            record=args.record,
            executor=executor,
        )
        label = spec if mode is None else f"{spec} ({mode})"
        summary.policy = label
        print_summary(summary)
        if args.record:
            print(f"LeRobotDataset of the {summary.episodes} episodes: {args.record}")
        results[label] = summary.to_dict()
        if traced:
            path = args.plot if len(adaptive) == 1 else str(Path(args.plot).with_suffix("")) + f"_{Path(spec).name}.png"
            plot_estimates(summary.estimate_traces, path, title=f"{args.task}: online estimate vs true ({spec})")
            print(f"plot: {path}")
    if args.json:
        write_json(args.json, results[runs[0][0]] if len(runs) == 1 else results)
    return 0


@dataclass(kw_only=True)
class RandomizationPreview:
    """Render randomized camera views, color and depth side by side, to a PNG."""

    task: TaskName
    n: int = 16
    """number of views"""
    seed: int = 0
    randomization: str = "default"
    """none | default | a variant's name (stale_frames, ...) | PATH"""
    out: str
    """PNG path"""


def run_randomization_preview(args: RandomizationPreview) -> int:
    from sim.randomization.preview import contact_sheet, write_contact_sheet

    sheet = contact_sheet(args.task, args.n, args.seed, randomization=args.randomization)
    path = write_contact_sheet(args.out, sheet)
    print(f"{path}: {args.n} randomized {args.task} views (color | depth), seeds {args.seed}-{args.seed + args.n - 1}")
    return 0
