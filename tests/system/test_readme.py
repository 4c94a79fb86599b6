"""The README's examples, run as written against a real ``graphsec serve``.

A new user copies the README's shell block (token + curl) and its Python SDK example; these tests
do the same. The only things changed are those the README tells a user to change: the server's
origin (a free port instead of 8000) and, for the SDK example, the ``TOKEN`` and ``GRAPHSEC_URL``
environment variables it reads.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from graphsec.auth.tokens import CLOCK_SKEW_SECONDS
from tests.support.server import READ_WRITE, RunningServer, start_server

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
README_ORIGIN = "http://127.0.0.1:8000"
SUBPROCESS_TIMEOUT_SECONDS = 120


def fenced_blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)


def python_example() -> str:
    """The SDK example with a static token (tests/entra/test_entra_readme.py runs the other,
    "From your application's own code")."""
    (block,) = [b for b in fenced_blocks("python") if "ClientSecretCredential" not in b
                and "HeadersInspectionHandlerOption" not in b  # tests/sdk/test_partial_content_sdk.py
                and "def test_" not in b]  # the pytest plugin's example: tests/testing/
    return block


def curl_block() -> str:
    """The shell block that mints a token and calls the API with curl."""
    (block,) = [b for b in fenced_blocks("sh") if "curl " in b and "graphsec token" in b]
    return block


def printed_documents(out: str) -> list[Any]:
    """The JSON documents curl printed one after another (no separator between them)."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(out.rstrip()):
        document, at = decoder.raw_decode(out, at)
        documents.append(document)
        while at < len(out) and out[at].isspace():
            at += 1
    return documents


def clean_env(server: RunningServer, **extra: str) -> dict[str, str]:
    """The server's environment for a child, without a TOKEN or GRAPHSEC_URL of the caller's."""
    env = {k: v for k, v in server.env.items() if k not in ("TOKEN", "GRAPHSEC_URL")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server (SQLite: the README's examples do not depend on the backend)."""
    running = start_server(tmp_path_factory.mktemp("readme") / "home")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def example(tmp_path: Path) -> Path:
    path = tmp_path / "readme_example.py"
    path.write_text(python_example())
    return path


def run_example(example: Path, server: RunningServer, token: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, str(example)],
        env=clean_env(server, TOKEN=token, GRAPHSEC_URL=server.base_url("v1.0")),
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_SECONDS, check=False)


def readme_score_body() -> dict[str, Any]:
    """The JSON body of the README's curl POST."""
    words = shlex.split(curl_block().replace("\\\n", " "))
    return dict(json.loads(words[words.index("-d") + 1]))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_readme_walkthrough_curl_then_sdk_example(server: RunningServer, example: Path) -> None:
    """The shell block (export TOKEN, POST, GET), then the SDK example in the same shell."""
    block = curl_block()
    assert README_ORIGIN in block
    origin = f"http://127.0.0.1:{server.port}"
    script = "\n".join([
        "set -euo pipefail",
        # `graphsec` as installed for this interpreter, whatever else is on PATH
        'graphsec() { "$GRAPHSEC_PYTHON" -m graphsec.cli "$@"; }',
        block.replace(README_ORIGIN, origin),
        'echo',
        'GRAPHSEC_URL="$ORIGIN/v1.0" "$GRAPHSEC_PYTHON" "$EXAMPLE"',
    ])
    done = subprocess.run(  # noqa: S603
        ["bash", "-c", script],  # noqa: S607
        env=clean_env(server, GRAPHSEC_PYTHON=sys.executable, ORIGIN=origin, EXAMPLE=str(example)),
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_SECONDS, check=False)
    assert done.returncode == 0, done.stderr
    *json_out, sdk_line = done.stdout.rstrip("\n").rsplit("\n", 1)
    created, page = printed_documents(json_out[0])
    assert created.get("currentScore") == 387.0, created
    assert created["azureTenantId"] == "1d5a1bd0-0000-4000-8000-000000000001"
    assert [s["id"] for s in page["value"]] == [created["id"]], page
    assert sdk_line == "1 [387.0] None"


def test_readme_sdk_example_prints_count_and_score(server: RunningServer, example: Path) -> None:
    """The SDK example alone, with a token from the real ``graphsec token`` after a create."""
    tenant = str(uuid.uuid4())
    token = server.token(tenant, READ_WRITE)
    created = httpx.post(f"{server.base_url('v1.0')}/security/secureScores",
                         json=readme_score_body(), headers={"Authorization": f"Bearer {token}"},
                         timeout=30.0, trust_env=False)
    assert created.status_code == 201, created.text
    done = run_example(example, server, token)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 [387.0] None\n"
    # ... which is what the README says it prints, and no warning is the example's own
    assert f"prints `{done.stdout.strip()}`" in README
    assert done.stderr == ""


def test_readme_sdk_example_without_token_says_which_variable(server: RunningServer,
                                                              example: Path) -> None:
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(example)], env=clean_env(server),
        capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_SECONDS, check=False)
    assert done.returncode != 0
    assert "KeyError: 'TOKEN'" in done.stderr


