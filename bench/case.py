"""Run one case in the system's own venv: `python -m bench.case '<spec as JSON>'`.

Prints the result as one JSON line prefixed `RESULT `. The environment (BENCH_REDIS_URL,
BENCH_STORE, BENCH_SQLITE_PATH, BENCH_CONCURRENCY, CONVEYOR_URL) is set by the harness before
this process starts, so adapter modules read it at import, as a user's modules would.
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from importlib import metadata
from typing import Any

from bench import probe
from bench.adapter import Adapter
from bench.spec import Spec
from bench.systems import BY_NAME


def load_adapter(spec: Spec) -> Adapter:
    module_name, class_name = BY_NAME[spec.system].adapter.split(":")
    cls: type[Adapter] = getattr(importlib.import_module(module_name), class_name)
    return cls(spec.redis_url)


def run(spec: Spec) -> dict[str, Any]:
    from bench.workloads import WORKLOADS

    adapter = load_adapter(spec)
    harness = probe.connect(spec.redis_url)
    workload = "drain" if spec.workload == "drain2" else spec.workload
    try:
        result = WORKLOADS[workload](spec, adapter, harness)
    except Exception as exc:
        traceback.print_exc()
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        harness.close()
    result.setdefault("status", "ok")
    return result


def versions(names: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def main() -> None:
    if sys.argv[1] == "--versions":
        print("RESULT " + json.dumps(versions(sys.argv[2:])))
        return
    spec = Spec(**json.loads(sys.argv[1]))
    print("RESULT " + json.dumps(run(spec)), flush=True)


if __name__ == "__main__":
    main()
