"""Domain randomization: declarative terms, sampled domains, procedural textures and sensor noise."""

from sim.randomization.config import (
    RandomizationConfig,
    RandomizationError,
    Term,
    load_domain,
    load_randomization,
    parse_randomization,
)
from sim.randomization.targets import Target

__all__ = [
    "RandomizationConfig",
    "RandomizationError",
    "Target",
    "Term",
    "load_domain",
    "load_randomization",
    "parse_randomization",
]
