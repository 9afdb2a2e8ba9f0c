"""GraphQL API of authentication: sign-in, staff users, API keys and the viewer."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.auth import service
from cdlm.auth.models import ApiKey, StaffUser
from cdlm.core.errors import NotFound
from cdlm.core.personal_data import PersonalData
from cdlm.core.principal import PrincipalKind
from cdlm.core.roles import Role
from cdlm.graphql.errors import (
    ConflictError,
    InvalidCredentialsError,
    InvalidStateError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.masking import personal
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow, authenticated, public, require_principal
from cdlm.graphql.relay import NodeKind
from cdlm.graphql.scalars import parse_id

strawberry.enum(Role, description="What a caller may do.")
strawberry.enum(PrincipalKind, description="How the caller authenticated.")

_NEWEST_FIRST = [SortKey("created_at", descending=True), SortKey("id")]


@strawberry.type(name="StaffUser", description="A person who signs in to work with cdlm.")
class StaffUserNode:
    id: strawberry.ID
    email: str = strawberry.field(extensions=personal(PersonalData.EMAIL))
    display_name: str = strawberry.field(extensions=personal(PersonalData.NAME))
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def from_row(cls, row: StaffUser) -> "StaffUserNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            email=row.email,
            display_name=row.display_name,
            role=row.role,
            active=row.active,
            created_at=row.created_at,
            last_login_at=row.last_login_at,
        )


@strawberry.type(
    name="ApiKey", description="An API key; its secret is never shown again after creation."
)
class ApiKeyNode:
    id: strawberry.ID
    key_id: str = strawberry.field(description="The public part: keys read cdlm_<keyId>_<secret>.")
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = strawberry.field(description="Precise to about a minute.")
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: ApiKey) -> "ApiKeyNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            key_id=row.key_id,
            name=row.name,
            role=row.role,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type(description="The caller of this request.")
class Viewer:
    kind: PrincipalKind
    id: strawberry.ID | None
    role: Role
    name: str


# --------------------------------------------------------------------------- results


@strawberry.type(description="Signed in: send the token as `Authorization: Bearer <token>`.")
class LoginSucceeded:
    access_token: str
    expires_at: datetime


@strawberry.type
class LoggedOut:
    session_ended: bool


@strawberry.type
class StaffUserSaved:
    staff_user: StaffUserNode


@strawberry.type
class PasswordChanged:
    changed_at: datetime


@strawberry.type
class SessionsRevoked:
    count: int


@strawberry.type(description="A new API key. `key` is shown only here: store it now.")
class ApiKeyCreated:
    api_key: ApiKeyNode
    key: str


@strawberry.type
class ApiKeyRevoked:
    api_key: ApiKeyNode


LoginResult = Annotated[
    LoginSucceeded | InvalidCredentialsError | RateLimitedError, strawberry.union("LoginResult")
]
LogoutResult = Annotated[LoggedOut | InvalidStateError, strawberry.union("LogoutResult")]
StaffUserResult = Annotated[
    StaffUserSaved | ValidationError | ConflictError | NotFoundError | InvalidStateError,
    strawberry.union("StaffUserResult"),
]
ChangePasswordResult = Annotated[
    PasswordChanged | ValidationError | InvalidCredentialsError | InvalidStateError,
    strawberry.union("ChangePasswordResult"),
]
RevokeSessionsResult = Annotated[
    SessionsRevoked | NotFoundError | ValidationError, strawberry.union("RevokeSessionsResult")
]
CreateApiKeyResult = Annotated[
    ApiKeyCreated | ValidationError, strawberry.union("CreateApiKeyResult")
]
RevokeApiKeyResult = Annotated[
    ApiKeyRevoked | NotFoundError | InvalidStateError | ValidationError,
    strawberry.union("RevokeApiKeyResult"),
]


# ---------------------------------------------------------------------------- inputs


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class CreateStaffUserInput:
    email: str
    display_name: str
    role: Role
    password: str = strawberry.field(description="At least 12 characters.")


@strawberry.input
class UpdateStaffUserInput:
    id: strawberry.ID
    display_name: str | None = None
    role: Role | None = strawberry.field(
        default=None, description="Changing the role ends the user's sessions."
    )
    active: bool | None = strawberry.field(
        default=None, description="false deactivates the user and ends their sessions."
    )


@strawberry.input
class ChangePasswordInput:
    current_password: str
    new_password: str


@strawberry.input
class ResetPasswordInput:
    id: strawberry.ID
    new_password: str


@strawberry.input
class CreateApiKeyInput:
    name: str
    role: Role
    expires_at: datetime | None = None


# --------------------------------------------------------------------------- queries


@strawberry.type
class AuthQuery:
    @strawberry.field(description="Who is calling.", extensions=authenticated())
    async def viewer(self, info: Info[Any, Any]) -> Viewer:
        principal = await require_principal(info)
        assert principal.role is not None
        return Viewer(
            kind=principal.kind,
            id=strawberry.ID(str(principal.id)) if principal.id else None,
            role=principal.role,
            name=principal.name,
        )

    @strawberry.field(description="Staff users, newest first.", extensions=allow(Role.ADMIN))
    async def staff_users(
        self,
        info: Info[Any, Any],
        first: int | None = None,
        after: str | None = None,
        role: Role | None = None,
        include_inactive: bool = False,
    ) -> Connection[StaffUserNode]:
        page = await paginate(
            service.staff_users(role, include_inactive),
            order=_NEWEST_FIRST,
            first=first,
            after=after,
        )
        await service.audit_staff_read(await require_principal(info), page.rows)
        return page.to_connection(StaffUserNode.from_row)

    @strawberry.field(description="One staff user.", extensions=allow(Role.ADMIN))
    async def staff_user(self, info: Info[Any, Any], id: strawberry.ID) -> StaffUserNode | None:
        actor = await require_principal(info)
        try:
            row = await service.get_staff_user(actor, parse_id(id, "id"))
        except NotFound:
            return None
        return StaffUserNode.from_row(row)

    @strawberry.field(description="API keys, newest first.", extensions=allow(Role.ADMIN))
    async def api_keys(
        self, first: int | None = None, after: str | None = None, include_revoked: bool = False
    ) -> Connection[ApiKeyNode]:
        page = await paginate(
            service.api_keys(include_revoked), order=_NEWEST_FIRST, first=first, after=after
        )
        return page.to_connection(ApiKeyNode.from_row)


# ------------------------------------------------------------------------- mutations


@strawberry.type
class AuthMutation:
    @strawberry.mutation(description="Sign in as a staff user.", extensions=public())
    @errors_as_data
    async def login(self, info: Info[Any, Any], input: LoginInput) -> LoginResult:
        context = info.context
        result = await service.login(
            input.email, input.password, context.client_address, context.auth
        )
        return LoginSucceeded(access_token=result.access_token, expires_at=result.expires_at)

    @strawberry.mutation(description="End the current session.", extensions=authenticated())
    @errors_as_data
    async def logout(self, info: Info[Any, Any]) -> LogoutResult:
        await service.logout(await require_principal(info))
        return LoggedOut(session_ended=True)

    @strawberry.mutation(description="Add a staff user.", extensions=allow(Role.ADMIN))
    @errors_as_data
    async def create_staff_user(
        self, info: Info[Any, Any], input: CreateStaffUserInput
    ) -> StaffUserResult:
        row = await service.create_staff_user(
            await require_principal(info),
            email=input.email,
            display_name=input.display_name,
            role=input.role,
            password=input.password,
            auth=info.context.auth,
        )
        return StaffUserSaved(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description="Change a staff user's name, role or active flag.", extensions=allow(Role.ADMIN)
    )
    @errors_as_data
    async def update_staff_user(
        self, info: Info[Any, Any], input: UpdateStaffUserInput
    ) -> StaffUserResult:
        row = await service.update_staff_user(
            await require_principal(info),
            parse_id(input.id, "input.id"),
            display_name=input.display_name,
            role=input.role,
            active=input.active,
        )
        return StaffUserSaved(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description="Replace your own password; your other sessions end.",
        extensions=authenticated(),
    )
    @errors_as_data
    async def change_password(
        self, info: Info[Any, Any], input: ChangePasswordInput
    ) -> ChangePasswordResult:
        changed_at = await service.change_password(
            await require_principal(info),
            input.current_password,
            input.new_password,
            info.context.auth,
        )
        return PasswordChanged(changed_at=changed_at)

    @strawberry.mutation(
        description="Set a staff user's password; their sessions end.", extensions=allow(Role.ADMIN)
    )
    @errors_as_data
    async def reset_staff_password(
        self, info: Info[Any, Any], input: ResetPasswordInput
    ) -> StaffUserResult:
        row = await service.reset_password(
            await require_principal(info),
            parse_id(input.id, "input.id"),
            input.new_password,
            info.context.auth,
        )
        return StaffUserSaved(staff_user=StaffUserNode.from_row(row))

    @strawberry.mutation(
        description="End every session of a staff user.", extensions=allow(Role.ADMIN)
    )
    @errors_as_data
    async def revoke_staff_sessions(
        self, info: Info[Any, Any], user_id: strawberry.ID
    ) -> RevokeSessionsResult:
        count = await service.revoke_sessions(
            await require_principal(info), parse_id(user_id, "userId")
        )
        return SessionsRevoked(count=count)

    @strawberry.mutation(description="Issue an API key.", extensions=allow(Role.ADMIN))
    @errors_as_data
    async def create_api_key(
        self, info: Info[Any, Any], input: CreateApiKeyInput
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
        description="Revoke an API key; it stops working at once.", extensions=allow(Role.ADMIN)
    )
    @errors_as_data
    async def revoke_api_key(self, info: Info[Any, Any], id: strawberry.ID) -> RevokeApiKeyResult:
        row = await service.revoke_api_key(await require_principal(info), parse_id(id, "id"))
        return ApiKeyRevoked(api_key=ApiKeyNode.from_row(row))


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()
