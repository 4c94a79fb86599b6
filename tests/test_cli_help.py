"""``--help`` tells an operator what each command reads: its options and its environment."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from graphsec.cli import main


def help_text(*command: str) -> str:
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # wrapping is the terminal's, not the text's


@pytest.mark.parametrize(("command", "mentions"), [
    pytest.param(("serve",), "GRAPHSEC_HOME", id="serve-home"),
    pytest.param(("serve",), "GRAPHSEC_DATABASE_URL", id="serve-database-url"),
    pytest.param(("db", "upgrade"), "GRAPHSEC_DATABASE_URL", id="db-upgrade-database-url"),
    pytest.param(("seed",), "GRAPHSEC_DATABASE_URL", id="seed-database-url"),
])
def test_help_names_the_environment_variables(command: tuple[str, ...], mentions: str) -> None:
    assert mentions in help_text(*command)


def own_words(option_line: str) -> str:
    """The help of one ``--option METAVAR  help [default: …]`` line, without click's notes."""
    _, _, described = option_line.partition("  ")
    return re.sub(r"\[[^]]*\]", "", described).strip()


@pytest.mark.parametrize("command", [
    pytest.param(("serve",), id="serve"),
    pytest.param(("seed",), id="seed"),
    pytest.param(("token",), id="token"),
    pytest.param(("db", "upgrade"), id="db-upgrade"),
    pytest.param(("db", "current"), id="db-current"),
])
def test_every_option_has_a_help_text(command: tuple[str, ...]) -> None:
    """Each option carries words of its own, not only click's ``[default: …]`` note."""
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=200)
    options = result.output.split("Options:", 1)[1]
    declarations = [line.strip() for line in options.splitlines() if line.lstrip().startswith("-")]
    assert declarations
    assert [line for line in declarations if not own_words(line)] == []


def test_seed_tenants_says_what_it_counts() -> None:
    assert re.search(r"--tenants INTEGER RANGE Tenants to generate", help_text("seed"))
