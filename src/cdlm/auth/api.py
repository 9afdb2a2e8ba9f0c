"""GraphQL API of authentication: sign-in, staff users, API keys and the viewer."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry import UNSET
from strawberry.types.info import Info

from cdlm.auth import loaders, service, training
from cdlm.auth.models import ApiKey, StaffTraining, StaffUser
from cdlm.core import clock
from cdlm.core.personal_data import PersonalData
from cdlm.core.principal import Principal, PrincipalKind
from cdlm.core.roles import Role
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import (
    ConflictError,
    InvalidCredentialsError,
    InvalidStateError,
    NotFoundError,
    Outcomes,
    RateLimitedError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.masking import personal
from cdlm.graphql.pagination import (
    After,
    Before,
    CountedConnection,
    First,
    Last,
    SortKey,
    paginate,
)
from cdlm.graphql.permissions import allow, authenticated, public, require_principal
from cdlm.graphql.relay import Node, NodeKind, global_id, parse_id, rows_fetcher
from cdlm.graphql.updates import Changes

describe_enum(
    Role,
    "What a caller may do; every staff user and API key has exactly one role.",
    {
        Role.ADMIN: "Everything, including staff users, API keys and the audit trail.",
        Role.PRIVACY_OFFICER: "Data subject requests, consent and purposes, retention, legal "
        "holds, the data map and the audit trail; sees personal data in clear.",
        Role.STEWARD: "Data quality, matching, merges and rectification; sees personal data "
        "in clear.",
        Role.ANALYST: "Aggregates and lists of customers with personal data masked.",
        Role.AGENT: "Customer support: reads and rectifies one customer at a time (birth "
        "dates masked).",
        Role.INGEST: "A machine feeding cdlm: ingestion and consent capture only; reads no "
        "customer.",
    },
)


class ViewerKind(Enum):
    """How the caller of a request authenticated."""

    STAFF_USER = "staff_user"
    API_KEY = "api_key"


describe_enum(
    ViewerKind,
    "How the caller of this request authenticated.",
    {
        ViewerKind.STAFF_USER: "A staff user, with the access token `login` returned.",
        ViewerKind.API_KEY: "An API key (`cdlm_<keyId>_<secret>`).",
    },
)

_NEWEST_FIRST = [SortKey("created_at", descending=True), SortKey("id")]
_STAFF_READ = (
    "Reading staff users is recorded in the audit trail (names and work emails are personal data)."
)


@strawberry.type(
    name="StaffUser",
    description="A person who signs in to work with cdlm. " + _STAFF_READ,
)
class StaffUserNode(Node):
    email: str = strawberry.field(
        description="Work email, lower-cased: the sign-in name (unique).",
        extensions=personal(PersonalData.EMAIL),
    )
    display_name: str = strawberry.field(
        description="Name shown to colleagues (1 to 200 characters).",
        extensions=personal(PersonalData.NAME),
    )
    role: Role = strawberry.field(description="What the user may do.")
    active: bool = strawberry.field(
        description="False once deactivated: the user cannot sign in and their sessions ended."
    )
    created_at: datetime = strawberry.field(description="When the user was added.")
    last_login_at: datetime | None = strawberry.field(
        description="When the user last signed in; null: never."
    )
    password_changed_at: datetime = strawberry.field(
        description="When the password was last set (by the user, an admin, or on creation)."
    )
    user_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="The privacy trainings the user completed, latest completed first "
        "(expired ones included)."
    )
    async def trainings(self, info: Info[Any, Any]) -> list["StaffTrainingNode"]:
        rows = await info.context.loaders.get(loaders.trainings_by_user).load(self.user_id)
        return [StaffTrainingNode.from_row(row) for row in rows]

    @strawberry.field(
        description="The training that counts now (completed and not expired; the one valid "
        "longest); null: none, so a role that requires training (`CDLM_REQUIRE_TRAINING`) "
        "keeps this user from personal data."
    )
    async def current_training(self, info: Info[Any, Any]) -> "StaffTrainingNode | None":
        rows = await info.context.loaders.get(loaders.trainings_by_user).load(self.user_id)
        found = training.current(rows, clock.now())
        return StaffTrainingNode.from_row(found) if found is not None else None

    @classmethod
    def from_row(cls, row: StaffUser) -> "StaffUserNode":
        return cls(
            user_id=row.id,
            id=global_id("StaffUser", row.id),
            email=row.email,
            display_name=row.display_name,
            role=row.role,
            active=row.active,
            created_at=row.created_at,
            last_login_at=row.last_login_at,
            password_changed_at=row.password_changed_at,
        )


@strawberry.type(
    name="ApiKey",
    description="A key for a machine or a frontend to call cdlm with "
    "(`Authorization: Bearer cdlm_<keyId>_<secret>`). Its secret is shown once, when created.",
)
class ApiKeyNode(Node):
    key_id: str = strawberry.field(
        description="The public part of the key: keys read `cdlm_<keyId>_<secret>`."
    )
    name: str = strawberry.field(description="What the key is for (1 to 200 characters).")
    role: Role = strawberry.field(description="What callers with the key may do.")
    created_at: datetime = strawberry.field(description="When the key was issued.")
    expires_at: datetime | None = strawberry.field(
        description="When the key stops working; null: never (until revoked)."
    )
    last_used_at: datetime | None = strawberry.field(
        description="When the key was last used, precise to about a minute; null: never."
    )
    revoked_at: datetime | None = strawberry.field(
        description="When the key was revoked; null: not revoked."
    )

    @classmethod
    def from_row(cls, row: ApiKey) -> "ApiKeyNode":
        return cls(
            id=global_id("ApiKey", row.id),
            key_id=row.key_id,
            name=row.name,
            role=row.role,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type(
    name="StaffTraining",
    description="A privacy training a staff user completed, and until when it counts.",
)
class StaffTrainingNode(Node):
    course: str = strawberry.field(description="The course's name (1 to 200 characters).")
    completed_at: datetime = strawberry.field(description="When the user completed it.")
    valid_until: datetime = strawberry.field(
        description="When it stops counting: from then on it is expired."
    )
    recorded_at: datetime = strawberry.field(description="When it was recorded in cdlm.")
    current: bool = strawberry.field(
        description="True when it counts now (completed, and `validUntil` is still ahead)."
    )
    row: strawberry.Private[StaffTraining]

    @strawberry.field(description="The staff user who completed it.")
    async def staff_user(self, info: Info[Any, Any]) -> StaffUserNode | None:
        return await staff_user_node(info, self.row.user_id)  # type: ignore[attr-defined]

    @classmethod
    def from_row(cls, row: StaffTraining) -> "StaffTrainingNode":
        now = clock.now()
        return cls(
            id=global_id("StaffTraining", row.id),
            course=row.course,
            completed_at=row.completed_at,
            valid_until=row.valid_until,
            recorded_at=row.recorded_at,
            current=row.completed_at <= now < row.valid_until,
            row=row,
        )


# ----------------------------------------------------------- references for other types


async def staff_user_nodes(
    info: Info[Any, Any], ids: Sequence[uuid.UUID]
) -> list[StaffUserNode | None]:
    """The staff users ``ids`` in order (None for an id of nobody), read through the
    request's DataLoader; the read is audited. For fields referring to a staff user."""
    actor = await require_principal(info)
    rows = await info.context.loaders.get(loaders.staff_users_by_id, actor).load_many(list(ids))
    return [StaffUserNode.from_row(row) if row is not None else None for row in rows]


