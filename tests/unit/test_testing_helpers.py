"""The helpers users get for their own tests: drain() and the pytest fixtures."""

from __future__ import annotations

import pytest

from conveyor import Conveyor, State
from conveyor.testing import TestQueue, drain

pytest_plugins = ["pytester"]


def make_app() -> tuple[Conveyor, list[str]]:
    app = Conveyor("memory://")
    sent: list[str] = []

    @app.job
    def send_mail(to: str) -> None:
        sent.append(to)

    @app.job
    async def signup(email: str) -> None:
        await send_mail.aenqueue(email)  # a job that enqueues another

    return app, sent


def test_drain_runs_everything_including_what_jobs_enqueue() -> None:
    app, sent = make_app()
    app.enqueue("signup", "a@example.com")
    app.enqueue("send_mail", "b@example.com", _delay=3600)  # not due: stays
    assert drain(app) == 2
    assert sent == ["a@example.com"]
    queue = TestQueue(app)
    assert [j.function for j in queue.jobs(State.SCHEDULED)] == ["send_mail"]
    app.close()


def test_fixture_in_a_user_project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from conveyor import Conveyor

        pytest_plugins = ["conveyor.testing"]
        app = Conveyor("sqlite:///never-used.db")
        sent = []

        @app.job
        def send_mail(to: str) -> None:
            sent.append(to)

        @pytest.fixture
        def conveyor_app():
            return app
        """
    )
    pytester.makepyfile(
        """
        from conftest import app, sent

        def test_signup(conveyor):
            app.enqueue("send_mail", "a@example.com")
            assert conveyor.drain() == 1
            assert sent == ["a@example.com"]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "never-used.db").exists()
