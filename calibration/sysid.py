"""``s2r sysid``: fit servo models to logs, score them on other logs, write parameters, reports and plots.

Two kinds of logs, chosen by extension (one kind per run):

- ``.json``: single-servo test-bench recordings (the real XL330 pendulum format); fits the voltage-controlled DC
  motor model of :mod:`sim.voltage_servo` (:mod:`calibration.servo_sysid`).
- ``.mcap``: a robot's hardware logs written by ``s2r deploy``; fits the servo parameters the simulated robot
  and the tasks use (:mod:`calibration.robot_sysid`), which can pin a domain or centre randomization ranges.

The parameters file (YAML) records the kind, the fitted values, and the fit's logs and score, so that
``--params FILE --eval GLOB`` can score it later on other logs.
"""

from __future__ import annotations

import dataclasses
import glob
import json
from pathlib import Path
from typing import Any

import yaml

from calibration import robot_sysid, servo_sysid, servo_torque_off, servo_validation
from calibration.servo_sysid import SysidError
from robot.tasks import task_with_kind
from sim.voltage_servo import VoltageServoParams, params_from_record, params_record


def expand(patterns: list[str] | None) -> list[str]:
    """Files matching the glob patterns, sorted, each once; a pattern matching nothing is an error."""
    out: list[str] = []
    for pattern in patterns or []:
        found = sorted(glob.glob(pattern))
        if not found:
            raise SysidError(f"no file matches {pattern!r}")
        out += [f for f in found if f not in out]
    return out


def _refuse_same_names(paths: list[str]) -> None:
    """Logs are reported (and pooled) by file name without extension: two files that share one would overwrite each
    other's figures."""
    seen: dict[str, str] = {}
    for path in paths:
        name = Path(path).stem
        if name in seen:
            raise SysidError(f"{seen[name]} and {path}: two logs named {name!r}; rename one (reports key logs by name)")
        seen[name] = path


def log_kind(paths: list[str]) -> str:
    kinds = {Path(p).suffix.lower() for p in paths}
    if kinds == {".json"}:
        return "voltage_servo"
    if kinds == {".mcap"}:
        return "sim_servo"
    raise SysidError(f"logs must be all .json (servo test bench) or all .mcap (robot), got {sorted(kinds)}")


def _latency_text(latency: float | None) -> str:
    """The latency read from Present PWM, for the summary (files fitted before it was read have none)."""
    return "not read (fitted)" if latency is None else f"{1000 * latency:.2f} ms"


def _voltage_params(record: dict[str, Any], source: str) -> VoltageServoParams:
    try:
        return params_from_record(record, source)
    except (ValueError, TypeError) as exc:
        raise SysidError(str(exc)) from exc


def _rounded(score: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(score), parse_float=lambda s: round(float(s), 6))


# -- the servo test bench (JSON logs) -----------------------------------------------------------------------------


def _voltage_report(
    params: VoltageServoParams, fit_logs: list[servo_sysid.ServoLog], eval_logs: list[servo_sysid.ServoLog]
) -> dict[str, Any]:
    default = VoltageServoParams()
    report: dict[str, Any] = {}
    for label, logs in (("fit_logs", fit_logs), ("eval_logs", eval_logs)):
        if logs:
            report[label] = {
                "fitted": _rounded(servo_sysid.score(params, logs)),
                "default": _rounded(servo_sysid.score(default, logs)),
                "perfect_tracking": _rounded(servo_sysid.perfect_tracking_score(logs)),
            }
    return report


def _validation_report(v: servo_validation.Validation) -> dict[str, Any]:
    """A model's validation: the means over the split kinds at the top, each kind's figures and folds beside."""
    return _rounded(
        {
            "n_params": v.n_params,
            "train_mae_rad": v.train_mae_rad,
            "val_mae_rad": v.val_mae_rad,
            "val_rms_rad": v.val_rms_rad,
            "kinds": {
                name: {
                    "train_mae_rad": k.train_mae_rad,
                    "val_mae_rad": k.val_mae_rad,
                    "val_rms_rad": k.val_rms_rad,
                    "val_over_train": k.ratio,
                    "folds": k.folds,
                }
                for name, k in v.kinds.items()
            },
        }
    )


