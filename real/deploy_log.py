"""The hardware log of a deployment: every topic ``s2r deploy`` writes, and what each message holds, in one place.

Times are the host's monotonic clock (ns) of the reading they describe (:mod:`real.hardware_log` adds the Unix
time viewers use). A cycle's messages are written in a fixed order (joints first, the loop's timing last), which the
replay tools read back.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from real.frames import RobotFrames, camera_calibration, camera_frame, frame_transforms, laser_scan, lidar_frame
from real.hardware_log import IMAGE_KEYS, HardwareLog, foxglove_time
from real.safety import SafetyEvent
from robot.description import HardwareConfig, urdf_path
from robot.joint_state import JointState

#: Topic -> what it holds.
TOPICS = {
    "/robot_description": "the robot's URDF (for viewers' 3D panels)",
    "/lifecycle": "robot state changes (inactive, active, finalized) with the torque state read back",
    "/episode": "episode start (seed), end (outcome, steps) and, on a real robot, the operator's label",
    "/joint_states": "joint names, positions, velocities, efforts in config order (SI)",
    "/tf": "foxglove.FrameTransforms of the robot's links and the camera mount",
    "/policy/observation": "the observation the policy acted on (images on their own topics)",
    "/policy/observation/rgb": "the reduced color frame the policy saw, lossless",
    "/policy/observation/depth": "the reduced depth frame the policy saw, lossless",
    "/policy/action": "the policy's action",
    "/command": "joint targets the task asked for and those sent after the safety filter",
    "/osi/estimate": "an adaptive policy's dynamics estimate (physical units)",
    "/policy/memory": "a policy with memory: the window of recent readings and actions it acted on",
    "/loop": "cycle timing: lateness, act time, the frame's number, capture, arrival and age",
    "/camera/color": "foxglove.CompressedImage (JPEG) of the camera's color frame",
    "/camera/depth": "foxglove.RawImage (16UC1, mm) of the aligned depth frame",
    "/camera/calibration": "foxglove.CameraCalibration of the color stream",
    "/lidar/scan": "foxglove.LaserScan of each new whole scan the policy acted on, all 360 readings (m), sensor frame",
    "/reality/privileged": "a mock robot's true privileged state (what only the reality knows)",
    "/safety": "safety events, bus faults, camera stalls and how the run ended",
    "/teleop/leader": "teleoperation: the leader arm's joints in the follower's order (SI), the follower's targets",
}


class DeployLog:
    """A deployment's MCAP log on ``path`` for the robot in ``config``; ``metadata`` goes in the file's header and
    ``guard`` is the context manager each write runs in (a stop signal must not cut a record in half)."""

    def __init__(
        self,
        path: str,
        config: HardwareConfig,
        metadata: dict[str, str],
        guard: Callable[[], AbstractContextManager[None]],
    ) -> None:
        self.config = config
        self.log = HardwareLog(path, metadata, guard=guard)
        self.frames = RobotFrames(config, urdf_path(config))
        self._scan_stamp: int | None = None  # the last scan written: each goes in once
        self.log.write("/robot_description", {"data": urdf_path(config).read_text()})

    @property
    def closed(self) -> bool:
        return self.log.closed

    def lifecycle(self, state: str, **fields: Any) -> None:
        self.log.write("/lifecycle", {"state": state, **fields})

    def episode_start(self, episode: int, seed: int | None) -> None:
        self.log.write("/episode", {"event": "start", "episode": episode, "seed": seed})

    def episode_end(self, episode: int, outcome: str, steps: int) -> None:
        self.log.write("/episode", {"event": "end", "episode": episode, "outcome": outcome, "steps": steps})

    def episode_label(self, episode: int, label: str) -> None:
        """The operator's verdict on a real robot's episode: success, failure or skip."""
        self.log.write("/episode", {"event": "label", "episode": episode, "label": label})

    def safety(self, kind: str, detail: str, joints: list[str] | None = None, stamp_ns: int | None = None) -> None:
        self.log.write("/safety", {"kind": kind, "joints": joints or [], "detail": detail}, stamp_ns)

    def safety_events(self, events: list[SafetyEvent]) -> None:
        for e in events:
            self.safety(e.kind, e.detail, e.joints, e.stamp_ns)

    def joint_states(self, joints: JointState) -> None:
        """A reading of the joints (config order, SI) and the robot's link transforms it puts them at."""
        state = {"name": self.config.joint_names, "position": joints.position, "velocity": joints.velocity}
        self.log.write("/joint_states", {**state, "effort": joints.effort}, joints.stamp_ns)
        self.log.write_message("/tf", frame_transforms(self.frames.transforms(joints.position)), joints.stamp_ns)

    def cycle(
        self,
        joints: JointState,
        observation: dict[str, Any],
        action: np.ndarray | None,
        command: tuple[np.ndarray, np.ndarray],
        loop: dict[str, Any],
        estimate: dict[str, float] | None = None,
        frame: Any | None = None,
        camera: Any | None = None,
        privileged: np.ndarray | None = None,
        scan: tuple[str, Any] | None = None,
        memory: list[float] | None = None,
    ) -> None:
        """One control cycle: the joints read, what the policy saw and did (``action`` None: it held, no fresh
        frame), the targets asked for and sent, the loop's timing, the camera frame, a mock's true state, and
        ``scan`` (the lidar's name and the :class:`real.lidar.scan.Scan` acted on; written once per scan) and a
        policy's ``memory`` (the window it acted on)."""
        self.joint_states(joints)
        if action is not None:
            self.log.write("/policy/observation", {k: v for k, v in observation.items() if k not in IMAGE_KEYS})
            for key in IMAGE_KEYS:  # the reduced frames, exactly: a replay recomputes the actions
                if key in observation:
                    self.log.write_lossless(f"/policy/observation/{key}", observation[key])
            self.log.write("/policy/action", {"action": action})
        else:
            self.safety("camera_stall", "holding")
        self.log.write("/command", {"requested": command[0], "sent": command[1]})
        if estimate is not None:
            self.log.write("/osi/estimate", estimate)
        if memory is not None and action is not None:
            self.log.write("/policy/memory", {"window": memory})
        self.log.write("/loop", loop)
        if frame is not None:
            optical = camera_frame(camera.name)
            self.log.write_color("/camera/color", frame.color, frame.host_time_ns, optical)
            if frame.depth is not None:
                self.log.write_depth("/camera/depth", frame.depth, frame.host_time_ns, optical)
            calibration = camera_calibration(camera.intrinsics, optical)
            self.log.write_message("/camera/calibration", calibration, frame.host_time_ns)
        if privileged is not None:
            self.log.write("/reality/privileged", {"vector": privileged})
        if scan is not None and scan[1].stamp_ns != self._scan_stamp:
            name, taken = scan
            self._scan_stamp = taken.stamp_ns
            when = foxglove_time(taken.stamp_ns + self.log.clock_offset_ns)
            message = laser_scan(taken.ranges_m, taken.intensities, lidar_frame(name), when)
            self.log.write_message("/lidar/scan", message, taken.stamp_ns)

    def close(self) -> None:
        self.log.close()


def torque_fields(robot: Any) -> dict[str, Any]:
    """The torque state read back from ``robot``'s servos (:class:`real.robot.Robot`), for a /lifecycle message:
    ``torque`` is False only when every motor confirmed torque off, None (unknown) when one could not be reached."""
    report = robot.torque_report
    if report is None:
        return {"torque": None}
    return {
        "torque": False if report.confirmed else None,
        "torque_off": report.off,
        "unreachable": report.unreachable_by_name(),
    }
