"""Parameter constraints of the estimators, in the manner of scikit-learn's ``_parameter_constraints``.

Each estimator lists ``_parameter_constraints = {parameter: constraint}``; :func:`check_parameters` (run by
``fit``) raises :class:`~precipmodes.errors.ParameterError` naming the parameter, its value and what is
allowed. The constraints of the parameters that have a config key are the same facts as the config
schema's ``enum``/``type``/bounds: :meth:`Options.schema` and :meth:`Interval.schema` say them in the
schema's words, and ``tests/infra/test_config_facts.py`` checks the two agree (and the defaults).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Mapping

from precipmodes.errors import ParameterError


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (the schema's ``enum``)."""

    values: tuple

    def check(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def problem(self, owner: str, name: str, value: Any) -> str:
        return f"{owner} {name} {value!r} is not one of {', '.join(map(str, self.values))}"

    def schema(self) -> dict:
        return {"enum": list(self.values)}


@dataclass(frozen=True)
class Interval:
    """A number (``integer``: an int) between optional bounds (the schema's ``type`` and bounds)."""

    integer: bool
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def check(self, value: Any) -> bool:
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind) or value != value:  # bools and NaN are not numbers
            return False
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def problem(self, owner: str, name: str, value: Any) -> str:
        bounds = ([f"{'>' if self.low_open else '>='} {self.low}"] if self.low is not None else []) + \
                 ([f"{'<' if self.high_open else '<='} {self.high}"] if self.high is not None else [])
        return (f"{owner} {name} = {value!r} must be {'an integer' if self.integer else 'a number'}"
                + "".join(f" {bound}" for bound in bounds[:1]) + "".join(f" and {bound}" for bound in bounds[1:]))

    def schema(self) -> dict:
        out = {"type": "integer" if self.integer else "number"}
        if self.low is not None:
            out["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.high is not None:
            out["exclusiveMaximum" if self.high_open else "maximum"] = self.high
        return out


@dataclass(frozen=True)
class Boolean:
    """True or False (the schema's ``boolean``)."""

    def check(self, value: Any) -> bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"

    def problem(self, owner: str, name: str, value: Any) -> str:
        return f"{owner} {name} = {value!r} must be true or false"

    def schema(self) -> dict:
        return {"type": "boolean"}


Constraint = Options | Interval | Boolean


def check_parameters(estimator: Any, constraints: Mapping[str, Constraint]) -> None:
    """Raise :class:`ParameterError` for the first parameter of ``estimator`` outside its constraint."""
    for name, constraint in constraints.items():
        value = getattr(estimator, name)
        if not constraint.check(value):
            raise ParameterError(name, constraint.problem(type(estimator).__name__, name, value))