def _fit_voltage(
    fit_paths: list[str],
    fit_logs: list[servo_sysid.ServoLog],
    model: str,
    iterations: int,
    seed: int,
    progress: bool,
) -> tuple[dict[str, Any], list[str]]:
    """Cross-validate the candidate models (``auto``: all; a named one: it and the Coulomb + viscous baseline),
    then fit the chosen one on every log: the parameters record and the warnings."""
    warnings: list[str] = []
    if model == servo_sysid.AUTO:
        candidates = list(servo_sysid.MODELS)
    else:
        candidates = list(dict.fromkeys(["coulomb_viscous", model]))
    validations = []
    if len(fit_logs) >= 2:
        validations = servo_validation.cross_validate(fit_logs, candidates, iterations, seed, progress)
    elif model == servo_sysid.AUTO:
        raise SysidError("--model auto chooses by validation: give at least two logs (better: two trajectory families)")
    else:
        warnings.append("one log: nothing to validate the fit on")
    chosen = servo_validation.choose(validations).model if model == servo_sysid.AUTO else model
    for v in validations:
        for kind in v.overfit_kinds():
            k = v.kinds[kind]
            warnings.append(
                f"{v.model}: across {kind} splits, validation MAE {1000 * k.val_mae_rad:.1f} mrad is {k.ratio:.1f}x "
                f"its training MAE ({1000 * k.train_mae_rad:.1f}): it does not generalize across these splits"
            )
    result = servo_sysid.fit(fit_logs, model=chosen, iterations=iterations, seed=seed, progress=progress)
    if result.stopped != "converged":
        warnings.append(f"the fit stopped at the generation cap ({iterations}) before converging: raise --iterations")
    torque_off_s, swinging_s, released, warning = servo_torque_off.coverage(result.params, fit_logs)
    warnings += [warning] if warning else []
    record = params_record(result.params, chosen) | {
        "fit": {
            "logs": [str(p) for p in fit_paths],
            "mae_rad": round(result.mae_rad, 6),
            "generations": result.generations,
            "stopped": result.stopped,
            "wall_s": result.wall_s,
            "simulated_s": result.simulated_s,
            "seed": seed,
            "loads": sorted(released),
            "torque_off_s": round(torque_off_s, 3),
            "torque_off_swinging_s": round(swinging_s, 3),
            "released_pendulum": released,
            "fitted": list(result.free),
            "firmware_from_pwm": None if result.firmware is None else dataclasses.asdict(result.firmware),
            "peak_current_demand_a": result.current_demand_a,
        },
        "validation": {
            "chosen_by": "lowest validation MAE, mean over the split kinds"
            if model == servo_sysid.AUTO
            else "named with --model",
            "splits": {kind: [f["split"] for f in k.folds] for kind, k in validations[0].kinds.items()}
            if validations
            else {},
            "models": {v.model: _validation_report(v) for v in validations},
        },
    }
    return record, warnings


