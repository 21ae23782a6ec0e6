"""Feetech STS serial bus servos (the SO-101's STS3215): frames, the memory table as data, the bus, the motor
driver and the servo emulator."""
