"""The postgres engine against the real server: raw loads, reloads, readers during a load, hand-off."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
import signal
import struct
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import autoflux
from autoflux.engines.postgres import PASSWORD_ENV, Settings, resolve_target
from autoflux.exceptions import ConfigError, EngineError, TableNotFoundError
from autoflux.lake import RAW
from autoflux.workspace import Workspace


def ingest(workspace: Path, sources: list[Path], *, force: bool = False):
    """``autoflux.ingest`` (the name ``autoflux.ingest`` is the subpackage once it is imported)."""
    from autoflux.pipeline import Pipeline

    pipeline = Pipeline(Workspace.open(workspace))
    try:
        return pipeline.ingest([str(s) for s in sources], force=force)
    finally:
        pipeline.close()


def oids(postgres, database: str) -> dict[str, int]:
    rows = postgres.query(
        database,
        "select c.relname, c.oid::bigint from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = 'raw' and c.relkind = 'r'",
    )
    return dict(rows)


def load_ids(postgres, database: str, table: str) -> set[str]:
    return {row[0] for row in postgres.query(database, f'select distinct _load_id from raw."{table}"')}


def lineage_as_in_the_lake(postgres, database: str, workspace: Path, table: str) -> list[str]:
    """Asserts raw.<table>'s lineage columns hold the lake's values, row for row (by ``id``); returns the
    columns PostgreSQL stores once for all rows (loaded as a default: one value in every row)."""
    lineage = ["_load_id", "_source_file", "_ingested_at"]
    rows = postgres.query(database, f'select id, {", ".join(lineage)} from raw."{table}" order by id')
    lake = Workspace.open(workspace).lake.open(RAW, table).to_pyarrow_table().sort_by("id").select(["id", *lineage])
    assert rows == [tuple(row.values()) for row in lake.to_pylist()]
    query = f"select attname from pg_attribute where attrelid = 'raw.\"{table}\"'::regclass and atthasmissing order by attnum"
    return [row[0] for row in postgres.query(database, query)]


def copy_example(example_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(example_dir, folder)
    return folder


# ------------------------------------------------------------------------------ settings


def test_settings_resolve_keys_then_url_then_environment_then_defaults():
    url = "postgresql://ann:p%40ss%2Fword@db.example:6543/warehouse?sslmode=require"
    target = resolve_target(Settings(url=url), {})
    assert (target.host, target.port, target.user, target.password, target.database, target.sslmode) == (
        "db.example",
        6543,
        "ann",
        "p@ss/word",
        "warehouse",
        "require",
    )
    assert resolve_target(Settings(url=url, database="other", port=7000), {}).database == "other"
    environ = {"PGHOST": "envhost", "PGPORT": "5999", "PGUSER": "bob", "PGPASSWORD": "envpw", "PGDATABASE": "envdb"}
    target = resolve_target(Settings(), environ)
    assert (target.host, target.port, target.user, target.password, target.database) == ("envhost", 5999, "bob", "envpw", "envdb")
    target = resolve_target(Settings(host="keyhost", user="carol"), environ)
    assert (target.host, target.user, target.database) == ("keyhost", "carol", "envdb")
    target = resolve_target(Settings(user="dan"), {})
    assert (target.host, target.port, target.database, target.password) == ("localhost", 5432, "dan", None)
    assert resolve_target(Settings(host="/var/run/postgresql", user="u", database="d"), {}).uri().startswith("postgresql://u@:5432/d?")


def test_a_url_that_is_not_postgresql_is_a_config_error_without_the_secret(secret):
    with pytest.raises(ConfigError) as raised:
        resolve_target(Settings(url=f"mysql://u:{secret}@h/db"), {})
    assert "postgresql://" in str(raised.value) and secret not in str(raised.value)


def test_the_password_stays_out_of_config_repr_and_profiles(tmp_path, configure, secret):
    root = autoflux.init(tmp_path / "ws")
    configure(root, {"engine": {"type": "postgres", "host": "127.0.0.1", "user": "postgres", "database": "d", "password": secret}})
    workspace = Workspace.open(root)
    assert secret not in repr(workspace.config) and secret not in str(workspace.config.model_dump())
    from autoflux.engines import create_engine

    engine = create_engine(workspace)
    assert secret not in json.dumps(engine.dbt_output())
    environment = engine.dbt_env()
    assert environment[PASSWORD_ENV] == secret
    assert [v for k, v in environment.items() if k != PASSWORD_ENV and secret in v] == []
    assert PASSWORD_ENV.startswith("DBT_ENV_SECRET_")  # dbt scrubs these values from its logs


def test_switching_engine_type_by_environment_ignores_other_engines_keys(tmp_path, monkeypatch):
    root = autoflux.init(tmp_path / "ws")  # the template sets engine.path, a duckdb key
    monkeypatch.setenv("AUTOFLUX__ENGINE__TYPE", "postgres")
    monkeypatch.setenv("AUTOFLUX__ENGINE__DATABASE", "x")
    config = Workspace.open(root).config
    assert config.engine.type == "postgres" and config.engine.database == "x"


# ------------------------------------------------------------------------ the example run


def test_example_runs_end_to_end_on_postgres_and_never_prints_the_password(
    tmp_path, postgres, database, cli_process, example_dir, monkeypatch, secret
):
    root = autoflux.init(tmp_path / "ws")
    env = {
        "AUTOFLUX__ENGINE__TYPE": "postgres",
        "AUTOFLUX__ENGINE__HOST": "127.0.0.1",
        "AUTOFLUX__ENGINE__PORT": "5432",
        "AUTOFLUX__ENGINE__USER": "postgres",
        "AUTOFLUX__ENGINE__DATABASE": database,
        "AUTOFLUX__ENGINE__PASSWORD": secret,
    }
    run = cli_process("run", str(example_dir), "-w", str(root), env=env)
    assert run.exit_code == 0, run.output
    assert "1,000 train rows, 400 test rows" in run.output
    tables = cli_process("tables", "-w", str(root), "--json", env=env)
    assert tables.exit_code == 0, tables.output
    listed = {(r["schema"], r["table"]): r["rows"] for r in json.loads(tables.stdout)}
    assert listed[("marts", "ml_training_set")] == 1400 and listed[("staging", "stg_full")] == 1400
    assert listed[("raw", "train")] == 1000

    columns = dict(
        postgres.query(
            database, "select column_name, data_type from information_schema.columns where table_schema = 'raw' and table_name = 'train'"
        )
    )
    assert columns["id"] == "bigint" and columns["annual_income"] == "double precision"
    assert columns["term"] == "text" and columns["application_date"] == "date"
    assert columns["_ingested_at"] == "timestamp with time zone"
    mark = json.loads(postgres.query(database, "select obj_description('raw.train'::regclass)")[0][0])
    lake = Workspace.open(root).lake
    assert mark["autoflux_load_id"] == lake.open(RAW, "train").history(1)[0]["autoflux.load_id"]
    assert load_ids(postgres, database, "train") == {mark["autoflux_load_id"]}

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data = autoflux.load_training_data(root)
    assert data.train.shape == (1000, 14) and data.test.shape == (400, 13)
    assert (data.target, data.id) == ("default", "id")
    assert str(data.train["id"].dtype) == "int64" and str(data.train["annual_income"].dtype) == "float64"
    polars = autoflux.load_training_data(root, format="polars")
    assert polars.train.height == 1000

    written = [p for p in root.rglob("*") if p.is_file() and "lake" not in p.parts]
    assert (root / "dbt" / "profiles.yml") in written and (root / ".autoflux" / "logs" / "dbt.log") in written
    for output in (run.output, tables.output, *(p.read_text(errors="replace") for p in written)):
        assert secret not in output


# ---------------------------------------------------------------------------- reloading


def test_a_second_publish_with_nothing_changed_loads_nothing(pg_workspace, postgres, database, example_dir, pg_engine):
    ingest(pg_workspace, [example_dir])
    first = oids(postgres, database)
    assert set(first) == {"train", "test", "sample_submission"}
    ingest(pg_workspace, [example_dir])
    engine = pg_engine(pg_workspace)
    engine.publish_raw(["train", "test", "sample_submission"])
    assert oids(postgres, database) == first
    ingest(pg_workspace, [example_dir], force=True)  # new load ids: everything reloads
    assert set(oids(postgres, database).values()).isdisjoint(first.values())


def test_a_changed_file_reloads_only_its_table(pg_workspace, postgres, database, example_dir, tmp_path):
    data = copy_example(example_dir, tmp_path)
    ingest(pg_workspace, [data])
    before = oids(postgres, database)
    old_load = load_ids(postgres, database, "test")
    with open(data / "test.csv", "a", encoding="utf-8") as file:
        file.write("1401,41,50000.00,9000,36 months,9.99,700,3,RENT,car,West,No,2020-01-01\n")
    ingest(pg_workspace, [data])
    after = oids(postgres, database)
    assert after["train"] == before["train"] and after["sample_submission"] == before["sample_submission"]
    assert after["test"] != before["test"]
    assert postgres.query(database, "select count(*) from raw.test")[0][0] == 401
    assert load_ids(postgres, database, "test").isdisjoint(old_load)


def write_rows(path: Path, rows: int, label: str) -> None:
    with open(path, "w", encoding="utf-8") as file:
        file.write("id,label,value\n")
        file.writelines(f"{i},{label},{i * 0.5}\n" for i in range(rows))


def test_a_reader_during_a_load_sees_the_old_table_or_the_new_one(pg_workspace, postgres, database, tmp_path):
    data = tmp_path / "big"
    data.mkdir()
    write_rows(data / "big.csv", 300_000, "old")
    ingest(pg_workspace, [data])
    old = (300_000, "old")
    write_rows(data / "big.csv", 200_000, "new")
    new = (200_000, "new")

    seen: list[tuple[tuple, bool]] = []
    done = threading.Event()

    def read() -> None:
        with postgres.connect(database) as connection, connection.cursor() as cursor:
            while True:
                finished = done.is_set()
                cursor.execute(
                    "select count(*) from pg_stat_activity where query ilike 'copy %_autoflux_load_%' and datname = current_database()"
                )
                loading = cursor.fetchone()[0] > 0
                cursor.execute("select count(*), min(label), max(label) from raw.big")
                count, low, high = cursor.fetchone()
                seen.append(((count, low) if low == high else (count, low, high), loading))
                if finished:
                    return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        ingest(pg_workspace, [data])
    finally:
        done.set()
        reader.join()
    states = [state for state, _ in seen]
    assert set(states) <= {old, new}, set(states) - {old, new}
    assert states[0] == old and states[-1] == new
    assert any(loading and state == old for state, loading in seen), "no read happened while the COPY ran"


def test_a_users_view_on_a_raw_table_whose_columns_change_stops_the_load_and_keeps_the_old_table(
    pg_workspace, postgres, database, tmp_path
):
    data = tmp_path / "v"
    data.mkdir()
    write_rows(data / "big.csv", 100, "old")
    ingest(pg_workspace, [data])
    postgres.query(database, "create view public.mine as select label from raw.big")
    (data / "big.csv").write_text("id,label,value,extra\n1,new,0.5,x\n", encoding="utf-8")
    with pytest.raises(EngineError, match=r"cannot replace raw\.big in PostgreSQL: its columns changed .*\(public\.mine\)"):
        ingest(pg_workspace, [data])
    assert postgres.query(database, "select count(*), max(label) from raw.big") == [(100, "old")]
    assert Workspace.open(pg_workspace).lake.open(RAW, "big").to_pyarrow_table().column("label").to_pylist() == ["new"]


def test_a_load_killed_halfway_leaves_the_old_table(pg_workspace, postgres, database, tmp_path, monkeypatch):
    from autoflux.engines.pg_copy import BinaryCopy

    data = tmp_path / "big"
    data.mkdir()
    write_rows(data / "big.csv", 100_000, "old")
    ingest(pg_workspace, [data])
    write_rows(data / "big.csv", 400_000, "new")
    killed: list[int] = []
    read = BinaryCopy.read

    def read_then_wait_for_the_kill(stream: BinaryCopy, *args: int) -> bytes:
        """The first block goes out; the next waits until the server has killed this load (halfway, on any machine's
        pace), for the two loads killed."""
        if not hasattr(stream, "kills_before"):
            stream.kills_before = len(killed)
        else:
            deadline = time.monotonic() + 60
            while len(killed) == stream.kills_before < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        return read(stream, *args)

    monkeypatch.setattr(BinaryCopy, "read", read_then_wait_for_the_kill)

    def kill() -> None:
        """Kill two loads: the one along the ingest (the publish after it then loads the table) and that one."""
        deadline = time.monotonic() + 60
        while len(killed) < 2 and time.monotonic() < deadline:
            rows = postgres.query(
                database,
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where query ilike 'copy %_autoflux_load_%' and datname = current_database() and pid <> pg_backend_pid()",
            )
            killed.extend(1 for row in rows if row[0])
            time.sleep(0.005)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        with pytest.raises(EngineError) as raised:
            ingest(pg_workspace, [data])
    finally:
        killed += [0, 0]
        killer.join()
    assert len(killed) == 4, "both loads were killed"
    assert "loading raw.big" in str(raised.value) and "\n" not in str(raised.value)
    assert postgres.query(database, "select count(*), max(label) from raw.big")[0] == (100_000, "old")
    assert postgres.query(database, "select count(*) from pg_class where relname like '_autoflux_load_%'")[0][0] == 0
    ingest(pg_workspace, [data])  # the lake has the new rows: the next publish loads them
    assert postgres.query(database, "select count(*), max(label) from raw.big")[0] == (400_000, "new")


def test_a_raw_table_is_loaded_along_the_ingest_each_read_again_starting_over(
    pg_workspace, postgres, database, configure, tmp_path, monkeypatch
):
    """A file read three times (a late float, then late text, widen ``value``) is copied into PostgreSQL along
    each read; the last read's copy is the table, published with the commit, so publish_raw loads nothing."""
    from autoflux.engines import postgres as engine_module

    configure(pg_workspace, {"ingest": {"csv": {"block_size": 65536}}})
    data = tmp_path / "late"
    data.mkdir()
    rows = [f"{i},{i}" for i in range(20_000)] + ["20000,2.5"] + [f"{i},{i}" for i in range(20_001, 40_000)] + ["40000,text"]
    (data / "late.csv").write_text("id,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    copies, loads_after = [], []
    monkeypatch.setattr(engine_module._CopyAlong, "_run", lambda copy, run=engine_module._CopyAlong._run: (copies.append(copy), run(copy)))
    monkeypatch.setattr(engine_module.Engine, "_load", lambda engine, cursor, name, *rest: loads_after.append(name))
    result = ingest(pg_workspace, [data])
    assert [f.outcome for f in result.files] == ["loaded"]
    assert [[f.name for f in copy.copied] for copy in copies] == [["id", "value"]] * 3
    assert [str(copy.copied.field("value").type) for copy in copies] == ["int64", "double", "string"]
    assert loads_after == []
    types = postgres.query(
        database, "select column_name, data_type from information_schema.columns where table_name = 'late' order by ordinal_position"
    )
    assert types == [
        ("id", "bigint"),
        ("value", "text"),
        ("_load_id", "text"),
        ("_source_file", "text"),
        ("_ingested_at", "timestamp with time zone"),
    ]
    lake = Workspace.open(pg_workspace).lake.open(RAW, "late")
    expected = lake.to_pyarrow_table().sort_by("id").select(["id", "value"]).to_pylist()
    assert postgres.query(database, "select id, value from raw.late order by id") == [tuple(row.values()) for row in expected]
    assert len(expected) == 40_001
    assert lineage_as_in_the_lake(postgres, database, pg_workspace, "late") == ["_load_id", "_source_file", "_ingested_at"]
    assert json.loads(postgres.query(database, "select obj_description('raw.late'::regclass)")[0][0])["delta_version"] == lake.version()
    assert postgres.query(database, "select count(*) from pg_class where relname like '_autoflux_load_%'")[0][0] == 0


@pytest.mark.parametrize("point", ["write", "publish"])
def test_a_run_killed_during_a_load_along_the_ingest_leaves_the_old_table_and_the_next_run_loads_it(
    pg_workspace, postgres, database, tmp_path, cli_process, point
):
    """Killed with every row copied but nothing committed (``write``), or with the Delta commit made and
    PostgreSQL's not (``publish``): the server drops the copy, and the next ingest loads the lake's table."""
    data = tmp_path / "big"
    data.mkdir()
    write_rows(data / "big.csv", 1_000, "old")
    ingest(pg_workspace, [data])
    write_rows(data / "big.csv", 50_000, "new")
    killed = cli_process("ingest", str(data), "-w", str(pg_workspace), env={"AUTOFLUX_FAULT": point})
    assert killed.exit_code == -signal.SIGKILL, killed.output
    assert postgres.query(database, "select count(*), max(label) from raw.big") == [(1_000, "old")]
    lake = Workspace.open(pg_workspace).lake
    assert lake.open(RAW, "big").to_pyarrow_table().column("label").unique().to_pylist() == (["new"] if point == "publish" else ["old"])
    result = ingest(pg_workspace, [data])
    assert [f.outcome for f in result.files] == (["unchanged"] if point == "publish" else ["loaded"])
    assert postgres.query(database, "select count(*), max(label) from raw.big") == [(50_000, "new")]
    assert postgres.query(database, "select count(*) from pg_class where relname like '_autoflux_load_%'")[0][0] == 0


def test_views_on_a_raw_table_keep_working_across_reloads(pg_workspace, postgres, database, example_dir, tmp_path):
    data = copy_example(example_dir, tmp_path)
    ingest(pg_workspace, [data])
    postgres.query(database, "create view public.test_ids as select id from raw.test")
    with open(data / "test.csv", "a", encoding="utf-8") as file:
        file.write("1401,41,50000.00,9000,36 months,9.99,700,3,RENT,car,West,No,2020-01-01\n")
    ingest(pg_workspace, [data])
    assert postgres.query(database, "select count(*) from public.test_ids")[0][0] == 401
    (data / "test.csv").write_text("id,other\n1,x\n", encoding="utf-8")
    with pytest.raises(EngineError, match=r"raw\.test.*columns changed.*public\.test_ids"):
        ingest(pg_workspace, [data])
    assert postgres.query(database, "select count(*) from raw.test")[0][0] == 401


def test_a_new_column_in_a_raw_table_drops_the_staging_views_and_dbt_rebuilds_them(pg_workspace, postgres, database, example_dir, tmp_path):
    data = copy_example(example_dir, tmp_path)
    autoflux.run(pg_workspace, [data])
    assert postgres.query(database, "select table_type from information_schema.tables where table_name = 'stg_train'") == [("VIEW",)]
    lines = (data / "train.csv").read_text(encoding="utf-8").splitlines()
    widened = [lines[0] + ",referral"] + [line + f",r{i % 3}" for i, line in enumerate(lines[1:])]
    (data / "train.csv").write_text("\n".join(widened) + "\n", encoding="utf-8")
    autoflux.run(pg_workspace, [data])
    columns = {
        row[0]
        for row in postgres.query(
            database, "select column_name from information_schema.columns where table_schema = 'raw' and table_name = 'train'"
        )
    }
    assert "referral" in columns
    assert postgres.query(database, "select count(*) from staging.stg_train")[0][0] == len(widened) - 1
    assert len(autoflux.load_training_data(pg_workspace).train) == len(widened) - 1


# ----------------------------------------------------------------------- types and reads


def test_types_are_mapped_faithfully_and_read_back(pg_workspace, postgres, database, pg_engine, tmp_path):
    data = tmp_path / "typed"
    data.mkdir()
    table = pa.table(
        {
            "i32": pa.array([1, None, -3], pa.int32()),
            "i64": pa.array([2**40, None, -1], pa.int64()),
            "f64": pa.array([1.5, None, float("inf")], pa.float64()),
            "amount": pa.array([decimal.Decimal("12.34"), None, decimal.Decimal("-0.01")], pa.decimal128(10, 2)),
            "flag": pa.array([True, None, False]),
            "day": pa.array([dt.date(2020, 2, 29), None, dt.date(1970, 1, 1)]),
            "at": pa.array(
                [dt.datetime(2021, 3, 4, 5, 6, 7, 891011, tzinfo=dt.UTC), None, dt.datetime(1999, 12, 31, tzinfo=dt.UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            "name": pa.array(["é \"quoted\" 'x'", None, ""]),
        }
    )
    pq.write_table(table, data / "typed.parquet")
    ingest(pg_workspace, [data])
    columns = dict(
        postgres.query(
            database,
            "select column_name, format_type(atttypid, atttypmod) from information_schema.columns c "
            "join pg_attribute a on a.attrelid = 'raw.typed'::regclass and a.attname = c.column_name "
            "where table_schema = 'raw' and table_name = 'typed'",
        )
    )
    assert columns == {
        "i32": "integer",
        "i64": "bigint",
        "f64": "double precision",
        "amount": "numeric(10,2)",
        "flag": "boolean",
        "day": "date",
        "at": "timestamp with time zone",
        "name": "text",
        "_load_id": "text",
        "_source_file": "text",
        "_ingested_at": "timestamp with time zone",
    }
    read = pg_engine(pg_workspace).read_arrow("raw", "typed")
    lake = Workspace.open(pg_workspace).lake.open(RAW, "typed").to_pyarrow_table()
    assert read.schema.metadata is None and all(not f.metadata for f in read.schema)
    assert read.schema == pa.schema([pa.field(f.name, f.type) for f in lake.schema])
    assert read.sort_by("i64").to_pylist() == lake.sort_by("i64").to_pylist()
    stored_once = "select attname from pg_attribute where attrelid = 'raw.typed'::regclass and atthasmissing order by attnum"
    assert [row[0] for row in postgres.query(database, stored_once)] == ["_load_id", "_source_file", "_ingested_at"]


def _comparable(value):
    """A value as a key that tells NaN from NaN-less floats and -0.0 from 0.0 (as bytes do)."""
    return struct.pack(">d", value) if isinstance(value, float) else value


EVERY_VALUE = {
    "i8": pa.array([-128, 127, 0, None], pa.int8()),
    "i16": pa.array([-(2**15), 2**15 - 1, 0, None], pa.int16()),
    "i32": pa.array([-(2**31), 2**31 - 1, 0, None], pa.int32()),
    "i64": pa.array([-(2**63), 2**63 - 1, 0, None], pa.int64()),
    "f32": pa.array([-0.0, float("inf"), 1.5e-45, None], pa.float32()),
    "f64": pa.array([float("nan"), -0.0, 5e-324, None], pa.float64()),
    "f64_more": pa.array([float("-inf"), 1.7976931348623157e308, 0.1 + 0.2, 1.0], pa.float64()),
    "flag": pa.array([True, False, None, True]),
    "day": pa.array([dt.date(1, 1, 1), dt.date(1969, 12, 31), dt.date(9999, 12, 31), None], pa.date32()),
    "naive": pa.array(
        [dt.datetime(1, 1, 1), dt.datetime(1999, 12, 31, 23, 59, 59, 999999), dt.datetime(2000, 1, 1), None], pa.timestamp("us")
    ),
    "at": pa.array(
        [
            dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
            dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
            None,
            dt.datetime(2262, 4, 11, tzinfo=dt.UTC),
        ],
        pa.timestamp("us", tz="UTC"),
    ),
    "text": pa.array(["", "é \"q\" \\ \t\r\n'x'", "𝄞" * 300, None]),
    "blob": pa.array([b"", b"\x00\xff\x00", None, bytes(range(256))]),
    "money": pa.array([decimal.Decimal("-12345678.90"), decimal.Decimal("0.00"), decimal.Decimal("0.01"), None], pa.decimal128(10, 2)),
    "wide": pa.array(
        [decimal.Decimal("-" + "9" * 28 + "." + "9" * 10), decimal.Decimal("1E-10"), decimal.Decimal("10000"), decimal.Decimal("-0")],
        pa.decimal128(38, 10),
    ),
}


def test_every_type_the_engine_loads_reaches_postgresql_value_for_value(pg_workspace, postgres, database, pg_engine):
    """The binary COPY sends each value as it is: extremes, NaN and -0.0, subnormals, dates and times on either
    side of 1970 and 2000, text and bytes PostgreSQL would need escaped in CSV, numerics of every sign and scale."""
    from deltalake import write_deltalake

    lake = Workspace.open(pg_workspace).lake
    rows = 70_000  # more than one batch of the load
    repeated = {name: pa.concat_arrays([values] * (rows // 4)) for name, values in EVERY_VALUE.items()}
    data = pa.table({"n": pa.array(range(rows // 4 * 4), pa.int64()), **repeated})
    write_deltalake(lake.table_uri(RAW, "every_value"), data)
    pg_engine(pg_workspace).publish_raw(["every_value"])
    read = pg_engine(pg_workspace).read_arrow("raw", "every_value").sort_by("n")
    assert read.num_rows == data.num_rows
    for name in data.column_names:
        sent = [_comparable(v) for v in data.column(name).to_pylist()]
        assert [_comparable(v) for v in read.column(name).to_pylist()] == sent, name
    assert postgres.query(database, "select text from raw.every_value where n = 2")[0][0] == "𝄞" * 300


def test_read_arrow_of_a_missing_table_and_relations_of_missing_schemas(pg_workspace, pg_engine, database):
    engine = pg_engine(pg_workspace)
    with pytest.raises(TableNotFoundError, match=rf"no table marts\.nothing in PostgreSQL database '{database}'"):
        engine.read_arrow("marts", "nothing")
    assert engine.relations(["staging", "marts"]) == []


def test_identifiers_are_always_quoted(pg_workspace, postgres, database, pg_engine, tmp_path):
    data = tmp_path / "q"
    data.mkdir()
    (data / "select.csv").write_text("order,user,group\n1,a,b\n", encoding="utf-8")
    ingest(pg_workspace, [data])
    assert postgres.query(database, 'select "order", "user", "group" from raw."select"') == [(1, "a", "b")]
    assert pg_engine(pg_workspace).read_arrow("raw", "select").column_names[:3] == ["order", "user", "group"]


def test_a_partitioned_delta_table_is_loaded_whole(pg_workspace, postgres, database, pg_engine):
    from deltalake import write_deltalake

    lake = Workspace.open(pg_workspace).lake
    data = pa.table({"id": pa.array(range(10), pa.int64()), "part": pa.array(["a", "b"] * 5)})
    write_deltalake(lake.table_uri(RAW, "parted"), data, partition_by=["part"])
    pg_engine(pg_workspace).publish_raw(["parted"])
    assert postgres.query(database, "select part, count(*), sum(id)::bigint from raw.parted group by 1 order by 1") == [
        ("a", 5, 20),
        ("b", 5, 25),
    ]


def test_a_folder_of_parts_is_one_raw_table_in_postgres_and_follows_its_files(pg_workspace, postgres, database, tmp_path):
    events = tmp_path / "data" / "events"
    events.mkdir(parents=True)
    for i in (1, 2, 3):
        (events / f"part-{i:05d}.csv").write_text(f"id,v\n{i},a{i}\n", encoding="utf-8")
    ingest(pg_workspace, [tmp_path / "data"])
    assert set(oids(postgres, database)) == {"events"}
    assert postgres.query(database, 'select id, v, _source_file from raw."events" order by id') == [
        (1, "a1", "events/part-00001.csv"),
        (2, "a2", "events/part-00002.csv"),
        (3, "a3", "events/part-00003.csv"),
    ]
    assert lineage_as_in_the_lake(postgres, database, pg_workspace, "events") == ["_ingested_at"]  # one load, three files
    (events / "part-00002.csv").unlink()
    (events / "part-00001.csv").write_text("id,v\n1,changed\n", encoding="utf-8")
    ingest(pg_workspace, [tmp_path / "data"])
    assert postgres.query(database, 'select id, v from raw."events" order by id') == [(1, "changed"), (3, "a3")]
    assert lineage_as_in_the_lake(postgres, database, pg_workspace, "events") == []  # rows of two loads


@pytest.mark.filterwarnings("ignore:no build record:autoflux.handoff.StaleDataWarning")
@pytest.mark.parametrize("amount", ["double precision", "numeric(12, 4)"])  # streamed; read whole (a constrained numeric)
def test_the_hand_off_reads_the_mart_in_batches_and_writes_the_manifest_training_data_writes(
    pg_workspace, postgres, database, pg_engine, configure, monkeypatch, amount
):
    from autoflux.content_hash import ContentHash
    from autoflux.engines import postgres as postgres_engine
    from autoflux.handoff import hand_off
    from autoflux.workspace import Workspace

    configure(pg_workspace, {"ml": {"target": "label", "id": "id"}})
    postgres.query(database, "create schema marts")
    postgres.query(
        database,
        f"create table marts.ml_training_set as select i as id, (i / 7.0)::{amount} as amount, 'n' || (i % 5) as name,"
        " case when i % 3 = 0 then null else i % 2 end as label, case when i % 3 = 0 then 'test' else 'train' end as split"
        " from generate_series(1, 30000) i",
    )
    monkeypatch.setattr(postgres_engine, "STREAM_BYTES", 1 << 14)
    parts, plain = [], []
    fold, make_plain = ContentHash.add, postgres_engine._plain
    monkeypatch.setattr(ContentHash, "add", lambda self, part: (parts.append(part.num_rows), fold(self, part)))
    monkeypatch.setattr(postgres_engine, "_plain", lambda table: (plain.append(table.num_rows), make_plain(table))[1])
    engine = pg_engine(pg_workspace)
    streamed, _ = hand_off(Workspace.open(pg_workspace), engine)
    monkeypatch.undo()
    assert len(parts) > 4 and max(parts) < 20000  # train and test parts of many batches
    # typed batch by batch as they came, but a constrained numeric's column whole (a NaN would make it a double)
    assert (30000 in plain) == (amount != "double precision")
    assert streamed["rows"] == {"train": 20000, "test": 10000}
    in_memory = autoflux.load_training_data(pg_workspace, format="arrow")
    assert streamed["frames"] == in_memory.manifest["frames"]
    assert in_memory.train.schema.field("amount").type == (pa.float64() if amount == "double precision" else pa.decimal128(12, 4))
