"""Former home of the robot description, kept so that existing imports keep working.

The description is part of the robot contract both backends share: :mod:`robot.description`.
"""

from robot.config_file import (  # noqa: F401 - re-exported for users' imports
    HARDWARE_CONFIG_DIR,
    load_hardware_config,
    resolve_config_path,
    urdf_problems,
)
from robot.description import (  # noqa: F401 - re-exported for users' imports
    CURRENT_SENSING_MODELS,
    D435_COLOR_MODES,
    D435_DEPTH_MODES,
    SERVO_MODELS,
    URDF_DIR,
    Arm,
    Bus,
    Camera,
    ConfigError,
    Control,
    ControlMode,
    DiffDrive,
    HardwareConfig,
    JointLimits,
    Mock,
    Motor,
    Pose,
    Safety,
    SimSettings,
    StreamProfile,
    WorkspaceLimits,
    format_validation_error,
    read_yaml,
    urdf_path,
)
