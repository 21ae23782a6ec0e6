"""The simulated camera of a task env: its randomized intrinsics and mount, lighting, rendering (also of a frame
taken before the present physics step) and the image noise of its observations.

:class:`CameraView` is a mixin of :class:`sim.envs.robot_env.RobotEnv`: it reads the env's ``client``,
``params``, ``robot``, ``camera_config``, ``intrinsics_full``, ``image_size``, ``supersample``, ``crop``,
``render_mode``, ``np_random`` and ``_early_frame``, and sets the ``intrinsics_*``, the light and ``image_noise``.
A distillation sets ``record_surface``: each observation then also leaves ``surface_mask``, which pixels show the
env's ``surface_bodies`` (the grasp's table), for augmentations that repaint them (:mod:`policies.surface_overlay`).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pybullet as p

from robot.intrinsics import Intrinsics
from sim.camera_model import RenderedFrame, render, rotation_from_rpy
from sim.randomization.image_noise import ImageNoise, image_noise_params

#: Resolution of the frames ``render()`` returns (for videos), a resize of the configured color stream.
VIDEO_SIZE = (320, 240)


def camera_mount(camera: Any, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) and rotation (camera_link: x forward) of camera config ``camera`` in its parent frame, with the
    params' mount offsets (``camera.position_offset`` in the mount frame, ``camera.rotation_offset`` rpy)."""
    mount = camera.mount
    base_R = rotation_from_rpy(mount.rpy)
    R = base_R @ rotation_from_rpy(params["camera.rotation_offset"])
    return np.array(mount.xyz) + base_R @ np.asarray(params["camera.position_offset"], dtype=float), R


