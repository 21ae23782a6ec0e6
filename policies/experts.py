"""Scripted experts that use privileged state: the demo's policies and the teachers of later distillation."""

from __future__ import annotations

import numpy as np


class GraspExpert:
    """Approach above the object, descend, close, lift. Reads ``info["privileged"]`` of ``s2r/Grasp-v0``.

    Stateful (a phase machine): call :meth:`reset` at the start of each episode.
    """

    hover = 0.05  # m above the grasp point while approaching
    lift_to = 0.09  # m above the grasp point at the end
    close_steps = 6  # control cycles to wait for the fingers to close
    lift_speed = 0.5  # fraction of the maximum tool speed while lifting

    def __init__(self, max_step: float = 0.02) -> None:
        self.max_step = max_step
        self.reset()

    def reset(self) -> None:
        self.phase = "approach"
        self.closing_steps = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        priv = info["privileged"]
        obj = np.asarray(priv["object_position"], dtype=float)
        tool = np.asarray(priv["tool_position"], dtype=float)
        height = float(priv["object"]["height"])
        # Tool (fingertips) a few mm above the table, or mid-height on tall objects.
        grasp = obj.copy()
        grasp[2] = max(0.006, obj[2] - height / 2 + 0.006)
        gripper = -1.0
        if self.phase == "approach":
            goal = grasp + [0, 0, self.hover]
            if np.linalg.norm((goal - tool)[:2]) < 0.006 and abs(goal[2] - tool[2]) < 0.01:
                self.phase = "descend"
        if self.phase == "descend":
            goal = grasp
            if np.linalg.norm(goal - tool) < 0.006:
                self.phase = "close"
        if self.phase == "close":
            goal, gripper = grasp, 1.0
            self.closing_steps += 1
            if self.closing_steps >= self.close_steps:
                self.phase = "lift"
        if self.phase == "lift":
            goal, gripper = grasp + [0, 0, self.lift_to], 1.0
        limit = self.lift_speed if self.phase == "lift" else 1.0
        delta = np.clip((goal - tool) / self.max_step, -limit, limit)
        return np.concatenate([delta, [gripper]]).astype(np.float32)


class NavigateExpert:
    """Plan a shortest path on the occupancy grid of the known room, then follow it with pure pursuit.

    Reads ``info["privileged"]`` of ``s2r/Navigate-v0`` (true pose, goal, obstacles). Stateful: the path is
    planned on the first call after :meth:`reset`.
    """

    lookahead = 0.25  # m
    clearance = 0.05  # m added to the robot radius when planning

    def __init__(self, max_linear: float = 0.20, max_angular: float = 2.5) -> None:
        self.max_linear, self.max_angular = max_linear, max_angular
        self.reset()

    def reset(self) -> None:
        self.path: np.ndarray | None = None
        self.progress = 0

    def act(self, obs: dict, info: dict) -> np.ndarray:
        from sim.nav_map import OccupancyGrid

        priv = info["privileged"]
        pose = np.asarray(priv["robot_pose"], dtype=float)
        goal = np.asarray(priv["goal"], dtype=float)
        if self.path is None:
            obstacles = [o[:3] for o in priv["obstacles"]]
            grid = OccupancyGrid(priv["room_half"], obstacles, priv["robot_radius"] + self.clearance)
            self.path = grid.shortest_path(pose[:2], goal)
            if self.path is None:  # start inside the inflated margin: plan with the bare radius
                grid = OccupancyGrid(priv["room_half"], obstacles, priv["robot_radius"])
                self.path = grid.shortest_path(pose[:2], goal)
            if self.path is None:
                self.path = np.array([pose[:2], goal])
        # Advance along the path: the first point at least `lookahead` away, after the closest one.
        d = np.linalg.norm(self.path - pose[:2], axis=1)
        self.progress = max(self.progress, int(np.argmin(d[self.progress :])) + self.progress)
        ahead = np.nonzero(d[self.progress :] >= self.lookahead)[0]
        target = self.path[self.progress + ahead[0]] if len(ahead) else goal
        dx, dy = target - pose[:2]
        heading_error = (np.arctan2(dy, dx) - pose[2] + np.pi) % (2 * np.pi) - np.pi
        w = np.clip(3.0 * heading_error, -self.max_angular, self.max_angular)
        v = self.max_linear * max(0.0, np.cos(heading_error)) ** 4
        v = min(v, 1.5 * np.linalg.norm(goal - pose[:2]) + 0.02)
        return np.array([v / self.max_linear, w / self.max_angular], dtype=np.float32)
