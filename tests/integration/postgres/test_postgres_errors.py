"""What a user sees when PostgreSQL cannot be used: one line, saying what and where, never the password.

Trust auth on the test server accepts any password, so a wrong password is provoked against a
stand-in server (conftest ``password_refuser``) that asks for one and refuses it; the real server
is used for the other failures, an unknown role among them.
"""

from __future__ import annotations

import pytest

import autoflux
from autoflux.exceptions import EngineError, TableNameClashError
from autoflux.workspace import Workspace


def workspace_with(tmp_path, configure, **engine) -> Workspace:
    root = autoflux.init(tmp_path / "ws")
    configure(root, {"engine": {"type": "postgres", **engine}})
    return Workspace.open(root)


def engine_error(workspace: Workspace) -> EngineError:
    from autoflux.engines import create_engine

    with pytest.raises(EngineError) as raised:
        create_engine(workspace).relations(["marts"])
    return raised.value


def test_server_down_names_host_and_port(tmp_path, configure, cli, secret, closed_port):
    settings = {"host": "127.0.0.1", "port": closed_port, "user": "postgres", "database": "test", "password": secret}
    workspace = workspace_with(tmp_path, configure, **settings)
    error = engine_error(workspace)
    assert f"cannot reach PostgreSQL at 127.0.0.1:{closed_port}" in str(error) and "refused" in str(error)
    assert error.retryable and secret not in str(error) and "\n" not in str(error)
    result = cli("tables", "-w", str(workspace.root))
    assert result.exit_code == 1 and len(result.error_lines()) == 1
    assert f"127.0.0.1:{closed_port}" in result.output and secret not in result.output


def test_database_missing_says_which(tmp_path, configure, postgres, secret):
    workspace = workspace_with(tmp_path, configure, **postgres.engine_settings("autoflux_no_such_db", password=secret))
    error = engine_error(workspace)
    assert "database 'autoflux_no_such_db' does not exist on PostgreSQL at 127.0.0.1:5432" in str(error)
    assert "createdb autoflux_no_such_db" in str(error) and secret not in str(error) and "\n" not in str(error)


def test_an_unknown_role_is_an_authentication_failure(tmp_path, configure, postgres, database, secret):
    settings = postgres.engine_settings(database, user="autoflux_nobody", password=secret)
    error = engine_error(workspace_with(tmp_path, configure, **settings))
    assert "refused user 'autoflux_nobody'" in str(error) and "authentication failed" in str(error)
    assert 'role "autoflux_nobody" does not exist' in str(error)
    assert secret not in str(error) and "\n" not in str(error)


def test_a_wrong_password_is_an_authentication_failure_that_never_echoes_it(tmp_path, configure, password_refuser, secret):
    settings = {"host": "127.0.0.1", "port": password_refuser.port, "user": "postgres", "database": "test", "password": secret}
    error = engine_error(workspace_with(tmp_path, configure, **settings))
    assert password_refuser.received and set(password_refuser.received) == {secret}  # the password was really sent
    assert f"PostgreSQL at 127.0.0.1:{password_refuser.port} refused user 'postgres'" in str(error)
    assert "password authentication failed" in str(error)
    assert secret not in str(error) and "\n" not in str(error)


def test_a_password_in_the_url_is_never_echoed_either(tmp_path, configure, password_refuser, secret, cli):
    url = f"postgresql://postgres:{secret}@127.0.0.1:{password_refuser.port}/test"
    workspace = workspace_with(tmp_path, configure, url=url)
    error = engine_error(workspace)
    assert "authentication failed" in str(error) and secret not in str(error)
    result = cli("tables", "-w", str(workspace.root))
    assert result.exit_code == 1 and len(result.error_lines()) == 1
    assert "authentication failed" in result.output and secret not in result.output


def test_raw_table_names_that_postgresql_would_cut_to_one_are_a_clear_error(tmp_path, configure, postgres, database):
    workspace = workspace_with(tmp_path, configure, **postgres.engine_settings(database))
    data = tmp_path / "data"
    data.mkdir()
    long = "measurements_" + "x" * 55
    for suffix in ("north", "south"):
        (data / f"{long}_{suffix}.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    from autoflux.pipeline import Pipeline

    with pytest.raises(TableNameClashError) as raised:
        Pipeline(workspace).ingest([str(data)])
    message = str(raised.value)
    assert f"'{long}_north'" in message and f"'{long}_south'" in message and "63 bytes" in message
    assert postgres.query(database, "select count(*) from pg_tables where schemaname = 'raw'")[0][0] == 0
