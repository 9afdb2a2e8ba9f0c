"""The profile fields cdlm knows: one table from which everything else is derived.

Each :class:`ProfileField` names the value inside the sealed profile, where it sits in the API
(input and output), the kind of personal data it holds (masking and who reads it in clear), its
fideslang data category (the data map and records of processing) and whether it counts for
completeness. Adding a field is one line here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from cdlm.core.personal_data import PersonalData


@dataclass(frozen=True)
class ProfileField:
    """One field of the customer profile."""

    name: str  #: key inside the sealed profile (and in lineage and refused values)
    api_path: str  #: camelCase path below ``profile`` in the API, e.g. ``address.postalCode``
    kind: PersonalData
    category: str  #: fideslang data category
    completeness: bool  #: counts for the completeness part of the quality score

    @functools.cached_property
    def attributes(self) -> tuple[str, ...]:
        """The Python attribute path of the field on the GraphQL input and output types."""
        return tuple(
            re.sub(r"(?<!^)(?=[A-Z])", "_", part).lower() for part in self.api_path.split(".")
        )


#: The profile, in the order it is shown and exported.
PROFILE: tuple[ProfileField, ...] = (
    ProfileField("given_name", "givenName", PersonalData.NAME, "user.name.first", True),
    ProfileField("family_name", "familyName", PersonalData.NAME, "user.name.last", True),
    ProfileField("email", "email", PersonalData.EMAIL, "user.contact.email", True),
    ProfileField("phone", "phone", PersonalData.PHONE, "user.contact.phone_number", True),
    ProfileField(
        "birth_date",
        "birthDate",
        PersonalData.BIRTH_DATE,
        "user.demographic.date_of_birth",
        True,
    ),
    ProfileField(
        "address_line1", "address.line1", PersonalData.ADDRESS, "user.contact.address.street", True
    ),
    # address_line2 and region are optional everywhere: they do not count for completeness.
    ProfileField(
        "address_line2", "address.line2", PersonalData.ADDRESS, "user.contact.address.street", False
    ),
    ProfileField("city", "address.city", PersonalData.ADDRESS, "user.contact.address.city", True),
    ProfileField(
        "region", "address.region", PersonalData.ADDRESS, "user.contact.address.state", False
    ),
    ProfileField(
        "postal_code",
        "address.postalCode",
        PersonalData.ADDRESS,
        "user.contact.address.postal_code",
        True,
    ),
    ProfileField(
        "country", "address.country", PersonalData.ADDRESS, "user.contact.address.country", True
    ),
)

BY_NAME: dict[str, ProfileField] = {f.name: f for f in PROFILE}

#: Profile field → kind of personal data.
PROFILE_FIELDS: dict[str, PersonalData] = {f.name: f.kind for f in PROFILE}

#: Fields a complete profile has.
COMPLETENESS_FIELDS: tuple[str, ...] = tuple(f.name for f in PROFILE if f.completeness)

#: Where each field sits in the GraphQL input (``input.profile.<path>``) and output.
INPUT_PATHS: dict[str, str] = {f.name: f.api_path for f in PROFILE}

#: Profile field → fideslang data category (for the data map and records of processing).
DATA_CATEGORIES: dict[str, str] = {f.name: f.category for f in PROFILE}


def profile_path(name: str) -> str:
    """The API path below a customer of the profile field ``name`` (``given_name`` ->
    ``profile.givenName``); a name that is not a profile field is returned as it is."""
    field = BY_NAME.get(name)
    return f"profile.{field.api_path}" if field is not None else name
