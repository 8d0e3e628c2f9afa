"""The HTTP API: `create_app(app)` returns a FastAPI application (see `application.py`)."""

from conveyor.api.application import create_app
from conveyor.api.security import Access

__all__ = ["Access", "create_app"]