async def staff_user_node(info: Info[Any, Any], user_id: uuid.UUID) -> StaffUserNode | None:
    """:func:`staff_user_nodes` for one staff user (batched with the request's others)."""
    return (await staff_user_nodes(info, [user_id]))[0]


async def api_key_nodes(info: Info[Any, Any], ids: Sequence[uuid.UUID]) -> list[ApiKeyNode | None]:
    """The API keys ``ids`` in order (None for an id of no key), through the request's
    DataLoader. For fields referring to an API key."""
    rows = await info.context.loaders.get(loaders.api_keys_by_id).load_many(list(ids))
    return [ApiKeyNode.from_row(row) if row is not None else None for row in rows]


async def api_key_node(info: Info[Any, Any], key_id: uuid.UUID) -> ApiKeyNode | None:
    """:func:`api_key_nodes` for one key (batched with the request's others)."""
    return (await api_key_nodes(info, [key_id]))[0]


# --------------------------------------------------------------------------- viewer


@strawberry.type(description="The caller of this request: a signed-in staff user or an API key.")
class Viewer:
    kind: ViewerKind = strawberry.field(description="How the caller authenticated.")
    role: Role = strawberry.field(description="What the caller may do.")
    name: str = strawberry.field(
        description="The staff user's display name, or the API key's name."
    )
    principal: strawberry.Private[Principal]

    @strawberry.field(
        description="The caller's own staff user record; null when calling with an API key. "
        "Every role may read its own; personal fields are masked as for any staff user, and "
        "the read is recorded in the audit trail."
    )
    async def staff_user(self, info: Info[Any, Any]) -> StaffUserNode | None:
        if self.kind is not ViewerKind.STAFF_USER or self.principal.id is None:
            return None
        return await staff_user_node(info, self.principal.id)

    @strawberry.field(
        description="The API key the caller used; null for a signed-in staff user. Every role "
        "may read its own."
    )
    async def api_key(self, info: Info[Any, Any]) -> ApiKeyNode | None:
        if self.kind is not ViewerKind.API_KEY or self.principal.id is None:
            return None
        return await api_key_node(info, self.principal.id)


