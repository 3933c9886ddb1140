"""One test per bad input, through the CLI as a user runs it.

Each test first loads a good ``target.csv`` (and a neighbour), then replaces it with bad content
and ingests the folder again with a new good file beside it. Expected every time: exit code 1, a
one-line error naming the file (and line when known) and what to do, no traceback, the other
files loaded, and the stored table exactly as it was (same Delta version, same rows).
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from autoflux.lake import RAW
from autoflux.workspace import Workspace

GOOD = "id,name\n1,a\n2,b\n3,c\n"


@dataclass
class Scenario:
    ws: Path
    data: Path
    before: dict[str, tuple[int, int]]

    @property
    def target(self) -> Path:
        return self.data / "target.csv"


@pytest.fixture
def stored(workspace, tmp_path, cli, lake_snapshot) -> Scenario:
    """target.csv and neighbour.csv loaded once (version 0, three rows each)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "target.csv").write_text(GOOD)
    (data / "neighbour.csv").write_text(GOOD)
    first = cli("ingest", str(data), cwd=workspace)
    assert first.exit_code == 0, first.output
    before = lake_snapshot(workspace)
    assert before == {"target": (0, 3), "neighbour": (0, 3)}
    return Scenario(workspace, data, before)


def ingest_bad(scenario: Scenario, cli, lake_snapshot, *, source: Path | None = None, exit_code: int = 1):
    """Ingest again with a new good file and a changed neighbour; check what must always hold."""
    (scenario.data / "fresh.csv").write_text("x,y\n1,2\n")
    (scenario.data / "neighbour.csv").write_text(GOOD + "4,d\n")
    result = cli("ingest", str(source or scenario.data), cwd=scenario.ws)
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    after = lake_snapshot(scenario.ws)
    assert after["target"] == scenario.before["target"], "the stored table changed"
    if source is None:
        assert after["fresh"] == (0, 1), "a good file beside the bad one did not load"
        assert after["neighbour"] == (1, 4), "a changed good file beside the bad one did not load"
    return result


def error_line(result, path: Path) -> str:
    """The one error line naming ``path``; it must also say what to do (after the dash)."""
    lines = [line for line in result.error_lines() if str(path) in line]
    assert len(lines) == 1, result.output
    line = lines[0]
    assert " — " in line and len(line.split(" — ", 1)[1]) > 10, f"no advice in: {line}"
    return line


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\r\n"], ids=["empty", "blank", "bom", "bom-newline"])
def test_empty_file(stored, cli, lake_snapshot, content):
    stored.target.write_bytes(content)
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert "the file is empty" in line and "remove it or replace it" in line


def test_header_only_is_a_table_with_no_rows(stored, cli, lake_snapshot):
    """Not bad input: public datasets ship such files, and Spark, DuckDB and pandas read them as empty tables."""
    stored.target.write_text("Id,Full Name\n")
    result = cli("ingest", str(stored.data), cwd=stored.ws)
    assert result.exit_code == 0, result.output
    assert lake_snapshot(stored.ws)["target"] == (1, 0)
    table = Workspace.open(stored.ws).lake.open(RAW, "target").to_pyarrow_table()
    assert table.column_names[:2] == ["id", "full_name"] and table.num_rows == 0


def test_unbalanced_quotes(stored, cli, lake_snapshot):
    stored.target.write_text('id,name\n1,a\n2,"b\n3,c\n4,d\n')
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 3:" in line
    assert "unbalanced quotes" in line and "double a literal quote" in line


def test_unbalanced_quotes_in_a_middle_column(stored, cli, lake_snapshot):
    stored.target.write_text('id,name,score\n1,a,1\n2,"b,2\n3,c,3\n')
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 3:" in line and "unbalanced quotes" in line


def test_unbalanced_quotes_hidden_by_an_even_quote_count(stored, cli, lake_snapshot):
    """A literal quote elsewhere (15" screen) makes the count even; the open quote is still found."""
    stored.target.write_text('id,name\n1,"two\nlines"\n2,15" screen\n3,"open\n4,d\n')
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 5:" in line and "unbalanced quotes" in line


def test_ragged_row_with_too_many_fields(stored, cli, lake_snapshot):
    stored.target.write_text("id,name\n1,a\n2,b\n3,c,surprise\n4,d\n")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 4:" in line
    assert "a row has 3 fields where the header has 2" in line and "quote values" in line


def test_ragged_row_with_too_few_fields(stored, cli, lake_snapshot):
    stored.target.write_text("id,name\n1,a\n2\n3,c\n")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 3:" in line
    assert "a row has 1 fields where the header has 2" in line


def test_ragged_row_that_is_long_is_still_located(stored, cli, lake_snapshot):
    stored.target.write_text("id,name\n1,a\n" + "x" * 500 + ",b,c\n")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 3:" in line


def test_ragged_row_is_located_exactly_not_by_a_longer_line(stored, cli, lake_snapshot):
    stored.target.write_text("id,name,score\n7,88,9\n7,8\n")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 3:" in line


