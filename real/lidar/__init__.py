"""Laser distance sensors: the ROBOTIS LDS-01 (Hitachi-LG HLS-LFCD2) of the TurtleBot3, its packets and reader."""
