"""Bad input is refused before it reaches the store, with a message that names the problem."""

from __future__ import annotations

import pytest

from conveyor import Conveyor, ConveyorError
from conveyor.errors import (
    InvalidArguments,
    InvalidCron,
    InvalidURL,
    PayloadError,
    StoreUnavailable,
    UnknownFunction,
    UnknownOption,
)
from support.redis_server import free_port


@pytest.fixture
def app() -> Conveyor:
    app = Conveyor("memory://", max_payload=1000)

    @app.job
    def resize(image_id: int, width: int = 100) -> None: ...

    return app


def test_unknown_function_name_suggests_close_ones(app: Conveyor) -> None:
    with pytest.raises(UnknownFunction, match=r"'resise'.*did you mean resize"):
        app.enqueue("resise", 1)


@pytest.mark.parametrize(
    ("args", "kwargs", "problem"),
    [
        ((), {}, "missing a required argument: 'image_id'"),
        ((1, 2, 3), {}, "too many positional arguments"),
        ((1,), {"height": 5}, "unexpected keyword argument 'height'"),
    ],
)
def test_arguments_that_do_not_fit(
    app: Conveyor, args: tuple[object, ...], kwargs: dict[str, object], problem: str
) -> None:
    with pytest.raises(InvalidArguments, match=problem) as caught:
        app.enqueue("resize", *args, **kwargs)
    assert "resize(image_id: int, width: int = 100)" in str(caught.value)
    assert isinstance(caught.value, TypeError)


def test_unencodable_arguments(app: Conveyor) -> None:
    with pytest.raises(PayloadError, match=r"cannot encode the arguments of 'resize'.*object"):
        app.enqueue("resize", object())


def test_oversized_payload(app: Conveyor) -> None:
    with pytest.raises(PayloadError, match=r"over the limit of 1,000 \(setting max_payload\)"):
        app.enqueue("resize", 1, width=b"x" * 2000)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"_dealy": 5}, "unknown enqueue option _dealy; did you mean _delay"),
        ({"_delay": -1}, "_delay must not be negative"),
        ({"_delay": "soon"}, "_delay must be a number of seconds"),
        ({"_priority": "urgent"}, "unknown priority 'urgent'"),
        ({"_queue": ""}, "_queue must be a non-empty string"),
        ({"_delay": 1, "_at": 2}, "_delay or _at, not both"),
    ],
)
def test_bad_options(app: Conveyor, options: dict[str, object], problem: str) -> None:
    with pytest.raises(UnknownOption, match=problem):
        app.enqueue("resize", 1, **options)


def test_nothing_was_written(app: Conveyor) -> None:
    for call in (lambda: app.enqueue("resize"), lambda: app.enqueue("resize", 1, _nope=1)):
        with pytest.raises(ConveyorError):
            call()
    assert app.portal.call(_count(app)) == 0


async def _count(app: Conveyor) -> int:
    stats = await (await app.store()).queue_stats()
    return sum(sum(s.counts.values()) for s in stats)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("localhost:6379", "has no scheme"),
        ("postgres://db/jobs", "unknown store scheme 'postgres'"),
        ("sqlite://", "names no file"),
        ("redis://localhost:notaport/0", "bad port"),
        ("redis://localhost:6379/zero", "the database must be a number"),
        ("redis:///0", "names no host"),
    ],
)
def test_bad_urls(url: str, problem: str) -> None:
    with pytest.raises(InvalidURL, match=problem):
        Conveyor(url)


def test_bad_url_never_shows_the_password() -> None:
    with pytest.raises(InvalidURL) as caught:
        Conveyor("redis://user:hunter2@localhost:6379/zero")
    assert "hunter2" not in str(caught.value)


def test_unreachable_redis_is_a_clear_error() -> None:
    port = free_port()  # nothing listens there
    app = Conveyor(f"redis://user:hunter2@127.0.0.1:{port}/0")

    @app.job
    def ping() -> None: ...

    with pytest.raises(StoreUnavailable) as caught:
        ping.enqueue()
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "hunter2" not in message


async def test_unreachable_redis_from_async_code() -> None:
    port = free_port()
    app = Conveyor(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}") as caught:
        await app.store()
    assert "hunter2" not in str(caught.value)


def test_sqlite_in_a_missing_directory(tmp_path: object) -> None:
    app = Conveyor(f"sqlite:///{tmp_path}/no/such/dir/jobs.db")

    @app.job
    def ping() -> None: ...

    with pytest.raises(StoreUnavailable, match="no/such/dir"):
        ping.enqueue()


def test_bad_cron_expression(app: Conveyor) -> None:
    with pytest.raises(InvalidCron, match=r"bad cron expression '\* \* \*'"):
        app.cron("* * *", "resize", 1)
    with pytest.raises(InvalidCron, match="unknown time zone 'Mars/Base'"):
        app.cron("* * * * *", "resize", 1, tz="Mars/Base")


def test_cron_arguments_are_checked(app: Conveyor) -> None:
    with pytest.raises(InvalidArguments):
        app.cron("* * * * *", "resize")


def test_bad_job_options_at_registration() -> None:
    app = Conveyor("memory://")
    with pytest.raises(ValueError, match="unknown priority 'urgent'"):
        app.job(priority="urgent")(lambda: None)
    with pytest.raises(ValueError, match="retries must be >= 0"):
        app.job(retries=-1)(lambda: None)