def _warns_deprecation(node: ast.AST) -> bool:
    """Whether ``node`` calls something with ``DeprecationWarning``, outside nested classes."""
    if isinstance(node, ast.Call) and any(isinstance(arg, ast.Name) and arg.id == "DeprecationWarning"
                                          for arg in node.args):
        return True
    return any(_warns_deprecation(child) for child in ast.iter_child_nodes(node)
               if not isinstance(child, ast.ClassDef))


def _deprecated_classes(source: str) -> set[str]:
    """Classes in ``source`` (nested ones too) that warn ``DeprecationWarning`` in their body or
    their methods, as the SDK's generated request configurations do."""
    return {node.name for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ClassDef) and _warns_deprecation(node)}


def _module_source(module: str) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    assert spec.origin is not None, module
    return Path(spec.origin).read_text()


SDK_STYLE = """
class Builder:
    class BuilderGetRequestConfiguration(RequestConfiguration[Q]):
        warn("This class is deprecated.", DeprecationWarning)
    def get(self): ...
class OldConfiguration:
    def __post_init__(self):
        warn("OldConfiguration is deprecated.", DeprecationWarning)
"""


def test_deprecated_classes_are_found_as_the_sdk_writes_them() -> None:
    assert _deprecated_classes(SDK_STYLE) == {"BuilderGetRequestConfiguration", "OldConfiguration"}


def test_readme_sdk_example_uses_no_class_the_sdk_deprecates() -> None:
    """The deprecated classes warn when their module is imported, not when used, so warnings
    cannot tell whether the example uses one: read the SDK modules it imports instead."""
    tree = ast.parse(python_example())
    modules = {node.module for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) and node.module
               and node.module.split(".")[0] in ("msgraph", "kiota_abstractions")}
    deprecated = set().union(*(_deprecated_classes(_module_source(m)) for m in modules))
    scores_module = "msgraph.generated.security.secure_scores.secure_scores_request_builder"
    assert scores_module in modules
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    used |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    used |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    assert not used & deprecated


@pytest.mark.parametrize("claim", [
    pytest.param(f"allows {CLOCK_SKEW_SECONDS} seconds of clock skew", id="clock-skew"),
    pytest.param(f"You need Python {PYPROJECT['project']['requires-python'].removeprefix('>=')} "
                 "or newer", id="python-version"),
    pytest.param("python3 -m venv .venv && . .venv/bin/activate", id="virtual-environment"),
    pytest.param("scripts/test # in another shell", id="tests-in-another-shell"),
    pytest.param("`graphsec token` creates that key when none exists", id="token-creates-key"),
    pytest.param("pip install -e '.[sdk]'", id="sdk-extra"),
])
def test_readme_states_what_the_code_does(claim: str) -> None:
    assert claim in " ".join(README.split())


def test_sdk_extra_has_what_the_example_needs() -> None:
    """``pip install -e '.[sdk]'`` brings the SDKs and ``deprecated``, which msgraph-core imports
    (for ``client.batch``) without declaring it; the test extra includes the sdk extra."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[; ]", requirement)[0].lower() for requirement in extras["sdk"]}
    assert {"msgraph-sdk", "msgraph-beta-sdk", "deprecated"} <= names
    assert "graphsec[sdk]" in extras["test"]
