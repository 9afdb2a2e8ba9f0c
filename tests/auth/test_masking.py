"""Masked views of personal data, per role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.app import create_app
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core.masking import mask_email, mask_name, mask_phone, mask_text
from cdlm.core.personal_data import CLEAR_ROLES, PersonalData
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key
from tests.support.schema import widget_schema

CLEAR = {
    "email": "jane.doe@example.com",
    "phone": "+447700900121",
    "name": "Jane Doe",
    "birthDate": "1990-04-12",
    "emails": ["jane.doe@example.com", "jd@work.example"],
    "plain": "not personal",
}
MASKED = {
    "email": "j***@example.com",
    "phone": "+44********21",
    "name": "J*** D***",
    "birthDate": "****-**-**",
    "emails": ["j***@example.com", "j***@work.example"],
    "plain": "not personal",
}


@pytest.fixture
async def contacts(settings: Settings) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(settings, schema=widget_schema(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield GraphQLClient(http)


@pytest.mark.parametrize("role", list(Role))
async def test_each_role_sees_what_the_policy_allows(
    contacts: GraphQLClient, auth: AuthSettings, role: Role
) -> None:
    key = await make_api_key(auth, role)
    body = await contacts(
        "{ contact { email phone name birthDate emails plain } }", headers=bearer(key)
    )
    contact = body["data"]["contact"]
    expected = {
        "email": CLEAR["email"] if role in CLEAR_ROLES[PersonalData.EMAIL] else MASKED["email"],
        "phone": CLEAR["phone"] if role in CLEAR_ROLES[PersonalData.PHONE] else MASKED["phone"],
        "name": CLEAR["name"] if role in CLEAR_ROLES[PersonalData.NAME] else MASKED["name"],
        "birthDate": CLEAR["birthDate"]
        if role in CLEAR_ROLES[PersonalData.BIRTH_DATE]
        else MASKED["birthDate"],
        "emails": CLEAR["emails"] if role in CLEAR_ROLES[PersonalData.EMAIL] else MASKED["emails"],
        "plain": "not personal",
    }
    assert contact == expected


def test_policy_matrix() -> None:
    for role in (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD):
        assert all(role in roles for roles in CLEAR_ROLES.values())
    assert Role.AGENT in CLEAR_ROLES[PersonalData.EMAIL]
    assert Role.AGENT not in CLEAR_ROLES[PersonalData.BIRTH_DATE]
    for role in (Role.ANALYST, Role.INGEST):
        assert not any(role in roles for roles in CLEAR_ROLES.values())


def test_maskers_on_examples() -> None:
    assert mask_email("jane.doe@example.com") == "j***@example.com"
    assert mask_email("no-at-sign") == "***"
    assert mask_phone("+447700900121") == "+44********21"
    assert mask_phone("12345") == "*****"
    assert mask_name("Jane  Doe") == "J*** D***"
    assert mask_text("12 Main Street") == "***"
    assert mask_text("") == ""


@given(st.emails())
def test_masked_email_keeps_only_the_first_character_and_the_domain(email: str) -> None:
    local, _, domain = email.rpartition("@")
    assert mask_email(email) == f"{local[:1]}***@{domain}"


def test_quoted_local_part_with_an_at_sign_is_masked_whole() -> None:
    assert mask_email('"john@doe"@example.com') == '"***@example.com'


@given(st.from_regex(r"\+[1-9][0-9]{7,14}", fullmatch=True))
def test_masked_phone_keeps_country_code_and_last_two_digits(phone: str) -> None:
    masked = mask_phone(phone)
    assert len(masked) == len(phone)
    assert masked[:3] == phone[:3]
    assert masked[-2:] == phone[-2:]
    assert set(masked[3:-2]) == {"*"}
