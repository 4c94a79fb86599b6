"""Import against seeding: how long ``graphsec import`` takes to store an export of N scores,
beside ``graphsec seed`` writing the same data (bench/README.md, "Import").

Steps, each a ``graphsec`` command in a child process, timed: seed a fresh store; export it
to a file; reset; import the file; export again and compare (``--verify``). Prints a Markdown
table (and appends it to ``--out`` when given).

    python bench/import.py --backend sqlite --tenants 1000 --days 1000   # 1M scores
"""

from __future__ import annotations

import argparse
import asyncio
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_PG_ADMIN = os.environ.get("GRAPHSEC_TEST_POSTGRES",
                                  "postgresql://postgres@127.0.0.1:5432/test")


def _graphsec(env: dict[str, str], *args: str, stdout: int | None = None,
              path: Path | None = None) -> float:
    """Run ``graphsec ARGS`` (stdout to ``path`` when given); its wall time in seconds."""
    started = time.perf_counter()
    with (path.open("wb") if path is not None else open(os.devnull, "wb")) as out:
        done = subprocess.run([sys.executable, "-m", "graphsec.cli", *args], env=env,
                              stdout=out if stdout is None else stdout,
                              stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        raise SystemExit(f"graphsec {' '.join(args)} failed: {done.stderr.decode()[-2000:]}")
    return time.perf_counter() - started


async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> str:
    root = Path(args.data_dir or tempfile.mkdtemp(prefix="graphsec-import-"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    url = f"sqlite:///{root / 'graphsec.db'}"
    if args.backend == "postgresql":
        base = args.pg_admin.rsplit("/", 1)[0]
        asyncio.run(_pg(args.pg_admin, "DROP DATABASE IF EXISTS graphsec_bench_import"))
        asyncio.run(_pg(args.pg_admin, "CREATE DATABASE graphsec_bench_import"))
        url = f"{base}/graphsec_bench_import"
    env = {**os.environ, "GRAPHSEC_HOME": str(root / "home"), "GRAPHSEC_DATABASE_URL": url}
    workers = [] if args.workers is None else ["--workers", str(args.workers)]
    if args.backend == "postgresql":
        _graphsec(env, "db", "upgrade")
    seeding = _graphsec(env, "seed", "--tenants", str(args.tenants), "--days", str(args.days),
                        *workers)
    export = root / "state.ndjson"
    exporting = _graphsec(env, "export", path=export)
    lines = sum(1 for _ in export.open("rb")) - 1
    _graphsec(env, "reset", "--yes")
    importing = _graphsec(env, "import", str(export), *workers)
    same = "not checked"
    if args.verify:
        again = root / "again.ndjson"
        _graphsec(env, "export", path=again)
        same = "yes" if filecmp.cmp(export, again, shallow=False) else "NO"
        again.unlink()
    size = export.stat().st_size
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    if args.backend == "postgresql" and not args.keep:
        asyncio.run(_pg(args.pg_admin, "DROP DATABASE IF EXISTS graphsec_bench_import"))
    scores = args.tenants * args.days
    return "\n".join([
        f"{args.backend}, {scores:,} secureScores ({args.tenants} tenants × {args.days} days, "
        f"{lines:,} entities, {size / 2**20:,.0f} MiB of NDJSON), "
        f"workers: {args.workers or 'the number of cores'}",
        "",
        "| step | seconds | entities/s |",
        "|---|---:|---:|",
        f"| `graphsec seed` | {seeding:.1f} | {lines / seeding:,.0f} |",
        f"| `graphsec export` | {exporting:.1f} | {lines / exporting:,.0f} |",
        f"| `graphsec import` | {importing:.1f} | {lines / importing:,.0f} |",
        "",
        f"import / seed time: {importing / seeding:.2f}; export after import byte-identical: "
        f"{same}",
        "",
    ])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="graphsec import against graphsec seed")
    p.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--tenants", type=int, default=1000)
    p.add_argument("--days", type=int, default=1000)
    p.add_argument("--workers", type=int, default=None,
                   help="--workers of seed and import (default: theirs, the number of cores)")
    p.add_argument("--verify", action="store_true", help="export again and compare the bytes")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--pg-admin", default=DEFAULT_PG_ADMIN)
    p.add_argument("--out", type=Path, default=None, help="append the table to this file")
    args = p.parse_args(argv)
    table = run(args)
    print(table)
    if args.out is not None:
        with args.out.open("a") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