class CameraView:
    """The env's camera (see the module docstring for what it expects of the env)."""

    #: Bodies whose pixels :attr:`surface_mask` marks (set by the env; none: the mask is all zeros).
    surface_bodies: tuple[int, ...] = ()
    #: Render which body each pixel shows and keep :attr:`surface_mask` with every camera observation.
    record_surface: bool = False
    #: The last camera observation's share of each pixel (0-255) showing a surface body; None unless recorded.
    surface_mask: np.ndarray | None = None

    def _setup_camera(self) -> None:
        """Intrinsics and mount of the (randomized) camera from the current params."""
        prm, full = self.params, self.intrinsics_full
        f = float(prm["camera.focal_scale"])
        dcx, dcy = (float(v) for v in prm["camera.principal_offset"])
        k = Intrinsics(full.width, full.height, full.fx * f, full.fy * f, full.cx + dcx, full.cy + dcy)
        self.intrinsics_camera = k
        seen = k if self.crop is None else k.cropped(*self.crop)  # the part of the frame the observation shows
        self.intrinsics_obs = seen.scaled(*self.image_size)
        self.intrinsics_render = seen.scaled(*(self.supersample * n for n in self.image_size))
        self.intrinsics_video = k.scaled(*VIDEO_SIZE)
        self._mount_t, self._mount_R = camera_mount(self.camera_config, prm)

    def camera_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation (camera_link: x forward) of the camera now."""
        parent = self.camera_config.parent
        if parent == "world":
            return self._mount_t, self._mount_R
        pos, orn = self.robot.link_pose(parent)
        R = np.array(p.getMatrixFromQuaternion(orn)).reshape(3, 3)
        return pos + R @ self._mount_t, R @ self._mount_R

    def _setup_light(self) -> None:
        """PyBullet lighting arguments from the current params (built once, used by every render)."""
        prm = self.params
        self._shadow = float(prm["light.shadow"]) >= 0.5
        self._light = {
            "lightDirection": [float(x) for x in prm["light.direction"]],
            "lightColor": [float(x) for x in prm["light.color"]],
            "lightDistance": float(prm["light.distance"]),
            "lightAmbientCoeff": float(prm["light.ambient"]),
            "lightDiffuseCoeff": float(prm["light.diffuse"]),
            "lightSpecularCoeff": float(prm["light.specular"]),
        }

    def render_camera(self, intrinsics: Intrinsics) -> RenderedFrame:
        pos, R = self.camera_pose()
        return render(
            self.client,
            intrinsics,
            pos,
            R,
            depth_range=self.camera_config.depth_range,
            shadow=self._shadow,
            light=self._light,
            segmentation=self.record_surface,
        )

    def render(self) -> np.ndarray | None:
        """The camera's color view at 320x240 (for videos), when ``render_mode='rgb_array'``; no image noise."""
        if self.render_mode != "rgb_array":
            return None
        return self.render_camera(self.intrinsics_video).color

    def _setup_image_noise(self) -> None:
        q = image_noise_params(self.params)
        self.image_noise = ImageNoise(
            q, int(self.np_random.integers(2**31)), max_depth_m=float(self.camera_config.depth_range[1])
        )

    def _moving_poses(self) -> list[tuple[int, Any, Any, list[float]]]:
        """(body, base position, base orientation, joint positions) of every body that can move."""
        c = self.client
        if self._moving_bodies is None:  # once per world: bodies with a mass or joints
            self._moving_bodies = []
            for i in range(p.getNumBodies(physicsClientId=c)):
                body = p.getBodyUniqueId(i, physicsClientId=c)
                joints = list(range(p.getNumJoints(body, physicsClientId=c)))
                if joints or p.getDynamicsInfo(body, -1, physicsClientId=c)[0] > 0:
                    self._moving_bodies.append((body, joints))
        poses = []
        for body, joints in self._moving_bodies:
            pos, orn = p.getBasePositionAndOrientation(body, physicsClientId=c)
            q = [js[0] for js in p.getJointStates(body, joints, physicsClientId=c)] if joints else []
            poses.append((body, pos, orn, q))
        return poses

    def _render_in_poses(self, poses: list[tuple[int, Any, Any, list[float]]] | None) -> RenderedFrame:
        """The camera's frame with the bodies in recorded poses (None: as they are); the present state is restored
        exactly afterwards."""
        if poses is None:
            return self.render_camera(self.intrinsics_render)
        c = self.client
        now = p.saveState(physicsClientId=c)
        try:
            for body, pos, orn, q in poses:
                p.resetBasePositionAndOrientation(body, pos, orn, physicsClientId=c)
                for joint, value in enumerate(q):
                    p.resetJointState(body, joint, value, physicsClientId=c)
            return self.render_camera(self.intrinsics_render)
        finally:
            p.restoreState(now, physicsClientId=c)
            p.removeState(now, physicsClientId=c)

    def camera_observation(self) -> dict[str, np.ndarray]:
        """What the camera sees, in any obs mode: ``rgb`` (HxWx3 uint8) and ``depth`` (HxWx1 float32, m, 0 =
        invalid) at ``image_size``, with this episode's image noise: the frame this step took ``camera.frame_age``
        before its end (:meth:`_advance`), else the view now. With ``supersample`` S > 1 the scene is
        rendered at S times that size and reduced the way :class:`real.robot.TaskRobot` reduces a real 640x480
        frame: color by area averaging (cv2.INTER_AREA), so an object smaller than a pixel still tints it, depth
        by nearest neighbour. ``crop`` (x, y, width, height in pixels of the configured color stream): only that
        region of the frame is shown, as TaskRobot crops a real frame before resizing it."""
        frame, self._early_frame = self._early_frame or self.render_camera(self.intrinsics_render), None
        color, depth = frame.color, frame.depth
        surface = None
        if self.record_surface and frame.segmentation is not None:
            surface = np.isin(frame.segmentation, self.surface_bodies).astype(np.float32)
        if self.supersample > 1:
            color = cv2.resize(color, self.image_size, interpolation=cv2.INTER_AREA)
            depth = cv2.resize(depth, self.image_size, interpolation=cv2.INTER_NEAREST)
            if surface is not None:
                surface = cv2.resize(surface, self.image_size, interpolation=cv2.INTER_AREA)
        self.surface_mask = None if surface is None else np.round(surface * 255).astype(np.uint8)
        noisy_color = self.image_noise.color(color)
        # the stereo error of each reading is the depth stream's (its own focal length): the robot picks whole
        # readings of that stream (nearest neighbour), which keeps their error, neither averaged nor enlarged
        noisy_depth = self.image_noise.depth(depth, color, self.intrinsics_camera.fx)
        np.minimum(noisy_depth, np.float32(self.camera_config.depth_range[1]), out=noisy_depth)  # fresh, >= 0
        return {"rgb": noisy_color, "depth": noisy_depth[:, :, None]}
