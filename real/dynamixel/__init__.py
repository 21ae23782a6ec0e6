"""Dynamixel Protocol 2.0: packets, control tables, the bus, the motor layer and the servo emulator."""
