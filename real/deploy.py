"""Former home of ``s2r deploy``'s entry points, kept so that existing imports keep working: the deployment is
run by :func:`policies.deploy.deploy` (loading the bundle, choosing the mock hardware) around the control loop of
:mod:`real.deploy_loop`."""

from policies.deploy import deploy  # noqa: F401 - re-exported for users' imports
from real.deploy_config import DeployConfig, DeploySummary, EpisodeSummary  # noqa: F401 - re-exported
from real.stop_signals import Stopped, StopSignals  # noqa: F401 - re-exported
