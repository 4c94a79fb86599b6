"""Compare graphsec revisions on one scenario, side by side with the bare app, in alternating rounds.

Run: python bench/compare.py --rev before=6c18cac --rev after=WORK
                             [--backend postgresql] [--scale 10k] [--scenario get_by_id]
                             [--rounds 6] [--duration 5] [--env NAME:VAR=VALUE] [--workers 1]

On a 2-core VM shared with the load generator, two runs of ``bench/run.py`` differ by 10-30 %,
more than most changes are worth. Here every revision's server and the bare app run at once, on
one seeded store, and each round loads them in turn (rotating who goes first); the report gives
each revision's median rate and its median ratio to the bare app over the rounds, so a change is
judged against the other revisions measured within seconds of it.

``--rev NAME=REV``: a git revision, checked out into a temporary worktree and served from its
``src`` (the installed dependencies are shared), or ``WORK`` for the working tree. Revisions must
agree on the database schema: the store is seeded and migrated by the working tree's graphsec.

``--env NAME:VAR=VALUE`` (repeatable) sets a variable for one revision's server only: the same
tree twice with a feature on and off, e.g. ``--rev on=WORK --rev off=WORK --env
off:GRAPHSEC_STATEMENT_TIMEOUT_MS=0``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import run as bench  # bench/run.py: stores, servers, scenarios, load

WORK = "WORK"


@contextlib.contextmanager
def source_trees(revs: list[tuple[str, str]], tmp: Path) -> Iterator[dict[str, Path]]:
    """``src`` directories by name: the working tree's, or a worktree per other revision."""
    trees: dict[str, Path] = {}
    made: list[Path] = []
    try:
        for name, rev in revs:
            if rev == WORK:
                trees[name] = bench.ROOT / "src"
                continue
            path = tmp / f"rev-{name}"
            subprocess.run(["git", "-C", str(bench.ROOT), "worktree", "add", "--detach", "-q",
                            str(path), rev], check=True)
            made.append(path)
            trees[name] = path / "src"
        yield trees
    finally:
        for path in made:
            subprocess.run(["git", "-C", str(bench.ROOT), "worktree", "remove", "--force",
                            str(path)], check=False)


def serve(name: str, src: Path, store: bench.Store, work: Path,
          extra_env: dict[str, str] | None = None, workers: int = 1) -> bench.Server:
    """``graphsec serve`` from ``src`` with ``workers`` on ``store`` (``extra_env`` added)."""
    port = bench.free_port()
    env = {**store.env(), **(extra_env or {}), "PYTHONPATH": str(src)}
    argv = [sys.executable, "-c", "from graphsec.cli import main; main()", "serve", "--port",
            str(port), "--database", store.url, "--workers", str(workers)]
    return bench.Server(name, argv, env, port, work / f"{name}.log")


def bare(payloads: Path, work: Path, workers: int = 1) -> bench.Server:
    """The Python ceiling (``bare_app.py``) answering with ``payloads``."""
    port = bench.free_port()
    return bench.Server(
        "bare", [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
                 "--port", str(port), "--workers", str(workers), "--no-access-log",
                 "--working-dir",
                 str(bench.BENCH), "bare_app:app"],
        {**os.environ, "BENCH_BARE_PAYLOADS": str(payloads)}, port, work / "bare.log")


