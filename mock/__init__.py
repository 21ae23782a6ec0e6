"""The mock hardware, above both backends: realities (a simulated world standing in for the real one), the plants
that move the servo emulator's motors, the simulated RealSense behind librealsense's software device, and the
:class:`~mock.hardware.MockHardware` a mock robot's deploy drives. The driver code that talks to it is the real
one (:mod:`real`); the physics behind it is a simulator (:mod:`sim`)."""

import sim  # noqa: F401, E402 - first: pybullet imported without its build-time banner (see sim/__init__.py)
