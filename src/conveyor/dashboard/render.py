"""Templates, their filters, and the context every page gets."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgspec
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from conveyor.dashboard.charts import depth_bar
from conveyor.job import Job, State
from conveyor.stores.base import QueueStats
from conveyor.views import ago, duration, job_view

HERE = Path(__file__).parent
STATES = [s.value for s in State]
DEPTH_STATES = ["active", "queued", "scheduled", "retrying", "failed"]

env = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(), trim_blocks=True
)


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else ""


def depth(queue: QueueStats) -> str:
    return depth_bar({s.value: n for s, n in queue.counts.items()}, DEPTH_STATES)


env.filters.update(ago=ago, duration=duration, when=when)
env.globals.update(depth=depth, states=STATES)


def job_page_view(job: Job) -> dict[str, Any]:
    """`job_view` plus the texts the pages show."""
    view = job_view(job)
    arguments = {"args": view["args"], "kwargs": view["kwargs"]}
    view["args_json"] = json.dumps(arguments, indent=2, default=str, ensure_ascii=False)
    shown = [json.dumps(a, default=str, ensure_ascii=False) for a in view["args"]]
    shown += [
        f"{k}={json.dumps(v, default=str, ensure_ascii=False)}" for k, v in view["kwargs"].items()
    ]
    view["args_text"] = ", ".join(shown)
    view["result_json"] = json.dumps(msgspec.to_builtins(view["result"]), indent=2, default=str)
    return view


def render(request: Request, template: str, title: str, page: str, **context: Any) -> HTMLResponse:
    settings = request.app.state.dashboard
    body = env.get_template(template).render(
        request=request,
        title=title,
        page=page,
        ui=settings.ui,
        api=settings.api,
        read_only=settings.read_only,
        done=request.query_params.get("done"),
        **context,
    )
    return HTMLResponse(body)
