"""The profile fields cdlm knows, with the kind of personal data each holds."""

from __future__ import annotations

from cdlm.core.personal_data import PersonalData

#: Profile field → kind of personal data (drives masking, the data map and completeness).
PROFILE_FIELDS: dict[str, PersonalData] = {
    "given_name": PersonalData.NAME,
    "family_name": PersonalData.NAME,
    "email": PersonalData.EMAIL,
    "phone": PersonalData.PHONE,
    "birth_date": PersonalData.BIRTH_DATE,
    "address_line1": PersonalData.ADDRESS,
    "address_line2": PersonalData.ADDRESS,
    "city": PersonalData.ADDRESS,
    "region": PersonalData.ADDRESS,
    "postal_code": PersonalData.ADDRESS,
    "country": PersonalData.ADDRESS,
}

#: Fields a complete profile has (address_line2 and region are optional everywhere).
COMPLETENESS_FIELDS: tuple[str, ...] = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "birth_date",
    "address_line1",
    "city",
    "postal_code",
    "country",
)

#: Where each field sits in the GraphQL input (``input.profile.<path>``).
INPUT_PATHS: dict[str, str] = {
    "given_name": "givenName",
    "family_name": "familyName",
    "email": "email",
    "phone": "phone",
    "birth_date": "birthDate",
    "address_line1": "address.line1",
    "address_line2": "address.line2",
    "city": "address.city",
    "region": "address.region",
    "postal_code": "address.postalCode",
    "country": "address.country",
}

#: Profile field → fideslang data category (for the data map and records of processing).
DATA_CATEGORIES: dict[str, str] = {
    "given_name": "user.name.first",
    "family_name": "user.name.last",
    "email": "user.contact.email",
    "phone": "user.contact.phone_number",
    "birth_date": "user.demographic.date_of_birth",
    "address_line1": "user.contact.address.street",
    "address_line2": "user.contact.address.street",
    "city": "user.contact.address.city",
    "region": "user.contact.address.state",
    "postal_code": "user.contact.address.postal_code",
    "country": "user.contact.address.country",
}
