"""The robot contract both backends share: what a robot is (its description), what it reads (joint states,
camera intrinsics), what a policy sees and commands (the observation spec, the robot signature, frame reduction),
and what a task means (the task code run alike by the simulated envs and the hardware robot).

Nothing here imports ``sim``, ``real``, ``mock``, ``policies`` or ``calibration``: they all import this.
"""
