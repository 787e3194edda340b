"""Argument checks shared by the model constructors (each raises ValueError saying what is allowed)."""

from __future__ import annotations

import numbers


def check_positive_int(name: str, value: object) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_positive_float(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a number > 0, else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def check_probability(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a dropout probability in [0, 1), else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}")
    return float(value)


def check_common(num_classes: object, in_chans: object) -> tuple[int, int]:
    """Check the two arguments every model takes: ``num_classes`` and ``in_chans``."""
    return check_positive_int("num_classes", num_classes), check_positive_int("in_chans", in_chans)