# ------------------------------------------------------------------------- connections


@strawberry.type(description="A page of staff users, newest first, with the list's size.")
class StaffUserConnection(CountedConnection[StaffUserNode]):
    pass


@strawberry.type(description="A page of API keys, newest first, with the list's size.")
class ApiKeyConnection(CountedConnection[ApiKeyNode]):
    pass


@strawberry.input(description="Which staff users to list; criteria combine with AND.")
class StaffUserFilter:
    role: Role | None = strawberry.field(
        default=None, description="Only users with this role; null: every role."
    )
    include_inactive: bool = strawberry.field(
        default=False, description="Also list deactivated users (default: active ones only)."
    )


@strawberry.input(description="Which API keys to list; criteria combine with AND.")
class ApiKeyFilter:
    role: Role | None = strawberry.field(
        default=None, description="Only keys with this role; null: every role."
    )
    include_revoked: bool = strawberry.field(
        default=False, description="Also list revoked keys (default: unrevoked ones only)."
    )


# --------------------------------------------------------------------------- results


@strawberry.type(description="Signed in: send the token as `Authorization: Bearer <token>`.")
class LoginSucceeded:
    access_token: str = strawberry.field(
        description="The session's access token (opaque; keep it secret, never in a URL)."
    )
    expires_at: datetime = strawberry.field(
        description="When the token stops working: sign in again after that."
    )


@strawberry.type(description="The session ended: its token no longer works.")
class LoggedOut:
    ended_at: datetime = strawberry.field(description="When the session ended.")


@strawberry.type(description="A new staff user, who can sign in at once.")
class StaffUserCreated:
    staff_user: StaffUserNode = strawberry.field(description="The user as created.")


@strawberry.type(description="The staff user after the change.")
class StaffUserUpdated:
    staff_user: StaffUserNode = strawberry.field(description="The user as changed.")


