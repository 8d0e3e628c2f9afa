"""The cache harness: one private redis-server, every system's repetitions in turn, each in a
fresh process of the system's own venv, and the raw results as JSON in `bench/results/`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import machine
from bench.cache.systems import SYSTEMS, System
from bench.cache.workloads import Budget
from bench.redis_server import PrivateRedis
from bench.run import versions
from bench.venv import BENCH, peers_python

ROOT = BENCH.parent
RESULTS = BENCH / "results"
PROJECT_PACKAGES = ["conveyor", "redis", "hiredis", "msgspec"]
PEER_PACKAGES = ["cashews", "aiocache", "redis", "hiredis"]


@dataclass(frozen=True)
class Plan:
    budget: Budget = field(default_factory=Budget)
    repeats: int = 3
    systems: tuple[str, ...] = ()  # empty = all
    conveyor_rev: str = ""  # a git revision of src/conveyor to run instead of the work tree

    @classmethod
    def quick(cls) -> Plan:
        return cls(Budget(seconds=0.2, warmup=0.05, slices=4), repeats=1)

    @property
    def limit(self) -> float:
        """Seconds after which a case process is killed (it should take a small part)."""
        return 90 + 60 * (self.budget.seconds + self.budget.warmup)


def case_env(url: str, path: list[Path]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONVEYOR_", "BENCH_")) and k != "REDIS_URL"
    }
    pythonpath = os.pathsep.join(str(p) for p in [*path, ROOT])
    env.update(BENCH_REDIS_URL=url, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    return env


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def conveyor_source(rev: str, workdir: Path) -> tuple[list[Path], str]:
    """Where Conveyor is imported from: the work tree (the editable install), or `rev`'s
    src/conveyor exported into `workdir` and put first on PYTHONPATH; and how to say so."""
    head = git("rev-parse", "--short", "HEAD")
    if not rev:
        dirty = git("status", "--porcelain", "--", "src/conveyor")
        return [], f"work tree at {head}" + (" with uncommitted changes" if dirty else "")
    sha = git("rev-parse", "--short", rev)
    if not sha:
        raise SystemExit(f"bench.cache: {rev!r} is no git revision")
    archive = subprocess.run(
        ["git", "archive", sha, "src/conveyor"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive.stdout, check=True)
    return [workdir / "src"], f"git revision {rev} ({sha}), exported"


def run_case(
    python: str, spec: dict[str, Any], limit: float, log: Path, path: list[Path]
) -> dict[str, Any]:
    """One repetition of one system; killed (with its process group) past `limit`."""
    command = [python, "-m", "bench.cache.case", json.dumps(spec)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            command,
            env=case_env(spec["redis_url"], path),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
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
    return {"status": "error", "error": f"no result (exit {proc.returncode}); see {log}"}


def show(system: str, rep: int, result: dict[str, Any], seconds: float) -> None:
    parts = []
    for key, r in result.get("results", {}).items():
        parts.append(f"{key} {r['rate']:,.0f}/s ({r['vs_floor']:.2f}x)")
    error = f"  ({result['error']})" if result.get("error") else ""
    print(f"  {system:<14} #{rep + 1} {result['status']:<9} [{seconds:.1f} s]{error}", flush=True)
    for start in range(0, len(parts), 4):
        print("      " + "  ".join(parts[start : start + 4]), flush=True)


def run(plan: Plan) -> Path:
    peers = str(peers_python())
    pythons = {"project": sys.executable, "peers": peers}
    chosen = [s for s in SYSTEMS if not plan.systems or s.name in plan.systems]
    RESULTS.mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="conveyor-bench-cache-") as tmp,
        PrivateRedis(Path(tmp)) as server,
    ):
        meta = machine.describe(server.version())
        meta["versions"] = versions(sys.executable, PROJECT_PACKAGES)
        meta["peer_versions"] = versions(peers, PEER_PACKAGES)
        meta["plan"] = {"budget": asdict(plan.budget), "repeats": plan.repeats}
        path, meta["conveyor_source"] = conveyor_source(plan.conveyor_rev, Path(tmp))
        meta["command"] = " ".join(["python -m bench.cache", *sys.argv[1:]])
        started = time.monotonic()
        print(f"bench.cache: private redis-server {meta['redis']} on {server.url}", flush=True)
        print(f"bench.cache: conveyor from the {meta['conveyor_source']}", flush=True)
        cases = _rounds(chosen, plan, pythons, server, path)
        meta["load_after"] = list(os.getloadavg())
        meta["minutes"] = round((time.monotonic() - started) / 60, 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"cache-{stamp}{'-quick' if plan.repeats == 1 else ''}.json"
    out.write_text(json.dumps({"meta": meta, "cases": cases}, indent=1))
    (RESULTS / "cache-latest.json").write_text(out.read_text())
    print(f"bench.cache: raw results in {out.relative_to(ROOT)}", flush=True)
    return out


def _rounds(
    systems: list[System],
    plan: Plan,
    pythons: dict[str, str],
    server: PrivateRedis,
    conveyor_path: list[Path],
) -> list[dict[str, Any]]:
    """Repetitions go round: every system once, then again, so a burst of other load on the
    machine falls on several systems rather than on all of one system's repetitions."""
    out: list[dict[str, Any]] = []
    for rep in range(plan.repeats):
        if rep:
            print(f"bench.cache: round {rep + 1} of {plan.repeats}", flush=True)
        for system in systems:
            server.reset()
            spec = {
                "system": system.name,
                "redis_url": server.url,
                "budget": asdict(plan.budget),
            }
            log = RESULTS / "logs" / f"cache-{system.name}.log"
            began = time.monotonic()
            path = conveyor_path if system.venv == "project" else []
            result = run_case(pythons[system.venv], spec, plan.limit, log, path)
            seconds = time.monotonic() - began
            show(system.name, rep, result, seconds)
            out.append({"system": system.name, "rep": rep, "wall_s": round(seconds, 2), **result})
    return out
