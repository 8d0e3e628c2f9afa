"""Choosing a store: an explicit URL wins, then CONVEYOR_URL, REDIS_URL, then ./conveyor.db."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.errors import ConfigurationError
from conveyor.stores import redact


def test_explicit_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_URL", "redis://elsewhere:6379/0")
    assert Conveyor("memory://").url == "memory://"


def test_environment_order(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor")
    monkeypatch.setenv("REDIS_URL", "redis://:pw@second:6379/1")
    assert Conveyor().url == "redis://:pw@second:6379/1"
    assert "REDIS_URL: redis://:***@second:6379/1" in caplog.text
    monkeypatch.setenv("CONVEYOR_URL", "redis://first:6379/2")
    assert Conveyor().url == "redis://first:6379/2"


def test_default_is_the_embedded_sqlite_file(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="conveyor")
    monkeypatch.chdir(tmp_path)
    app = Conveyor()
    assert app.url == "sqlite:///conveyor.db"
    assert "no store configured; using the embedded sqlite:///conveyor.db" in caplog.text

    @app.job
    def ping() -> str:
        return "pong"

    ping.enqueue()
    app.close()
    assert (tmp_path / "conveyor.db").exists()


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_LEASE", "45")
    monkeypatch.setenv("CONVEYOR_ROUTES", '{"media.*": "video"}')
    app = Conveyor("memory://", concurrency=3)
    assert app.settings.lease == 45
    assert app.settings.routes == {"media.*": "video"}
    assert app.settings.concurrency == 3


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValueError, match="leese"):
        Conveyor("memory://", leese=3)


def test_bad_settings_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"> 0.0 - at `\$.lease`"):
        Conveyor("memory://", lease=0)
    monkeypatch.setenv("conveyor_max_payload", "many")  # variable names in any case
    with pytest.raises(ConfigurationError, match="max_payload"):
        Conveyor("memory://")
    assert Conveyor("memory://", max_payload="10").settings.max_payload == 10  # keywords win
    monkeypatch.setenv("CONVEYOR_ROUTES", "media.*=video")
    with pytest.raises(ConfigurationError, match="CONVEYOR_ROUTES must be JSON"):
        Conveyor("memory://", max_payload=10)


def test_eager_mode_is_explicit_and_in_memory() -> None:
    with pytest.raises(ConfigurationError, match="eager mode"):
        Conveyor("sqlite:///x.db", eager=True)
    app = Conveyor("memory://", eager=True)

    @app.job
    def double(x: int) -> int:
        return 2 * x

    handle = double.enqueue(21)
    assert handle.result(timeout=5) == 42


def test_redact() -> None:
    assert redact("redis://user:secret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"
