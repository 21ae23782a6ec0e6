"""Writes docs/randomization.md from the envs' targets and the default configs: ``python -m sim.randomization.docs``.

The tests regenerate the page and compare, so the documentation cannot drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sim.randomization.config import Choice, Hsv, LogUniform, Normal, Term, Uniform, load_randomization

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "randomization.md"

HEADER = """# Domain randomization

Every simulated task exposes named parameters (*targets*) with a unit and a nominal value. A randomization config
(YAML) is a list of *terms*; each term draws a value (the *domain value*, under the term's name) and applies it to
one target with an operation: `set` replaces the nominal value, `add` adds to it, `scale` multiplies it. Terms are
applied to the cached nominal values at every reset, so nothing drifts. A term with `every_steps: N` is drawn again
every N steps (only targets marked *per step* allow it).

```python
# randomization: "default", "none", or a YAML path; strength=0.5 for curricula
env = gym.make("s2r/Grasp-v0", randomization="default")
obs, info = env.reset(seed=3)
info["domain"]  # {"object_mass": 0.087, "latency_s": 0.021, "light_direction": [...], ...}
# pin any subset; a YAML file works with domain=PATH
env.reset(seed=3, options={"domain": {"latency_s": 0.06}})
```

`strength` in [0, 1] shrinks every range toward its neutral value (1 for `scale`, 0 for `add`, the nominal value for
`set`); `randomization="none"` is the default config at strength 0. For a `choice`, the nominal value is kept with
probability `1 - strength`. Every draw comes from the env's generator seeded by `reset(seed=...)`: the same seed
gives the same domain, images and rollout. Pinned values replace draws after they are made, so pinning one value
never changes the others.

A config file can start from another: `extends: default` (or a path, relative to the file) takes that config's
terms, replaces those the file names again (in place) and appends the others, and the file's `strength`, if given,
wins. `sim/randomization/variants/stale_frames.yaml` adds the camera frame's age (the camera students' training
domain); `sim/randomization/variants/grasp_student.yaml`, the grasp camera student's, extends it with heavier depth
noise. Commands take the shipped variants by name (`--randomization
stale_frames`) from any folder.

Colors are drawn in HSV (`type: hsv`, with `hue`, `saturation` and `value` ranges in [0, 1], default the whole
range), which reaches dark and grey surfaces as often as vivid ones; a uniform RGB draw makes a color darker than
value 0.25 once in 64 draws. A color term's value is recorded as RGB. The base colors of the large surfaces
(`table_color`; `floor_color`, `walls_color`) and every element's second pattern color are drawn this way; the
object, obstacles and robot keep their colors within a shift of their nominal ones.

`params={...}` at `gym.make` (or `options={"params": ...}` at reset) changes nominal values; a `set` term replaces
them when it fires, so pin the domain value to fix a randomized quantity.

`s2r randomization preview --task grasp --n 16 --seed 0 --out sheet.png` shows the range at a glance.
"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _distribution(term: Term) -> str:
    d = term.distribution
    if isinstance(d, Uniform):
        text = f"uniform {_fmt(d.low)} .. {_fmt(d.high)}"
    elif isinstance(d, LogUniform):
        text = f"log-uniform {_fmt(d.low)} .. {_fmt(d.high)}"
    elif isinstance(d, Normal):
        text = f"normal mean {_fmt(d.mean)}, std {_fmt(d.std)}" + (
            f", clipped to {_fmt(list(d.clip))}" if d.clip else ""
        )
    elif isinstance(d, Hsv):
        text = (
            f"RGB drawn in HSV: hue {_fmt(list(d.hue))}, saturation {_fmt(list(d.saturation))}, "
            f"value {_fmt(list(d.value))}"
        )
        return text
    else:
        assert isinstance(d, Choice)
        text = "one of " + ", ".join(_fmt(o) for o in d.options)
        if d.probs:
            text += " (p " + ", ".join(_fmt(q) for q in d.probs) + ")"
    if term.size:
        text += f", x{term.size}"
    return text


def render_markdown() -> str:
    from sim.envs.grasp_env import GraspEnv
    from sim.envs.navigate_env import NavigateEnv

    out = [HEADER]
    for env_cls, env_id in ((GraspEnv, "s2r/Grasp-v0"), (NavigateEnv, "s2r/Navigate-v0")):
        env = env_cls(randomization="none")
        try:
            config = load_randomization("default", env.task_name)
            out.append(f"\n## {env_id}\n")
            out.append(f"Default config: `sim/randomization/defaults/{env.task_name}.yaml`.\n")
            out.append("\n### Domain values of the default config\n")
            out.append("| name | target | operation | default range | every | source |")
            out.append("|---|---|---|---|---|---|")
            for t in config.terms:
                every = f"{t.every_steps} steps" if t.every_steps else "reset"
                out.append(
                    f"| `{t.name}` | `{t.target}` | {t.operation} | {_distribution(t)} | {every} | {t.source or ''} |"
                )
            out.append("\n### Targets\n")
            out.append("| target | unit | nominal | per step | what |")
            out.append("|---|---|---|---|---|")
            for name in sorted(env.targets):
                tg = env.targets[name]
                out.append(
                    f"| `{name}` | {tg.unit} | {_fmt(tg.nominal)} | {'yes' if tg.per_step else ''} | {tg.description} |"
                )
        finally:
            env.close()
    return "\n".join(out) + "\n"


def main() -> None:
    text = render_markdown()
    if len(sys.argv) > 1 and sys.argv[1] == "--check":
        sys.exit(0 if DOC_PATH.exists() and DOC_PATH.read_text() == text else 1)
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(text)
    print(f"wrote {DOC_PATH}")


if __name__ == "__main__":
    main()
