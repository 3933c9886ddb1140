"""Configuration: autoflux.yml, AUTOFLUX__SECTION__KEY overrides, and errors that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoflux.config import Config, load_config
from autoflux.exceptions import ConfigError
from autoflux.workspace import Workspace


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "autoflux.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path):
    config = load_config(tmp_path / "missing.yml", {})
    assert config.engine.type == "duckdb"
    assert config.lake == "lake"
    assert config.ml.table == "ml_training_set"
    assert config.ml.schema_ == "marts"
    assert config.ingest.csv.block_size >= 1 << 16


def test_the_template_written_by_init_is_valid_and_matches_the_defaults(workspace):
    config = load_config(workspace / "autoflux.yml", {})
    assert config == Config()


def test_a_file_sets_values(tmp_path):
    path = write(tmp_path, "lake: /data/lake\nml:\n  target: y\n  schema: gold\ningest:\n  exclude: ['*.md']\n")
    config = load_config(path, {})
    assert (config.lake, config.ml.target, config.ml.schema_, config.ingest.exclude) == ("/data/lake", "y", "gold", ["*.md"])


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, "engine:\n  type: duckdb\n  path: from_file.duckdb\nml:\n  target: from_file\n")
    environ = {"AUTOFLUX__ENGINE__TYPE": "duckdb", "AUTOFLUX__ENGINE__PATH": "env.duckdb", "AUTOFLUX__ML__TARGET": "env"}
    config = load_config(path, environ)
    assert config.engine.type == "duckdb"
    assert config.engine.path == "env.duckdb"
    assert config.ml.target == "env"


def test_environment_values_are_parsed_as_yaml_scalars(tmp_path):
    config = load_config(
        write(tmp_path, ""),
        {
            "AUTOFLUX__INGEST__CSV__BLOCK_SIZE": "65536",
            "AUTOFLUX__SOURCES": "[data, more]",
            "AUTOFLUX__DBT__TEST": "false",
            "AUTOFLUX__ML__ID": "",
        },
    )
    assert config.ingest.csv.block_size == 65536
    assert isinstance(config.ingest.csv.block_size, int)
    assert config.sources == ["data", "more"]
    assert config.dbt.test is False
    assert config.ml.id is None


def test_environment_keys_are_case_insensitive_and_other_variables_ignored(tmp_path):
    config = load_config(write(tmp_path, ""), {"AUTOFLUX__ml__Target": "t", "AUTOFLUXX__ML__ID": "no", "PATH": "/bin"})
    assert config.ml.target == "t"
    assert config.ml.id is None


def test_environment_reaches_the_workspace(workspace, monkeypatch):
    monkeypatch.setenv("AUTOFLUX__INGEST__CSV__BLOCK_SIZE", "131072")
    monkeypatch.setenv("AUTOFLUX__ENGINE__TYPE", "duckdb")
    assert Workspace.open(workspace).config.ingest.csv.block_size == 131072


def test_a_section_with_every_key_commented_out_means_defaults(tmp_path):
    path = write(tmp_path, "ml:\n  # target: y\ningest:\n  csv:\n")
    config = load_config(path, {"AUTOFLUX__ML__TARGET": "y"})
    assert config.ml.target == "y"
    assert config.ingest.csv.block_size == Config().ingest.csv.block_size


def test_invalid_engine_type_names_key_value_and_allowed_values(tmp_path):
    path = write(tmp_path, "engine:\n  type: sparky\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    message = str(caught.value)
    assert str(path) in message
    assert "engine.type" in message
    assert "'sparky'" in message
    assert "'duckdb'" in message


def test_invalid_engine_type_from_the_environment_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, ""), {"AUTOFLUX__ENGINE__TYPE": "oracle"})
    message = str(caught.value)
    assert "AUTOFLUX__ENGINE__TYPE" in message
    assert "engine.type" in message and "'oracle'" in message and "duckdb" in message


def test_an_unknown_key_is_an_error_naming_it(tmp_path):
    path = write(tmp_path, "ingest:\n  csv:\n    delimeter: ';'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'ingest\.csv\.delimeter'") as caught:
        load_config(path, {})
    assert caught.value.path == str(path)


def test_an_unknown_engine_key_is_an_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'engine\.pathh'"):
        load_config(write(tmp_path, "engine:\n  type: duckdb\n  pathh: x.duckdb\n"), {})


def test_an_unknown_section_from_the_environment_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'engin'") as caught:
        load_config(write(tmp_path, ""), {"AUTOFLUX__ENGIN__TYPE": "duckdb"})
    assert "AUTOFLUX__ENGIN__TYPE" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key", "value", "allowed"),
    [
        ("ml:\n  format: numpy\n", "ml.format", "'numpy'", "'pandas', 'polars', 'arrow' or 'spark'"),
        ("ingest:\n  csv:\n    block_size: 1024\n", "ingest.csv.block_size", "1024", "65536"),
        ("dbt:\n  threads: 0\n", "dbt.threads", "0", "1"),
    ],
)
def test_a_bad_value_names_key_value_and_what_is_allowed(tmp_path, text, key, value, allowed):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), {})
    message = str(caught.value)
    assert f"{key} = {value}" in message
    assert allowed in message


def test_a_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, ""), {"AUTOFLUX__INGEST__CSV__BLOCK_SIZE": "big"})
    message = str(caught.value)
    assert "AUTOFLUX__INGEST__CSV__BLOCK_SIZE" in message and "'big'" in message and "integer" in message


def test_bad_yaml_is_an_error_with_its_line(tmp_path):
    path = write(tmp_path, "engine:\n  type: duckdb\nml:\n  target: [unclosed\n  id: x\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    error = caught.value
    assert error.path == str(path)
    assert error.line in (4, 5)
    assert f"line {error.line}" in str(error)
    assert "YAML" in str(error)


def test_a_top_level_that_is_not_a_mapping_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- just\n- a list\n"), {})


def test_an_environment_key_inside_a_value_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="AUTOFLUX__LAKE__PATH"):
        load_config(write(tmp_path, "lake: somewhere\n"), {"AUTOFLUX__LAKE__PATH": "x"})
