"""A file behind a URL changes: `autoflux run` notices (If-None-Match), loads it as a new version and
says so; offline with a warm cache, it runs on the cached copy and says it could not check."""

from __future__ import annotations

import json

import pytest
from servers import FileServer, fixture_files, zip_bytes

import autoflux

COMPETITION = fixture_files("competition")


def last_json(text: str) -> dict:
    return json.loads(text[text.rindex("\n{") + 1 :] if "\n{" in text else text)


@pytest.mark.slow
def test_a_changed_file_behind_a_url_is_noticed_loaded_and_told(tmp_path, cli):
    server = FileServer()  # this test's own server: it is stopped halfway
    server.start()
    try:
        url = server.add("/titanic.zip", zip_bytes(COMPETITION))
        ws = autoflux.init(tmp_path / "ws")
        assert cli("run", url, cwd=ws).exit_code == 0

        unchanged = cli("run", url, "--json", cwd=ws)
        assert unchanged.exit_code == 0, unchanged.output
        summary = last_json(unchanged.stdout)
        assert summary["acquire"] == [{"source": url, "from_cache": True, "downloaded_bytes": 0, "note": None}]
        assert server.requests_to("/titanic.zip")[-1].headers["If-None-Match"].startswith('"')

        server.add("/titanic.zip", zip_bytes({**COMPETITION, "train.csv": COMPETITION["train.csv"] + b"61,1,1,female,30,10.5\n"}))
        changed = cli("run", url, cwd=ws)
        assert changed.exit_code == 0, changed.output
        assert f"{url}: changed on the server (ETag " in changed.output and "downloaded the new file" in changed.output
        assert "raw.train" in changed.output and "dbt: 5 models built" in changed.output
        versions = {r["table"]: r["version"] for r in autoflux.Pipeline.open(ws).tables() if r["schema"] == "raw"}
        assert versions == {"train": 1, "test": 0, "sample_submission": 0}
        assert autoflux.load_training_data(ws, format="arrow").train.num_rows == 61
    finally:
        server.stop()

    offline = cli("run", url, cwd=ws)
    assert offline.exit_code == 0, offline.output
    assert f"{url}: could not check with the server (could not connect); using the copy cached at " in offline.output
    assert "All files unchanged since the last load: nothing to do." in offline.output
