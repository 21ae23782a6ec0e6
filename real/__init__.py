"""The hardware: the serial servo buses (``serial_bus.py``, shared by both protocols; Dynamixel Protocol 2.0 in
``real/dynamixel``, Feetech STS in ``real/feetech``; the motor drivers on them, chosen by a config's protocol in
``motor_buses.py``), the laser scanners (``real/lidar``), the cameras (``real/cameras``), the safety filter, the
robot lifecycle, the deploy loop and its log, hardware logs, replay and LeRobot datasets. Imports only the robot
contract (:mod:`robot`)."""
