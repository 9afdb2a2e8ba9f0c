"""The local archive store keeps every object inside its directory.

Object names come from the sweep (``<category>/<yyyy>/<mm>/<dd>/<run>/<batch>.jsonl.gz``), but
the store must not trust them: names that climb out with ``..``, absolute paths, symlinks
planted in the directory that point elsewhere and NUL bytes are refused, and nothing is
written, read or deleted outside the directory.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import uuid
from pathlib import Path

import pytest

from cdlm.retention.archive import LocalArchiveStore

NORMAL = "events/2026/01/01/0b8e7a52-43f1-4d7e-9d0c-3c2bb1a8f001/000000.jsonl.gz"
DATA = b"\x1f\x8bsealed archive bytes"
ESCAPE = os.path.join(tempfile.gettempdir(), f"cdlm-archive-escape-{uuid.uuid4().hex}.jsonl.gz")
NUL_REFUSED = "null byte|stay inside the archive directory"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    return tmp_path


@pytest.fixture
def store(base: Path) -> LocalArchiveStore:
    return LocalArchiveStore(base / "archive")


def files_under(path: Path) -> set[str]:
    """Every entry below ``path`` (relative names), symlinks included, not followed."""
    found: set[str] = set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            found.add(str(Path(root, name).relative_to(path)))
    return found


def exists(path: str | Path) -> bool:
    """Whether anything (a dangling symlink included) is at ``path``."""
    return os.path.lexists(path)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


async def test_a_normal_name_is_written_read_and_deleted_inside_the_directory(
    store: LocalArchiveStore, base: Path
) -> None:
    await store.put(NORMAL, DATA)
    written = base / "archive" / NORMAL
    assert written.read_bytes() == DATA
    assert mode(written) == 0o600
    assert not written.with_name(written.name + ".partial").exists()
    assert await store.get(NORMAL) == DATA
    await store.put(NORMAL, b"again")  # a retried batch overwrites its object
    assert await store.get(NORMAL) == b"again"
    await store.delete(NORMAL)
    assert not written.exists()
    await store.delete(NORMAL)  # deleting twice is fine
    assert files_under(base / "outside") == set()


TRAVERSALS = [
    "../escaped.jsonl.gz",
    "../outside/escaped.jsonl.gz",
    "events/../../outside/escaped.jsonl.gz",
    "events/2026/../../../outside/escaped.jsonl.gz",
    "../archive-sibling/escaped.jsonl.gz",  # a sibling sharing the directory's name as prefix
    "..",
    ".",
    "",
    "events/..",
]


@pytest.mark.parametrize("key", TRAVERSALS)
async def test_names_that_climb_out_are_refused_and_write_nothing(
    store: LocalArchiveStore, base: Path, key: str
) -> None:
    with pytest.raises(ValueError, match="stay inside the archive directory"):
        await store.put(key, DATA)
    assert files_under(base) <= {"outside", "archive"}
    assert files_under(base / "outside") == set()


async def test_absolute_names_are_refused(store: LocalArchiveStore, base: Path) -> None:
    target = base / "outside" / "absolute.jsonl.gz"
    for key in [str(target), ESCAPE, "//" + str(target)]:
        with pytest.raises(ValueError, match="stay inside the archive directory"):
            await store.put(key, DATA)
    assert not target.exists()
    assert not exists(ESCAPE)


async def test_an_absolute_name_inside_the_directory_still_lands_inside(
    store: LocalArchiveStore, base: Path
) -> None:
    inside = base / "archive" / "events" / "x.jsonl.gz"
    await store.put(str(inside), DATA)
    assert inside.read_bytes() == DATA


async def test_reads_and_deletes_outside_the_directory_are_refused(
    store: LocalArchiveStore, base: Path
) -> None:
    victim = base / "outside" / "victim.txt"
    victim.write_bytes(b"not the archive's")
    for key in ["../outside/victim.txt", str(victim)]:
        with pytest.raises(ValueError, match="stay inside the archive directory"):
            await store.get(key)
        with pytest.raises(ValueError, match="stay inside the archive directory"):
            await store.delete(key)
    assert victim.read_bytes() == b"not the archive's"


async def test_a_symlinked_folder_pointing_outside_is_refused(
    store: LocalArchiveStore, base: Path
) -> None:
    (base / "archive").mkdir()
    (base / "archive" / "events").symlink_to(base / "outside", target_is_directory=True)
    with pytest.raises(ValueError, match="stay inside the archive directory"):
        await store.put(NORMAL, DATA)
    assert files_under(base / "outside") == set()


async def test_a_symlinked_object_pointing_outside_is_neither_written_read_nor_deleted(
    store: LocalArchiveStore, base: Path
) -> None:
    victim = base / "outside" / "victim.txt"
    victim.write_bytes(b"not the archive's")
    (base / "archive").mkdir()
    (base / "archive" / "planted.jsonl.gz").symlink_to(victim)
    with pytest.raises(ValueError, match="stay inside the archive directory"):
        await store.put("planted.jsonl.gz", DATA)
    with pytest.raises(ValueError, match="stay inside the archive directory"):
        await store.get("planted.jsonl.gz")
    with pytest.raises(ValueError, match="stay inside the archive directory"):
        await store.delete("planted.jsonl.gz")
    assert victim.read_bytes() == b"not the archive's"
    assert (base / "archive" / "planted.jsonl.gz").is_symlink()


async def test_a_dangling_symlink_pointing_outside_is_not_followed(
    store: LocalArchiveStore, base: Path
) -> None:
    target = base / "outside" / "created-through-link.jsonl.gz"
    (base / "archive").mkdir()
    (base / "archive" / "dangling.jsonl.gz").symlink_to(target)
    with pytest.raises(ValueError, match="stay inside the archive directory"):
        await store.put("dangling.jsonl.gz", DATA)
    assert not target.exists()


async def test_a_planted_partial_file_symlink_does_not_redirect_the_write(
    store: LocalArchiveStore, base: Path
) -> None:
    victim = base / "outside" / "victim.txt"
    victim.write_bytes(b"not the archive's")
    (base / "archive").mkdir()
    (base / "archive" / "object.jsonl.gz.partial").symlink_to(victim)
    with contextlib.suppress(OSError, ValueError):  # refusing is as good as writing inside
        await store.put("object.jsonl.gz", DATA)
    assert victim.read_bytes() == b"not the archive's"


async def test_a_planted_partial_symlink_to_a_missing_file_creates_nothing_outside(
    store: LocalArchiveStore, base: Path
) -> None:
    target = base / "outside" / "created-through-partial.jsonl.gz"
    (base / "archive").mkdir()
    (base / "archive" / "object.jsonl.gz.partial").symlink_to(target)
    with contextlib.suppress(OSError, ValueError):
        await store.put("object.jsonl.gz", DATA)
    assert not exists(target)
    assert files_under(base / "outside") == set()


async def test_a_partial_file_left_by_an_interrupted_write_is_replaced(
    store: LocalArchiveStore, base: Path
) -> None:
    (base / "archive").mkdir()
    leftover = base / "archive" / "object.jsonl.gz.partial"
    leftover.write_bytes(b"half an object from before a crash, longer than the new one")
    leftover.chmod(0o644)
    await store.put("object.jsonl.gz", DATA)
    assert (base / "archive" / "object.jsonl.gz").read_bytes() == DATA
    assert mode(base / "archive" / "object.jsonl.gz") == 0o600
    assert not exists(leftover)


@pytest.mark.parametrize(
    "key", ["events/\x00/x.jsonl.gz", "x.jsonl.gz\x00.txt", "\x00", "../\x00escaped"]
)
async def test_nul_bytes_are_refused(store: LocalArchiveStore, base: Path, key: str) -> None:
    with pytest.raises(ValueError, match=NUL_REFUSED):
        await store.put(key, DATA)
    with pytest.raises(ValueError, match=NUL_REFUSED):
        await store.get(key)
    with pytest.raises(ValueError, match=NUL_REFUSED):
        await store.delete(key)
    assert files_under(base) <= {"outside", "archive"}
    assert files_under(base / "outside") == set()


async def test_the_configured_directory_may_itself_be_a_symlink(base: Path) -> None:
    # Resolving both sides compares real locations: a symlinked archive directory still works.
    real = base / "real-archive"
    real.mkdir()
    (base / "linked-archive").symlink_to(real, target_is_directory=True)
    store = LocalArchiveStore(base / "linked-archive")
    await store.put(NORMAL, DATA)
    assert (real / NORMAL).read_bytes() == DATA


async def test_folders_made_for_objects_are_private_to_the_owner(
    store: LocalArchiveStore, base: Path
) -> None:
    (base / "archive").mkdir(mode=0o700)
    await store.put(NORMAL, DATA)
    folder = base / "archive" / NORMAL
    while folder != base / "archive":
        folder = folder.parent
        assert mode(folder) & 0o077 == 0, f"{folder} is {oct(mode(folder))}"
    assert mode(base / "archive" / NORMAL) == 0o600


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask 022", "umask 000"])
async def test_a_missing_archive_directory_is_made_private_with_its_missing_parents(
    base: Path, umask: int
) -> None:
    os.chmod(base, 0o755)  # noqa: S103 (a folder that exists before the store runs)
    store = LocalArchiveStore(base / "data" / "cdlm" / "archive")
    previous = os.umask(umask)
    try:
        await store.put(NORMAL, DATA)
    finally:
        os.umask(previous)
    folder = base / "data" / "cdlm" / "archive" / NORMAL
    while folder.parent != base:
        folder = folder.parent
        assert mode(folder) == 0o700, f"{folder} is {oct(mode(folder))}"
    assert mode(base / "data" / "cdlm" / "archive" / NORMAL) == 0o600
    assert mode(base) == 0o755  # a folder that existed keeps its mode
