"""Commands work from any folder: shipped bundles, hardware configs, randomization variants and domain files are
found by name through the installed package; a path is still a path; an unknown name is refused with the names of
its kind only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from policies.bundle import SHIPPED_BUNDLES_DIR, bundle_path, shipped_bundles
from robot.config_file import resolve_config_path
from robot.description import ConfigError
from robot.spec import BundleError
from sim.randomization.config import DOMAIN_DIRS, RandomizationError, load_domain, load_randomization


def test_names_resolve_to_the_shipped_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of the repository's below the working directory
    assert bundle_path("grasp_state") == SHIPPED_BUNDLES_DIR / "grasp_state"
    assert {"grasp_state", "grasp_rgbd", "navigate_state", "navigate_rgbd"} <= set(shipped_bundles())
    stale = load_randomization("stale_frames", "grasp")
    assert "camera_frame_age" in {t.name for t in stale.terms}
    assert load_domain("grasp_heavy_laggy") == load_domain(DOMAIN_DIRS[0] / "grasp_heavy_laggy.yaml")
    assert load_domain("grasp_dark_striped_table.yaml")["table_texture"] == "stripes"
    assert resolve_config_path("mock/openmanipulator_x").name == "openmanipulator_x.yaml"


def test_a_path_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SHIPPED_BUNDLES_DIR / "grasp_state", tmp_path / "grasp_state")
    assert bundle_path("grasp_state") == Path("grasp_state")  # the folder here, not the shipped one
    (tmp_path / "grasp_heavy_laggy").write_text("object_mass_scale: 2.0\n")
    assert load_domain("grasp_heavy_laggy") == {"object_mass_scale": 2.0}


def test_unknown_names_list_only_their_own_kind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BundleError, match="known: grasp_rgbd, grasp_state") as bundle:
        bundle_path("grasp_stat")
    assert "openmanipulator" not in str(bundle.value)
    with pytest.raises(RandomizationError, match="known: default, none, .*stale_frames") as randomization:
        load_randomization("stale", "grasp")
    assert "grasp_heavy_laggy" not in str(randomization.value)
    with pytest.raises(RandomizationError, match="no such domain file.*grasp_heavy_laggy") as domain:
        load_domain("grasp_heavy")
    assert "stale_frames" not in str(domain.value)
    with pytest.raises(ConfigError, match="known: ") as config:
        resolve_config_path("openmanipulator")
    assert "mock/openmanipulator_x" in str(config.value) and "grasp_heavy_laggy" not in str(config.value)


def test_eval_and_check_config_run_outside_the_repository(tmp_path):
    """The installed `s2r` from a folder that holds nothing of the repository: names, not paths."""
    s2r = Path(sys.executable).with_name("s2r")
    out = tmp_path / "eval.json"
    cmd = [str(s2r), "eval", "--task", "grasp", "--policy", "grasp_state", "--episodes", "2", "--json", str(out)]
    done = subprocess.run(
        [*cmd, "--randomization", "stale_frames", "--domain", "grasp_dark_striped_table"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["episodes"] == 2
    assert "pybullet build time" not in done.stdout + done.stderr  # the banner is kept off every command
    check = subprocess.run(
        [str(s2r), "check-config", "mock/openmanipulator_x"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0 and "ok" in check.stdout, check.stderr


def test_deploy_and_mock_bus_run_outside_the_repository(tmp_path):
    """`s2r deploy --policy grasp_state --robot mock/openmanipulator_x` and `s2r mock-bus --config
    openmanipulator_x` from a folder that holds nothing of the repository."""
    import os
    import signal
    import time

    s2r = Path(sys.executable).with_name("s2r")
    summary = tmp_path / "deploy.json"
    argv = [str(s2r), "deploy", "--policy", "grasp_state", "--robot", "mock/openmanipulator_x", "--episodes", "1"]
    done = subprocess.run(
        [*argv, "--json", str(summary), "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(summary.read_text())["ended"] == "completed"
    link = tmp_path / "ttyDXL"
    bus = subprocess.Popen(
        [str(s2r), "mock-bus", "--config", "openmanipulator_x", "--link", str(link), "--physics", "simple"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "emulating openmanipulator_x" in bus.stdout.readline()
        deadline = time.monotonic() + 10
        while not link.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.is_symlink() and os.path.exists(os.readlink(link))
    finally:
        bus.send_signal(signal.SIGINT)
        out, err = bus.communicate(timeout=30)
    assert bus.returncode == 0, err
    assert "stopped after" in out
