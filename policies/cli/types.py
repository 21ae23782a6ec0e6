"""Flag types the commands share, parsed from one token each (``--crop 96,96,448,336``); a bad value is a usage
error naming the flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from tyro.constructors import PrimitiveConstructorSpec


def _spec(parse: Callable[[str], Any], metavar: str, show: Callable[[Any], str] = str) -> PrimitiveConstructorSpec:
    return PrimitiveConstructorSpec(
        nargs=1,
        metavar=metavar,
        instance_from_str=lambda args: parse(args[0]),
        is_instance=lambda value: value is not None,
        str_from_instance=lambda value: [show(value)],
    )


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def positive_ints(text: str) -> tuple[int, ...]:
    """ "32,64,64" -> (32, 64, 64)."""
    values = _ints(text)
    if not values or min(values) < 1:
        raise ValueError(f"{text!r}: expected positive integers separated by commas")
    return values


def crop(text: str) -> tuple[int, int, int, int]:
    """ "112,112,416,312" -> (x, y, width, height) px."""
    values = _ints(text)
    if len(values) != 4 or min(values[:2]) < 0 or min(values[2:]) < 1:
        raise ValueError(f"{text!r}: expected X,Y,WIDTH,HEIGHT in px (x, y >= 0; width, height >= 1)")
    return values  # type: ignore[return-value]


def share(text: str) -> float:
    """ "0.3" -> 0.3, a fraction in [0, 1]."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r}: expected a fraction in [0, 1]")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{text!r}: expected an integer >= 1")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text!r}: expected an integer >= 0")
    return value


def _commas(values: Any) -> str:
    return ",".join(str(v) for v in values)


Crop = Annotated[tuple[int, int, int, int], _spec(crop, "X,Y,W,H", _commas)]
PositiveInts = Annotated[tuple[int, ...], _spec(positive_ints, "N,N,...", _commas)]
Share = Annotated[float, _spec(share, "P")]
PositiveInt = Annotated[int, _spec(positive_int, "INT")]
NonNegativeInt = Annotated[int, _spec(non_negative_int, "INT")]
