"""The hardware: the Dynamixel servo bus (``real/dynamixel``), cameras (``real/cameras``), the safety filter, the
robot lifecycle, the deploy loop and its log, hardware logs, replay and LeRobot datasets. Imports only the robot
contract (:mod:`robot`)."""
