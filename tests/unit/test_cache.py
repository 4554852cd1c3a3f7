"""The cache folder's files (runner/cache.py): the user's own, whole, bounded; any failure costs time, never a run."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runner import cache
from runner.cache import PrivateFolder

NOBODY = 65534


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_written_is_read_back_and_only_its_owner_can_read_it(tmp_path: Path) -> None:
    folder = PrivateFolder(tmp_path / "cache" / "part")
    assert folder.write("entry", b"data")
    assert folder.read("entry", 4) == b"data"
    assert mode(tmp_path / "cache" / "part") == 0o700 and mode(tmp_path / "cache" / "part" / "entry") == 0o600
    assert [p.name for p in (tmp_path / "cache" / "part").iterdir()] == ["entry"]  # no temporary file left


def test_a_file_is_replaced_whole(tmp_path: Path) -> None:
    folder = PrivateFolder(tmp_path)
    assert folder.write("entry", b"a longer first version")
    assert folder.write("entry", b"second")
    assert folder.read("entry", 100) == b"second"


def test_a_missing_file_or_folder_is_no_entry(tmp_path: Path) -> None:
    assert PrivateFolder(tmp_path).read("missing", 10) is None
    assert PrivateFolder(tmp_path / "nowhere").read("missing", 10) is None
    assert PrivateFolder(None).read("missing", 10) is None and not PrivateFolder(None).write("x", b"")


def test_a_file_larger_than_the_limit_is_not_read(tmp_path: Path) -> None:
    (tmp_path / "entry").write_bytes(b"x" * 11)
    os.chmod(tmp_path / "entry", 0o600)
    assert PrivateFolder(tmp_path).read("entry", 10) is None
    assert PrivateFolder(tmp_path).read("entry", 11) == b"x" * 11


@pytest.mark.parametrize("bits", [0o020, 0o002])
def test_a_folder_others_can_write_to_is_not_read_until_made_private_again(tmp_path: Path, bits: int) -> None:
    folder = PrivateFolder(tmp_path / "shared")
    assert folder.write("entry", b"data")
    os.chmod(tmp_path / "shared", 0o700 | bits)
    assert folder.read("entry", 10) is None
    assert folder.write("other", b"data")  # the user's own folder: closed to others first
    assert mode(tmp_path / "shared") == 0o700 and folder.read("other", 10) == b"data"


@pytest.mark.parametrize("bits", [0o620, 0o602])
def test_a_file_others_can_write_to_is_not_read(tmp_path: Path, bits: int) -> None:
    folder = PrivateFolder(tmp_path)
    assert folder.write("entry", b"data")
    os.chmod(tmp_path / "entry", bits)
    assert folder.read("entry", 10) is None


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    real = PrivateFolder(tmp_path / "real")
    assert real.write("entry", b"data")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert PrivateFolder(tmp_path / "link").read("entry", 10) is None
    (tmp_path / "real" / "alias").symlink_to(tmp_path / "real" / "entry")
    assert real.read("alias", 10) is None


def test_a_fifo_is_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "entry", 0o600)
    assert PrivateFolder(tmp_path).read("entry", 10) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_folder_or_file_is_not_used(tmp_path: Path) -> None:
    folder = PrivateFolder(tmp_path / "theirs")
    assert folder.write("entry", b"data")
    os.chown(tmp_path / "theirs" / "entry", NOBODY, NOBODY)
    assert folder.read("entry", 10) is None
    os.chown(tmp_path / "theirs" / "entry", 0, 0)
    os.chown(tmp_path / "theirs", NOBODY, NOBODY)
    assert folder.read("entry", 10) is None and not folder.write("entry", b"new")


def test_a_folder_that_cannot_be_made_is_no_cache(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    folder = PrivateFolder(tmp_path / "file" / "cache")
    assert not folder.write("entry", b"data")
    assert folder.read("entry", 10) is None


def test_past_its_bound_a_folder_keeps_the_newest_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 8)
    folder = PrivateFolder(tmp_path)
    for n in range(8):
        assert folder.write(f"entry{n}", b"data")
        os.utime(tmp_path / f"entry{n}", ns=(n * 10**9, n * 10**9))  # written n seconds after the epoch
    assert len(list(tmp_path.iterdir())) == 8  # at the bound: nothing removed
    assert folder.write("newest", b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["entry3", "entry4", "entry5", "entry6", "entry7", "newest"]
    assert folder.read("newest", 10) == b"data"
