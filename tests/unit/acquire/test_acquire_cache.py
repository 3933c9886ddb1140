"""The cache: complete only when published, atomic, and clean after a failure."""

from __future__ import annotations

import json

import pytest

from autoflux.acquire import cache


def build(slot, files: dict[str, bytes], *, version: str = "") -> cache.Entry:
    with slot.stage() as tmp:
        for name, data in files.items():
            (tmp / "data" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / "data" / name).write_bytes(data)
        return slot.publish(tmp, version=version, etag='"abc"')


def test_published_entry_is_complete_with_its_marker(tmp_path):
    slot = cache.slot(tmp_path, "https://example.org/data/train.csv?token=secret", kind="http")
    entry = build(slot, {"train.csv": b"a\n1\n", "sub/test.csv": b"b\n"})
    assert slot.complete() == entry
    assert (entry.data / "train.csv").read_bytes() == b"a\n1\n"
    marker = json.loads((entry.root / cache.MARKER).read_text())
    assert marker["files"] == {"sub/test.csv": 2, "train.csv": 4}
    assert marker["etag"] == '"abc"'
    assert slot.root.parent == tmp_path / "http"
    assert "secret" not in slot.root.name and slot.root.name.startswith("example.org-data-train.csv-")


def test_a_folder_without_marker_is_not_complete(tmp_path):
    slot = cache.slot(tmp_path, "src", kind="http")
    (slot.entry_dir() / "data").mkdir(parents=True)
    (slot.entry_dir() / "data" / "train.csv").write_bytes(b"half")
    assert slot.complete() is None


def test_a_damaged_entry_is_not_complete(tmp_path):
    slot = cache.slot(tmp_path, "src", kind="http")
    entry = build(slot, {"train.csv": b"a\n1\n", "test.csv": b"b\n"})
    (entry.data / "test.csv").unlink()
    assert slot.complete() is None
    entry = build(slot, {"train.csv": b"a\n1\n"})
    (entry.data / "train.csv").write_bytes(b"a\n")
    assert slot.complete() is None
    entry = build(slot, {"train.csv": b"a\n1\n"})
    (entry.root / cache.MARKER).write_text("{not json")
    assert slot.complete() is None


def test_marker_of_another_source_or_version_does_not_count(tmp_path):
    slot = cache.slot(tmp_path, "src", kind="http")
    build(slot, {"train.csv": b"1"}, version="v1")
    assert slot.complete("v1") is not None
    assert slot.complete("v2") is None
    assert cache.Slot(slot.root, "other").complete("v1") is None


def test_publishing_a_new_version_replaces_the_old_one(tmp_path):
    slot = cache.slot(tmp_path, "src", kind="kaggle")
    old = build(slot, {"train.csv": b"1"}, version="v1")
    new = build(slot, {"train.csv": b"2"}, version="v2")
    assert not old.root.exists()
    assert slot.complete("v1") is None
    assert (new.data / "train.csv").read_bytes() == b"2"
    again = build(slot, {"train.csv": b"3"}, version="v2")
    assert (again.data / "train.csv").read_bytes() == b"3"
    assert sorted(p.name for p in slot.root.iterdir()) == [new.root.name]


def test_a_failed_build_leaves_nothing_and_keeps_the_previous_version(tmp_path):
    slot = cache.slot(tmp_path, "src", kind="http")
    with pytest.raises(RuntimeError), slot.stage() as tmp:
        (tmp / "data" / "train.csv").write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert list(tmp_path.rglob("*")) == []
    entry = build(slot, {"train.csv": b"1"})
    with pytest.raises(RuntimeError), slot.stage() as tmp:
        (tmp / "data" / "train.csv").write_bytes(b"2")
        raise RuntimeError("interrupted")
    assert slot.complete() == entry
    assert sorted(p.name for p in slot.root.iterdir()) == ["current"]


def test_file_sha256(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert cache.file_sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
