"""The folder where every worker's metric values live (prometheus-client's multiprocess mode).

Apart from ``metrics.py`` on purpose: prometheus-client picks its multiprocess mode when it is
first imported, from ``PROMETHEUS_MULTIPROC_DIR``; this module lets ``graphsec serve`` set that
variable before anything imports prometheus-client (and before granian starts the workers).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir(home: Path, pid: int) -> Path:
    """``home/metrics/<pid>``, made empty (values of an earlier server would be added to this
    one's); the folders of servers no longer running are removed."""
    root = home / "metrics"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in root.iterdir():
        if old.name.isdigit() and int(old.name) != pid and not running(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / str(pid)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    return folder


def running(pid: int) -> bool:
    """Whether a process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
