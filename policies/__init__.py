"""Policies: scripted experts, training, distillation, online system identification, policy bundles, deployment,
evaluation and the s2r command line. What runs on the robot (:mod:`policies.bundle`, :mod:`policies.loader`,
:mod:`policies.adaptive`, :mod:`policies.deploy`) imports nothing of what trains.

``policies.load(PATH)`` loads a policy bundle (see :mod:`policies.loader`); torch is imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.bundle import BundlePolicy


def load(path: Any, robot: Any = None, observation_space: Any = None) -> BundlePolicy:
    """Load a policy bundle folder (or a training run folder); see :func:`policies.loader.load`."""
    from policies.loader import load as load_bundle

    return load_bundle(path, robot=robot, observation_space=observation_space)
