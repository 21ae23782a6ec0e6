"""The torque gravity exerts about a PyBullet body's revolute joints, from its links' masses (the voltage servo
model's gearbox load, sim/voltage_servo.py)."""

from __future__ import annotations

import numpy as np
import pybullet as p

from sim.voltage_servo import GRAVITY


class GravityTorques:
    """Torque (N*m) that gravity exerts about revolute joints of a body (PyBullet joint indices), from the links
    beyond each joint at their masses and centres of mass. Computed here because PyBullet's
    ``calculateInverseDynamics`` keeps the masses the body had at its first call (``changeDynamics`` does not reach
    it), so it would miss mass randomization. The chain and the masses are read when it is built (the robot builds
    one at its first physics tick after its servo parameters change, after the env has set the masses); the poses
    at each call."""

    def __init__(self, body: int, joints: list[int], client: int) -> None:
        self.body, self.joints, self.client = body, list(joints), client
        n = p.getNumJoints(body, physicsClientId=client)
        self._links = list(range(n))
        parents = [p.getJointInfo(body, i, physicsClientId=client)[16] for i in range(n)]
        # beyond[k, i]: link i moves with joint k
        self._beyond = np.array([[float(_descends(i, j, parents)) for i in range(n)] for j in self.joints])
        self._axes = np.array([p.getJointInfo(body, j, physicsClientId=client)[13] for j in self.joints])
        mass = np.array([p.getDynamicsInfo(body, i, physicsClientId=client)[0] for i in range(n)])
        self._weight = mass[:, None] * np.array([0.0, 0.0, -GRAVITY])  # the envs' gravity

    def __call__(self) -> np.ndarray:
        states = p.getLinkStates(self.body, self._links, physicsClientId=self.client)
        com = np.array([s[0] for s in states])
        origin = np.array([states[j][4] for j in self.joints])  # a joint's frame is its child link's URDF frame
        quat = np.array([states[j][5] for j in self.joints])  # x, y, z, w
        u, w = quat[:, :3], quat[:, 3:]
        t = 2 * _cross(u, self._axes)
        axis = self._axes + w * t + _cross(u, t)  # the joint axes in the world
        # sum over the links beyond each joint of (com - origin) x weight
        moment = self._beyond @ _cross(com, self._weight) - _cross(origin, self._beyond @ self._weight)
        return np.sum(axis * moment, axis=1)


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cross product of (n, 3) arrays (np.cross costs more than the arithmetic at this size)."""
    return np.stack(
        [
            a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
            a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
            a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0],
        ],
        axis=1,
    )


def _descends(link: int, joint: int, parents: list[int]) -> bool:
    """Whether ``link`` is ``joint``'s child link or below it."""
    while link != -1:
        if link == joint:
            return True
        link = parents[link]
    return False
