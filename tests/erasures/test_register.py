"""The erasure register: every erasure recorded outside the database (blind indexes only),
re-applied after a backup taken before it is restored, idempotently; a failed write is
retried, never lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.connection import get_connection

from cdlm.config import DatabaseTarget, Settings
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.identifiers import IdentifierKind
from cdlm.customers.models import Customer
from cdlm.db import backup
from cdlm.dsr.workflow import Status
from cdlm.erasures import register
from cdlm.erasures.models import PendingErasure
from cdlm.erasures.register import DirectoryRegister, ErasureRecord
from cdlm.identity.models import Identity, Suppression
from cdlm.retention.reapply import Reapplied, reapply_erasures
from cdlm.vault.models import CustomerKey
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import approved, execute, key
from tests.dsr.test_execution import _person
from tests.factories import make_customer

#: Every personal value of the person ``_person`` makes, as they could appear in a file.
PERSONAL = (
    "ines",
    "quartermaine",
    "7911",
    "123987",
    "1980",
    "foxglove",
    "whinging",
    "gu1",
    "iq-loyalty",
)


def _theirs(directory: Path, customer_id: uuid.UUID) -> list[ErasureRecord]:
    return [r for r in DirectoryRegister(directory).all() if r.customer_id == customer_id]


async def test_a_restored_backup_does_not_bring_an_erased_person_back(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    vault: Vault,
    settings: Settings,
    owner_database: DatabaseTarget,
    tmp_path: Path,
) -> None:
    customer_id = await _person(vault)
    blind_indexes = {str(i) for i in await Identity.all().values_list("blind_index", flat=True)}
    dump = tmp_path / "before.dump"
    await backup.dump(owner_database, dump)

    request_id = await approved(gql, admin_headers, "ERASURE", "ines.quartermaine@example.com")
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == Status.COMPLETED.name

    [record] = _theirs(settings.erasure_register_dir, customer_id)
    assert (record.action, record.request_id, record.kept) == ("erasure", key(request_id), ())
    assert {index for _, index in record.identifiers} == blind_indexes
    assert {kind for kind, _ in record.identifiers} == {
        IdentifierKind.EMAIL,
        IdentifierKind.PHONE,
        IdentifierKind.EXTERNAL_ID,
    }
    text = (settings.erasure_register_dir / record.name).read_text().lower()
    assert not [value for value in PERSONAL if value in text]
    assert await PendingErasure.all().count() == 0

    # Restoring the backup brings the person back: their wrapped key, rows and identifiers.
    await backup.load(owner_database, dump, settings.database_app_role)
    # Regression: recreated tables took the owner's default privileges, ledger writes included.
    granted = await get_connection("default").execute_query_dict(
        "SELECT has_table_privilege($1, 'audit_entries', 'UPDATE') AS audit_update, "
        "has_table_privilege($1, 'consent_entries', 'DELETE') AS consent_delete",
        [settings.database_app_role],
    )
    assert granted == [{"audit_update": False, "consent_delete": False}]
    vault._keys.drop(customer_id)
    assert await CustomerKey.exists(customer_id=customer_id)
    assert await Suppression.all().count() == 0
    sealed = bytes((await Identity.filter(customer_id=customer_id).first()).value_sealed)  # type: ignore[union-attr]

    mine = DirectoryRegister(tmp_path / "register")
    assert mine.append(record) is True
    assert await reapply_erasures(vault, mine) == Reapplied(1, 1, 0, 3)
    assert await vault.customer_keys([customer_id]) == {}  # their data no longer decrypts
    assert sealed
    assert not await CustomerKey.exists(customer_id=customer_id)
    assert not await Customer.exists(id=customer_id)
    assert {str(i) for i in await Suppression.all().values_list("blind_index", flat=True)} == (
        blind_indexes
    )
    with pytest.raises(ValidationFailed) as refused:
        await make_customer(vault, email="INES.QUARTERMAINE@example.com")
    assert refused.value.code is ErrorCode.SUPPRESSED

    assert await reapply_erasures(vault, mine) == Reapplied(1, 0, 1, 0)  # idempotent
    assert await Suppression.all().count() == 3


class _Unwritable:
    """A register whose storage fails (a full disk, a missing bucket)."""

    def append(self, record: ErasureRecord) -> bool:
        raise OSError("no space left on device")

    def since(self, moment: datetime | None) -> list[ErasureRecord]:
        return []


async def test_a_failed_register_write_is_kept_and_written_by_the_next_flush(
    tmp_path: Path,
) -> None:
    customer_id = uuid.uuid4()
    await register.note(
        customer_id,
        "crypto_shred",
        kept={"events"},
        identifiers=[(IdentifierKind.EMAIL, "ab" * 32)],
    )
    assert await register.flush(_Unwritable()) == 0
    assert await PendingErasure.filter(customer_id=customer_id).count() == 1

    directory = DirectoryRegister(tmp_path)
    assert await register.flush(directory) == 1
    assert await PendingErasure.all().count() == 0
    [record] = directory.all()
    assert (record.customer_id, record.action, record.kept) == (
        customer_id,
        "crypto_shred",
        ("events",),
    )
    assert record.identifiers == ((IdentifierKind.EMAIL, "ab" * 32),)


@pytest.mark.pure
def test_a_record_is_never_rewritten_and_since_filters_by_time(tmp_path: Path) -> None:
    moment = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    first = ErasureRecord(uuid.uuid4(), moment, "erasure")
    later = ErasureRecord(uuid.uuid4(), moment + timedelta(days=2), "delete", kept=("events",))
    directory = DirectoryRegister(tmp_path)
    assert directory.append(first)
    assert directory.append(later)
    assert directory.append(ErasureRecord(first.customer_id, moment, "anonymize")) is False
    assert directory.all() == [first, later]
    assert directory.since(moment + timedelta(days=1)) == [later]
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name, later.name]
    assert first.name == f"20260501T093000000000Z-{first.customer_id}.json"
