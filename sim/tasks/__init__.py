"""Task code shared by the simulated and the hardware robots."""