@strawberry.type(description="Your password changed; your other sessions ended.")
class PasswordChanged:
    staff_user: StaffUserNode = strawberry.field(
        description="You, after the change (`passwordChangedAt` says when)."
    )


@strawberry.type(description="The staff user's password was set; all their sessions ended.")
class StaffPasswordReset:
    staff_user: StaffUserNode = strawberry.field(
        description="The user, after the reset (`passwordChangedAt` says when)."
    )


@strawberry.type(description="Every session of the staff user ended.")
class StaffSessionsRevoked:
    staff_user: StaffUserNode = strawberry.field(description="The user whose sessions ended.")
    count: int = strawberry.field(description="How many sessions were open and now ended.")


@strawberry.type(description="A new API key. `key` is shown only here: store it now.")
class ApiKeyCreated:
    api_key: ApiKeyNode = strawberry.field(description="The key as issued (without its secret).")
    key: str = strawberry.field(
        description="The whole key, `cdlm_<keyId>_<secret>`: shown once, never again."
    )


@strawberry.type(description="The training is recorded.")
class StaffTrainingRecorded:
    training: StaffTrainingNode = strawberry.field(description="The training as recorded.")

    @strawberry.field(description="The staff user, with all their trainings and the current one.")
    async def staff_user(self, info: Info[Any, Any]) -> StaffUserNode | None:
        return await staff_user_node(info, self.training.row.user_id)  # type: ignore[attr-defined]


@strawberry.type(description="The API key is revoked: it stopped working at once.")
class ApiKeyRevoked:
    api_key: ApiKeyNode = strawberry.field(description="The key, with its `revokedAt`.")


_BAD_ID = "the id is malformed or not the id of {} (INVALID_ID)"

LOGIN = Outcomes(
    "LoginResult",
    LoginSucceeded,
    {
        InvalidCredentialsError: "the email or password is wrong or the account is "
        "deactivated (never said which)",
        RateLimitedError: "too many failed sign-ins for this account or from this address: "
        "try again in 15 minutes",
    },
)
LoginResult = Annotated[LoginSucceeded | InvalidCredentialsError | RateLimitedError, LOGIN.marker]

LOGOUT = Outcomes(
    "LogoutResult",
    LoggedOut,
    {InvalidStateError: "the caller is an API key, which has no session to end"},
)
LogoutResult = Annotated[LoggedOut | InvalidStateError, LOGOUT.marker]

CREATE_STAFF_USER = Outcomes(
    "CreateStaffUserResult",
    StaffUserCreated,
    {
        ValidationError: "the email, display name or password breaks a rule (every problem "
        "listed in `issues`)",
        ConflictError: "a staff user already has this email",
    },
)
CreateStaffUserResult = Annotated[
    StaffUserCreated | ValidationError | ConflictError, CREATE_STAFF_USER.marker
]

UPDATE_STAFF_USER = Outcomes(
    "UpdateStaffUserResult",
    StaffUserUpdated,
    {
        ValidationError: "the display name breaks a rule, a field that cannot be cleared is "
        "null, or " + _BAD_ID.format("a staff user"),
        NotFoundError: "no staff user has this id",
        InvalidStateError: "the change would demote or deactivate the last active admin",
    },
)
UpdateStaffUserResult = Annotated[
    StaffUserUpdated | ValidationError | NotFoundError | InvalidStateError,
    UPDATE_STAFF_USER.marker,
]

CHANGE_PASSWORD = Outcomes(
    "ChangePasswordResult",
    PasswordChanged,
    {
        ValidationError: "the new password breaks a rule (every problem listed in `issues`)",
        InvalidCredentialsError: "the current password is wrong",
        InvalidStateError: "the caller is an API key, or the account changed meanwhile "
        "(deactivated, or its password set elsewhere): sign in again",
    },
)
ChangePasswordResult = Annotated[
    PasswordChanged | ValidationError | InvalidCredentialsError | InvalidStateError,
    CHANGE_PASSWORD.marker,
]

