"""Hardware layer: typed robot descriptions and the Dynamixel servo bus (real/dynamixel)."""
