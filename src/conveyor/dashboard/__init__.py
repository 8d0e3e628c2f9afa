"""The web dashboard: server-rendered pages (Jinja2) with htmx and one small script, served by
the API's application under `/ui`, reading everything from the store."""

from conveyor.dashboard.mount import mount_dashboard

__all__ = ["mount_dashboard"]