RESET_STAFF_PASSWORD = Outcomes(
    "ResetStaffPasswordResult",
    StaffPasswordReset,
    {
        ValidationError: "the new password breaks a rule, or " + _BAD_ID.format("a staff user"),
        NotFoundError: "no staff user has this id",
    },
)
ResetStaffPasswordResult = Annotated[
    StaffPasswordReset | ValidationError | NotFoundError, RESET_STAFF_PASSWORD.marker
]

REVOKE_STAFF_SESSIONS = Outcomes(
    "RevokeStaffSessionsResult",
    StaffSessionsRevoked,
    {
        ValidationError: _BAD_ID.format("a staff user"),
        NotFoundError: "no staff user has this id",
    },
)
RevokeStaffSessionsResult = Annotated[
    StaffSessionsRevoked | ValidationError | NotFoundError, REVOKE_STAFF_SESSIONS.marker
]

CREATE_API_KEY = Outcomes(
    "CreateApiKeyResult",
    ApiKeyCreated,
    {
        ValidationError: "the name breaks a rule, or the expiry has no time zone or is not "
        "in the future",
    },
)
CreateApiKeyResult = Annotated[ApiKeyCreated | ValidationError, CREATE_API_KEY.marker]

REVOKE_API_KEY = Outcomes(
    "RevokeApiKeyResult",
    ApiKeyRevoked,
    {
        ValidationError: _BAD_ID.format("an API key"),
        NotFoundError: "no API key has this id",
        InvalidStateError: "the key is already revoked",
    },
)
RevokeApiKeyResult = Annotated[
    ApiKeyRevoked | ValidationError | NotFoundError | InvalidStateError, REVOKE_API_KEY.marker
]


RECORD_STAFF_TRAINING = Outcomes(
    "RecordStaffTrainingResult",
    StaffTrainingRecorded,
    {
        ValidationError: "the course is empty, too long or holds control or text direction "
        "characters, a time has no zone or is out of range once in UTC, the completion is in "
        "the future or more than 10 years ago, the validity does not end after the completion "
        "or lasts more than 10 years (every problem listed in `issues`), or "
        + _BAD_ID.format("a staff user"),
        NotFoundError: "no active staff user has this id (deactivated users get no training)",
    },
)
RecordStaffTrainingResult = Annotated[
    StaffTrainingRecorded | ValidationError | NotFoundError, RECORD_STAFF_TRAINING.marker
]


# ---------------------------------------------------------------------------- inputs


@strawberry.input(description="A staff user's credentials.")
class LoginInput:
    email: str = strawberry.field(description="The work email (any case; spaces trimmed).")
    password: str = strawberry.field(description="The password.")


@strawberry.input(description="A new staff user.")
class CreateStaffUserInput:
    email: str = strawberry.field(
        description="Work email, the sign-in name; stored lower-cased, unique."
    )
    display_name: str = strawberry.field(
        description="Name shown to colleagues (1 to 200 characters; spaces collapsed)."
    )
    role: Role = strawberry.field(description="What the user may do.")
    password: str = strawberry.field(
        description="At least 12 characters, not the email; the user can change it later."
    )


@strawberry.input(
    description="Changes to a staff user: omit a field to keep it. None of them can be "
    "cleared: null is refused."
)
class UpdateStaffUserInput:
    id: strawberry.ID = strawberry.field(description="The staff user's global id.")
    display_name: str | None = strawberry.field(
        default=UNSET, description="The new display name (1 to 200 characters)."
    )
    role: Role | None = strawberry.field(
        default=UNSET,
        description="The new role. Changing it ends the user's sessions; lowering it from "
        "admin also revokes the API keys they issued.",
    )
    active: bool | None = strawberry.field(
        default=UNSET,
        description="false deactivates the user: their sessions end and the API keys they "
        "issued are revoked; true lets them sign in again.",
    )


