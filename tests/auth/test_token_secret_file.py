"""The token secret kept in the data directory when ``CDLM_TOKEN_SECRET`` is unset.

It signs access tokens and keys the rate-limit digests, so it is created owner-only (0600),
kept across restarts (tokens already issued stay valid), and never replaced silently.
"""

from __future__ import annotations

import os
import stat
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from cdlm.auth.settings import TOKEN_SECRET_FILE, auth_settings
from cdlm.auth.tokens import TokenInvalid, issue_access_token, read_access_token
from cdlm.config import ConfigError, Settings, load_settings
from cdlm.core import clock


def local_settings(data_dir: Path, **extra: str) -> Settings:
    """Settings of a development installation without ``CDLM_TOKEN_SECRET``."""
    return load_settings({"CDLM_ENV": "development", "CDLM_DATA_DIR": str(data_dir), **extra})


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A umask that lets every permission bit through, as a careless service manager might."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_secret_file_is_created_owner_only_with_a_long_random_secret(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # does not exist yet
    auth = auth_settings(local_settings(data_dir))
    path = data_dir / TOKEN_SECRET_FILE
    assert oct(mode(path)) == oct(0o600)
    stored = path.read_text(encoding="utf-8").strip()
    assert auth.token_secret == stored.encode()
    assert len(stored) >= 32


@pytest.mark.usefixtures("permissive_umask")
def test_the_secret_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    auth_settings(local_settings(tmp_path))
    assert oct(mode(tmp_path / TOKEN_SECRET_FILE)) == oct(0o600)


def test_the_secret_is_reused_on_the_next_load_and_tokens_stay_valid(tmp_path: Path) -> None:
    first = auth_settings(local_settings(tmp_path))
    path = tmp_path / TOKEN_SECRET_FILE
    written = path.read_bytes()
    inode = os.stat(path).st_ino
    token = issue_access_token(
        first.token_secret, uuid.uuid4(), uuid.uuid4(), clock.now() + timedelta(minutes=5)
    )
    second = auth_settings(local_settings(tmp_path))
    assert second.token_secret == first.token_secret
    assert path.read_bytes() == written
    assert os.stat(path).st_ino == inode  # the same file, not a rewritten one
    assert oct(mode(path)) == oct(0o600)
    assert read_access_token(second.token_secret, token).expires_at > clock.now()
    assert second.keyed_digest("login", "x") == first.keyed_digest("login", "x")


def test_each_installation_has_its_own_secret(tmp_path: Path) -> None:
    one = auth_settings(local_settings(tmp_path / "one"))
    other = auth_settings(local_settings(tmp_path / "other"))
    assert one.token_secret != other.token_secret
    token = issue_access_token(
        one.token_secret, uuid.uuid4(), uuid.uuid4(), clock.now() + timedelta(minutes=5)
    )
    with pytest.raises(TokenInvalid):
        read_access_token(other.token_secret, token)


def test_a_secret_from_the_environment_writes_no_file(tmp_path: Path) -> None:
    secret = "from-the-environment-" + "e" * 32
    auth = auth_settings(local_settings(tmp_path, CDLM_TOKEN_SECRET=secret))
    assert auth.token_secret == secret.encode()
    assert not (tmp_path / TOKEN_SECRET_FILE).exists()


def test_an_unwritable_data_dir_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as caught:
        auth_settings(local_settings(blocker / "data"))
    assert caught.value.variable == "CDLM_TOKEN_SECRET"
    assert "is unset and" in caught.value.problem
    assert "not writable" in caught.value.problem


@pytest.mark.parametrize("content", ["", "\n", "short", " " * 40, "s" * 31 + "\n"])
def test_an_empty_or_short_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / TOKEN_SECRET_FILE
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        auth_settings(local_settings(tmp_path))
    assert caught.value.variable == "CDLM_TOKEN_SECRET"
    assert "fewer than 32 characters" in caught.value.problem
    assert path.read_text(encoding="utf-8") == content  # refused, never replaced silently


def test_a_secret_file_of_32_characters_is_used(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_SECRET_FILE
    path.write_text("s" * 32 + "\n", encoding="utf-8")
    path.chmod(0o600)
    assert auth_settings(local_settings(tmp_path)).token_secret == b"s" * 32


def test_a_secret_file_that_is_not_text_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / TOKEN_SECRET_FILE
    path.write_bytes(b"\xff\xfe" * 32)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as caught:
        auth_settings(local_settings(tmp_path))
    assert caught.value.variable == "CDLM_TOKEN_SECRET"
    assert "is not text" in caught.value.problem


def test_an_existing_world_readable_secret_file_is_used_as_it_is(tmp_path: Path) -> None:
    # As the master key file: the file is created 0600, but one the operator put there (or
    # whose mode they changed) is used unchanged, neither refused nor rewritten nor chmodded.
    path = tmp_path / TOKEN_SECRET_FILE
    secret = "operator-provided-" + "o" * 32
    path.write_text(secret + "\n", encoding="utf-8")
    path.chmod(0o644)
    inode = os.stat(path).st_ino
    assert auth_settings(local_settings(tmp_path)).token_secret == secret.encode()
    assert oct(mode(path)) == oct(0o644)
    assert os.stat(path).st_ino == inode
    assert path.read_text(encoding="utf-8") == secret + "\n"


def test_the_slower_of_two_simultaneous_starts_uses_the_secret_of_the_faster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / TOKEN_SECRET_FILE
    faster = "made-by-the-faster-start-" + "f" * 32
    real_exists = Path.exists

    def exists_as_seen_before_the_faster_start_wrote(self: Path) -> bool:
        if self == path:  # this start looked before the other one created the file
            return False
        return real_exists(self)

    path.write_text(faster, encoding="utf-8")
    path.chmod(0o600)
    monkeypatch.setattr(Path, "exists", exists_as_seen_before_the_faster_start_wrote)
    auth = auth_settings(local_settings(tmp_path))
    assert auth.token_secret == faster.encode()
    assert path.read_text(encoding="utf-8") == faster  # kept: tokens it signed stay valid
    assert sorted(p.name for p in tmp_path.iterdir()) == [TOKEN_SECRET_FILE]  # no leftovers


def test_simultaneous_starts_all_get_the_same_whole_secret(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    barrier = threading.Barrier(8)

    def start() -> bytes:
        barrier.wait()
        return auth_settings(local_settings(data_dir)).token_secret

    with ThreadPoolExecutor(max_workers=8) as pool:
        secrets = list(pool.map(lambda _: start(), range(8)))
    assert len(set(secrets)) == 1
    assert len(secrets[0]) >= 32
    assert (data_dir / TOKEN_SECRET_FILE).read_text(encoding="utf-8").encode() == secrets[0]
    assert sorted(p.name for p in data_dir.iterdir()) == [TOKEN_SECRET_FILE]
    assert oct(mode(data_dir / TOKEN_SECRET_FILE)) == oct(0o600)
