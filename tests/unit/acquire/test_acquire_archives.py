"""Safe unpacking: every unsafe archive is refused and leaves nothing behind."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
from pathlib import Path

import pytest

from autoflux.acquire import acquire
from autoflux.acquire.archives import archive_kind, extract, unpack_all
from autoflux.exceptions import AcquireError, UnsafeArchiveError

LIMIT = 1 << 20


def make_zip(path: Path, entries: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compress_type=compression)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tf:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                tf.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                tf.addfile(info, io.BytesIO(member[1]))
    return path


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def sandbox(tmp_path):
    """A folder holding the archive and a target, and a way to check nothing else appeared."""
    (tmp_path / "in").mkdir()
    (tmp_path / "outside").mkdir()
    return tmp_path


def assert_refused(sandbox: Path, archive: Path, match: str) -> UnsafeArchiveError:
    before = snapshot(sandbox)
    with pytest.raises(UnsafeArchiveError, match=match) as caught:
        extract(archive, sandbox / "target", max_bytes=LIMIT)
    assert snapshot(sandbox) == before
    assert str(archive) in str(caught.value) and "\n" not in str(caught.value)
    return caught.value


def test_zip_entry_with_dotdot_is_refused(sandbox):
    archive = make_zip(sandbox / "in/evil.zip", {"ok.csv": b"a\n1\n", "../outside/evil.csv": b"pwned"})
    assert_refused(sandbox, archive, r"entry '\.\./outside/evil\.csv' escapes the target folder")


def test_zip_entry_with_nested_dotdot_is_refused(sandbox):
    archive = make_zip(sandbox / "in/evil.zip", {"a/b/../../../evil.csv": b"pwned"})
    assert_refused(sandbox, archive, "escapes the target folder")


def test_zip_entry_with_absolute_path_is_refused(sandbox):
    archive = make_zip(sandbox / "in/evil.zip", {"ok.csv": b"1", str(sandbox / "outside/evil.csv"): b"pwned"})
    assert_refused(sandbox, archive, "has an absolute path")


def test_zip_entry_with_windows_drive_is_refused(sandbox):
    archive = make_zip(sandbox / "in/evil.zip", {"C:/evil.csv": b"pwned"})
    assert_refused(sandbox, archive, "has an absolute path")


def test_zip_symlink_pointing_outside_is_refused(sandbox):
    archive = sandbox / "in/evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "../outside")
    assert_refused(sandbox, archive, r"entry 'link' is a link to '\.\./outside'")


def test_tar_entry_with_dotdot_is_refused(sandbox):
    archive = make_tar(sandbox / "in/evil.tar", [("ok.csv", b"1"), ("../outside/evil.csv", b"pwned")])
    assert_refused(sandbox, archive, "escapes the target folder")


def test_tar_absolute_path_is_refused(sandbox):
    archive = make_tar(sandbox / "in/evil.tar.gz", [("/tmp/evil.csv", b"pwned")], "w:gz")
    assert_refused(sandbox, archive, "has an absolute path")


def test_tar_symlink_out_of_the_target_is_refused(sandbox):
    archive = make_tar(sandbox / "in/evil.tar", [link("escape", "../outside"), ("escape/evil.csv", b"pwned")])
    assert_refused(sandbox, archive, r"entry 'escape' is a link to '\.\./outside', outside the target folder")
    assert list((sandbox / "outside").iterdir()) == []


def test_tar_absolute_symlink_is_refused(sandbox):
    archive = make_tar(sandbox / "in/evil.tar", [link("passwd", "/etc/passwd")])
    assert_refused(sandbox, archive, "outside the target folder")


def test_tar_symlink_chain_resolving_outside_is_refused(sandbox):
    archive = make_tar(sandbox / "in/evil.tar", [link("here", "."), link("up", "here/..")])
    assert_refused(sandbox, archive, "resolves outside the target folder")


def test_tar_hardlink_out_of_the_target_is_refused(sandbox):
    (sandbox / "outside/secret.txt").write_text("secret")
    archive = make_tar(sandbox / "in/evil.tar", [link("copy", "../outside/secret.txt", tarfile.LNKTYPE)])
    assert_refused(sandbox, archive, "escapes the target folder")


def test_tar_device_file_is_refused(sandbox):
    device = tarfile.TarInfo("null")
    device.type = tarfile.CHRTYPE
    archive = make_tar(sandbox / "in/evil.tar", [device])
    assert_refused(sandbox, archive, "special file")


def test_tar_links_inside_the_target_are_kept(sandbox):
    archive = make_tar(
        sandbox / "in/ok.tar",
        [
            ("data/train.csv", b"a\n1\n"),
            link("latest.csv", "data/train.csv"),
            link("copy.csv", "data/train.csv", tarfile.LNKTYPE),
        ],
    )
    extract(archive, sandbox / "target", max_bytes=LIMIT)
    assert (sandbox / "target/latest.csv").is_symlink()
    assert (sandbox / "target/latest.csv").read_bytes() == b"a\n1\n"
    assert (sandbox / "target/copy.csv").read_bytes() == b"a\n1\n"


def test_zip_bomb_is_refused_by_its_declared_size(sandbox):
    archive = make_zip(sandbox / "in/bomb.zip", {"small.csv": b"1", "zeros.csv": b"\0" * (2 * LIMIT)})
    assert archive.stat().st_size < 20_000
    error = assert_refused(sandbox, archive, r"declares more than the limit of 1\.0 MiB at entry 'zeros\.csv'")
    assert "max_archive_bytes" in str(error)


def test_tar_bomb_is_refused(sandbox):
    archive = make_tar(sandbox / "in/bomb.tar.xz", [("zeros.csv", b"\0" * (2 * LIMIT))], "w:xz")
    assert_refused(sandbox, archive, "more than the limit")


def test_single_bz2_is_refused_by_the_bytes_actually_written(sandbox):
    archive = sandbox / "in/zeros.csv.bz2"
    archive.write_bytes(bz2.compress(b"\0" * (3 * LIMIT)))
    assert_refused(sandbox, archive, r"expands to more than the limit of 1\.0 MiB at entry 'zeros\.csv'")


def test_zip_with_lying_sizes_is_refused_as_corrupt(sandbox):
    data = b"\0" * (2 * LIMIT)
    archive = make_zip(sandbox / "in/liar.zip", {"zeros.csv": data})
    raw = bytearray(archive.read_bytes())
    size = len(data).to_bytes(4, "little")
    assert raw.count(size) == 2
    archive.write_bytes(bytes(raw.replace(size, (100).to_bytes(4, "little"))))
    before = snapshot(sandbox)
    with pytest.raises(AcquireError, match="corrupt or unreadable"):
        extract(archive, sandbox / "target", max_bytes=LIMIT)
    assert snapshot(sandbox) == before


def test_limit_is_shared_by_nested_archives(tmp_path):
    inner = make_zip(tmp_path / "inner.zip", {"zeros.csv": b"\0" * (LIMIT // 2 + 10)})
    folder = tmp_path / "data"
    folder.mkdir()
    make_zip(folder / "outer.zip", {"inner.zip": inner.read_bytes(), "more.csv": b"\0" * (LIMIT // 2)})
    with pytest.raises(UnsafeArchiveError, match=r"^src \(inner\.zip\): archive declares more than the limit"):
        unpack_all(folder, max_bytes=LIMIT, label="src")
    assert not (folder / "zeros.csv").exists()


def test_good_archives_of_every_kind_are_unpacked(tmp_path):
    payload = b"id,value\n1,2\n"
    make_zip(tmp_path / "a.zip", {"a/train.csv": payload, "__MACOSX/a/._train.csv": b"junk"})
    make_tar(tmp_path / "b.tar", [("b.csv", payload)])
    make_tar(tmp_path / "c.tar.gz", [("c.csv", payload)], "w:gz")
    make_tar(tmp_path / "d.tgz", [("d.csv", payload)], "w:gz")
    make_tar(tmp_path / "e.tar.bz2", [("e.csv", payload)], "w:bz2")
    make_tar(tmp_path / "f.tar.xz", [("f.csv", payload)], "w:xz")
    (tmp_path / "g.csv.bz2").write_bytes(bz2.compress(payload))
    (tmp_path / "h.csv.xz").write_bytes(lzma.compress(payload))
    target = tmp_path / "target"
    for archive in sorted(tmp_path.iterdir()):
        if archive.is_file():
            extract(archive, target, max_bytes=LIMIT)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "a/train.csv",
        "b.csv",
        "c.csv",
        "d.csv",
        "e.csv",
        "f.csv",
        "g.csv",
        "h.csv",
    ]
    assert all(p.read_bytes() == payload for p in target.rglob("*.csv"))


def test_unpack_all_keeps_gzip_and_unwraps_nested_zips(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.csv.gz").write_bytes(gzip.compress(b"a\n1\n"))
    inner = make_zip(tmp_path / "test.csv.zip", {"test.csv": b"b\n2\n"})
    make_zip(folder / "bundle.zip", {"test.csv.zip": inner.read_bytes(), "notes.md": b"hi"})
    unpack_all(folder, max_bytes=LIMIT, label="src")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.md", "test.csv", "train.csv.gz"]


def test_entry_clashing_with_an_existing_file_is_refused(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "train.csv").write_bytes(b"mine")
    archive = make_zip(tmp_path / "a.zip", {"train.csv": b"theirs"})
    with pytest.raises(AcquireError, match="would overwrite"):
        extract(archive, target, max_bytes=LIMIT)
    assert (target / "train.csv").read_bytes() == b"mine"
    assert snapshot(target) == {"train.csv"}


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.zip", b"PK\x03\x04 not really a zip"),
        ("broken.tar.gz", b"\x1f\x8b not really gzip"),
        ("broken.csv.bz2", b"BZh9 not really bzip2"),
        ("broken.csv.xz", b"\xfd7zXZ not really xz"),
    ],
)
def test_corrupt_archive_is_an_acquire_error(tmp_path, name, data):
    archive = tmp_path / name
    archive.write_bytes(data)
    with pytest.raises(AcquireError, match="corrupt or unreadable"):
        extract(archive, tmp_path / "target", max_bytes=LIMIT)
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.zip", "zip"),
        ("a.ZIP", "zip"),
        ("a.tar", "tar"),
        ("a.tar.gz", "tar"),
        ("a.tgz", "tar"),
        ("a.tar.bz2", "tar"),
        ("a.tar.xz", "tar"),
        ("a.csv.bz2", "bz2"),
        ("a.csv.xz", "xz"),
        ("a.csv.gz", None),
        ("a.csv", None),
        ("a.xlsx", None),
        ("a.parquet", None),
    ],
)
def test_archive_kind_by_name(name, kind):
    assert archive_kind(Path(name)) == kind


def test_unsafe_local_archive_leaves_nothing_in_the_cache(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"ok.csv": b"1", "../evil.csv": b"pwned"})
    cache = tmp_path / "cache"
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        acquire(str(archive), cache_dir=cache)
    assert [p for p in cache.rglob("*")] == []
    assert not (tmp_path / "evil.csv").exists()