def test_ragged_row_late_in_a_big_file(stored, cli, lake_snapshot, configure):
    configure(stored.ws, {"ingest": {"csv": {"block_size": 65536}}})
    stored.target.write_text("id,name\n" + "".join(f"{i},n{i}\n" for i in range(20_000)) + "1,2,3\n")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 20002:" in line


def test_undecodable_bytes_with_a_configured_encoding(workspace, tmp_path, cli, lake_snapshot, configure):
    configure(workspace, {"ingest": {"csv": {"encoding": "utf-8"}}})
    data = tmp_path / "data"
    data.mkdir()
    (data / "target.csv").write_text(GOOD)
    (data / "neighbour.csv").write_text(GOOD)
    assert cli("ingest", str(data), cwd=workspace).exit_code == 0
    scenario = Scenario(workspace, data, lake_snapshot(workspace))
    scenario.target.write_bytes(b"id,name\n1,a\n2,b\n3,caf\xe9\n4,d\n")
    line = error_line(ingest_bad(scenario, cli, lake_snapshot), scenario.target)
    assert f"{scenario.target}, line 4:" in line
    assert "not valid utf-8" in line and "ingest.csv.encoding" in line


def test_undecodable_bytes_after_the_detection_sample(stored, cli, lake_snapshot):
    """Detection reads the first MiB; a bad byte after it is still reported with its line."""
    rows = "".join(f"{i},name number {i} padded to make the file bigger\n" for i in range(40_000))
    assert len(rows) > 1 << 21
    stored.target.write_bytes(b"id,name\n" + rows.encode() + b"40000,caf\xe9\n")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert f"{stored.target}, line 40002:" in line
    assert "not valid utf-8" in line


def test_encoding_that_detection_cannot_decide(stored, cli, lake_snapshot):
    stored.target.write_bytes(random.Random(0).randbytes(4000).replace(b'"', b"'"))
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert "cannot tell which text encoding" in line and "ingest.csv.encoding" in line


def test_unknown_extension_given_directly_is_a_failure(stored, cli, lake_snapshot):
    path = stored.data / "notes.xyz"
    path.write_text("whatever")
    result = ingest_bad(stored, cli, lake_snapshot, source=path)
    line = error_line(result, path)
    assert "unknown file type (extension '.xyz')" in line and "ingest.readers" in line
    assert lake_snapshot(stored.ws) == stored.before


def test_unknown_extension_inside_a_folder_is_skipped_not_failed(stored, cli, lake_snapshot):
    (stored.data / "notes.xyz").write_text("whatever")
    (stored.data / "target.csv").write_text(GOOD)  # unchanged
    result = ingest_bad(stored, cli, lake_snapshot, exit_code=0)
    assert result.error_lines() == []
    assert f"skipped {stored.data / 'notes.xyz'}: unknown file type (extension '.xyz')" in result.stdout
    assert "notes" not in lake_snapshot(stored.ws)


def _make_unreadable(path: Path) -> None:
    """A path that fails to read even for root (chmod does not stop root)."""
    path.unlink()
    if os.geteuid() != 0:
        path.write_text(GOOD + "9,z\n")
        path.chmod(0)
    else:
        path.symlink_to("/proc/self/mem")  # a regular file to stat, an I/O error to read


def test_unreadable_file(stored, cli, lake_snapshot):
    _make_unreadable(stored.target)
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert "cannot read the file" in line and "check it exists and is readable" in line


def test_broken_symlink_is_reported_not_ignored(stored, cli, lake_snapshot):
    stored.target.unlink()
    stored.target.symlink_to(stored.data / "gone.csv")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), stored.target)
    assert "cannot read the file: No such file or directory" in line


def test_truncated_parquet(stored, cli, lake_snapshot):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = stored.data / "events.parquet"
    pq.write_table(pa.table({"a": list(range(1000))}), path)
    assert cli("ingest", str(stored.data), cwd=stored.ws).exit_code == 0
    stored.before = lake_snapshot(stored.ws)
    stored.target.write_text(GOOD)
    path.write_bytes(path.read_bytes()[:200])
    result = ingest_bad(stored, cli, lake_snapshot)
    line = error_line(result, path)
    assert "not a readable Parquet file" in line
    assert lake_snapshot(stored.ws)["events"] == stored.before["events"]


def test_corrupt_gzip(stored, cli, lake_snapshot):
    import gzip

    path = stored.data / "packed.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    assert cli("ingest", str(stored.data), cwd=stored.ws).exit_code == 0
    stored.before = lake_snapshot(stored.ws)
    stored.target.write_text(GOOD)
    path.write_bytes(b"this is not gzip at all")
    line = error_line(ingest_bad(stored, cli, lake_snapshot), path)
    assert "cannot read the file" in line and "zlib" in line
    assert lake_snapshot(stored.ws)["packed"] == stored.before["packed"]


