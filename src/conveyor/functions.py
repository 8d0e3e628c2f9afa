"""A registered job function: its defaults, its signature check, and `enqueue`.

The decorated function stays directly callable with its own signature; `enqueue` takes the same
arguments (without the `Context`), plus `_`-prefixed options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    Literal,
    ParamSpec,
    TypeAlias,
    TypeVar,
    cast,
)

from conveyor.arguments import ArgumentTypes
from conveyor.context import Context
from conveyor.errors import InvalidArguments
from conveyor.lifecycle import RetryPolicy
from conveyor.options import NONE, Options, make_options, merge, split_options

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.handle import JobHandle

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

Executor = Literal["async", "thread", "process"]

CtxAsync: TypeAlias = Callable[Concatenate[Context, P], Coroutine[Any, Any, R]]
CtxSync: TypeAlias = Callable[Concatenate[Context, P], R]
PlainAsync: TypeAlias = Callable[P, Coroutine[Any, Any, R]]
PlainSync: TypeAlias = Callable[P, R]


@dataclass(frozen=True, slots=True)
class Defaults:
    """What the decorator said about a function; None falls back to the app's settings."""

    queue: str | None = None
    priority: str = "normal"
    policy: RetryPolicy | None = None
    timeout: float | None = None
    soft_timeout: float | None = None
    ttl: float | None = None
    max_crashes: int | None = None
    expires: float | None = None
    executor: Executor | None = None


class Call(Generic[P]):
    """One set of arguments for `enqueue_many`, made by `f.call(...)`."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        self.args = args
        self.kwargs = kwargs


class ArgumentCheck:
    """Refuses calls that could never bind to the signature; fast for plain positional calls."""

    def __init__(self, name: str, signature: inspect.Signature) -> None:
        self.name = name
        self.signature = signature
        params = list(signature.parameters.values())
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.simple = all(p.kind in positional for p in params)
        self.most = len(params)
        self.least = sum(p.default is inspect.Parameter.empty for p in params)

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if self.simple and not kwargs and self.least <= len(args) <= self.most:
            return
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            shown = self.signature.replace(return_annotation=inspect.Signature.empty)
            raise InvalidArguments(f"{self.name}{shown}: {exc}") from None


def readable_signature(fn: Callable[..., Any]) -> inspect.Signature:
    """The signature with string annotations resolved where possible, for error messages."""
    try:
        return inspect.signature(fn, eval_str=True)
    except Exception:  # an annotation that names something undefined: show it as written
        return inspect.signature(fn)


def takes_context(fn: Callable[..., Any]) -> bool:
    """A job asks for a Context with a first parameter annotated `Context` or named `ctx`."""
    params = list(inspect.signature(fn).parameters.values())
    if not params:
        return False
    first = params[0]
    annotation = first.annotation
    if annotation is Context or (isinstance(annotation, str) and annotation.endswith("Context")):
        return True
    return first.name == "ctx" and annotation is inspect.Parameter.empty


class JobFunction(Generic[P, R, F]):
    """A function registered with `@app.job`. Call it directly, or `enqueue` it."""

    def __init__(self, app: Conveyor, fn: F, name: str, defaults: Defaults) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.defaults = defaults
        self.is_async = inspect.iscoroutinefunction(fn)
        self.takes_context = takes_context(fn)
        signature = readable_signature(fn)
        if self.takes_context:
            params = list(signature.parameters.values())[1:]
            signature = signature.replace(parameters=params)
        self.check = ArgumentCheck(name, signature)
        self.types = ArgumentTypes(name, fn, signature)
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", name)
        self.__doc__ = fn.__doc__
        self.__module__ = fn.__module__
        self.__wrapped__ = fn

    if TYPE_CHECKING:
        __call__: F
    else:

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<JobFunction {self.name}>"

    @property
    def executor(self) -> Executor:
        if self.defaults.executor is not None:
            return self.defaults.executor
        return "async" if self.is_async else "thread"

    def options(self, **options: Any) -> Bound[P, R]:
        """Enqueue options apart from the arguments: `f.options(delay=5).enqueue(x)`."""
        return Bound(self, make_options(options))

    def call(self, *args: P.args, **kwargs: P.kwargs) -> Call[P]:
        """Arguments for `enqueue_many`."""
        return Call(*args, **kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue one job (from code without an event loop, or with one: this call blocks)."""
        return Bound(self, NONE).enqueue(*args, **kwargs)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue one job from async code."""
        return await Bound(self, NONE).aenqueue(*args, **kwargs)

    def enqueue_many(self, calls: Iterable[tuple[Any, ...] | Call[P]]) -> list[JobHandle[R]]:
        """Enqueue many jobs in one round trip; each item is a tuple of arguments or a `Call`."""
        return Bound(self, NONE).enqueue_many(calls)

    async def aenqueue_many(self, calls: Iterable[tuple[Any, ...] | Call[P]]) -> list[JobHandle[R]]:
        return await Bound(self, NONE).aenqueue_many(calls)


class Bound(Generic[P, R]):
    """A job function with enqueue options bound to it."""

    __slots__ = ("function", "opts")

    def __init__(self, function: JobFunction[P, R, Any], opts: Options) -> None:
        self.function = function
        self.opts = opts

    def options(self, **options: Any) -> Bound[P, R]:
        return Bound(self.function, merge(self.opts, make_options(options)))

    def _requests(
        self, calls: Iterable[tuple[Any, ...] | Call[P]]
    ) -> list[tuple[tuple[Any, ...], dict[str, Any], Options]]:
        requests: list[tuple[tuple[Any, ...], dict[str, Any], Options]] = []
        for call in calls:
            if isinstance(call, Call):
                own, opts = split_options(cast(dict[str, Any], call.kwargs))
                requests.append((cast(tuple[Any, ...], call.args), own, merge(self.opts, opts)))
            elif isinstance(call, tuple):
                requests.append((call, {}, self.opts))
            else:
                raise InvalidArguments(
                    f"enqueue_many takes tuples of arguments or {self.function.name}.call(...),"
                    f" not {type(call).__name__}"
                )
        return requests

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        own, opts = split_options(cast(dict[str, Any], kwargs))
        request = (cast(tuple[Any, ...], args), own, merge(self.opts, opts))
        return self.function.app.submit(self.function, [request])[0]

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        own, opts = split_options(cast(dict[str, Any], kwargs))
        request = (cast(tuple[Any, ...], args), own, merge(self.opts, opts))
        return (await self.function.app.asubmit(self.function, [request]))[0]

    def enqueue_many(self, calls: Iterable[tuple[Any, ...] | Call[P]]) -> list[JobHandle[R]]:
        return self.function.app.submit(self.function, self._requests(calls))

    async def aenqueue_many(self, calls: Iterable[tuple[Any, ...] | Call[P]]) -> list[JobHandle[R]]:
        return await self.function.app.asubmit(self.function, self._requests(calls))
