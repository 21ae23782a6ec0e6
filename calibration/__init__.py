"""Calibration: camera intrinsics from board photos (:mod:`calibration.intrinsics`), hand-eye
(:mod:`calibration.hand_eye`), servo homing and limits (:mod:`calibration.motors`), system identification of the
servo model from test-bench logs (:mod:`calibration.servo_sysid`) and of the simulated robot from hardware logs
(:mod:`calibration.robot_sysid`), which replays logs in the simulator (:mod:`calibration.sim_replay`)."""
