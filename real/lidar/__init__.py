"""Laser distance sensors of the TurtleBot3: the ROBOTIS LDS-01 (Hitachi-LG HLS-LFCD2) and LDS-02 (LDROBOT LD08),
their packets, the scan both assemble (``scan.py``) and the reader that streams them."""
