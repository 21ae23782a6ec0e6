"""What a motor bus reports beyond joint values, whatever the servo protocol: a torque-off pass read back
(:class:`TorqueReport`) and the bus status of the last state read (:class:`BusStatus`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from robot.description import HardwareConfig


@dataclass
class TorqueReport:
    """What a torque-off pass established, read back from the servos: ``off`` the motors whose Torque Enable read
    0 afterwards, ``unreachable`` motor id -> why it could not be confirmed (its torque may still be on)."""

    off: list[int] = field(default_factory=list)
    unreachable: dict[int, str] = field(default_factory=dict)
    port_failed: bool = False  # the serial port itself failed on the way (PortError)

    @property
    def confirmed(self) -> bool:
        return not self.unreachable

    def then(self, retry: TorqueReport) -> TorqueReport:
        """This pass followed by ``retry`` over its unreachable motors: the motors either read back off."""
        return TorqueReport(sorted(self.off + retry.off), retry.unreachable, retry.port_failed)

    def unreachable_by_name(self) -> dict[str, str]:
        """``unreachable`` with string keys, as JSON (the summary, the log) has them."""
        return {str(k): v for k, v in self.unreachable.items()}

    def describe(self, config: HardwareConfig) -> str:
        """One line for a summary: "torque off (read back on all 5 motors)" or which motors to cut power to."""
        if self.confirmed:
            return f"torque off (read back on all {len(self.off)} motors)"
        bad = "; ".join(f"{config.motor_label(i)}: {why}" for i, why in sorted(self.unreachable.items()))
        ids = ", ".join(str(i) for i in sorted(self.unreachable))
        return (
            f"TORQUE NOT CONFIRMED OFF on {bad}; torque off read back on {sorted(self.off)}: cut power to motor(s) "
            f"{ids} before touching the robot"
        )


@dataclass
class BusStatus:
    """What the last state read said beyond the joints: motors whose bus watchdog has tripped, and motors whose
    goal register differs from the last goal sent (id -> (goal read, goal sent), raw)."""

    watchdog_tripped: list[int] = field(default_factory=list)
    goal_refused: dict[int, tuple[int, int]] = field(default_factory=dict)
