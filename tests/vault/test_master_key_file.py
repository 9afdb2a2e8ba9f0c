"""The local master key file: created once, whole, private, whoever starts first."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cdlm.vault.keys import LocalKeyProvider

pytestmark = pytest.mark.pure


def test_processes_starting_at_once_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    with ThreadPoolExecutor(max_workers=8) as pool:
        providers = list(pool.map(lambda _: LocalKeyProvider.from_file(path), range(8)))
    sealed = providers[0].wrap(b"d" * 32, "ctx")
    assert all(p.unwrap(sealed, "ctx") == b"d" * 32 for p in providers)
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temporary left
