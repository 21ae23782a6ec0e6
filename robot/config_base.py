"""Building blocks of the robot description's typed sections (:mod:`robot.description`, :mod:`robot.lidar`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Unknown keys are errors, and every float must be finite (YAML's ``.inf`` and ``.nan`` are refused) unless a
    field says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Vec3 = Annotated[list[float], Field(min_length=3, max_length=3)]


class Pose(Strict):
    """A rigid transform: ``xyz`` in m, ``rpy`` in rad (URDF fixed-axis roll, pitch, yaw)."""

    xyz: Vec3 = [0.0, 0.0, 0.0]
    rpy: Vec3 = [0.0, 0.0, 0.0]