def run_voltage(
    fit_paths: list[str],
    eval_paths: list[str],
    params_path: str | None,
    out: str | None,
    model: str,
    iterations: int,
    seed: int,
    plot: str | None,
    progress: bool = True,
) -> dict[str, Any]:
    for paths in (fit_paths, eval_paths):
        _refuse_same_names(paths)
    fit_logs = [servo_sysid.load_servo_log(p) for p in fit_paths]
    eval_logs = [servo_sysid.load_servo_log(p) for p in eval_paths]
    record: dict[str, Any]
    warnings: list[str] = []
    if params_path:
        record = load_params(params_path, ("voltage_servo",))
        params = _voltage_params(record, params_path)
    else:
        record, warnings = _fit_voltage(fit_paths, fit_logs, model, iterations, seed, progress)
        params = _voltage_params(record, "the fit")
        if out:
            robot_sysid.write_yaml(
                record, out, header="s2r sysid: voltage-controlled servo model (sim/voltage_servo.py)"
            )
    evaluated = "eval_logs" if eval_logs else "fit_logs"
    overall = servo_sysid.score(params, eval_logs or fit_logs)
    report = {
        "kind": "voltage_servo",
        "model": record.get("model"),
        "evaluated_on": evaluated,
        "mae_mrad": round(1000 * overall["mae_rad"], 3),
        "rmse_mrad": round(1000 * overall["rms_rad"], 3),
    }
    for phase in ("on", "off"):  # where the evaluated logs turn torque off
        if f"mae_torque_{phase}_rad" in overall:
            value = overall[f"mae_torque_{phase}_rad"]
            report[f"mae_torque_{phase}_mrad"] = None if value is None else round(1000 * value, 3)
    report["params"] = record["params"]
    for key in ("fit", "validation"):
        if key in record:
            report[key] = record[key]
    report |= _voltage_report(params, fit_logs, eval_logs)
    report["warnings"] = warnings
    if plot:
        shown = eval_logs or fit_logs
        servo_sysid.plot(shown, {"default": VoltageServoParams(), "fitted": params}, plot, title="s2r sysid")
        report["plot"] = plot
    return report


# -- a robot (MCAP logs) ------------------------------------------------------------------------------------------


def run_robot(
    fit_paths: list[str],
    eval_paths: list[str],
    params_path: str | None,
    out: str | None,
    robot: str | None,
    model: str,
    iterations: int,
    seed: int,
    plot: str | None,
    emit_domain: str | None,
    emit_ranges: str | None,
    progress: bool = True,
) -> dict[str, Any]:
    """``model``: ``sim`` fits the PyBullet servo parameters the tasks randomize (a domain); ``load`` or
    ``coulomb_viscous`` fits a voltage servo model (:mod:`sim.voltage_servo`), usable as the config's
    ``sim.servo_model``."""
    config, fit_logs = robot_sysid.load_robot_logs(fit_paths, robot) if fit_paths else (None, [])
    if eval_paths:
        eval_config, eval_logs = robot_sysid.load_robot_logs(eval_paths, robot)
        if config is not None and eval_config.name != config.name:
            raise SysidError(f"fit logs are from {config.name!r}, eval logs from {eval_config.name!r}")
        config = eval_config
    else:
        eval_logs = []
    assert config is not None
    task = task_with_kind(config.kind)
    targets: dict[str, float] = {}
    voltage = None
    if params_path:
        record = load_params(params_path, ("sim_servo", "voltage_servo"))
        if record.get("robot", config.name) != config.name:
            raise SysidError(f"{params_path}: fitted on robot {record['robot']!r}, these logs are {config.name!r}")
        if record["kind"] == "voltage_servo":
            voltage = _voltage_params(record, params_path)
        else:
            targets = record["targets"]
    elif model == "sim":
        targets, mae = robot_sysid.fit(config, fit_logs, iterations=iterations, seed=seed, progress=progress)
        record = {
            "kind": "sim_servo",
            "robot": config.name,
            "task": task,
            "targets": {k: round(v, 6) for k, v in targets.items()},
            "domain": {k: round(v, 6) for k, v in robot_sysid.domain_from_targets(task, targets).items()},
            "fit": {"logs": [str(p) for p in fit_paths], "mae_rad": round(mae, 6), "seed": seed},
        }
    else:
        voltage, mae = robot_sysid.fit_voltage(
            config, fit_logs, model=model, iterations=iterations, seed=seed, progress=progress
        )
        record = params_record(voltage, model) | {
            "robot": config.name,
            "fit": {"logs": [str(p) for p in fit_paths], "mae_rad": round(mae, 6), "seed": seed},
        }
    if out and not params_path:
        header = "s2r sysid: " + (
            "simulated servo parameters (env targets)"
            if record["kind"] == "sim_servo"
            else "voltage servo model; use it as the hardware config's sim.servo_model"
        )
        robot_sysid.write_yaml(record, out, header=header)
    unit = "rad" if config.kind == "arm" else "rad/s"  # wheels: their velocity (their angle drifts freely)
    report: dict[str, Any] = {"kind": record["kind"], "robot": config.name, "unit": unit}
    report |= {k: record[k] for k in ("targets", "domain", "params", "model") if k in record}
    default = VoltageServoParams() if voltage is not None else None
    for label, logs in (("fit_logs", fit_logs), ("eval_logs", eval_logs)):
        if logs:
            report[label] = {
                "fitted": _rounded(robot_sysid.score(config, logs, targets, voltage)),
                "default": _rounded(robot_sysid.score(config, logs, {}, default)),
            }
    shown = "eval_logs" if eval_logs else "fit_logs"  # the overall figures: held-out logs when there are some
    report |= {
        "evaluated_on": shown,
        "mae_mrad": round(1e3 * report[shown]["fitted"]["mae_rad"], 3),
        "rmse_mrad": round(1e3 * report[shown]["fitted"]["rms_rad"], 3),
    }
    if (emit_domain or emit_ranges) and record["kind"] != "sim_servo":
        raise SysidError("--emit-domain/--emit-ranges need the sim servo parameters (--model sim)")
    if emit_domain:
        robot_sysid.write_yaml(record["domain"], emit_domain, header=f"domain fitted by s2r sysid on {config.name}")
        report["domain_file"] = emit_domain
    if emit_ranges:
        ranges = robot_sysid.centred_ranges(task, record["domain"])
        robot_sysid.write_yaml(ranges, emit_ranges, header=f"{task} randomization centred by s2r sysid")
        report["ranges_file"] = emit_ranges
    if plot:
        models = {"default": ({}, default), "fitted": (targets, voltage)}
        robot_sysid.plot(config, (eval_logs or fit_logs)[0], models, plot)
        report["plot"] = plot
    return report


