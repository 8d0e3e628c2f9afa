"""The public surface: a small, explicit `__all__`, guarded so it changes only on purpose."""

from __future__ import annotations

import conveyor
import conveyor.stores.base


def test_exported_names() -> None:
    assert sorted(conveyor.__all__) == [
        "Context",
        "Conveyor",
        "ConveyorError",
        "Job",
        "JobCancelled",
        "JobExpired",
        "JobFailed",
        "JobHandle",
        "JobNotFound",
        "Priority",
        "Retry",
        "State",
    ]
    for name in conveyor.__all__:
        assert getattr(conveyor, name).__module__.startswith("conveyor.")


def test_store_contract_is_public() -> None:
    assert "Store" in conveyor.stores.base.__all__


def test_decorated_function_stays_callable() -> None:
    app = conveyor.Conveyor("memory://")

    @app.job
    def add(a: int, b: int = 1) -> int:
        """Adds."""
        return a + b

    @app.job(name="custom", queue="math")
    async def mul(a: int, b: int) -> int:
        return a * b

    assert add(2, b=3) == 5
    assert add.__doc__ == "Adds." and add.__name__ == "add"
    assert app.functions == {"add": add, "custom": mul}
    assert repr(app).startswith("<Conveyor memory://")
