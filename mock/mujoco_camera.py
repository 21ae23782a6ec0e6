"""Camera frames of a MuJoCo reality, rendered by MuJoCo's OpenGL renderer offscreen (``MUJOCO_GL=egl``, Mesa's
software rasterizer without a GPU): a :data:`mock.simulated_realsense.Renderer` for the simulated RealSense.

Each frame copies the reality's state under its lock (microseconds) and renders outside it, so the servo emulator
is never held up by a frame. Every OpenGL call happens on one thread of the renderer's own (an EGL context belongs
to the thread it is current on), which :meth:`MujocoCameraRenderer.close` ends. The camera's projection is the
stream's pinhole intrinsics (MuJoCo's camera ``intrinsic`` and ``sensorsize`` in pixel units), depth is MuJoCo's
metric depth along the optical axis, and depth outside the sensor's range reads 0, like a RealSense's invalid
pixels.
"""

from __future__ import annotations

import copy
import queue
import threading
from typing import Any

import numpy as np

from mock.mujoco_scene import mujoco
from robot.intrinsics import Intrinsics
from sim.camera_model import RenderedFrame


class Offscreen:
    """An offscreen OpenGL context and MuJoCo render context for one model: one render pass gives both the color and
    the depth buffer (MuJoCo's ``Renderer`` renders twice for the two). Create, use and free it on one thread."""

    def __init__(self, model: Any, width: int, height: int) -> None:
        self.gl = mujoco.GLContext(width, height)
        self.gl.make_current()
        self.context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.context)
        self.scene = mujoco.MjvScene(model, maxgeom=2000)
        self.option = mujoco.MjvOption()
        self.camera = mujoco.MjvCamera()
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self.rect = mujoco.MjrRect(0, 0, width, height)
        self.rgb = np.empty((height, width, 3), np.uint8)
        self.zbuffer = np.empty((height, width), np.float32)
        extent = model.stat.extent
        self.near, self.far = model.vis.map.znear * extent, model.vis.map.zfar * extent  # m

    def render(self, model: Any, data: Any, camera: int) -> tuple[np.ndarray, np.ndarray]:
        """Color (HxWx3 uint8) and metric depth along the optical axis (HxW float32, m) from camera id ``camera``."""
        self.camera.fixedcamid = camera
        mujoco.mjv_updateScene(model, data, self.option, None, self.camera, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        mujoco.mjr_render(self.rect, self.scene, self.context)
        mujoco.mjr_readPixels(self.rgb, self.zbuffer, self.rect, self.context)
        # OpenGL's rows run bottom-up; its depth buffer holds a perspective value in [0, 1] per pixel
        z = np.flipud(self.zbuffer)
        depth = self.near / (1.0 - z * (1.0 - self.near / self.far))
        return np.flipud(self.rgb).copy(), depth.astype(np.float32)

    def close(self) -> None:
        self.context.free()
        self.gl.free()


class MujocoCameraRenderer:
    """Renders camera ``name`` of ``reality`` (a :class:`mock.mujoco_reality.MujocoReality`) at each call."""

    def __init__(self, reality: Any, name: str, depth_range: tuple[float, float]) -> None:
        self.reality, self.name, self.depth_range = reality, name, depth_range
        self._model: Any = None  # the reality's model the render copy was made from (a new one each episode)
        self._renderer: Any = None
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def _prepare(self, intrinsics: Intrinsics, offset: np.ndarray) -> None:
        """A render model of the reality's current model with this stream's intrinsics and imager offset."""
        source = self.reality.model
        if self._renderer is not None:
            self._renderer.close()
        model = self._copy = copy.copy(source)  # the physics model's own camera stays as built
        cam = model.camera(self.name).id
        pos, rotation = self.reality.camera_mounts[self.name]
        model.cam_pos[cam] = pos + rotation @ np.asarray(offset, dtype=float)
        # pinhole in pixel units: MuJoCo takes focal lengths and the principal point's offset from the centre
        model.cam_sensorsize[cam] = [intrinsics.width, intrinsics.height]
        model.cam_intrinsic[cam] = [
            intrinsics.fx,
            intrinsics.fy,
            intrinsics.cx - intrinsics.width / 2,
            intrinsics.height / 2 - intrinsics.cy,
        ]
        model.cam_resolution[cam] = [intrinsics.width, intrinsics.height]
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, intrinsics.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, intrinsics.height)
        model.vis.map.znear = 0.01 / max(model.stat.extent, 1e-6)  # 1 cm near plane, in units of the extent
        self._data = mujoco.MjData(model)
        self._renderer = Offscreen(model, intrinsics.width, intrinsics.height)
        self._model, self._key = source, (intrinsics, tuple(np.asarray(offset, dtype=float)))

    def __call__(self, intrinsics: Intrinsics, offset: np.ndarray) -> RenderedFrame:
        """The frame now, rendered on the renderer's GL thread (started on the first call)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=f"mujoco render {self.name}", daemon=True)
            self._thread.start()
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((intrinsics, offset, reply))
        result = reply.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _serve(self) -> None:
        while (request := self._requests.get()) is not None:
            intrinsics, offset, reply = request
            try:
                reply.put(self._render(intrinsics, offset))
            except Exception as e:  # noqa: BLE001 - handed to the caller
                reply.put(e)
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _render(self, intrinsics: Intrinsics, offset: np.ndarray) -> RenderedFrame:
        with self.reality.lock:
            key = (intrinsics, tuple(np.asarray(offset, dtype=float)))
            if self._model is not self.reality.model or self._key != key:
                self._prepare(intrinsics, offset)
            self._data.qpos[:] = self.reality.data.qpos
            self._data.time = self.reality.data.time
        mujoco.mj_kinematics(self._copy, self._data)
        mujoco.mj_camlight(self._copy, self._data)
        color, depth = self._renderer.render(self._copy, self._data, self._copy.camera(self.name).id)
        lo, hi = self.depth_range
        depth[(depth < lo) | (depth > hi)] = 0.0
        return RenderedFrame(color=color, depth=depth)

    def close(self) -> None:
        """End the GL thread, which frees the renderer's context."""
        if self._thread is not None:
            self._requests.put(None)
            self._thread.join(timeout=5)
            self._thread = None
