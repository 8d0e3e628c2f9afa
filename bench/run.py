"""The harness: one private redis-server, every system's cases in turn, each in a fresh process
of the system's own venv, and the raw results as JSON in `bench/results/`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import machine
from bench.redis_server import PrivateRedis
from bench.spec import Plan, Spec
from bench.systems import SYSTEMS, System
from bench.venv import BENCH, peers_python

ROOT = BENCH.parent
RESULTS = BENCH / "results"
ONCE = ("latency", "commands")  # not repeated: one run gives many samples or exact counts
PROJECT_PACKAGES = ["conveyor", "redis", "hiredis", "msgspec"]


def specs(system: System, workload: str, plan: Plan, url: str) -> list[Spec]:
    """The cases for one workload (several producer flavors for single enqueues)."""
    log = str(RESULTS / "logs" / f"{system.name}-{workload}.log")
    base = Spec(system.name, workload, url, 0, plan.timeout, log, concurrency=plan.concurrency)
    if workload == "enqueue_single":
        return [replace(base, count=plan.single, flavor=f) for f in system.flavors]
    sizes = {
        "enqueue_bulk": replace(base, count=plan.bulk),
        "drain": replace(base, count=plan.drain),
        "drain2": replace(base, count=plan.drain, processes=2),
        "drain_empty": replace(base, count=plan.empty),
        "backlog": replace(
            base, count=plan.backlog, rounds=plan.backlog_rounds, timeout=plan.backlog_timeout
        ),
        "latency": replace(base, samples=plan.samples),
        "commands": replace(base, count=plan.commands, calls_single=min(200, plan.commands)),
    }
    return [sizes[workload]]


def case_env(system: System, spec: Spec, workdir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONVEYOR_", "BENCH_")) and k != "REDIS_URL"
    }
    env.update(
        BENCH_REDIS_URL=spec.redis_url,
        BENCH_STORE=system.store,
        BENCH_CONCURRENCY=str(spec.concurrency),
        CONVEYOR_URL=spec.redis_url,
        # this checkout's Conveyor, ahead of the venv's editable install (which points at
        # whichever checkout made the venv): a worktree of another commit measures that commit
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if system.store == "sqlite":
        path = workdir / f"{system.name}.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        env.update(BENCH_SQLITE_PATH=str(path), CONVEYOR_URL=f"sqlite:///{path}")
    return env


def run_case(python: str, spec: Spec, env: dict[str, str]) -> dict[str, Any]:
    """Run one case; a case that outlives its bound is killed with its workers."""
    limit = 3 * spec.timeout + 60
    command = [python, "-m", "bench.case", json.dumps(spec.to_json())]
    Path(spec.log).parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as err:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
        try:
            out, _ = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"status": "timed out", "error": f"case killed after {limit:.0f} s"}
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    return {"status": "error", "error": f"no result (exit {proc.returncode}); see {spec.log}"}


def versions(python: str, names: list[str]) -> dict[str, str]:
    out = subprocess.run(
        [python, "-m", "bench.case", "--versions", *names],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1][len("RESULT ") :]))


def show(spec: Spec, rep: int, result: dict[str, Any], seconds: float) -> None:
    value = ""
    if "rate" in result:
        value = f"{result['rate']:>10,.0f} jobs/s"
    elif "fetch_ratio" in result:
        value = (
            f"at {result['depth_large']:,} / {result['depth_small']:,} queued: fetch "
            f"{result['fetch_ratio']:.2f}x, enqueue {result['enqueue_ratio']:.2f}x; "
            f"{result['bytes_per_job']:,.0f} B/job"
        )
    elif "p50_ms" in result:
        value = f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms"
    if "worker_calls" in result:
        value += f"  {result['bulk_calls'] + result['worker_calls']:.2f} calls/job"
    label = f"{spec.workload}{'/' + spec.flavor if spec.flavor else ''}"
    error = f"  ({result['error']})" if result.get("error") else ""
    print(
        f"  {spec.system:<16} {label:<22} #{rep + 1} {result['status']:<9} {value}{error}"
        f"  [{seconds:.1f} s]",
        flush=True,
    )


def run(plan: Plan) -> Path:
    peers = str(peers_python())
    pythons = {"project": sys.executable, "peers": peers}
    chosen = [s for s in SYSTEMS if not plan.systems or s.name in plan.systems]
    RESULTS.mkdir(exist_ok=True)
    cases: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp,
        PrivateRedis(Path(tmp)) as server,
    ):
        meta = machine.describe(server.version())
        meta["versions"] = versions(sys.executable, PROJECT_PACKAGES)
        names = [line.split("==")[0].split("[")[0] for line in _requirements()]
        meta["peer_versions"] = versions(peers, [*names, "redis"])
        meta["plan"] = {k: v for k, v in vars(plan).items() if k not in ("systems", "workloads")}
        started = time.monotonic()
        print(f"bench: private redis-server {meta['redis']} on {server.url}", flush=True)
        cases = _rounds(chosen, plan, pythons, server, Path(tmp))
        meta["load_after"] = list(os.getloadavg())
        meta["minutes"] = round((time.monotonic() - started) / 60, 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{stamp}{'-quick' if plan.repeats == 1 else ''}.json"
    path.write_text(json.dumps({"meta": meta, "cases": cases}, indent=1))
    (RESULTS / "latest.json").write_text(path.read_text())
    print(f"bench: raw results in {path.relative_to(ROOT)}", flush=True)
    return path


def _rounds(
    systems: list[System], plan: Plan, pythons: dict[str, str], server: PrivateRedis, workdir: Path
) -> list[dict[str, Any]]:
    """Repetitions go round: every case once, then again, so a burst of other load on the
    machine falls on several systems rather than all of one system's repetitions."""
    todo = [
        (s, spec)
        for s in systems
        for w in s.workloads
        if not plan.workloads or w in plan.workloads
        for spec in specs(s, w, plan, server.url)
    ]
    out: list[dict[str, Any]] = []
    for rep in range(plan.repeats):
        if rep:
            print(f"bench: round {rep + 1} of {plan.repeats}", flush=True)
        again = []
        for system, spec in todo:
            result = _once(system, spec, rep, pythons[system.venv], server, workdir)
            out.append(result)
            cheap = result["status"] == "ok" and result["wall_s"] <= plan.cheap
            if cheap and spec.workload not in ONCE:
                again.append((system, spec))
        todo = again
    return out


def _once(
    system: System, spec: Spec, rep: int, python: str, server: PrivateRedis, workdir: Path
) -> dict[str, Any]:
    server.reset()
    began = time.monotonic()
    result = run_case(python, spec, case_env(system, spec, workdir))
    seconds = time.monotonic() - began
    show(spec, rep, result, seconds)
    return {
        "system": system.name,
        "store": system.store,
        "workload": spec.workload,
        "flavor": spec.flavor,
        "processes": spec.processes,
        "rep": rep,
        "wall_s": round(seconds, 2),
        **result,
    }


def _requirements() -> list[str]:
    lines = (BENCH / "requirements-peers.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
