"""Randomization configs and domains: validation, sampling, strength, seeding and pinning."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import yaml

import sim  # noqa: F401
from sim.randomization.config import (
    DEFAULTS_DIR,
    RandomizationError,
    Term,
    apply_operation,
    load_randomization,
    parse_randomization,
    sample_term,
)


def _term(**kw) -> Term:
    base = {"name": "x", "target": "object.mass", "operation": "set"}
    return Term.model_validate({**base, **kw})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"terms": [{"name": "a", "target": "t", "operation": "set", "distribution": {"type": "beta"}}]},
            ["terms.0.distribution", "beta"],
        ),
        (
            {
                "terms": [
                    {
                        "name": "a",
                        "target": "t",
                        "operation": "set",
                        "distribution": {"type": "uniform", "low": 2, "high": 1},
                    }
                ]
            },
            ["terms.0.distribution.uniform", "must not exceed"],
        ),
        (
            {
                "terms": [
                    {
                        "name": "a",
                        "target": "t",
                        "operation": "scale",
                        "distribution": {"type": "choice", "options": [1, 2]},
                    }
                ]
            },
            ["can only 'set'"],
        ),
        (
            {
                "terms": [
                    {
                        "name": "Bad Name",
                        "target": "t",
                        "operation": "set",
                        "distribution": {"type": "uniform", "low": 0, "high": 1},
                    }
                ]
            },
            ["terms.0.name", "pattern"],
        ),
        ({"strength": 1.5, "terms": []}, ["strength", "less than or equal to 1"]),
        (
            {
                "terms": [
                    {
                        "name": "a",
                        "target": "t",
                        "operation": "set",
                        "distribution": {"type": "uniform", "low": 0, "high": 1},
                    }
                ]
                * 2
            },
            ["repeated: ['a']"],
        ),
        (
            {
                "terms": [
                    {
                        "name": "a",
                        "target": "t",
                        "operation": "multiply",
                        "distribution": {"type": "uniform", "low": 0, "high": 1},
                    }
                ]
            },
            ["terms.0.operation"],
        ),
    ],
)
def test_bad_configs_name_the_field(data, expected):
    with pytest.raises(RandomizationError) as err:
        parse_randomization(data, "my_rand.yaml")
    msg = str(err.value)
    assert msg.startswith("my_rand.yaml: invalid randomization config")
    for part in expected:
        assert part in msg, msg


def test_config_errors_that_need_the_env(tmp_path):
    def write(terms):
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump({"terms": terms}))
        return path

    uniform = {"type": "uniform", "low": 0.0, "high": 1.0}
    with pytest.raises(RandomizationError, match="unknown target 'object.colour'.*object.mass"):
        gym.make(
            "s2r/Grasp-v0",
            randomization=write(
                [{"name": "a", "target": "object.colour", "operation": "set", "distribution": uniform}]
            ),
        )
    with pytest.raises(RandomizationError, match="applies at episode start only"):
        gym.make(
            "s2r/Grasp-v0",
            randomization=write(
                [{"name": "a", "target": "object.mass", "operation": "set", "every_steps": 5, "distribution": uniform}]
            ),
        )
    with pytest.raises(RandomizationError, match="size 2 does not fit"):
        gym.make(
            "s2r/Grasp-v0",
            randomization=write(
                [{"name": "a", "target": "light.direction", "operation": "set", "size": 2, "distribution": uniform}]
            ),
        )
    with pytest.raises(RandomizationError, match="takes a choice distribution only"):
        gym.make(
            "s2r/Grasp-v0",
            randomization=write(
                [{"name": "a", "target": "texture.table.pattern", "operation": "set", "distribution": uniform}]
            ),
        )
    with pytest.raises(RandomizationError, match="no such randomization config"):
        gym.make("s2r/Grasp-v0", randomization=tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        gym.make("s2r/Grasp-v0", strength=2.0)


def test_default_configs_cite_sources_for_dynamics():
    for task in ("grasp", "navigate"):
        config = load_randomization(DEFAULTS_DIR / f"{task}.yaml", task)
        assert config.strength == 1.0 and len(config.terms) > 40
        for name in ("latency_s", "servo_strength", "light_direction", "camera_position_offset"):
            assert config.term(name).source, name


def test_sampling_respects_ranges_and_strength():
    rng = np.random.default_rng(0)
    uni = _term(operation="scale", distribution={"type": "uniform", "low": 0.8, "high": 1.2})
    xs = np.array([sample_term(uni, rng, 1.0, 0.05) for _ in range(2000)])
    assert xs.min() >= 0.8 and xs.max() <= 1.2 and xs.min() < 0.81 and xs.max() > 1.19
    half = np.array([sample_term(uni, rng, 0.5, 0.05) for _ in range(2000)])
    assert half.min() >= 0.9 and half.max() <= 1.1  # shrunk toward the neutral 1.0
    assert sample_term(uni, rng, 0.0, 0.05) == 1.0
    log = _term(distribution={"type": "log_uniform", "low": 0.01, "high": 1.0})
    ls = np.array([sample_term(log, rng, 1.0, 0.1) for _ in range(4000)])
    assert ls.min() >= 0.01 and ls.max() <= 1.0
    assert np.mean(ls < 0.1) == pytest.approx(0.5, abs=0.04)  # uniform in log space
    assert sample_term(log, rng, 0.0, 0.1) == 0.1  # 'set' is neutral at its nominal value
    vec = _term(operation="add", size=3, distribution={"type": "normal", "mean": 0.0, "std": 1.0, "clip": [-0.5, 0.5]})
    v = sample_term(vec, rng, 1.0, [0.0, 0.0, 0.0])
    assert isinstance(v, list) and len(v) == 3 and all(-0.5 <= x <= 0.5 for x in v)
    choice = _term(distribution={"type": "choice", "options": ["flat", "checker"], "probs": [0.0, 1.0]})
    assert sample_term(choice, rng, 1.0, "flat") == "checker"
    assert sample_term(choice, rng, 0.0, "flat") == "flat"


def test_operations():
    assert apply_operation("scale", 0.05, 2.0) == pytest.approx(0.1)
    assert apply_operation("add", [1.0, 2.0], [0.5, -0.5]) == [1.5, 1.5]
    assert apply_operation("set", 0.05, 0.2) == 0.2
    assert apply_operation("set", "flat", "noise") == "noise"


@pytest.mark.parametrize("task", ["s2r/Grasp-v0", "s2r/Navigate-v0"])
def test_same_seed_same_domain_and_pinning(task, tmp_path):
    env = gym.make(task)
    _, a = env.reset(seed=5)
    _, b = env.reset(seed=6)
    _, c = env.reset(seed=5)
    assert a["domain"] == c["domain"] and a["domain"] != b["domain"]
    assert a["params"] == c["params"]
    # Pin one value: it is pinned, and nothing else moves.
    _, pinned = env.reset(seed=5, options={"domain": {"latency_s": 0.035}})
    assert pinned["domain"]["latency_s"] == 0.035 and pinned["params"]["servo.latency"] == 0.035
    assert {k: v for k, v in pinned["domain"].items() if k != "latency_s"} == {
        k: v for k, v in a["domain"].items() if k != "latency_s"
    }
    assert env.unwrapped.robot.params.latency == 0.035
    # A domain file pins at make time, for every episode.
    path = tmp_path / "held_out.yaml"
    path.write_text("latency_s: 0.01\nservo_strength: 0.9\n")
    env2 = gym.make(task, domain=path)
    for seed in (1, 2):
        _, info = env2.reset(seed=seed)
        assert info["domain"]["latency_s"] == 0.01 and info["domain"]["servo_strength"] == 0.9
    with pytest.raises(RandomizationError, match="unknown domain names \\['latency'\\]"):
        env.reset(seed=1, options={"domain": {"latency": 0.01}})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(seed=1, options={"domian": {}})
    env.close()
    env2.close()


def test_none_is_the_nominal_domain_and_strength_scales():
    env = gym.make("s2r/Grasp-v0", randomization="none")
    _, info = env.reset(seed=3)
    nominal = env.unwrapped.default_params()
    assert info["params"] == nominal
    assert info["domain"]["latency_s"] == 0.0 and info["domain"]["servo_strength"] == 1.0
    half = gym.make("s2r/Grasp-v0", strength=0.5)
    lat = [half.reset(seed=s)[1]["domain"]["latency_s"] for s in range(30)]
    assert max(lat) <= 0.02 + 1e-12 and max(lat) > 0.0
    env.close()
    half.close()


def test_reset_without_seed_continues_the_stream():
    env = gym.make("s2r/Navigate-v0")
    _, first = env.reset(seed=0)
    _, second = env.reset()
    assert first["domain"] != second["domain"]
    env.close()


def test_docs_list_every_target_and_term():
    from sim.randomization.docs import DOC_PATH, render_markdown

    assert DOC_PATH.read_text() == render_markdown(), "run: python -m sim.randomization.docs"


def test_same_seed_same_scene_whatever_the_randomization():
    for task in ("s2r/Grasp-v0", "s2r/Navigate-v0"):
        nominal, randomized = gym.make(task, randomization="none"), gym.make(task, randomization="default")
        for seed in (0, 7):
            _, a = nominal.reset(seed=seed)
            _, b = randomized.reset(seed=seed)
            assert a["domain"] != b["domain"]
            if task == "s2r/Grasp-v0":
                assert a["privileged"]["object"] == b["privileged"]["object"]
            else:
                assert a["privileged"]["obstacles"] == b["privileged"]["obstacles"]
                np.testing.assert_array_equal(a["privileged"]["goal"], b["privileged"]["goal"])
        nominal.close()
        randomized.close()


def test_a_config_extends_another(tmp_path):
    """``extends``: the base's terms, same-named ones replaced in place, new ones appended, strength overridden;
    a relative base is found beside the file; a loop or a bad term list is refused by file name."""
    default = load_randomization("default", "grasp")
    wide = {"name": "depth_noise_scale", "target": "depth.noise_scale", "operation": "set",
            "distribution": {"type": "uniform", "low": 0.5, "high": 14.0}}  # fmt: skip
    extra = {"name": "table_mass", "target": "object.mass", "operation": "scale",
             "distribution": {"type": "uniform", "low": 0.9, "high": 1.1}}  # fmt: skip
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump({"extends": "default", "terms": [wide]}))
    config = load_randomization(tmp_path / "wide.yaml", "grasp")
    names = [t.name for t in config.terms]
    assert names == [t.name for t in default.terms]  # replaced in place: same order, same count
    assert config.term("depth_noise_scale").distribution.high == 14.0
    assert default.term("depth_noise_scale").distribution.high == 2.0
    unchanged = [t for t in default.terms if t.name != "depth_noise_scale"]
    assert unchanged == [t for t in config.terms if t.name != "depth_noise_scale"]
    (tmp_path / "more.yaml").write_text(yaml.safe_dump({"extends": "wide.yaml", "strength": 0.5, "terms": [extra]}))
    more = load_randomization(tmp_path / "more.yaml", "grasp")
    assert [t.name for t in more.terms] == [*names, "table_mass"] and more.strength == 0.5
    assert more.term("depth_noise_scale").distribution.high == 14.0
    shipped = load_randomization("grasp_student", "grasp")  # by name
    assert [t.model_dump(exclude={"source"}) for t in shipped.terms if t.name != "camera_frame_age"] == [
        t.model_dump(exclude={"source"}) for t in config.terms
    ]  # the grasp student's domain is this one, with stale frames (a chain of two extends)
    assert shipped.term("camera_frame_age").every_steps == 1
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"extends": "b.yaml"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"extends": "a.yaml"}))
    with pytest.raises(RandomizationError, match="loops back"):
        load_randomization(tmp_path / "a.yaml", "grasp")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"extends": "default", "terms": {"x": 1}}))
    with pytest.raises(RandomizationError, match="bad.yaml: 'terms' must be a list"):
        load_randomization(tmp_path / "bad.yaml", "grasp")
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({"extends": "default", "strenght": 0.5}))
    with pytest.raises(RandomizationError, match="typo.yaml"):
        load_randomization(tmp_path / "typo.yaml", "grasp")
    (tmp_path / "gone.yaml").write_text(yaml.safe_dump({"extends": "missing.yaml"}))
    with pytest.raises(RandomizationError, match="missing.yaml: no such randomization config"):
        load_randomization(tmp_path / "gone.yaml", "grasp")


def test_hsv_colors_reach_dark_and_grey_surfaces_and_shrink_toward_the_nominal_color():
    """An hsv term draws RGB colors whose value and saturation are uniform: about a quarter darker than value
    0.25 (a uniform RGB draw: 1 in 64), grey ones as often; at strength 0 the nominal color, in between a blend."""
    from sim.randomization.config import hsv_to_rgb

    term = Term(name="c", target="texture.table.color", operation="set", distribution={"type": "hsv"})
    rng = np.random.default_rng(0)
    colors = np.array([sample_term(term, rng, 1.0, [0.6, 0.5, 0.4]) for _ in range(4000)])
    assert colors.shape == (4000, 3) and colors.min() >= 0.0 and colors.max() <= 1.0
    value, low = colors.max(axis=1), colors.min(axis=1)
    saturation = np.where(value > 0, (value - low) / np.maximum(value, 1e-9), 0.0)
    assert 0.2 < (value < 0.25).mean() < 0.3
    assert 0.15 < (saturation < 0.2).mean() < 0.25
    uniform_rgb = np.random.default_rng(0).uniform(0, 1, (4000, 3))
    assert (uniform_rgb.max(axis=1) < 0.25).mean() < 0.03  # what the HSV draw is for
    assert sample_term(term, np.random.default_rng(1), 0.0, [0.6, 0.5, 0.4]) == [0.6, 0.5, 0.4]
    half = sample_term(term, np.random.default_rng(1), 0.5, [0.6, 0.5, 0.4])
    full = sample_term(term, np.random.default_rng(1), 1.0, [0.6, 0.5, 0.4])
    np.testing.assert_allclose(half, (np.array(full) + [0.6, 0.5, 0.4]) / 2)
    # the hexcone conversion at the primaries and a grey
    assert hsv_to_rgb(0.0, 1.0, 1.0) == [1.0, 0.0, 0.0]
    assert hsv_to_rgb(1 / 3, 1.0, 1.0) == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(hsv_to_rgb(2 / 3, 1.0, 0.5), [0.0, 0.0, 0.5], atol=1e-12)
    assert hsv_to_rgb(0.3, 0.0, 0.2) == [0.2, 0.2, 0.2]
    narrow = Term(
        name="d", target="x", operation="set", distribution={"type": "hsv", "value": [0.0, 0.1], "saturation": [0, 0]}
    )
    dark = sample_term(narrow, np.random.default_rng(2), 1.0, [0.5, 0.5, 0.5])
    assert max(dark) <= 0.1 and max(dark) == min(dark)
    for bad in ({"type": "hsv", "value": [0.5, 0.2]}, {"type": "hsv", "hue": [0.0, 1.5]}):
        with pytest.raises(ValueError, match="low <= high"):
            Term(name="e", target="x", operation="set", distribution=bad)
    with pytest.raises(ValueError, match="operation 'set', size 3"):
        Term(name="f", target="x", operation="add", distribution={"type": "hsv"})


def test_the_oldest_trained_frame_is_the_top_of_the_frame_age_range():
    """``largest_value``: what deploy reads from a bundle's recorded randomization as its oldest acceptable frame."""
    from sim.randomization.config import largest_value

    stale = load_randomization("sim/randomization/variants/stale_frames.yaml", "grasp")
    assert largest_value(stale, "camera.frame_age", 0.0) == pytest.approx(0.18)
    assert largest_value(stale.model_copy(update={"strength": 0.5}), "camera.frame_age", 0.0) == pytest.approx(0.09)
    assert largest_value(load_randomization("default", "grasp"), "camera.frame_age", 0.0) == 0.0
    assert largest_value(load_randomization("default", "grasp"), "object.mass", 0.05) > 0.05
