"""graphsec's benchmark: seed a store, serve it as users do, load it, compare with the Python ceiling.

Run: python bench/run.py [--backend sqlite|postgresql|both] [--scales 10k,1m] [--duration 10]
                         [--quick] [--out bench/RESULTS.md] [--profile SCENARIO@BACKEND-SCALE]

For every backend and scale: seed a fresh store with ``graphsec seed``, start ``graphsec serve``
(one worker, granian) and the bare ASGI app (bench/bare_app.py, granian, one worker), then for
each scenario load graphsec and the bare app in turn from a separate process (wrk when installed,
else bench/loadgen.py) for a fixed time. Results, the machine, the versions and the command go to
``--out`` as Markdown. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RW = "SecurityEvents.ReadWrite.All"
END_DATE = "2026-11-01"
VENDOR = {"provider": "SecureScore", "vendor": "Microsoft"}
PATCH_TENANTS = 10  # control-profile PATCHes are spread over this many tenants' profiles
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


# -- what is measured -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    name: str
    tenants: int
    days: int
    controls: int = 20
    users: int = 20
    seed: int = 1

    @property
    def scores(self) -> int:
        return self.tenants * self.days


SCALES = {
    "tiny": Scale("tiny", 2, 50),
    "10k": Scale("10k", 10, 1000),
    "100k": Scale("100k", 100, 1000),
    "1m": Scale("1m", 1000, 1000),
}

BATCH_ITEMS = 20
"""GETs by id in each request of the ``batch_get_by_id`` scenario (Graph's limit)."""

SCENARIOS: tuple[tuple[str, str], ...] = (
    ("get_by_id", "GET /secureScores/{id}"),
    ("list_top1", "GET /secureScores?$top=1"),
    ("list_top100", "GET /secureScores?$top=100"),
    ("filter_count", "GET /secureScores?$filter=createdDateTime range&$count=true"),
    ("deep_paging", "GET nextLink ($top=10, pages past the middle)"),
    ("patch_control_profile", "PATCH /secureScoreControlProfiles/{id}"),
    ("post_score", "POST /secureScores (new id each request)"),
    ("batch_get_by_id", f"POST /$batch of {BATCH_ITEMS} GETs by id (items/s = {BATCH_ITEMS} × req/s)"),
    ("filter_range", "GET /secureScores?$filter=currentScore range&$count=true&$top=100"),
    ("filter_eq", "GET /secureScoreControlProfiles?$filter=service or controlCategory eq …"
                  "&$count=true&$top=100"),
    ("filter_startswith", "GET /secureScores?$filter=startswith(id, month)&$count=true&$top=100"),
    ("filter_in_ids", "GET /secureScores?$filter=id in (20 ids)&$count=true&$top=100"),
    ("filter_window_range", "GET /secureScores?$filter=createdDateTime range and currentScore ge …"
                            "&$count=true&$top=100"),
    ("lambda_count", "GET /secureScores?$filter=controlScores/any(c: c/controlName eq … and "
                     "c/score ge …)&$count=true&$top=100"),
)
FILTERED = ("filter_range", "filter_eq", "filter_startswith", "filter_in_ids",
            "filter_window_range")
"""The scalar-predicate scenarios (issue 19's first target: ≥ 50 % of bare, p99 < 50 ms)."""
TITLES = dict(SCENARIOS)
WRITES = ("patch_control_profile", "post_score")
"""The scenarios that add to or change the store: measured after every read scenario."""


@dataclass
class Spec:
    """One scenario's requests, as the load generators read them (see scenario.lua)."""

    scenario: str
    method: str
    reqs: list[tuple[str, str]]
    """(path and query, Authorization header value), cycled through."""
    body: str | None = None
    """JSON with ``{ID}`` where each request puts a new id."""
    expect: int = 200


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Load:
        seconds = raw["duration_us"] / 1e6
        errors = sum(int(raw[k]) for k in ("errors_status", "errors_connect", "errors_read",
                                            "errors_write", "errors_timeout"))
        return cls(int(raw["requests"]), seconds, raw["requests"] / seconds if seconds else 0.0,
                   raw["p50_us"] / 1000, raw["p99_us"] / 1000, errors)


def median_load(loads: list[Load]) -> Load:
    """Of repeated runs: the median of each figure (errors are summed)."""
    if len(loads) == 1:
        return loads[0]
    return Load(sum(x.requests for x in loads), sum(x.seconds for x in loads),
                statistics.median(x.rps for x in loads), statistics.median(x.p50_ms for x in loads),
                statistics.median(x.p99_ms for x in loads), sum(x.errors for x in loads))


@dataclass
class ScenarioResult:
    name: str
    graphsec: Load
    bare: Load
    graphsec_bytes: int
    bare_bytes: int

    @property
    def ratio(self) -> float:
        return self.graphsec.rps / self.bare.rps if self.bare.rps else 0.0


@dataclass
class Profile:
    scenario: str
    samples: int
    inclusive: list[tuple[str, float]]
    own: list[tuple[str, float]]
    jwt_share: float
    rps: float


@dataclass
class CaseResult:
    backend: str
    scale: Scale
    seed_seconds: float
    seed_reused: bool
    db_size: str
    scenarios: list[ScenarioResult] = field(default_factory=list)
    rss_graphsec: dict[str, int] = field(default_factory=dict)
    """Peak RSS (VmHWM, KiB) of graphsec's processes: 'main' and 'worker'."""
    rss_bare: dict[str, int] = field(default_factory=dict)
    profiles: list[Profile] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.backend}-{self.scale.name}"

    def scenario(self, name: str) -> ScenarioResult | None:
        return next((s for s in self.scenarios if s.name == name), None)


