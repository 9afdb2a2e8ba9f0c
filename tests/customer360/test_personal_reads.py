"""Every personal field of the customer types is audited when read and is on the data map."""

from __future__ import annotations

from strawberry.types.base import StrawberryList, StrawberryObjectDefinition, StrawberryOptional

from cdlm.customers.api.reading import PERSONAL_READS
from cdlm.customers.api.types import CustomerNode
from cdlm.governance.datamap import places
from cdlm.graphql.masking import personal_kind
from cdlm.quality.fields import PROFILE


def _personal_paths(type_: object, prefix: str, seen: set[str], found: dict[str, object]) -> None:
    while isinstance(type_, StrawberryOptional | StrawberryList):
        type_ = type_.of_type
    definition = getattr(type_, "__strawberry_definition__", None)
    if not isinstance(definition, StrawberryObjectDefinition):
        return
    if definition.name in seen:
        return
    seen = {*seen, definition.name}
    for field in definition.fields:
        path = f"{prefix}{_camel(field.python_name)}"
        if personal_kind(field) is not None:
            found[path] = personal_kind(field)
        _personal_paths(field.type, f"{path}.", seen, found)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def personal_paths() -> dict[str, object]:
    found: dict[str, object] = {}
    _personal_paths(CustomerNode, "", set(), found)
    return found


def test_the_walk_finds_the_profile_and_the_sealed_parts() -> None:
    paths = personal_paths()
    assert {f"profile.{f.api_path}" for f in PROFILE} <= set(paths)
    assert {"identities.value", "quality.invalidValues.value"} <= set(paths)
    assert any(p.endswith("properties") and p.startswith("events.") for p in paths)


def test_every_personal_field_of_a_customer_is_audited_when_read() -> None:
    unaudited = sorted(set(personal_paths()) - set(PERSONAL_READS))
    assert unaudited == []


def test_every_personal_field_of_a_customer_is_on_the_data_map() -> None:
    mapped = {place.field for place in places()}
    missing = sorted(
        path
        for path in personal_paths()
        if PERSONAL_READS[path].place is None or PERSONAL_READS[path].place not in mapped
    )
    assert missing == []


def test_every_audited_read_names_a_real_place_or_none() -> None:
    mapped = {place.field for place in places()}
    assert all(read.place is None or read.place in mapped for read in PERSONAL_READS.values())
