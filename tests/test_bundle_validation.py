"""A broken policy bundle is refused by ``policies.load`` with one line naming the bundle and the problem, before
``s2r deploy`` opens the bus or starts a mock robot: no traceback, and no servo ever sees a write, torque least of
all. Each broken bundle is a shipped one copied and broken in one place; the shipped ones still load."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import mock.hardware
import policies
import policies.loader
import real.deploy_loop
from mock.hardware import MockHardware
from policies.bundle import BUNDLE_FILE, WEIGHTS_FILE, build_mlp, save_bundle
from policies.cli import main as s2r
from policies.deploy import DeployConfig, deploy
from robot.config_file import HARDWARE_CONFIG_DIR, load_hardware_config
from robot.spec import BundleError, ObsSpec

BUNDLES = Path(__file__).resolve().parents[1] / "policies" / "bundles"
MOCK_ROBOTS = {"grasp": "openmanipulator_x", "navigate": "turtlebot3_burger"}


# -- breaking a bundle in one place ------------------------------------------------------------------------------


def _edit_meta(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        meta = yaml.safe_load((bundle / BUNDLE_FILE).read_text())
        edit(meta)
        (bundle / BUNDLE_FILE).write_text(yaml.safe_dump(meta, sort_keys=False, width=120))

    return apply


def _edit_weights(edit: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        state = torch.load(bundle / WEIGHTS_FILE, weights_only=True)
        edit(state)
        torch.save(state, bundle / WEIGHTS_FILE)

    return apply


def _write_weights(data: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        (bundle / WEIGHTS_FILE).write_bytes(data((bundle / WEIGHTS_FILE).read_bytes()))

    return apply


def _set(*keys_and_value: Any) -> Callable[[dict[str, Any]], None]:
    """meta[k1][k2]... = value (an index into a list is a key too)."""
    *keys, value = keys_and_value

    def edit(meta: dict[str, Any]) -> None:
        node = meta
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return edit


def _drop(*keys: str) -> Callable[[dict[str, Any]], None]:
    def edit(meta: dict[str, Any]) -> None:
        node = meta
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]

    return edit


def _tensor(name: str, change: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(state: dict[str, torch.Tensor]) -> None:
        state[name] = change(state[name].clone())

    return edit


def _nan_at_first(t: torch.Tensor) -> torch.Tensor:
    t.view(-1)[0] = float("nan")
    return t


def _overflowing(meta: dict[str, Any]) -> None:
    """Finite statistics under which a zero observation normalizes to -10 and +10 in its first two entries."""
    norm = meta["normalization"]
    norm["mean"][:2], norm["std"][:2] = [1.0, -1.0], [0.1, 0.1]


def _beyond_float32(state: dict[str, torch.Tensor]) -> None:
    """First-layer weights of 1e300 stored in float64: finite in the file, infinite once loaded into the float32
    network, where the zero observation's -10 and +10 make inf - inf = NaN in every summation order (a NaN from
    finite float32 weights depends on the BLAS: with fused multiply-adds an overflowing sum stays at inf, which the
    tanh layers turn finite)."""
    state["0.weight"] = torch.full_like(state["0.weight"], 1e300, dtype=torch.float64)


def _shorten_normalization(meta: dict[str, Any]) -> None:
    for values in meta["normalization"].values():
        values.pop()


def _delete(name: str) -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        (bundle / name).unlink()

    return apply


# name -> (shipped bundle, how it is broken, what the one-line error must say)
CASES: dict[str, tuple[str, list[Callable[[Path], None]], str]] = {
    "empty weights.pt": ("grasp_state", [_write_weights(lambda b: b"")], r"weights\.pt: cannot be read"),
    "truncated weights.pt": ("grasp_state", [_write_weights(lambda b: b[: len(b) // 2])], r"weights\.pt: cannot be"),
    "random bytes weights.pt": (
        "grasp_state",
        [_write_weights(lambda b: np.random.default_rng(0).bytes(len(b)))],
        r"weights\.pt: cannot be read",
    ),
    "weights.pt missing": ("grasp_state", [_delete(WEIGHTS_FILE)], r"weights\.pt: cannot be read"),
    "weights lack a tensor": ("grasp_state", [_edit_weights(lambda s: s.pop("2.bias"))], r"missing \['2\.bias'\]"),
    "weights have an extra tensor": (
        "grasp_state",
        [_edit_weights(lambda s: s.update({"9.weight": torch.zeros(3)}))],
        r"unexpected \['9\.weight'\]",
    ),
    "weights of the wrong shape": (
        "grasp_state",
        [_edit_weights(_tensor("4.bias", lambda t: torch.zeros(5)))],
        r"'4\.bias' has shape \(5,\), the network's is \(4,\)",
    ),
    "weights hold NaN": ("grasp_state", [_edit_weights(_tensor("2.weight", _nan_at_first))], r"'2\.weight'.*NaN"),
    "bundle.yaml missing": ("grasp_state", [_delete(BUNDLE_FILE)], r"no bundle\.yaml here"),
    "bundle.yaml not YAML": (
        "grasp_state",
        [lambda b: (b / BUNDLE_FILE).write_text("task: [grasp\nobservation: {keys: ")],
        r"bundle\.yaml: not valid YAML",
    ),
    "bundle.yaml empty": ("grasp_state", [lambda b: (b / BUNDLE_FILE).write_text("")], r"bundle\.yaml: empty"),
    "key missing": ("grasp_state", [_edit_meta(_drop("action", "dim"))], r"action\.dim: Field required"),
    "section missing": ("grasp_state", [_edit_meta(_drop("observation"))], r"observation: Field required"),
    "key of the wrong type": (
        "grasp_state",
        [_edit_meta(_set("network", "hidden", [256, "wide"]))],
        r"network\.mlp\.hidden\.1: Input should be a valid integer \(got 'wide'\)",
    ),
    "unknown task": ("grasp_state", [_edit_meta(_set("task", "grab"))], r"unknown task 'grab'"),
    "task of the other robot": (
        "grasp_state",
        [_edit_meta(_set("task", "navigate"))],
        r"task 'navigate' needs a robot of kind 'diff_drive'; the bundle's robot 'openmanipulator_x' is of kind 'arm'",
    ),
    "action of the wrong size": (
        "grasp_state",
        [_edit_meta(_set("action", "dim", 3)), _edit_weights(_tensor("4.bias", lambda t: t[:3]))],
        r"action has 3 values; the grasp task's has 4",
    ),
    "NaN mean": ("grasp_state", [_edit_meta(_set("normalization", "mean", 0, float("nan")))], r"mean\[0\] is nan"),
    "inf std": ("grasp_state", [_edit_meta(_set("normalization", "std", 5, float("inf")))], r"std\[5\] is inf"),
    "zero std": ("grasp_state", [_edit_meta(_set("normalization", "std", 3, 0.0))], r"std\[3\] is 0\.0.*positive"),
    "negative std": ("grasp_state", [_edit_meta(_set("normalization", "std", 3, -0.5))], r"std\[3\] is -0\.5"),
    "mean of the wrong length": (
        "grasp_state",
        [_edit_meta(lambda m: m["normalization"]["mean"].pop())],
        r"normalization\.mean has 26 values; the policy's input has 27",
    ),
    "weights that overflow to NaN": (
        "grasp_state",
        [_edit_meta(_overflowing), _edit_weights(_beyond_float32)],
        r"produced a non-finite action on a zero observation",
    ),
    "navigate: task of the other robot": (
        "navigate_state",
        [_edit_meta(_set("task", "grasp"))],
        r"task 'grasp' needs a robot of kind 'arm'; the bundle's robot 'turtlebot3_burger' is of kind 'diff_drive'",
    ),
    "navigate: zero std": (
        "navigate_state",
        [_edit_meta(_set("normalization", "std", 0, 0.0))],
        r"normalization\.std\[0\] is 0\.0",
    ),
    "camera: NaN in a convolution": (
        "grasp_rgbd",
        [_edit_weights(_tensor("encoder.0.weight", _nan_at_first))],
        r"'encoder\.0\.weight'.*NaN",
    ),
    "camera: convolution of the wrong shape": (
        "grasp_rgbd",
        [_edit_weights(_tensor("encoder.2.weight", lambda t: t[:, :16]))],
        r"'encoder\.2\.weight' has shape \(64, 16, 3, 3\), the network's is \(64, 32, 3, 3\)",
    ),
    "camera: zero depth std": (
        "grasp_rgbd",
        [_edit_meta(_set("network", "depth_std", 0.0))],
        r"network\.cnn\.depth_std: Input should be greater than 0",
    ),
    "camera: proprio of the wrong size": (
        "grasp_rgbd",
        [_edit_meta(_set("observation", "shapes", "proprio", [13])), _edit_meta(_shorten_normalization)],
        r"proprio has shape \(13,\); the grasp task on openmanipulator_x.* gives \(14,\)",
    ),
}


def broken_bundle(case: str, tmp_path: Path) -> Path:
    """A copy of the shipped bundle of ``case`` under ``tmp_path``, broken as ``case`` says."""
    source, breaks, _ = CASES[case]
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLES / source, bundle)
    for apply in breaks:
        apply(bundle)
    return bundle


def mock_robot(task: str, folder: Path) -> Path:
    """The mock robot of ``task`` with its bus on a pseudo-terminal link in ``folder`` (no clash with another run)."""
    name = MOCK_ROBOTS[task]
    data = yaml.safe_load((HARDWARE_CONFIG_DIR / "mock" / f"{name}.yaml").read_text())
    data["bus"]["port"] = str(folder / f"tty-{name}")
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _task_of(case: str) -> str:
    return "navigate" if CASES[case][0].startswith("navigate") else "grasp"


# -- s2r deploy refuses each broken bundle in one line, before it starts anything --------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_s2r_deploy_refuses_a_broken_bundle_in_one_line(case, tmp_path, monkeypatch, capsys):
    bundle = broken_bundle(case, tmp_path)
    robot = mock_robot(_task_of(case), tmp_path)
    started: list[str] = []

    def start(what: str) -> Callable[..., Any]:
        def record(*args: Any, **kwargs: Any) -> Any:
            started.append(what)
            raise RuntimeError(f"{what} started: the bundle was not refused first")

        return record

    monkeypatch.setattr(mock.hardware, "MockHardware", start("mock hardware"))
    monkeypatch.setattr(real.deploy_loop, "Robot", start("robot"))
    code = s2r(["deploy", "--robot", str(robot), "--policy", str(bundle), "--quiet"])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1 and lines[0].startswith("s2r: "), err
    assert str(bundle) in lines[0]
    assert re.search(CASES[case][2], lines[0]), lines[0]
    assert started == []
    assert not Path(load_hardware_config(robot).bus.port).exists()


@pytest.fixture(scope="module")
def mock_arm(tmp_path_factory):
    """The mock arm's reality and servo emulator, started here: (its config file, the hardware, the writes every
    servo received as (id, register name, raw value))."""
    folder = tmp_path_factory.mktemp("mock_arm")
    robot = mock_robot("grasp", folder)
    hardware = MockHardware(load_hardware_config(robot), None, seed=3_000_000)
    writes: list[tuple[int, str, int]] = []
    for servo in hardware.emulator.servos.values():

        def recording(address: int, data: bytes, servo: Any = servo, write: Any = servo.write) -> int:
            for reg in servo.model.registers.values():
                if address <= reg.address and reg.address + reg.size <= address + len(data):
                    offset = reg.address - address
                    writes.append((servo.ident, reg.name, reg.decode(bytes(data[offset : offset + reg.size]))))
            return write(address, data)

        servo.write = recording
    try:
        yield robot, hardware, writes
    finally:
        hardware.close()


def _torque(hardware: MockHardware) -> list[int]:
    return [s.get("torque_enable") for s in hardware.emulator.servos.values()]


@pytest.mark.parametrize("case", [c for c in CASES if _task_of(c) == "grasp"])
def test_a_broken_bundle_never_reaches_the_servos(case, tmp_path, mock_arm):
    """deploy on a mock arm started by the test: the load fails before a single packet is on the bus."""
    robot, hardware, writes = mock_arm
    writes.clear()
    packets = hardware.emulator.packets_handled
    bundle = broken_bundle(case, tmp_path)
    with pytest.raises(BundleError, match=CASES[case][2]):
        deploy(DeployConfig(robot=str(robot), policy=str(bundle), status=False), hardware=hardware)
    assert hardware.emulator.packets_handled == packets
    assert writes == [] and _torque(hardware) == [0] * 5


def test_an_intact_copy_does_reach_the_servos(tmp_path, mock_arm):
    """The control of the test above: the same harness sees torque come on (and go off) for a bundle that loads."""
    robot, hardware, writes = mock_arm
    writes.clear()
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLES / "grasp_state", bundle)
    summary = deploy(DeployConfig(robot=str(robot), policy=str(bundle), max_steps=2, status=False), hardware=hardware)
    assert summary.ended == "completed", summary.message
    torque = [(ident, value) for ident, name, value in writes if name == "torque_enable"]
    assert {ident for ident, value in torque if value == 1} == set(hardware.emulator.servos)
    assert _torque(hardware) == [0] * 5  # parked, torque off


# -- the loader itself ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["grasp_state", "grasp_rgbd", "navigate_state", "navigate_rgbd", "so101_grasp_state", "so101_grasp_rgbd"]
)
def test_shipped_bundles_load_and_act_finitely_on_a_zero_observation(name):
    task = "navigate" if name.startswith("navigate") else "grasp"
    robot = "mock/so101" if name.startswith("so101") else MOCK_ROBOTS[task]
    policy = policies.load(BUNDLES / name, robot=load_hardware_config(robot))
    zero = policy.obs_spec.zeros()
    assert set(zero) == set(policy.obs_spec.keys)
    for key, value in zero.items():
        assert value.shape == policy.obs_spec.shapes[key] and not value.any()
        assert value.dtype == (np.uint8 if key == "rgb" else np.float32)
    action = policy.act(zero)
    assert action.shape == (policy.action_dim,) and np.all(np.isfinite(action))


def adaptive_bundle(folder: Path) -> Path:
    """A small untrained universal grasp policy with its (untrained) online estimator, as ``s2r train-osi`` writes
    them: ``folder/osi``."""
    from policies.osi import OSIConfig, OSINet, write_osi_bundle

    dynamics = {
        "task": "grasp",
        "params": [{"name": "latency_s", "target": "servo.latency", "operation": "set", "low": 0.0, "high": 0.04}],
    }
    spec = ObsSpec(("proprio", "privileged", "dynamics"), {"proprio": (14,), "privileged": (13,), "dynamics": (1,)})
    torch.manual_seed(0)
    up = save_bundle(
        folder / "up",
        network=build_mlp(spec.size, [16], 4, "tanh"),
        network_spec={"type": "mlp", "hidden": [16], "activation": "tanh", "squash": False},
        task="grasp",
        obs_spec=spec,
        action_dim=4,
        robot=load_hardware_config("openmanipulator_x"),
        normalization=None,
        randomization=None,
        training={"code_version": "test"},
        dynamics=dynamics,
    )
    config = OSIConfig(policy=str(up), out=str(folder), history=3, hidden=[8])
    return write_osi_bundle(folder / "osi", policies.load(up), OSINet(3 * (14 + 4), 1, (8,)), config)


def test_the_probe_leaves_an_adaptive_policy_as_it_was(tmp_path):
    """The probe's reading and action leave the estimator's history, and its estimate is back at zero, after load;
    a NaN in the estimator's weights is refused like one in the policy's."""
    from policies.adaptive import OSI_WEIGHTS, AdaptivePolicy

    bundle = adaptive_bundle(tmp_path)
    policy = policies.load(bundle, robot=load_hardware_config("openmanipulator_x"))
    assert isinstance(policy, AdaptivePolicy)
    assert len(policy.history._readings) == 0 and len(policy.history._actions) == 0
    assert not policy.estimate_normalized.any()
    state = torch.load(bundle / OSI_WEIGHTS, weights_only=True)
    state["mlp.0.weight"][0, 0] = float("nan")
    torch.save(state, bundle / OSI_WEIGHTS)
    with pytest.raises(BundleError, match=r"osi\.pt: tensor 'mlp\.0\.weight' holds 1 NaN"):
        policies.load(bundle)


@pytest.mark.parametrize("adapt", [False, True])
def test_s2r_deploy_refuses_a_wrong_adapt_flag_in_one_line(adapt, tmp_path, capsys):
    """An estimator bundle without --adapt, or --adapt without one: refused by the setup, in one line."""
    bundle = BUNDLES / "grasp_state" if adapt else adaptive_bundle(tmp_path)
    robot = mock_robot("grasp", tmp_path)
    code = s2r(["deploy", "--robot", str(robot), "--policy", str(bundle), "--quiet", *(["--adapt"] if adapt else [])])
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in out + err
    assert err.startswith("s2r: ") and len(err.strip().splitlines()) == 1 and "--adapt" in err, err
    assert not Path(load_hardware_config(robot).bus.port).exists()


def test_any_other_failure_while_loading_is_a_bundle_error(tmp_path, monkeypatch):
    def broken(*args: Any) -> Any:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(policies.loader, "build_network", broken)
    with pytest.raises(BundleError, match=r"grasp_state: the bundle does not load \(ZeroDivisionError: division by"):
        policies.load(BUNDLES / "grasp_state")
