"""The parameters a simulated task exposes to randomization, with units, nominal values and when they apply."""

from __future__ import annotations

from dataclasses import dataclass

from sim.randomization.textures import PATTERNS

Value = float | list[float] | str


@dataclass(frozen=True)
class Target:
    """A named env parameter. ``per_step``: it may be re-sampled during an episode (else at reset only)."""

    name: str
    nominal: Value
    unit: str
    description: str
    per_step: bool = False


def appearance_targets(element: str, color: list[float]) -> list[Target]:
    """Texture targets of one scene element (``table``, ``object``, ``robot`` ...)."""
    return [
        Target(f"texture.{element}.pattern", "flat", "-", f"{element} texture, one of {', '.join(PATTERNS)}"),
        Target(f"texture.{element}.color", list(color[:3]), "RGB 0-1", f"the {element}'s base color"),
        Target(f"texture.{element}.color_shift", [0.0, 0.0, 0.0], "RGB 0-1", f"added to the {element}'s base color"),
        Target(
            f"texture.{element}.color2", [c * 0.5 for c in color[:3]], "RGB 0-1", f"second color of {element} patterns"
        ),
        Target(f"texture.{element}.frequency", 4.0, "cycles", f"pattern repeats across the {element} texture"),
    ]


def camera_light_image_targets() -> list[Target]:
    """Targets every task with a camera has: lighting, camera intrinsics / extrinsics, image and depth noise."""
    return [
        # Lighting, passed to PyBullet's renderer (its defaults: ambient 0.6, diffuse 0.35, specular 0.05).
        Target("light.direction", [0.4, -0.3, 1.0], "vector", "direction toward the light", per_step=True),
        Target("light.color", [1.0, 1.0, 1.0], "RGB 0-1", "light color", per_step=True),
        Target("light.distance", 2.0, "m", "light distance (shadow rendering)", per_step=True),
        Target("light.ambient", 0.6, "-", "ambient coefficient", per_step=True),
        Target("light.diffuse", 0.35, "-", "diffuse coefficient", per_step=True),
        Target("light.specular", 0.05, "-", "specular coefficient", per_step=True),
        Target("light.shadow", 0.0, "0/1", "render shadows", per_step=True),
        # Camera, around the configured mount and the D435 nominal intrinsics.
        Target("camera.position_offset", [0.0, 0.0, 0.0], "m", "mount offset in the camera_link frame", per_step=True),
        Target("camera.rotation_offset", [0.0, 0.0, 0.0], "rad", "mount roll, pitch, yaw offset", per_step=True),
        Target("camera.focal_scale", 1.0, "-", "scale on fx and fy", per_step=True),
        Target("camera.principal_offset", [0.0, 0.0], "px", "cx, cy offset at the stream resolution", per_step=True),
        # Image level.
        Target(
            "image.noise_std",
            0.0,
            "fraction",
            "Gaussian sensor noise std, of full scale (at most 0.125)",
            per_step=True,
        ),
        Target("image.blur_sigma", 0.0, "px", "Gaussian blur sigma at the policy resolution", per_step=True),
        Target("image.brightness", 0.0, "fraction", "additive brightness, of full scale", per_step=True),
        Target("image.contrast", 1.0, "-", "contrast factor", per_step=True),
        Target("image.gamma", 1.0, "-", "gamma", per_step=True),
        Target("image.jpeg_quality", 100.0, "0-100", "JPEG quality (100: no compression)", per_step=True),
        Target("depth.noise_scale", 0.0, "-", "multiple of the D435 RMS depth error model", per_step=True),
        Target("depth.unit", 0.0, "m", "depth quantization step (0: none)", per_step=True),
        Target("depth.edge_dropout", 0.0, "probability", "missing depth at depth discontinuities", per_step=True),
        Target("depth.dark_dropout", 0.0, "probability", "missing depth on dark surfaces", per_step=True),
        Target("depth.random_dropout", 0.0, "probability", "missing depth anywhere", per_step=True),
        # Proprioception and timing.
        Target("proprio.position_noise", 0.0, "rad (m)", "joint position noise std", per_step=True),
        Target("proprio.velocity_noise", 0.0, "rad/s (m/s)", "joint velocity noise std", per_step=True),
        Target(
            "proprio.effort_noise",
            0.0,
            "N*m",
            "effort noise std, of the servo's output torque (a joint in m: divided by its scale)",
            per_step=True,
        ),
        Target(
            "proprio.effort_scale",
            1.0,
            "-",
            "scale on the reported effort (current-to-torque constant error)",
            per_step=True,
        ),
        Target("control.period_jitter", 0.0, "s", "control period varies uniformly by +- this", per_step=True),
        Target(
            "camera.frame_age",
            0.0,
            "s",
            "how long before the observation the camera frame was taken (proprioception is fresh); at most two "
            "control periods",
            per_step=True,
        ),
    ]