def test_parquet_corrupt_after_its_first_row_group(stored, cli, lake_snapshot):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = stored.data / "events.parquet"
    pq.write_table(pa.table({"a": list(range(100_000)), "b": [str(i) for i in range(100_000)]}), path, row_group_size=10_000)
    assert cli("ingest", str(stored.data), cwd=stored.ws).exit_code == 0
    stored.before = lake_snapshot(stored.ws)
    stored.target.write_text(GOOD)
    page = pq.ParquetFile(path).metadata.row_group(5).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[page : page + 64] = b"\x07" * 64  # a page header of row group 5: opens fine, fails while streaming
    path.write_bytes(bytes(data))
    line = error_line(ingest_bad(stored, cli, lake_snapshot), path)
    assert "cannot read the file" in line
    assert lake_snapshot(stored.ws)["events"] == stored.before["events"]


def test_invalid_json(stored, cli, lake_snapshot):
    path = stored.data / "items.json"
    path.write_text('[{"a": 1}, {"a": 2}]')
    assert cli("ingest", str(stored.data), cwd=stored.ws).exit_code == 0
    stored.before = lake_snapshot(stored.ws)
    path.write_text('[{"a": 1},\n {"a": }]')
    line = error_line(ingest_bad(stored, cli, lake_snapshot), path)
    assert f"{path}, line 2:" in line and "invalid JSON" in line
    assert lake_snapshot(stored.ws)["items"] == stored.before["items"]


def test_json_error_output_names_the_file(stored, cli):
    stored.target.write_text("")
    result = cli("ingest", str(stored.data), "--json", cwd=stored.ws)
    assert result.exit_code == 1
    failed = [f for f in json.loads(result.stdout)["files"] if f["outcome"] == "failed"]
    assert [f["message"].split(" — ")[0] for f in failed] == [f"{stored.target}: the file is empty"]


# ------------------------------------------------------------------------ not errors at all


def test_duplicate_and_blank_headers_are_normalised(stored, cli):
    stored.target.write_text("id,Name,name,,NAME, \n1,a,b,c,d,e\n")
    result = cli("ingest", str(stored.data), cwd=stored.ws)
    assert result.exit_code == 0, result.output
    assert result.error_lines() == []
    table = Workspace.open(stored.ws).lake.open(RAW, "target").to_pyarrow_table()
    assert table.column_names[:6] == ["id", "name", "name_2", "column_4", "name_3", "column_6"]
    assert table.to_pylist()[0]["column_4"] == "c"


def test_literal_quotes_inside_unquoted_values_are_data(stored, cli):
    stored.target.write_text('id,name\n1,15" screen\n2,"quoted, with comma"\n3,"two\nlines"\n')
    result = cli("ingest", str(stored.data), cwd=stored.ws)
    assert result.exit_code == 0, result.output
    table = Workspace.open(stored.ws).lake.open(RAW, "target").to_pyarrow_table()
    assert dict(zip(table["id"].to_pylist(), table["name"].to_pylist(), strict=True)) == {
        1: '15" screen',
        2: "quoted, with comma",
        3: "two\nlines",
    }


@pytest.mark.parametrize(
    ("file_name", "table"),
    [
        ("My Data (final) v2.CSV", "my_data_final_v2"),
        ("ünïcödé fïlé.csv", "unicode_file"),
        ("-leading dash.csv", "leading_dash"),
        ("2024-01 sales.csv", "c_2024_01_sales"),
        ('it\'s "quoted".csv', "it_s_quoted"),
        ("camelCaseName.tsv", "camel_case_name"),
        ("$$$.csv", "table"),
    ],
)
def test_odd_file_names_are_normalised(workspace, tmp_path, cli, lake_snapshot, file_name, table):
    data = tmp_path / "odd"
    data.mkdir()
    (data / file_name).write_text("a\tb\n1\t2\n" if file_name.endswith(".tsv") else "a,b\n1,2\n")
    result = cli("ingest", str(data), cwd=workspace)
    assert result.exit_code == 0, result.output
    assert lake_snapshot(workspace) == {table: (0, 1)}
    assert f"raw.{table}" in result.stdout


def test_symlinked_files_in_a_folder_load_under_their_link_name(workspace, tmp_path, cli, lake_snapshot):
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "9f86d081").write_text("a,b\n1,2\n")  # content-addressed caches (DVC, HF) look like this
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").symlink_to(tmp_path / "blobs" / "9f86d081")
    result = cli("ingest", str(tmp_path / "data"), cwd=workspace)
    assert result.exit_code == 0, result.output
    assert lake_snapshot(workspace) == {"train": (0, 1)}


def test_a_symlinked_file_given_directly_loads_under_its_link_name(workspace, tmp_path, cli, lake_snapshot):
    (tmp_path / "9f86d081").write_text("a,b\n1,2\n")
    (tmp_path / "train.csv").symlink_to(tmp_path / "9f86d081")
    result = cli("ingest", str(tmp_path / "train.csv"), cwd=workspace)
    assert result.exit_code == 0, result.output
    assert lake_snapshot(workspace) == {"train": (0, 1)}
