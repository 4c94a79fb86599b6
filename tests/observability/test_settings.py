"""The settings of metrics and the access log: flags over ``GRAPHSEC_*`` variables, checked,
and carried to the workers (``Settings.environ``)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from graphsec.config import Settings, SettingsError


def test_variables_turn_them_on_and_workers_get_the_same(tmp_path: Path) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_METRICS": "1",
           "GRAPHSEC_METRICS_PUBLIC": "true", "GRAPHSEC_LOG_FORMAT": "JSON"}
    settings = Settings.from_env(env)
    assert (settings.metrics, settings.metrics_public, settings.log_format) == (True, True, "json")
    again = Settings.from_env(settings.environ())
    assert (again.metrics, again.metrics_public, again.log_format) == (True, True, "json")


def test_a_flag_wins_over_the_variable(tmp_path: Path) -> None:
    env = {"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_LOG_FORMAT": "json"}
    assert Settings.from_env(env, log_format="off").log_format == "off"
    assert Settings.from_env(env, metrics=True).metrics


@pytest.mark.parametrize(("terminal", "expected"), [
    pytest.param(True, "text", id="terminal"), pytest.param(False, "off", id="file-or-pipe")])
def test_the_default_format_follows_stderr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           terminal: bool, expected: str) -> None:
    class Stderr(io.StringIO):
        def isatty(self) -> bool:
            return terminal

    monkeypatch.setattr("sys.stderr", Stderr())
    settings = Settings.from_env({"GRAPHSEC_HOME": str(tmp_path)})
    assert settings.log_format == expected
    assert not settings.metrics


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="GRAPHSEC_LOG_FORMAT must be one of text, json, off"):
        Settings.from_env({"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_LOG_FORMAT": "xml"})


def test_metrics_public_needs_metrics(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="--metrics-public needs --metrics"):
        Settings.from_env({"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_METRICS_PUBLIC": "1"})
