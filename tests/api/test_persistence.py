"""Everything survives a restart: a new app on the same GRAPHSEC_HOME sees the same data."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from graphsec.config import Settings
from tests.conftest import _client, score

URL = "/v1.0/security/secureScores"


async def test_data_and_paging_survive_a_restart(settings: Settings, rw: dict[str, str]) -> None:
    async for first in _client(settings):
        for i in range(3):
            body = score(id=f"s{i}", createdDateTime=f"2024-01-0{i + 1}T00:00:00Z")
            assert (await first.post(URL, json=body, headers=rw)).status_code == 201
        assert (await first.patch(f"{URL}/s1", json={"currentScore": 7},
                                  headers=rw)).status_code == 200
        assert (await first.delete(f"{URL}/s0", headers=rw)).status_code == 204
        link = (await first.get(f"{URL}?$top=1", headers=rw)).json()["@odata.nextLink"]
    async for second in _client(settings):
        listed = (await second.get(URL, headers=rw)).json()["value"]
        assert [v["id"] for v in listed] == ["s2", "s1"]
        assert listed[1]["currentScore"] == 7.0
        # a nextLink issued before the restart still works: the signing secret is persisted
        page = (await second.get(link, headers=rw)).json()
        assert [v["id"] for v in page["value"]] == ["s1"]
        assert parse_qs(urlsplit(link).query)["$top"] == ["1"]


def test_home_and_key_are_private(settings: Settings) -> None:
    from graphsec.auth.keys import load_or_create

    load_or_create(settings.home)
    assert (settings.home.stat().st_mode & 0o777) == 0o700
    assert ((settings.home / "signing-key.pem").stat().st_mode & 0o777) == 0o600


def test_sqlite_file_is_where_settings_say(tmp_path: Path) -> None:
    s = Settings.from_env({"GRAPHSEC_HOME": str(tmp_path / "h")})
    assert s.sqlite_path() == tmp_path / "h" / "graphsec.db"
    rel = Settings.from_env({"GRAPHSEC_HOME": str(tmp_path), "GRAPHSEC_DATABASE_URL":
                             "sqlite:///data/x.db"})
    assert rel.sqlite_path() == Path("data/x.db")