@strawberry.input(description="Your password change.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="Your password now.")
    new_password: str = strawberry.field(
        description="The new password: at least 12 characters, not your email."
    )


@strawberry.input(description="A password an admin sets for a staff user.")
class ResetStaffPasswordInput:
    id: strawberry.ID = strawberry.field(description="The staff user's global id.")
    new_password: str = strawberry.field(
        description="The new password: at least 12 characters, not the user's email."
    )


@strawberry.input(description="Whose sessions to end.")
class RevokeStaffSessionsInput:
    staff_user_id: strawberry.ID = strawberry.field(description="The staff user's global id.")


@strawberry.input(description="A new API key.")
class CreateApiKeyInput:
    name: str = strawberry.field(description="What the key is for (1 to 200 characters).")
    role: Role = strawberry.field(description="What callers with the key may do.")
    expires_at: datetime | None = strawberry.field(
        default=None,
        description="When the key stops working, with a time zone, in the future; null or "
        "omitted: never (until revoked).",
    )


@strawberry.input(description="A privacy training a staff user completed.")
class RecordStaffTrainingInput:
    staff_user_id: strawberry.ID = strawberry.field(
        description="The global id of the (active) staff user who completed it."
    )
    course: str = strawberry.field(
        description="The course's name (1 to 200 characters, no control or text direction "
        "characters; spaces collapsed)."
    )
    completed_at: datetime = strawberry.field(
        description="When it was completed, with a time zone; not in the future, nor more "
        "than 10 years (3,653 days) ago."
    )
    valid_until: datetime = strawberry.field(
        description="When it stops counting, with a time zone; after `completedAt`, at most "
        "10 years (3,653 days) after it."
    )


@strawberry.input(description="The API key to revoke.")
class RevokeApiKeyInput:
    id: strawberry.ID = strawberry.field(description="The API key's global id.")


def staff_user_changes(given: UpdateStaffUserInput) -> service.StaffUserChanges:
    """The changes ``given`` asks for by the one partial-update rule (omitted: keep; a null
    is refused on its path)."""
    changes = Changes()
    asked = service.StaffUserChanges(
        display_name=changes.kept(given.display_name, "input.displayName"),
        role=changes.kept(given.role, "input.role"),
        active=changes.kept(given.active, "input.active"),
    )
    changes.check()
    return asked


# --------------------------------------------------------------------------- queries


@strawberry.type
class AuthQuery:
    @strawberry.field(
        description="Who is calling: kind, role and name.", extensions=authenticated()
    )
    async def viewer(self, info: Info[Any, Any]) -> Viewer:
        principal = await require_principal(info)
        assert principal.role is not None
        return Viewer(
            kind=(
                ViewerKind.API_KEY
                if principal.kind is PrincipalKind.API_KEY
                else ViewerKind.STAFF_USER
            ),
            role=principal.role,
            name=principal.name,
            principal=principal,
        )

    @strawberry.field(
        description="Staff users, newest first. " + _STAFF_READ, extensions=allow(Role.ADMIN)
    )
    async def staff_users(
        self,
        info: Info[Any, Any],
        filter: Annotated[
            StaffUserFilter | None,
            strawberry.argument(description="Which users; default: active users of every role."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> StaffUserConnection:
        given = filter or StaffUserFilter()
        page = await paginate(
            service.staff_users(given.role, given.include_inactive),
            order=_NEWEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        await service.audit_staff_read(await require_principal(info), page.rows)
        connection = page.to_connection(StaffUserNode.from_row, StaffUserConnection)
        assert isinstance(connection, StaffUserConnection)
        return connection

    @strawberry.field(
        description="One staff user; null when no staff user has this id. " + _STAFF_READ,
        extensions=allow(Role.ADMIN),
    )
    async def staff_user(
        self,
        info: Info[Any, Any],
        id: Annotated[strawberry.ID, strawberry.argument(description="The user's global id.")],
    ) -> StaffUserNode | None:
        return await staff_user_node(info, parse_id(id, "id", "StaffUser"))

    @strawberry.field(description="API keys, newest first.", extensions=allow(Role.ADMIN))
    async def api_keys(
        self,
        filter: Annotated[
            ApiKeyFilter | None,
            strawberry.argument(description="Which keys; default: unrevoked keys of every role."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ApiKeyConnection:
        given = filter or ApiKeyFilter()
        page = await paginate(
            service.api_keys(given.role, given.include_revoked),
            order=_NEWEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        connection = page.to_connection(ApiKeyNode.from_row, ApiKeyConnection)
        assert isinstance(connection, ApiKeyConnection)
        return connection


# ------------------------------------------------------------------------- mutations


@strawberry.type
class AuthMutation:
    @strawberry.mutation(
        description=LOGIN.describe(
            "Sign in as a staff user: returns an access token for the `Authorization` header. "
            "Failed attempts are limited per account and per client address."
        ),
        extensions=public(),
    )
    @errors_as_data
    async def login(
        self,
        info: Info[Any, Any],
        input: Annotated[LoginInput, strawberry.argument(description="The credentials.")],
    ) -> LoginResult:
        context = info.context
        result = await service.login(
            input.email, input.password, context.client_address, context.auth
        )
        return LoginSucceeded(access_token=result.access_token, expires_at=result.expires_at)

    @strawberry.mutation(
        description=LOGOUT.describe("End the current session: its token stops working at once."),
        extensions=authenticated(),
    )
    @errors_as_data
    async def logout(self, info: Info[Any, Any]) -> LogoutResult:
        return LoggedOut(ended_at=await service.logout(await require_principal(info)))

    @strawberry.mutation(
        description=CREATE_STAFF_USER.describe("Add a staff user who can sign in at once."),
        extensions=allow(Role.ADMIN),
    )
    @errors_as_data
    async def create_staff_user(
        self,
        info: Info[Any, Any],
        input: Annotated[CreateStaffUserInput, strawberry.argument(description="The new user.")],
    ) -> CreateStaffUserResult:
        row = await service.create_staff_user(
            await require_principal(info),
            email=input.email,
            display_name=input.display_name,
            role=input.role,
            password=input.password,
            auth=info.context.auth,
        )
        return StaffUserCreated(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description=UPDATE_STAFF_USER.describe(
            "Change a staff user's display name, role or active flag (omitted fields keep "
            "their value)."
        ),
        extensions=allow(Role.ADMIN),
    )
    @errors_as_data
    async def update_staff_user(
        self,
        info: Info[Any, Any],
        input: Annotated[UpdateStaffUserInput, strawberry.argument(description="The changes.")],
    ) -> UpdateStaffUserResult:
        user_id = parse_id(input.id, "input.id", "StaffUser")
        row = await service.update_staff_user(
            await require_principal(info), user_id, staff_user_changes(input)
        )
        return StaffUserUpdated(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description=CHANGE_PASSWORD.describe(
            "Replace your own password (staff users only); your other sessions end."
        ),
        extensions=authenticated(),
    )
    @errors_as_data
    async def change_password(
        self,
        info: Info[Any, Any],
        input: Annotated[ChangePasswordInput, strawberry.argument(description="The passwords.")],
    ) -> ChangePasswordResult:
        row = await service.change_password(
            await require_principal(info),
            input.current_password,
            input.new_password,
            info.context.auth,
        )
        return PasswordChanged(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description=RESET_STAFF_PASSWORD.describe(
            "Set a staff user's password (when they forgot theirs); all their sessions end."
        ),
        extensions=allow(Role.ADMIN),
    )
    @errors_as_data
    async def reset_staff_password(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ResetStaffPasswordInput, strawberry.argument(description="Whose and the password.")
        ],
    ) -> ResetStaffPasswordResult:
        user_id = parse_id(input.id, "input.id", "StaffUser")
        row = await service.reset_password(
            await require_principal(info), user_id, input.new_password, info.context.auth
        )
        return StaffPasswordReset(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description=REVOKE_STAFF_SESSIONS.describe(
            "End every session of a staff user (their tokens stop working at once)."
        ),
        extensions=allow(Role.ADMIN),
    )
    @errors_as_data
    async def revoke_staff_sessions(
        self,
        info: Info[Any, Any],
        input: Annotated[RevokeStaffSessionsInput, strawberry.argument(description="Whose.")],
    ) -> RevokeStaffSessionsResult:
        user_id = parse_id(input.staff_user_id, "input.staffUserId", "StaffUser")
        revoked = await service.revoke_sessions(await require_principal(info), user_id)
        return StaffSessionsRevoked(
            staff_user=StaffUserNode.from_row(revoked.user), count=revoked.count
        )

    @strawberry.mutation(
        description=CREATE_API_KEY.describe(
            "Issue an API key; its secret is returned once, in `key`."
        ),
        extensions=allow(Role.ADMIN),
    )
    @errors_as_data
    async def create_api_key(
        self,
        info: Info[Any, Any],
        input: Annotated[CreateApiKeyInput, strawberry.argument(description="The new key.")],
    ) -> CreateApiKeyResult:
        created = await service.create_api_key(
            await require_principal(info),
            name=input.name,
            role=input.role,
            expires_at=input.expires_at,
            auth=info.context.auth,
        )
        return ApiKeyCreated(api_key=ApiKeyNode.from_row(created.key), key=created.full_key)

    @strawberry.mutation(
        description=REVOKE_API_KEY.describe("Revoke an API key: it stops working at once."),
        extensions=allow(Role.ADMIN),
    )
    @errors_as_data
    async def revoke_api_key(
        self,
        info: Info[Any, Any],
        input: Annotated[RevokeApiKeyInput, strawberry.argument(description="The key.")],
    ) -> RevokeApiKeyResult:
        key_id = parse_id(input.id, "input.id", "ApiKey")
        row = await service.revoke_api_key(await require_principal(info), key_id)
        return ApiKeyRevoked(api_key=ApiKeyNode.from_row(row))

    @strawberry.mutation(
        description=RECORD_STAFF_TRAINING.describe(
            "Record a privacy training a staff user completed (audited). While it is current "
            "the user passes the training requirement of `CDLM_REQUIRE_TRAINING`."
        ),
        extensions=allow(Role.ADMIN, Role.PRIVACY_OFFICER),
    )
    @errors_as_data
    async def record_staff_training(
        self,
        info: Info[Any, Any],
        input: Annotated[
            RecordStaffTrainingInput, strawberry.argument(description="The training.")
        ],
    ) -> RecordStaffTrainingResult:
        given = training.TrainingInput(
            staff_user_id=parse_id(input.staff_user_id, "input.staffUserId", "StaffUser"),
            course=input.course,
            completed_at=input.completed_at,
            valid_until=input.valid_until,
        )
        row = await training.record_training(await require_principal(info), given)
        return StaffTrainingRecorded(training=StaffTrainingNode.from_row(row))


async def _staff_user_objects(info: Info[Any, Any], ids: list[uuid.UUID]) -> list[object | None]:
    return list(await staff_user_nodes(info, ids))


async def _api_key_objects(info: Info[Any, Any], ids: list[uuid.UUID]) -> list[object | None]:
    return list(await api_key_nodes(info, ids))


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of("StaffUser", [Role.ADMIN], _staff_user_objects),
    NodeKind.of("ApiKey", [Role.ADMIN], _api_key_objects),
    NodeKind.of(
        "StaffTraining",
        [Role.ADMIN, Role.PRIVACY_OFFICER],
        rows_fetcher(training.trainings_by_ids, StaffTrainingNode.from_row),
    ),
)