def load_params(path: str | Path, kinds: tuple[str, ...]) -> dict[str, Any]:
    """A parameters file written by ``s2r sysid``, of one of ``kinds``."""
    try:
        record = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SysidError(f"{path}: not a readable parameters file ({exc})") from exc
    found = record.get("kind") if isinstance(record, dict) else None
    if found not in kinds:
        raise SysidError(f"{path}: parameters of kind {found!r}, but these logs need {' or '.join(kinds)}")
    return record


def run(
    logs: list[str] | None,
    eval_logs: list[str] | None,
    params: str | None = None,
    out: str | None = None,
    model: str | None = None,
    iterations: int | None = None,
    seed: int = 0,
    plot: str | None = None,
    robot: str | None = None,
    emit_domain: str | None = None,
    emit_ranges: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit on ``logs`` (globs) unless ``params`` is given, score on ``eval_logs``; see the module docstring."""
    fit_paths, eval_paths = expand(logs), expand(eval_logs)
    if not fit_paths and not params:
        raise SysidError("give --logs to fit, or --params with --eval to score")
    if params and not eval_paths:
        raise SysidError("--params scores fitted parameters: give --eval logs")
    if not params and not out:
        raise SysidError("give --out PARAMS.yaml to keep the fit")
    kind = log_kind(fit_paths + eval_paths)
    if kind == "voltage_servo":
        model = model or servo_sysid.AUTO
        if model == "sim":
            raise SysidError("--model sim fits a robot's simulated servos: it needs robot logs (.mcap)")
        if emit_domain or emit_ranges:
            raise SysidError(
                "--emit-domain/--emit-ranges need a robot fit (MCAP logs): the test bench's voltage model "
                "has no counterpart among the tasks' randomized parameters"
            )
        return run_voltage(fit_paths, eval_paths, params, out, model, iterations or 300, seed, plot, progress)
    if model == servo_sysid.AUTO:
        raise SysidError("--model auto validates test-bench models (.json logs); robot logs take sim or a named model")
    return run_robot(
        fit_paths,
        eval_paths,
        params,
        out,
        robot,
        model or "sim",
        iterations or 20,
        seed,
        plot,
        emit_domain,
        emit_ranges,
        progress,
    )


def _phases_text(score: dict[str, Any]) -> str:
    def mrad(rad: float | None) -> str:
        return "n/a" if rad is None else f"{1000 * rad:.1f}"

    return f"torque on {mrad(score['mae_torque_on_rad'])}, torque off {mrad(score['mae_torque_off_rad'])}"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """Human-readable lines: validation per model, MAE (mrad, weighted by time) per log set and model, warnings."""
    lines = []
    validation = report.get("validation", {})
    if validation.get("models"):
        splits = validation.get("splits") or {}
        # files fitted before validation had kinds list their family splits alone
        splits = splits if isinstance(splits, dict) else {"family": splits}
        kinds = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in splits.items())
        lines.append(f"validation ({kinds}), MAE mrad weighted by time, validation / training:")
        for name, v in validation["models"].items():
            mark = " <- chosen" if name == report.get("model") else ""
            per_kind = ", ".join(
                f"{kind} {1000 * k['val_mae_rad']:.1f} / {1000 * k['train_mae_rad']:.1f}"
                for kind, k in v.get("kinds", {}).items()
            )
            lines.append(
                f"  {name} ({v['n_params']} params): validation {1000 * v['val_mae_rad']:.1f}, "
                f"train {1000 * v['train_mae_rad']:.1f}" + (f" ({per_kind})" if per_kind else "") + mark
            )
    if "fit" in report and "stopped" in report["fit"]:
        f = report["fit"]
        lines.append(
            f"fit ({report['model']}): {f['generations']} generations, {f['stopped']}, {f['wall_s']:.0f} s, "
            f"{f['simulated_s']:.0f} s simulated"
        )
        law = f.get("firmware_from_pwm")
        if law:
            lines.append(
                f"  firmware read from Present PWM, not fitted: gain_scale {law['gain_scale']:.3f}, max_duty "
                f"{law['max_duty']:.3f}, latency {_latency_text(law.get('latency', None))} ({law['samples']} samples, "
                f"residual {100 * law['residual']:.2f} % of full duty)"
            )
        demand = f.get("peak_current_demand_a")
        if demand is not None and "max_current" not in f.get("fitted", ["max_current"]):
            lines.append(
                f"  current limit not fitted: the logs ask at most {demand:.2f} A of the motor, under the "
                f"{report['params']['max_current']:.2f} A it keeps (the register default)"
            )
    for label in ("fit_logs", "eval_logs"):
        if label not in report:
            continue
        scores = report[label]
        parts = [f"{name} {1000 * s['mae_rad']:.1f}" for name, s in scores.items()]
        unit = "m" + report.get("unit", "rad")
        lines.append(f"{label.replace('_', ' ')} ({len(scores['fitted']['logs'])}): MAE {unit} " + ", ".join(parts))
        if "mae_torque_off_rad" in scores["fitted"]:
            lines.append("  fitted MAE " + _phases_text(scores["fitted"]))
        for log, s in scores["fitted"]["logs"].items():
            d = scores["default"]["logs"][log]
            phases = f" ({_phases_text(s)})" if "mae_torque_off_rad" in s else ""
            lines.append(
                f"  {log}: fitted MAE {1000 * s['mae_rad']:.1f} RMS {1000 * s['rms_rad']:.1f}{phases}, "
                f"default MAE {1000 * d['mae_rad']:.1f}"
            )
    lines += [f"warning: {w}" for w in report.get("warnings", [])]
    return lines
