"""The mock hardware, above both backends: realities (a simulated world standing in for the real one, in PyBullet or
in MuJoCo: ``reality.py``, ``mujoco_*.py``), the plants that move the servo emulators' motors, the emulators of a
config's protocol (``servo_emulators.py``), the laser scanner emulator, the simulated RealSense behind librealsense's
software device, the engine gap report (``gap.py``) and the :class:`~mock.hardware.MockHardware` a mock robot's
deploy drives. The driver code that talks to it is the real
one (:mod:`real`); the physics behind it is a simulator (:mod:`sim`)."""

import sim  # noqa: F401, E402 - first: pybullet imported without its build-time banner (see sim/__init__.py)