def measure(args: argparse.Namespace, tool: bench.LoadTool, store: bench.Store,
            scale: bench.Scale, trees: dict[str, Path], work: Path) -> dict[str, list[float]]:
    """Requests/s by server name (the revisions' and "bare"), one figure a round. Every round
    starts every server anew: two processes of the very same code kept 67-69 % and 78-79 % of
    the bare app through a run, as each happened to be placed, and fresh processes each round
    spread that luck over the rounds."""
    spec_path, payloads = work / "scenario.spec", work / "bare-payloads.json"
    rates: dict[str, list[float]] = {name: [] for name in [*trees, "bare"]}
    for i in range(args.rounds):
        servers = {name: serve(name, src, store, work, args.env.get(name), args.workers)
                   for name, src in trees.items()}
        try:
            for server in servers.values():
                server.wait_ready("/healthz")
            if i == 0:  # the scenario's requests, and graphsec's answer for the bare app
                first = next(iter(servers.values()))
                tokens = bench.mint_tokens(store.home,
                                           bench.tenant_ids(scale, bench.PATCH_TENANTS))
                spec = next(s for s in bench.build_specs(first.url, tokens, store.first_tenant)
                            if s.scenario == args.scenario)
                status, body, _ = bench.probe(first.url, spec, "compare-probe-")
                bench.write_spec(spec, spec_path, "compare-")
                payloads.write_bytes(orjson.dumps({args.scenario: {"status": status,
                                                                   "body": body}}))
            servers["bare"] = bare(payloads, work, args.workers)
            servers["bare"].wait_ready("/")
            names = list(servers)
            for name in names:
                tool.run(servers[name].url, spec_path, 1)  # warm-up
            for name in names[i % len(names):] + names[:i % len(names)]:
                rates[name].append(tool.run(servers[name].url, spec_path, args.duration).rps)
        finally:
            for server in servers.values():
                server.stop()
        bench.log(f"round {i + 1}: " + "  ".join(f"{n} {r[-1]:,.0f}/s" for n, r in rates.items()))
    return rates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="compare graphsec revisions (see bench/README.md)")
    p.add_argument("--rev", action="append", default=[], metavar="NAME=REV",
                   help=f"a git revision to serve, or {WORK} for the working tree (repeatable)")
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="postgresql")
    p.add_argument("--scale", choices=tuple(bench.SCALES), default="10k")
    p.add_argument("--scenario", choices=tuple(bench.TITLES), default="get_by_id")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes of every server (graphsec's and the bare app)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per server and round")
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--data-dir", default=str(Path(tempfile.gettempdir()) / "graphsec-compare"))
    p.add_argument("--pg-admin", default=os.environ.get("GRAPHSEC_TEST_POSTGRES", bench.PG_ADMIN))
    p.add_argument("--keep-data", action="store_true", help="keep (and reuse) the seeded store")
    p.add_argument("--env", action="append", default=[], metavar="NAME:VAR=VALUE",
                   help="an environment variable for one revision's server (repeatable)")
    args = p.parse_args(argv)
    args.revs = []
    for item in args.rev or [f"work={WORK}"]:
        name, sep, rev = item.partition("=")
        if not sep or not name or not rev or name == "bare" or "/" in name:
            p.error(f"--rev {item!r}: use NAME=REV (NAME not 'bare')")
        args.revs.append((name, rev))
    if len({n for n, _ in args.revs}) != len(args.revs):
        p.error("each --rev needs a name of its own")
    env_items, args.env = args.env, {}
    for item in env_items:
        name, sep, assignment = item.partition(":")
        var, eq, value = assignment.partition("=")
        if not sep or not eq or not var or name not in dict(args.revs):
            p.error(f"--env {item!r}: use NAME:VAR=VALUE with NAME one of the --rev names")
        args.env.setdefault(name, {})[var] = value
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kind = args.loadgen
    if kind == "auto":
        kind = "wrk" if shutil.which("wrk") else "python"
    tool = bench.LoadTool(kind, 2, 64)
    scale = bench.SCALES[args.scale]
    store = bench.prepare_store(args.backend, scale, Path(args.data_dir), args.pg_admin,
                                reuse=args.keep_data)
    try:
        with tempfile.TemporaryDirectory(prefix="graphsec-compare-") as tmp, \
                source_trees(args.revs, Path(tmp)) as trees:
            work = Path(tmp)
            rates = measure(args, tool, store, scale, trees, work)
    finally:
        if not args.keep_data:
            bench.drop_store(store, args.pg_admin)
    base = rates["bare"]
    print(f"{args.scenario} on {args.backend}-{args.scale}, {args.rounds} rounds of "
          f"{tool.describe()} for {args.duration:g} s per server:")
    for name, rev in args.revs:
        ratios = [g / b for g, b in zip(rates[name], base, strict=True)]
        if name in args.env:
            rev += " " + " ".join(f"{k}={v}" for k, v in args.env[name].items())
        print(f"  {name} ({rev}): median {statistics.median(rates[name]):,.0f} req/s, "
              f"{statistics.median(ratios):.1%} of the bare app "
              f"(rounds: {' '.join(f'{r:.0%}' for r in ratios)})")
    print(f"  bare: median {statistics.median(base):,.0f} req/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