# -- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process in its own process group, stopped (group and all) by :meth:`stop`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.name, self.port, self.log = name, port, log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=BENCH, stdout=self._log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def descendants(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def worker_pid(self) -> int:
        kids = self.descendants()
        return kids[0] if kids else self.proc.pid

    def peak_rss(self) -> dict[str, int]:
        """VmHWM in KiB of the main process and of the worker process(es), summed."""
        out = {"main": vm_hwm(self.proc.pid)}
        out["worker"] = sum(vm_hwm(pid) for pid in self.descendants())
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        # a worker left behind by a crashed main process would hold the port
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log_file.close()


def vm_hwm(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else 0


def graphsec_cmd() -> list[str]:
    exe = shutil.which("graphsec")
    return [exe] if exe else [sys.executable, "-m", "graphsec.cli"]


def run_cli(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(graphsec_cmd() + args, env=env, cwd=BENCH, capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"graphsec {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


# -- data ---------------------------------------------------------------------------------------


async def _pg_admin(statements: list[str], admin_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def pg_url(admin_url: str, database: str) -> str:
    parts = urlsplit(admin_url)
    return parts._replace(path=f"/{database}").geturl()


@dataclass
class Store:
    backend: str
    scale: Scale
    home: Path
    url: str
    pg_database: str | None
    first_tenant: str = ""
    seed_seconds: float = 0.0
    reused: bool = False

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHSEC_")}
        env["GRAPHSEC_HOME"] = str(self.home)
        # no access log, as the bare app has none (compare.py: --env NAME:GRAPHSEC_LOG_FORMAT=json)
        env["GRAPHSEC_LOG_FORMAT"] = "off"
        return env

    def size(self, admin_url: str) -> str:
        if self.backend == "sqlite":
            total = sum(p.stat().st_size for p in self.home.glob("graphsec.db*"))
            return f"{total / 2**20:,.0f} MiB"
        return asyncio.run(_pg_size(admin_url, self.pg_database or ""))


async def _pg_size(admin_url: str, database: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        value = await conn.fetchval("SELECT pg_size_pretty(pg_database_size($1))", database)
    finally:
        await conn.close()
    return str(value)


def prepare_store(backend: str, scale: Scale, data_root: Path, admin_url: str, reuse: bool) -> Store:
    home = data_root / f"{backend}-{scale.name}"
    if backend == "sqlite":
        store = Store(backend, scale, home, f"sqlite:///{home / 'graphsec.db'}", None)
    else:
        database = f"graphsec_bench_{scale.name}"
        store = Store(backend, scale, home, pg_url(admin_url, database), database)
    marker = home / "bench-seeded.json"
    wanted = {"tenants": scale.tenants, "days": scale.days, "controls": scale.controls,
              "users": scale.users, "seed": scale.seed, "end": END_DATE, "url": store.url}
    if reuse and marker.exists():
        saved = json.loads(marker.read_text())
        if {k: saved.get(k) for k in wanted} == wanted:
            store.first_tenant, store.seed_seconds = saved["first_tenant"], saved["seconds"]
            store.reused = True
            return store
    drop_store(store, admin_url)
    home.mkdir(parents=True, exist_ok=True)
    if store.pg_database:
        asyncio.run(_pg_admin([f'CREATE DATABASE "{store.pg_database}"'], admin_url))
        run_cli(["db", "upgrade", "--database", store.url], store.env())
    log(f"seeding {backend} {scale.name}: {scale.tenants} tenants × {scale.days} days "
        f"= {scale.scores:,} secureScores")
    started = time.perf_counter()
    out = run_cli(["seed", "--tenants", str(scale.tenants), "--days", str(scale.days),
                   "--controls", str(scale.controls), "--users", str(scale.users),
                   "--seed", str(scale.seed), "--end-date", END_DATE, "--database", store.url],
                  store.env())
    store.seed_seconds = time.perf_counter() - started
    m = re.search(r"first tenant: (\S+)", out)
    if not m:
        raise RuntimeError(f"graphsec seed printed no first tenant:\n{out}")
    store.first_tenant = m.group(1)
    marker.write_text(json.dumps({**wanted, "first_tenant": store.first_tenant,
                                  "seconds": store.seed_seconds}))
    log(f"seeded in {store.seed_seconds:.1f} s")
    return store


def drop_store(store: Store, admin_url: str) -> None:
    if store.pg_database:
        asyncio.run(_pg_admin([f'DROP DATABASE IF EXISTS "{store.pg_database}" WITH (FORCE)'],
                              admin_url))
    shutil.rmtree(store.home, ignore_errors=True)


def tenant_ids(scale: Scale, count: int) -> list[str]:
    """The first ``count`` tenants ``graphsec seed`` creates for ``scale`` (deterministic)."""
    from graphsec.sample import Generator

    gen = Generator(min(count, scale.tenants), scale.days, scale.controls, scale.users, scale.seed,
                    date.fromisoformat(END_DATE))
    return [t.id for t in gen.tenants]


def mint_tokens(home: Path, tenants: list[str]) -> dict[str, str]:
    """``Bearer <jwt>`` per tenant, signed with the key ``graphsec serve`` will use."""
    from graphsec.auth.keys import load_or_create
    from graphsec.auth.tokens import LocalIssuer

    issuer = LocalIssuer(load_or_create(home))
    return {t: "Bearer " + issuer.mint(t, [RW], expires_in=6 * 3600) for t in tenants}


# -- scenarios ----------------------------------------------------------------------------------

SCORES = "/v1.0/security/secureScores"
PROFILES = "/v1.0/security/secureScoreControlProfiles"
ID_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2})$")


def _path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _q(value: str) -> str:
    return quote(value, safe=",()/:*")


def walk(client: httpx.Client, path: str, auth: str, limit: int = 10_000) -> Iterator[dict[str, Any]]:
    """Every page of a collection, following nextLinks."""
    seen = 0
    next_path: str | None = path
    while next_path and seen < limit:
        r = client.get(next_path, headers={"Authorization": auth})
        r.raise_for_status()
        page = r.json()
        seen += 1
        yield page
        link = page.get("@odata.nextLink")
        next_path = _path_of(link) if link else None


def build_specs(base: str, tokens: dict[str, str], first: str) -> list[Spec]:
    auth = tokens[first]
    with httpx.Client(base_url=base, timeout=60) as client:
        seeded = [d for page in walk(client, f"{SCORES}?$top=999&$select=id,currentScore", auth)
                  for d in page["value"] if ID_DATE.search(d["id"])]
        ids = [d["id"] for d in seeded]
        if not ids:
            raise RuntimeError("the first tenant has no seeded secureScores")
        days = sorted(date.fromisoformat(ID_DATE.search(i).group(1)) for i in ids)  # type: ignore[union-attr]
        deep = [_path_of(p["@odata.nextLink"]) for p in walk(client, f"{SCORES}?$top=10", auth)
                if p.get("@odata.nextLink")]
        deep = deep[len(deep) // 2:] or deep
        if not deep:
            raise RuntimeError("too few secureScores for a nextLink")
        patches: list[tuple[str, str]] = []
        for tenant_auth in tokens.values():
            r = client.get(f"{PROFILES}?$select=id&$top=999", headers={"Authorization": tenant_auth})
            r.raise_for_status()
            patches += [(f"{PROFILES}/{quote(d['id'], safe='')}", tenant_auth)
                        for d in r.json()["value"]]
        r = client.get(f"{PROFILES}?$select=service,controlCategory&$top=999",
                       headers={"Authorization": auth})
        r.raise_for_status()
        kinds = sorted({("service", d["service"]) for d in r.json()["value"] if d.get("service")}
                       | {("controlCategory", d["controlCategory"]) for d in r.json()["value"]
                          if d.get("controlCategory")})
        r = client.get(f"{SCORES}/{quote(ids[0], safe='')}", headers={"Authorization": auth})
        r.raise_for_status()
        template = {k: v for k, v in r.json().items() if not k.startswith("@")}
    # date windows of up to 180 days that cover the tenant's history, each > 1 page when possible
    span = (days[-1] - days[0]).days + 1
    width = max(1, min(180, span // 2))
    step = max(1, (span - width) // 19)
    windows = []
    for k in range(20):
        start = days[0] + timedelta(days=min(k * step, max(0, span - width)))
        end = start + timedelta(days=width)
        windows.append(f"createdDateTime ge {start}T00:00:00Z and createdDateTime lt {end}T00:00:00Z")
    filtered = _filtered_queries(seeded, days, windows, kinds, template)
    template["id"] = "{ID}"
    template["createdDateTime"] = "2001-01-01T00:00:00Z"  # oldest: never on a listed page
    patch_body = orjson.dumps({"vendorInformation": VENDOR, "state": "Reviewed",
                               "comment": "bench"}).decode()
    return [
        Spec("get_by_id", "GET", [(f"{SCORES}/{quote(i, safe='')}", auth) for i in ids]),
        Spec("list_top1", "GET", [(f"{SCORES}?$top=1", auth)]),
        Spec("list_top100", "GET", [(f"{SCORES}?$top=100", auth)]),
        Spec("filter_count", "GET",
             [(f"{SCORES}?$filter={_q(w)}&$count=true", auth) for w in windows]),
        Spec("deep_paging", "GET", [(p, auth) for p in deep]),
        Spec("patch_control_profile", "PATCH", patches, patch_body, 204),
        Spec("post_score", "POST", [(SCORES, auth)], orjson.dumps(template).decode(), 201),
        Spec("batch_get_by_id", "POST", [("/v1.0/$batch", auth)], orjson.dumps({"requests": [
            {"id": str(n), "method": "GET", "url": f"/security/secureScores/{quote(i, safe='')}"}
            for n, i in enumerate(ids[:BATCH_ITEMS])]}).decode()),
        *(Spec(name, "GET", [(f"{path}?$filter={_q(f)}&$count=true&$top=100", auth)
                             for f in filters])
          for name, (path, filters) in filtered.items()),
    ]


def _filtered_queries(seeded: list[dict[str, Any]], days: list[date], windows: list[str],
                      kinds: list[tuple[str, str]],
                      template: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    """Twenty ``$filter`` values per filtered scenario, from the first tenant's own data, each
    selecting a part of its entities (more than a page of scores where the tenant has them)."""
    scores = sorted(d["currentScore"] for d in seeded if d.get("currentScore") is not None)
    ids = [d["id"] for d in seeded]
    n = len(scores)

    def at(q: float) -> Any:
        return scores[min(n - 1, int(q * n))]

    ranges = [f"currentScore ge {at(k / 40)} and currentScore lt {at(k / 40 + 0.4)}"
              for k in range(20)]
    tenant = ids[0].rsplit("_", 1)[0]
    months = sorted({d.strftime("%Y-%m") for d in days})
    prefixes = [f"startswith(id,'{tenant}_{m}')" for m in months[-20:]]
    stride = max(1, len(ids) // (20 * BATCH_ITEMS))
    id_sets = ["id in (" + ",".join(f"'{i}'" for i in ids[k::20 * stride][:BATCH_ITEMS]) + ")"
               for k in range(20)]
    mixed = []
    for w in windows:  # the scores of the window's own days: the upper half of them
        start, end = re.findall(r"\d{4}-\d{2}-\d{2}", w)
        inside = sorted(d["currentScore"] for d in seeded
                        if start <= ID_DATE.search(d["id"]).group(1) < end)  # type: ignore[union-attr]
        mixed.append(f"{w} and currentScore ge {inside[len(inside) // 2]}" if inside else w)
    controls = [(c["controlName"], c["score"]) for c in template.get("controlScores", [])
                if c.get("controlName") and c.get("score") is not None] or [("none", 0)]
    lambdas = [f"controlScores/any(c: c/controlName eq '{name}' and c/score ge {score})"
               for name, score in (controls * 20)[:20]]
    equal = [f"{prop} eq '{value}'" for prop, value in (kinds * 20)[:20]] or ["service eq 'x'"]
    return {
        "filter_range": (SCORES, ranges),
        "filter_eq": (PROFILES, equal),
        "filter_startswith": (SCORES, prefixes),
        "filter_in_ids": (SCORES, id_sets),
        "filter_window_range": (SCORES, mixed),
        "lambda_count": (SCORES, lambdas),
    }


def write_spec(spec: Spec, path: Path, id_prefix: str) -> None:
    lines = [f"method\t{spec.method}", f"scenario\t{spec.scenario}", f"id_prefix\t{id_prefix}"]
    if spec.body is not None:
        lines.append(f"body\t{spec.body}")
    lines += [f"req\t{p}\t{a}" for p, a in spec.reqs]
    path.write_text("\n".join(lines) + "\n")


def probe(base: str, spec: Spec, id_prefix: str) -> tuple[int, Any, int]:
    """One request of ``spec``: status, parsed JSON body (None when empty) and body size."""
    path, auth = spec.reqs[0]
    headers = {"Authorization": auth}
    content = None
    if spec.body is not None:
        content = spec.body.replace("{ID}", f"{id_prefix}probe").encode()
        headers["Content-Type"] = "application/json"
    r = httpx.request(spec.method, base + path, headers=headers, content=content, timeout=60)
    if r.status_code != spec.expect:
        raise RuntimeError(f"{spec.scenario}: {spec.method} {path} answered {r.status_code}, "
                           f"expected {spec.expect}: {r.text[:500]}")
    return r.status_code, (r.json() if r.content else None), len(r.content)


# -- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadTool:
    kind: str  # "wrk" or "python"
    threads: int
    connections: int

    def describe(self) -> str:
        if self.kind == "wrk":
            return (f"wrk -t{self.threads} -c{self.connections} --latency --timeout 10s "
                    f"-s bench/scenario.lua")
        return f"python bench/loadgen.py --connections {self.connections}"

    def run(self, url: str, spec_path: Path, seconds: float) -> Load:
        id_prefix = f"bench-{uuid.uuid4().hex[:12]}-"  # POSTed ids: unique across runs too
        if self.kind == "wrk":
            argv = ["wrk", f"-t{self.threads}", f"-c{self.connections}", f"-d{max(1, round(seconds))}s",
                    "--latency", "--timeout", "10s", "-s", str(BENCH / "scenario.lua"), url, "--",
                    str(spec_path), id_prefix]
        else:
            argv = [sys.executable, str(BENCH / "loadgen.py"), url, str(spec_path),
                    "--connections", str(self.connections), "--duration", str(seconds),
                    "--id-prefix", id_prefix]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=seconds + 120)
        m = re.search(r"^BENCH_JSON (.*)$", proc.stdout, re.M)
        if proc.returncode != 0 or not m:
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return Load.from_json(json.loads(m.group(1)))


# -- profiling ----------------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^()]*?)(?::\d+)?\)$")
# frames every sample has (process start-up, the event loop's own loop): left out of the tables
PLUMBING = re.compile(r"\((click|multiprocessing|granian/server)/|^<module> |\(runpy\.py\)|"
                      r"^(BaseEventLoop\.(run_forever|_run_once|run_until_complete)|Handle\._run|"
                      r"serve) ")


def _frame_name(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


def summarize_profile(raw: str, top: int = 15) -> tuple[int, list[tuple[str, float]],
                                                       list[tuple[str, float]], float]:
    """Samples, top functions by inclusive and by own share (%), and the share of JWT work."""
    total = 0
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    jwt = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        frames = [f for f in frames if "(" in f and not PLUMBING.search(f)]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
        if any("auth/tokens.py" in f or "(jwt/" in f for f in frames):
            jwt += count
    if not total:
        return 0, [], [], 0.0
    pct = 100.0 / total
    return (total, [(n, c * pct) for n, c in inclusive.most_common(top)],
            [(n, c * pct) for n, c in own.most_common(top)], jwt * pct)


def profile_scenario(server: Server, tool: LoadTool, spec_path: Path, seconds: float,
                     out_dir: Path, label: str) -> Profile | None:
    pyspy = shutil.which("py-spy")
    if not pyspy:
        log("py-spy not installed: no profile (pip install py-spy)")
        return None
    raw = out_dir / f"profile-{label}.txt"
    pid = server.worker_pid()
    rec = subprocess.Popen([pyspy, "record", "--pid", str(pid), "--duration", str(round(seconds)),
                            "--rate", "200", "--nonblocking", "--format", "raw", "-o", str(raw)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    load = tool.run(server.url, spec_path, seconds)
    try:
        rec.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        rec.kill()
        rec.wait()
    if not raw.exists():
        log(f"py-spy wrote no profile: {(rec.stderr.read() if rec.stderr else b'').decode()[-500:]}")
        return None
    samples, inclusive, own, jwt_share = summarize_profile(raw.read_text())
    return Profile(label.split("@")[0], samples, inclusive, own, jwt_share, load.rps)


# -- one case -----------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench {datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run_case(backend: str, scale: Scale, args: argparse.Namespace, tool: LoadTool,
             work: Path) -> CaseResult:
    store = prepare_store(backend, scale, Path(args.data_dir), args.pg_admin, args.reuse_data)
    tenants = tenant_ids(scale, PATCH_TENANTS)
    if tenants[0] != store.first_tenant:
        raise RuntimeError(f"seeded first tenant {store.first_tenant} is not the generator's "
                           f"{tenants[0]}")
    tokens = mint_tokens(store.home, tenants)
    case = CaseResult(backend, scale, store.seed_seconds, store.reused, store.size(args.pg_admin))
    id_prefix = f"bench-{uuid.uuid4().hex[:8]}-"
    gport, bport = free_port(), free_port()
    genv = store.env()
    if args.pg_cache_mb is not None:
        genv["GRAPHSEC_PG_CACHE_MB"] = str(args.pg_cache_mb)
    if args.pg_reads is not None:  # Store.env() leaves out the caller's GRAPHSEC_* variables
        genv["GRAPHSEC_PG_READS"] = args.pg_reads
    genv.update(args.env)
    gs = Server("graphsec", [*graphsec_cmd(), "serve", "--port", str(gport), "--database", store.url,
                             "--workers", "1"], genv, gport, work / f"graphsec-{case.key}.log")
    bare: Server | None = None
    try:
        gs.wait_ready("/healthz")
        # reads first: the writes add thousands of scores to the first tenant, which would
        # change what every filtered read after them selects and counts
        specs = sorted(build_specs(gs.url, tokens, store.first_tenant),
                       key=lambda s: s.scenario in WRITES)
        payloads: dict[str, dict[str, Any]] = {}
        sizes: dict[str, int] = {}
        for spec in specs:
            status, body, size = probe(gs.url, spec, id_prefix)
            if spec.scenario in (*FILTERED, "lambda_count") and not (
                    body and body.get("value") and body.get("@odata.count", 0) > 0):
                raise RuntimeError(f"{spec.scenario}: {spec.reqs[0][0]} selected nothing")
            payloads[spec.scenario] = {"status": status, "body": body}
            sizes[spec.scenario] = size
            write_spec(spec, work / f"{spec.scenario}.spec", id_prefix)
        payload_file = work / f"bare-payloads-{case.key}.json"
        payload_file.write_bytes(orjson.dumps(payloads))
        env = {**os.environ, "BENCH_BARE_PAYLOADS": str(payload_file)}
        bare = Server("bare", [sys.executable, "-m", "granian", "--interface", "asgi", "--host",
                               "127.0.0.1", "--port", str(bport), "--workers", "1", "--no-access-log",
                               "--working-dir", str(BENCH), "bare_app:app"],
                      env, bport, work / f"bare-{case.key}.log")
        bare.wait_ready("/")
        for spec in specs:
            if args.scenarios and spec.scenario not in args.scenarios:
                continue
            spec_path = work / f"{spec.scenario}.spec"
            bare_size = len(orjson.dumps(payloads[spec.scenario]["body"])) \
                if payloads[spec.scenario]["body"] is not None else 0
            rounds: list[tuple[Load, Load]] = []
            for _ in range(args.repeat):  # alternate, so that drift hits both servers alike
                if args.warmup > 0:
                    tool.run(gs.url, spec_path, args.warmup)
                g = tool.run(gs.url, spec_path, args.duration)
                if args.warmup > 0:
                    tool.run(bare.url, spec_path, args.warmup)
                rounds.append((g, tool.run(bare.url, spec_path, args.duration)))
            g, b = median_load([r[0] for r in rounds]), median_load([r[1] for r in rounds])
            result = ScenarioResult(spec.scenario, g, b, sizes[spec.scenario], bare_size)
            case.scenarios.append(result)
            log(f"{case.key} {spec.scenario}: graphsec {g.rps:,.0f}/s p99 {g.p99_ms:.1f} ms, "
                f"bare {b.rps:,.0f}/s → {result.ratio:.0%}")
            if g.errors or b.errors:
                log(f"WARNING: {spec.scenario}: {g.errors} graphsec and {b.errors} bare requests "
                    "failed (status ≥ 400, socket errors or timeouts)")
        case.rss_graphsec, case.rss_bare = gs.peak_rss(), bare.peak_rss()
        for wanted in args.profile:
            name, _, where = wanted.partition("@")
            if where and where != case.key:
                continue
            spec_path = work / f"{name}.spec"
            if not spec_path.exists():
                raise SystemExit(f"--profile: no scenario {name!r}")
            log(f"profiling {name} on {case.key} with py-spy")
            prof = profile_scenario(gs, tool, spec_path, args.duration, Path(args.profile_dir),
                                    f"{name}@{case.key}")
            if prof:
                case.profiles.append(prof)
    finally:
        if bare is not None:
            bare.stop()
        gs.stop()
        if not args.keep_data:
            drop_store(store, args.pg_admin)
    return case


# -- report -------------------------------------------------------------------------------------


def _v(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "not installed"


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kb / 2**20:.1f} GiB RAM"
    return [f"{os.cpu_count()} cores, {cpu}{mem}; {platform.system()} {platform.release()}"]


def source_state() -> str:
    """The commit graphsec's source was at, and whether src/ had uncommitted changes."""
    def git(*argv: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True,
                              check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    head = git("log", "-1", "--format=%h %s")
    if not head:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "src").splitlines()
    return f"commit {head}" + (f" + uncommitted changes in {len(dirty)} file(s) under src/"
                               if dirty else "")


def versions(args: argparse.Namespace, tool: LoadTool) -> str:
    parts = [f"Python {platform.python_version()}", f"graphsec {_v('graphsec')}",
             f"granian {_v('granian')}", f"uvloop {_v('uvloop')}", f"orjson {_v('orjson')}",
             f"SQLAlchemy {_v('sqlalchemy')}",
             f"asyncpg {_v('asyncpg')}", f"PyJWT {_v('pyjwt')}", f"SQLite {sqlite3.sqlite_version}"]
    if "postgresql" in backends(args):
        with contextlib.suppress(Exception):
            parts.append(f"PostgreSQL {asyncio.run(_pg_version(args.pg_admin))}")
    if tool.kind == "wrk":
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        parts.append((out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0])
    else:
        parts.append("load: bench/loadgen.py (wrk not installed)")
    parts.append(f"py-spy {_v('py-spy')}")
    return ", ".join(parts)


async def _pg_version(admin_url: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url, timeout=5)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def backends(args: argparse.Namespace) -> list[str]:
    return ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def targets(cases: list[CaseResult]) -> list[str]:
    rows = ["| target | where | measured | verdict |", "|---|---|---|---|"]

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    for c in cases:
        s = c.scenario("get_by_id")
        if s:
            rows.append(f"| GET by id ≥ 50 % of bare | {c.key} | {s.ratio:.0%} "
                        f"({s.graphsec.rps:,.0f} vs {s.bare.rps:,.0f}/s) | {verdict(s.ratio >= 0.5)} |")
    for c in cases:
        s = c.scenario("list_top100")
        if s:
            rows.append(f"| list $top=100 ≥ 60 % of bare | {c.key} | {s.ratio:.0%} "
                        f"({s.graphsec.rps:,.0f} vs {s.bare.rps:,.0f}/s) | {verdict(s.ratio >= 0.6)} |")
    big = [c for c in cases if c.scale.scores >= 1_000_000] or \
        [max(cases, key=lambda c: c.scale.scores)] if cases else []
    for c in big:
        s = c.scenario("filter_count")
        if s:
            ok = s.ratio >= 0.3 and s.graphsec.p99_ms < 50
            note = "" if c.scale.scores >= 1_000_000 else f" (only {c.scale.scores:,} scores)"
            rows.append(f"| filtered list + $count ≥ 30 % and p99 < 50 ms at 1M | {c.key}{note} | "
                        f"{s.ratio:.0%}, p99 {s.graphsec.p99_ms:.1f} ms | {verdict(ok)} |")
    for c in cases:
        for name in FILTERED:
            s = c.scenario(name)
            if s:
                ok = s.ratio >= 0.5 and s.graphsec.p99_ms < 50
                rows.append(f"| {name} ≥ 50 % of bare, p99 < 50 ms | {c.key} | {s.ratio:.0%}, "
                            f"p99 {s.graphsec.p99_ms:.1f} ms | {verdict(ok)} |")
        for name, floor in (("lambda_count", 0.3), ("post_score", 0.3),
                            ("patch_control_profile", 0.3)):
            s = c.scenario(name)
            if s:
                rows.append(f"| {name} ≥ {floor:.0%} of bare | {c.key} | {s.ratio:.0%} "
                            f"({s.graphsec.rps:,.0f} vs {s.bare.rps:,.0f}/s) | "
                            f"{verdict(s.ratio >= floor)} |")
        s = c.scenario("get_by_id")
        if s and c.backend == "postgresql":
            rows.append(f"| GET by id on PostgreSQL ≥ 60 % of bare | {c.key} | {s.ratio:.0%} | "
                        f"{verdict(s.ratio >= 0.6)} |")
    by_backend: dict[str, dict[str, CaseResult]] = {}
    for c in cases:
        by_backend.setdefault(c.backend, {})[c.scale.name] = c
    for backend, scales in by_backend.items():
        if "10k" in scales and "1m" in scales:
            small, large = scales["10k"].rss_graphsec["worker"], scales["1m"].rss_graphsec["worker"]
            ratio = large / small if small else 0.0
            rows.append(f"| RSS at 1M < 1.2× RSS at 10k | {backend} | {mib(large)} / {mib(small)} = "
                        f"{ratio:.2f}× | {verdict(ratio < 1.2)} |")
    for c in cases:
        batched, single = c.scenario("batch_get_by_id"), c.scenario("get_by_id")
        if batched and single and single.graphsec.rps:
            items = batched.graphsec.rps * BATCH_ITEMS
            rows.append(f"| GETs by id in $batch of {BATCH_ITEMS}: items/s vs separate GETs | "
                        f"{c.key} | {items:,.0f} vs {single.graphsec.rps:,.0f}/s = "
                        f"{items / single.graphsec.rps:.2f}× | (figure) |")
    for c in cases:
        for p in c.profiles:
            rows.append(f"| JWT verification does not dominate a profile | {p.scenario}@{c.key} | "
                        f"{p.jwt_share:.1f} % of samples | {verdict(p.jwt_share < 20)} |")
    return rows


def pg_cache(args: argparse.Namespace) -> str:
    if args.pg_cache_mb is None:
        from graphsec.config import Settings

        return f"{Settings.__dataclass_fields__['pg_cache_mb'].default} MiB (the default)"
    return "off" if args.pg_cache_mb == 0 else f"{args.pg_cache_mb} MiB"


def render(cases: list[CaseResult], args: argparse.Namespace, tool: LoadTool, command: str,
           started: datetime) -> str:
    out = ["# graphsec benchmark results", "",
           f"Generated by `bench/run.py` on {started:%Y-%m-%d %H:%M} UTC "
           f"(took {(datetime.now(UTC) - started).total_seconds() / 60:.1f} min).", "",
           "## Machine and versions", ""]
    out += [f"- Machine: {line}" for line in machine()]
    out += [f"- Versions: {versions(args, tool)}",
            f"- Source: {args.source}",
            f"- Command: `{command}`",
            f"- Load: `{tool.describe()}`, {args.duration:g} s per scenario and server after a "
            f"{args.warmup:g} s warm-up"
            + (f", {args.repeat} rounds alternating graphsec and bare, the median of each figure "
               "reported" if args.repeat > 1 else "")
            + "; the load generator runs on the same "
            + f"{os.cpu_count()} cores as the server. graphsec: `graphsec serve --workers 1` "
            "(granian, ASGI). Bare: `bench/bare_app.py` under granian, 1 worker, answering each "
            "scenario with graphsec's own response body re-serialized with orjson per request.",
            "- Data: `graphsec seed --controls 20 --users 20 --seed 1`; all requests are made as "
            "the first tenant (1,000 daily scores at 10k and 1M), except the control-profile "
            f"PATCHes, spread over the first {PATCH_TENANTS} tenants' 20 profiles each.", ""]
    out += ["## Scenarios", ""]
    out += [f"- `{name}`: {title}" for name, title in SCENARIOS]
    out.append("")
    for c in cases:
        out += [f"## {c.backend}, {c.scale.scores:,} secureScores ({c.scale.name})", "",
                f"Seeded in {c.seed_seconds:.0f} s{' (reused)' if c.seed_reused else ''}; "
                f"database {c.db_size}. Peak RSS (VmHWM): graphsec worker "
                f"{mib(c.rss_graphsec.get('worker', 0))} (main process "
                f"{mib(c.rss_graphsec.get('main', 0))}), bare worker "
                f"{mib(c.rss_bare.get('worker', 0))}."
                + "".join(f" `{k}={v}`." for k, v in args.env)
                + (f" Document cache (`GRAPHSEC_PG_CACHE_MB`): {pg_cache(args)}. Reads by id "
                   f"(`GRAPHSEC_PG_READS`): {args.pg_reads or 'the default'}."
                   if c.backend == "postgresql" else ""), "",
                "| scenario | graphsec req/s | p50 ms | p99 ms | bare req/s | bare p50 ms | "
                "bare p99 ms | ratio | body bytes (graphsec / bare) | errors |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s in c.scenarios:
            g, b = s.graphsec, s.bare
            out.append(f"| {s.name} | {g.rps:,.0f} | {g.p50_ms:.2f} | {g.p99_ms:.2f} | "
                       f"{b.rps:,.0f} | {b.p50_ms:.2f} | {b.p99_ms:.2f} | {s.ratio:.0%} | "
                       f"{s.graphsec_bytes:,} / {s.bare_bytes:,} | {g.errors + b.errors} |")
        out.append("")
    pairs = {(c.backend, c.scale.name): c for c in cases}
    scaling = [(b, pairs[(b, "10k")], pairs[(b, "1m")]) for b in ("sqlite", "postgresql")
               if (b, "10k") in pairs and (b, "1m") in pairs]
    if scaling:
        out += ["## Scaling: 1M vs 10k stored scores", "",
                "| backend | scenario | req/s at 10k | req/s at 1M | 1M / 10k | ratio to bare at 10k | "
                "at 1M |", "|---|---|---:|---:|---:|---:|---:|"]
        for backend, small, large in scaling:
            for name, _ in SCENARIOS:
                a, z = small.scenario(name), large.scenario(name)
                if a and z:
                    out.append(f"| {backend} | {name} | {a.graphsec.rps:,.0f} | {z.graphsec.rps:,.0f} | "
                               f"{z.graphsec.rps / a.graphsec.rps if a.graphsec.rps else 0:.2f} | "
                               f"{a.ratio:.0%} | {z.ratio:.0%} |")
            r_small, r_large = small.rss_graphsec["worker"], large.rss_graphsec["worker"]
            out.append(f"| {backend} | peak RSS (worker) | {mib(r_small)} | {mib(r_large)} | "
                       f"{r_large / r_small if r_small else 0:.2f} | | |")
        out.append("")
    out += ["## Targets (one worker)", "", *targets(cases), ""]
    profiles = [(c, p) for c in cases for p in c.profiles]
    if profiles:
        out += ["## Profile", ""]
        for c, p in profiles:
            out += [f"### {p.scenario} on {c.key} (py-spy, {p.samples:,} samples, "
                    f"{p.rps:,.0f} req/s while profiled)", "",
                    f"JWT verification (graphsec/auth/tokens.py + PyJWT): {p.jwt_share:.1f} % of "
                    "samples.", "", "| function (inclusive) | % | function (own time) | % |",
                    "|---|---:|---|---:|"]
            for i in range(max(len(p.inclusive), len(p.own))):
                incl = p.inclusive[i] if i < len(p.inclusive) else ("", 0.0)
                own = p.own[i] if i < len(p.own) else ("", 0.0)
                out.append(f"| `{incl[0]}` | {incl[1]:.1f} | `{own[0]}` | {own[1]:.1f} |")
            out.append("")
    return "\n".join(out) + "\n"


# -- main ---------------------------------------------------------------------------------------


def _setting(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.startswith("GRAPHSEC_"):
        raise argparse.ArgumentTypeError(f"expected GRAPHSEC_NAME=VALUE, not {text!r}")
    return name, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="graphsec benchmark (see bench/README.md)")
    p.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--scales", default="10k,1m", help=f"comma-separated: {', '.join(SCALES)}")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per scenario and server")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds of unmeasured load before each measured run (0: none)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: tiny data (2 tenants × 50 days), 2 s per scenario, no warm-up, "
                        "SQLite")
    p.add_argument("--scenarios", default="",
                   help=f"comma-separated subset of: {', '.join(TITLES)} (default: all)")
    p.add_argument("--repeat", type=int, default=1,
                   help="measured rounds per scenario, graphsec and bare alternating; the report "
                        "gives the median of each figure")
    p.add_argument("--out", default=str(BENCH / "RESULTS.md"), help="Markdown results file")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto",
                   help="auto: wrk when installed, else bench/loadgen.py")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "graphsec-bench"),
                   help="GRAPHSEC_HOME of each store goes under here")
    p.add_argument("--pg-admin", default=os.environ.get("GRAPHSEC_TEST_POSTGRES", PG_ADMIN),
                   help="PostgreSQL URL used to create and drop the graphsec_bench_* databases")
    p.add_argument("--keep-data", action="store_true", help="keep the seeded stores afterwards")
    p.add_argument("--reuse-data", action="store_true",
                   help="reuse stores kept by an earlier --keep-data run (development only: earlier "
                        "runs' PATCHes and POSTs remain in them)")
    p.add_argument("--pg-cache-mb", type=int, default=None, metavar="MIB",
                   help="GRAPHSEC_PG_CACHE_MB for graphsec on PostgreSQL (0: every read sends "
                        "every document, the cold-cache case); graphsec's default otherwise")
    p.add_argument("--pg-reads", default=None, metavar="READER",
                   help="GRAPHSEC_PG_READS for graphsec on PostgreSQL: how a worker reads by id "
                        "(graphsec.config.PG_READS names them); graphsec's default otherwise")
    p.add_argument("--env", action="append", default=[], metavar="VAR=VALUE", type=_setting,
                   help="a GRAPHSEC_* setting for graphsec's server (repeatable), e.g. "
                        "GRAPHSEC_ITEM_ROW_BUILDS=0 to measure a feature off")
    p.add_argument("--profile", action="append", default=[], metavar="SCENARIO[@BACKEND-SCALE]",
                   help="after the measured run, load SCENARIO again under py-spy and report the "
                        "top functions (repeatable), e.g. filter_count@sqlite-1m")
    p.add_argument("--profile-dir", default=str(BENCH / "profiles"),
                   help="where py-spy's raw profiles go")
    args = p.parse_args(argv)
    if args.quick:
        args.backend, args.scales = "sqlite", "tiny"
        if args.duration == 10.0:
            args.duration = 2.0
        if args.warmup == 2.0:
            args.warmup = 0.0
    args.scenarios = [n for n in args.scenarios.split(",") if n]
    for name in args.scenarios:
        if name not in TITLES:
            p.error(f"unknown scenario {name!r}; choose from {', '.join(TITLES)}")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    for name in args.scales.split(","):
        if name not in SCALES:
            p.error(f"unknown scale {name!r}; choose from {', '.join(SCALES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    raw_argv = sys.argv[1:] if argv is None else argv
    args = parse_args(raw_argv)
    started = datetime.now(UTC)
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    tool = LoadTool(kind, args.threads, args.connections)
    if args.profile:
        Path(args.profile_dir).mkdir(parents=True, exist_ok=True)
    command = "python bench/run.py" + "".join(f" {shlex.quote(a)}" for a in raw_argv)
    args.source = source_state()  # at the start: servers import the source as it is then
    cases: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="graphsec-bench-run-") as tmp:
        for backend in backends(args):
            for name in args.scales.split(","):
                log(f"case {backend}-{name} (load: {tool.kind})")
                cases.append(run_case(backend, SCALES[name], args, tool, Path(tmp)))
                Path(args.out).write_text(render(cases, args, tool, command, started))
    log(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
