"""Arguments converted to the job function's parameter annotations.

The wire format keeps plain data: a dataclass or msgspec Struct argument travels as a map and a
datetime as a string. The worker turns them back into what the function declares (`order:
Order` gets an `Order`), and the HTTP API, which receives JSON, also checks scalars (`"5"` is
refused for an `int`). Parameters without annotations, or with types msgspec does not know, take
the value as it is. A value that does not fit raises `InvalidArguments` naming the parameter.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from conveyor.errors import InvalidArguments
from conveyor.serializers import decodable

__all__ = ["ArgumentTypes"]

PASSED_AS_IS = frozenset({Any, object, int, float, str, bool, bytes, type(None)})
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class ArgumentTypes:
    def __init__(self, name: str, fn: Callable[..., Any], signature: inspect.Signature) -> None:
        """`signature` without the Context parameter, if the function takes one."""
        self.name = name
        hints = _hints(fn)
        self.checked: list[tuple[int | None, str, Any]] = []  # (position, name, type)
        for position, param in enumerate(signature.parameters.values()):
            if param.kind not in (*POSITIONAL, inspect.Parameter.KEYWORD_ONLY):
                continue
            annotation = hints.get(param.name)
            if annotation is None or not decodable(annotation):
                continue
            self.checked.append(
                (position if param.kind in POSITIONAL else None, param.name, annotation)
            )
        self.rich = [entry for entry in self.checked if entry[2] not in PASSED_AS_IS]

    def convert(
        self, args: list[Any], kwargs: dict[str, Any], scalars: bool = False
    ) -> tuple[list[Any], dict[str, Any]]:
        """(args, kwargs) with the annotated values converted; the worker converts rich types
        only (free for functions that take only scalars), the API checks `scalars` too."""
        entries = self.checked if scalars else self.rich
        if not entries:
            return args, kwargs
        args, kwargs = list(args), dict(kwargs)
        for position, name, annotation in entries:
            if position is not None and position < len(args):
                args[position] = self._one(name, args[position], annotation)
            elif name in kwargs:
                kwargs[name] = self._one(name, kwargs[name], annotation)
        return args, kwargs

    def _one(self, name: str, value: Any, annotation: Any) -> Any:
        try:
            return msgspec.convert(value, annotation, strict=False)
        except msgspec.ValidationError as exc:
            raise InvalidArguments(f"{self.name}(): argument {name!r}: {exc}") from None


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation naming something undefined: no conversion
        return {}
