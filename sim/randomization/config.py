"""Declarative domain randomization: a YAML list of terms, validated, sampled with one seeded generator.

A term names the domain value it produces (``name``), the env parameter it changes (``target``), a distribution
(uniform, log_uniform, normal, choice, or hsv: an RGB colour drawn uniformly in hue, saturation and value), an
operation (``set``, ``add`` or ``scale``, always applied to the target's cached nominal value, so repeated resets
never drift) and when it fires (episode start, or also every N steps).

A sampled *domain* is a flat dict ``name -> value`` (a float, a list of floats, or a string for choices). It is
what ``info["domain"]`` shows, what logs and reports record, and what a domain file pins.

``strength`` in [0, 1] shrinks every range toward its neutral value (1 for ``scale``, 0 for ``add``, the target's
nominal value for ``set``): 0 gives the nominal domain, 1 the full ranges. For a ``choice``, the nominal value is
kept with probability ``1 - strength``, otherwise an option is drawn.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from robot.config_file import HARDWARE_CONFIG_DIR
from robot.description import format_validation_error, read_yaml

DEFAULTS_DIR = Path(__file__).resolve().parent / "defaults"
VARIANTS_DIR = Path(__file__).resolve().parent / "variants"  # shipped randomization configs, found by name
# domain files found by name (``--reality``, ``--domain``): the mock robots' realities and the held-out test domains
DOMAIN_DIRS = (HARDWARE_CONFIG_DIR / "mock" / "realities", Path(__file__).resolve().parents[2] / "docs" / "robustness")

Value = float | list[float] | str


class RandomizationError(ValueError):
    """A randomization config or domain file is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Uniform(_Strict):
    type: Literal["uniform"]
    low: float | list[float]
    high: float | list[float]

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        lo, hi = np.atleast_1d(self.low), np.atleast_1d(self.high)
        if lo.shape != hi.shape and lo.size != 1 and hi.size != 1:
            raise ValueError(f"low and high must have the same length, got {lo.size} and {hi.size}")
        if np.any(lo > hi):
            raise ValueError(f"low {self.low} must not exceed high {self.high}")
        return self


class LogUniform(_Strict):
    type: Literal["log_uniform"]
    low: float = Field(gt=0)
    high: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> LogUniform:
        if self.low > self.high:
            raise ValueError(f"low {self.low} must not exceed high {self.high}")
        return self


class Normal(_Strict):
    type: Literal["normal"]
    mean: float | list[float]
    std: float | list[float]
    clip: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _positive(self) -> Normal:
        if np.any(np.atleast_1d(self.std) < 0):
            raise ValueError(f"std must be >= 0, got {self.std}")
        return self


class Choice(_Strict):
    type: Literal["choice"]
    options: list[float | str] = Field(min_length=1)
    probs: list[float] | None = None

    @model_validator(mode="after")
    def _probs(self) -> Choice:
        if self.probs is not None:
            if len(self.probs) != len(self.options):
                raise ValueError("probs must give one probability per option")
            if any(q < 0 for q in self.probs) or not math.isclose(sum(self.probs), 1.0, abs_tol=1e-6):
                raise ValueError(f"probs must be non-negative and sum to 1, got {self.probs}")
        return self


class Hsv(_Strict):
    """An RGB colour (three floats in [0, 1]) drawn uniformly in HSV: ``hue``, ``saturation`` and ``value`` are
    [low, high] ranges in [0, 1]. Unlike a uniform RGB draw, which makes a colour darker than value 0.25 once in 64
    draws and a nearly grey one rarely, it covers dark and washed-out surfaces as often as vivid ones."""

    type: Literal["hsv"]
    hue: tuple[float, float] = (0.0, 1.0)
    saturation: tuple[float, float] = (0.0, 1.0)
    value: tuple[float, float] = (0.0, 1.0)

    @model_validator(mode="after")
    def _ranges(self) -> Hsv:
        for field in ("hue", "saturation", "value"):
            lo, hi = getattr(self, field)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{field} must be [low, high] with 0 <= low <= high <= 1, got {[lo, hi]}")
        return self


def hsv_to_rgb(h: float, s: float, v: float) -> list[float]:
    """RGB in [0, 1] of hue ``h`` (turns), saturation ``s`` and value ``v``: the standard library's hexcone
    conversion, as the list a domain records."""
    return list(colorsys.hsv_to_rgb(h, s, v))


Distribution = Annotated[Uniform | LogUniform | Normal | Choice | Hsv, Field(discriminator="type")]


