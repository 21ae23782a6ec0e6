"""``s2r calibrate bench``: record servo test-bench logs (a pendulum on one Dynamixel X servo) for ``s2r sysid``."""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from calibration.bench_trajectories import TRAJECTORIES
from calibration.servo_bench import DURATION_S, BenchError


@dataclass(kw_only=True)
class CalibrateBench:
    """Record servo test-bench logs for s2r sysid: one Dynamixel X servo swinging a pendulum through trajectory
    families (one with torque off), one JSON log per family and gain."""

    out: str
    """folder for the logs (TRAJECTORY_kpKP.json)"""
    mass: float
    """kg at the end of the pendulum"""
    length: float
    """m from the servo's axis to the mass"""
    port: str | None = None
    """serial port of the servo's bus"""
    mock: bool = False
    """record from the built-in mock bench (an emulated XL330 swinging a simulated pendulum) instead of a port"""
    ident: int = 1
    """the servo's id"""
    baudrate: int = 1_000_000
    kp: tuple[int, ...] = (100, 200, 400, 800)
    """position P gains (register values), each a log per trajectory"""
    trajectory: tuple[str, ...] = tuple(TRAJECTORIES)
    """trajectory families to record"""
    rate: float = 100.0
    """cycles per second (goal written, state read back)"""
    duration: float = DURATION_S
    """seconds per log"""
    vin: float = 7.4
    """nominal supply (V), written beside the measured one"""
    zero: float | None = None
    """motor angle (rad) of the pendulum hanging straight down (default: where it rests before the first log)"""


def run_calibrate_bench(args: CalibrateBench) -> int:
    from calibration.servo_bench import record
    from real.dynamixel.bus import DynamixelBus
    from real.dynamixel.emulator import EmulatorThread
    from real.stop_signals import Stopped, StopSignals

    unknown = sorted(set(args.trajectory) - set(TRAJECTORIES))
    if unknown:
        raise BenchError(f"unknown trajectory {unknown}; expected some of {sorted(TRAJECTORIES)}")
    if (args.port is None) == (not args.mock):
        raise BenchError("give either --port (a real bench) or --mock (the built-in one)")
    out = Path(args.out)
    failed = 0
    signals = StopSignals()  # restored last, after the bus and the mock are closed
    with ExitStack() as stack:
        stack.callback(signals.restore)
        port = args.port
        if args.mock:
            from mock.pendulum_bench import PendulumBench, bench_emulator

            emulator = bench_emulator(PendulumBench(mass=args.mass, length=args.length), args.ident)
            link = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "ttyBENCH"
            port = stack.enter_context(EmulatorThread(emulator, link)).link
            print(f"mock bench: an emulated XL330 (id {args.ident}) with {args.mass} kg at {args.length} m, on {port}")
        bus = stack.enter_context(DynamixelBus(port, args.baudrate))
        stack.callback(setattr, signals, "closing", True)  # closing: a signal is recorded, not raised
        zero = args.zero
        try:
            for trajectory in args.trajectory:
                for kp in args.kp:
                    path = out / f"{trajectory}_kp{kp}.json"
                    result = record(
                        bus, args.ident, trajectory, kp, args.mass, args.length, path, args.rate, args.duration,
                        zero=zero, vin=args.vin, signals=signals,
                    )  # fmt: skip
                    zero = result.log["zero_rad"]
                    torque = "torque off (read back)" if result.torque_off_read_back else "TORQUE OFF NOT CONFIRMED"
                    state = "complete" if result.complete else f"INCOMPLETE: {result.stopped}"
                    print(f"  {result.path}: {len(result.log['entries'])} samples, {state}, {torque}")
                    for warning in result.warnings:
                        print(f"    warning: {warning}")
                    failed += not (result.complete and result.torque_off_read_back)
                    if signals.received or not result.complete:
                        print(f"recording ended early ({result.stopped}): the logs written so far are kept")
                        return 1
        except Stopped as exc:  # between two logs: the last one was finished with torque off
            print(f"recording stopped ({exc}) between logs: the logs written so far are kept")
            return 1
    print(f"fit them: s2r sysid --logs '{out}/*.json' --out servo.yaml")
    return 1 if failed else 0