class Term(_Strict):
    """One randomized quantity. ``every_steps``: also re-sample every N env steps (None: episode start only)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="domain key, e.g. object_mass_scale")
    target: str = Field(min_length=1, description="env parameter, e.g. object.mass")
    operation: Literal["set", "add", "scale"]
    distribution: Distribution
    size: int | None = Field(default=None, ge=1, description="sample a vector of this length (default: scalar)")
    every_steps: int | None = Field(default=None, ge=1)
    source: str | None = Field(default=None, description="where the default range comes from")

    @model_validator(mode="after")
    def _consistent(self) -> Term:
        if isinstance(self.distribution, Choice) and self.operation != "set":
            raise ValueError("a choice distribution can only 'set' its target")
        if isinstance(self.distribution, Hsv) and (self.operation != "set" or self.size not in (None, 3)):
            raise ValueError("an hsv distribution draws an RGB colour: operation 'set', size 3 (or none)")
        return self


class RandomizationConfig(_Strict):
    """A list of terms with unique names, and the strength they are sampled at."""

    terms: list[Term] = []
    strength: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _unique(self) -> RandomizationConfig:
        names = [t.name for t in self.terms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"term names must be unique; repeated: {dup}")
        return self

    def term(self, name: str) -> Term:
        for t in self.terms:
            if t.name == name:
                return t
        raise KeyError(name)


def parse_randomization(data: Any, source: str = "<dict>") -> RandomizationConfig:
    try:
        return RandomizationConfig.model_validate(data)
    except ValidationError as e:
        raise RandomizationError(format_validation_error(source, "randomization config", e)) from None


def load_randomization(spec: str | Path, task: str) -> RandomizationConfig:
    """``"default"`` (the task's shipped config), ``"none"`` (the default terms at strength 0) or a YAML path.

    A file may start from another config with ``extends: default`` (or a path, relative to the file): its terms then
    replace the base's terms of the same name, in place, and are appended otherwise, and its ``strength``, if
    given, replaces the base's. The result is one flat config (what bundles and reports record)."""
    return _load_randomization(spec, task, ())


def _load_randomization(spec: str | Path, task: str, chain: tuple[Path, ...]) -> RandomizationConfig:
    if str(spec) in ("default", "none"):
        path = DEFAULTS_DIR / f"{task}.yaml"
    else:
        path = _by_name(spec, (VARIANTS_DIR,), "randomization config", ["default", "none"])
    if path.resolve() in chain:
        raise RandomizationError(f"{path}: 'extends' loops back to it ({' -> '.join(str(p) for p in chain)})")
    data = read_yaml(path, RandomizationError)
    if isinstance(data, dict) and "extends" in data:
        data = dict(data)
        base_spec = str(data.pop("extends"))
        if base_spec not in ("default", "none"):
            base_spec = str(path.parent / base_spec)
        base = _load_randomization(base_spec, task, (*chain, path.resolve())).model_dump(mode="json")
        data = _extend(base, data, str(path))
    config = parse_randomization(data, str(path))
    if str(spec) == "none":
        config = config.model_copy(update={"strength": 0.0})
    return config


def _extend(base: dict[str, Any], data: dict[str, Any], source: str) -> dict[str, Any]:
    """``base`` (a dumped config) with the terms of ``data`` replacing its same-named terms, or appended."""
    terms = data.get("terms") or []
    if not isinstance(terms, list) or not all(isinstance(t, dict) for t in terms):
        raise RandomizationError(f"{source}: 'terms' must be a list of terms")
    merged = list(base["terms"])
    index = {t["name"]: i for i, t in enumerate(merged)}
    for term in terms:
        if term.get("name") in index:
            merged[index[term["name"]]] = term
        else:
            merged.append(term)
    return {**base, **data, "terms": merged}


def _by_name(spec: str | Path, folders: tuple[Path, ...], kind: str, builtin: list[str] | None = None) -> Path:
    """``spec`` as a path if it exists, else ``<folder>/<spec>.yaml`` for the first of ``folders`` holding it (a bare
    name, so that commands work from any working directory); the error lists the names of this kind."""
    path = Path(spec)
    if path.exists():
        return path
    if len(path.parts) == 1:
        for folder in folders:
            named = folder / f"{path.stem if path.suffix == '.yaml' else path.name}.yaml"
            if named.is_file():
                return named
    known = [*(builtin or []), *sorted(f.stem for folder in folders for f in folder.glob("*.yaml"))]
    raise RandomizationError(f"{spec}: no such {kind}, and none of that name; known: {', '.join(known)}")


def load_domain(spec: str | Path | dict[str, Any] | None) -> dict[str, Value]:
    """A domain to pin: a dict, or a YAML file of ``name: value``; None gives an empty dict."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        return dict(spec)
    path = _by_name(spec, DOMAIN_DIRS, "domain file")
    data = read_yaml(path, RandomizationError) or {}
    if not isinstance(data, dict):
        raise RandomizationError(f"{path}: a domain file maps names to values, got {type(data).__name__}")
    return data


# -- sampling ----------------------------------------------------------------------------------------------------


def neutral_value(term: Term, nominal: Value) -> Value:
    """The value of ``term`` that leaves its target at the nominal value."""
    if term.operation == "scale":
        return _shaped(1.0, term)
    if term.operation == "add":
        return _shaped(0.0, term)
    return nominal


def _shaped(x: float, term: Term) -> float | list[float]:
    return x if term.size is None else [x] * term.size


def _shrink(lo: np.ndarray, hi: np.ndarray, centre: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    return centre + s * (lo - centre), centre + s * (hi - centre)


def sample_term(term: Term, rng: np.random.Generator, strength: float, nominal: Value) -> Value:
    """Draw one value of ``term``; ranges are shrunk toward the neutral value by ``strength``."""
    d = term.distribution
    neutral = neutral_value(term, nominal)
    shape = None if term.size is None else (term.size,)
    if isinstance(d, Hsv):  # a colour: drawn in HSV, then shrunk toward the nominal colour in RGB
        h, s, v = (rng.uniform(*r) for r in (d.hue, d.saturation, d.value))
        rgb = np.asarray(hsv_to_rgb(h, s, v))
        centre = np.asarray(neutral, dtype=float)
        return neutral if strength == 0.0 else (centre + strength * (rgb - centre)).tolist()
    if isinstance(d, Choice):
        keep_nominal = rng.uniform() >= strength
        pick = d.options[int(rng.choice(len(d.options), p=d.probs))]
        return neutral if keep_nominal else pick
    centre = np.asarray(neutral, dtype=float) if not isinstance(neutral, str) else np.zeros(1)
    if isinstance(d, Uniform):
        lo, hi = _shrink(np.asarray(d.low, float), np.asarray(d.high, float), centre, strength)
        x = rng.uniform(np.broadcast_to(lo, shape or lo.shape), np.broadcast_to(hi, shape or hi.shape))
    elif isinstance(d, LogUniform):
        c = np.log(np.clip(centre, 1e-12, None))
        lo, hi = _shrink(np.log(d.low), np.log(d.high), c, strength)
        x = np.exp(rng.uniform(lo, hi, size=shape))
    else:
        mean = centre + strength * (np.asarray(d.mean, float) - centre)
        x = rng.normal(mean, strength * np.asarray(d.std, float), size=shape)
        if d.clip is not None:
            x = np.clip(x, *d.clip)
    if strength == 0.0:
        return neutral  # exactly nominal (the draw above still happened, so the stream is the same)
    x = np.asarray(x, dtype=float)
    return float(x) if x.ndim == 0 or (term.size is None and x.size == 1) else x.reshape(-1).tolist()


def largest_value(config: RandomizationConfig, target: str, nominal: float) -> float:
    """The largest value a scalar ``target`` (nominal ``nominal``) takes under ``config`` at its strength, e.g. the
    oldest camera frame a policy was trained on. Terms apply in order, as at reset; a normal without a clip
    counts to mean + 3 std."""
    value = nominal
    for term in config.terms:
        if term.target != target:
            continue
        d, s = term.distribution, config.strength
        neutral = float(neutral_value(term, value))
        if isinstance(d, Uniform | LogUniform):
            high = float(np.max(d.high))
        elif isinstance(d, Normal):
            high = d.clip[1] if d.clip is not None else float(np.max(np.asarray(d.mean) + 3 * np.asarray(d.std)))
        elif isinstance(d, Choice):
            high = max(float(o) for o in d.options)
        else:
            raise ValueError(f"term {term.name!r}: an {d.type} distribution gives no scalar")
        high = max(neutral, neutral + s * (high - neutral)) if not isinstance(d, Choice) else max(neutral, high)
        value = float(apply_operation(term.operation, value, high))
    return value


def apply_operation(operation: str, nominal: Value, value: Value) -> Value:
    """The target's value after a term: ``set`` replaces, ``add`` adds, ``scale`` multiplies (elementwise)."""
    if operation == "set" or isinstance(nominal, str) or isinstance(value, str):
        return value
    a, b = np.asarray(nominal, dtype=float), np.asarray(value, dtype=float)
    out = a + b if operation == "add" else a * b
    return float(out) if out.ndim == 0 else out.tolist()
