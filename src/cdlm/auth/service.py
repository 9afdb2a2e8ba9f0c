"""Authentication and account rules: login, sessions, staff users, API keys, bootstrap."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.auth import api_keys as key_format
from cdlm.auth import training
from cdlm.auth.models import ApiKey, StaffSession, StaffUser
from cdlm.auth.passwords import password_issues
from cdlm.auth.settings import AuthSettings
from cdlm.auth.tokens import TokenInvalid, issue_access_token, read_access_token
from cdlm.core import clock
from cdlm.core.errors import (
    Conflict,
    ErrorCode,
    FieldIssue,
    InvalidCredentials,
    InvalidStateTransition,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from cdlm.core.principal import ANONYMOUS, SYSTEM, Principal, PrincipalKind
from cdlm.core.roles import Role
from cdlm.core.text import has_control_characters
from cdlm.ratelimit import service as ratelimit

#: Failed logins allowed per account, and per client address, in one window.
ACCOUNT_LOGIN_LIMIT = ratelimit.Limit(attempts=5, window=timedelta(minutes=15))
ADDRESS_LOGIN_LIMIT = ratelimit.Limit(attempts=30, window=timedelta(minutes=15))
#: How stale ``last_used_at`` of an API key may get before a request refreshes it.
LAST_USED_RESOLUTION = timedelta(minutes=1)

_BAD_CREDENTIALS = "Email or password is incorrect."
_INVALID_CREDENTIAL = "Invalid or expired credentials."


# ----------------------------------------------------------------------------- helpers


def normalize_email(email: str, field_path: str) -> str:
    """The lower-cased, syntax-checked email; raises :class:`ValidationFailed`."""
    from email_validator import EmailNotValidError, validate_email  # not needed at start-up

    try:
        normalized = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValidationFailed("Enter a valid email address.", field=field_path) from None
    return normalized.lower()


def _display_name(name: str, field_path: str) -> str:
    if has_control_characters(name):
        raise ValidationFailed("Name must not contain control characters.", field=field_path)
    cleaned = " ".join(name.split())
    if not cleaned:
        raise ValidationFailed("Name must not be empty.", field=field_path)
    if len(cleaned) > 200:
        raise ValidationFailed("Name must have at most 200 characters.", field=field_path)
    return cleaned


def _require_user(actor: Principal) -> uuid.UUID:
    if actor.kind is not PrincipalKind.USER or actor.id is None:
        raise InvalidStateTransition("Only a signed-in staff user can do this.")
    return actor.id


async def _get_user(user_id: uuid.UUID, field_path: str = "id") -> StaffUser:
    user = await StaffUser.get_or_none(id=user_id)
    if user is None:
        raise NotFound("No staff user has this id.", field=field_path)
    return user


# ----------------------------------------------------------------------- authentication


async def _user_principal(credential: str, auth: AuthSettings) -> Principal:
    try:
        claims = read_access_token(auth.token_secret, credential)
    except TokenInvalid:
        raise InvalidCredentials(_INVALID_CREDENTIAL) from None
    session = await StaffSession.filter(id=claims.session_id).select_related("user").first()
    now = clock.now()
    if (
        session is None
        or session.revoked_at is not None
        or session.expires_at <= now
        or session.user.id != claims.user_id
        or not session.user.active
    ):
        raise InvalidCredentials(_INVALID_CREDENTIAL)
    user = session.user
    refusal = None
    if user.role in auth.require_training:
        # Read once per request, here, and only for the roles that need it.
        valid_until = await training.latest_valid_until(user.id, now)
        refusal = training.refusal(user.role, valid_until, now)
    return Principal(
        kind=PrincipalKind.USER,
        id=user.id,
        role=user.role,
        name=user.display_name,
        session_id=session.id,
        personal_data_refusal=refusal,
    )


async def _api_key_principal(credential: str, auth: AuthSettings) -> Principal:
    parsed = key_format.parse_key(credential)
    if parsed is None:
        raise InvalidCredentials(_INVALID_CREDENTIAL)
    now = clock.now()
    known = key_format.known_keys.principal(parsed.key_id, parsed.secret, now)
    if known is not None:
        return known
    key = await ApiKey.get_or_none(key_id=parsed.key_id)
    if key is None:
        # Key ids are random public labels: saying one does not exist reveals nothing, so no
        # dummy argon2 run (which anyone could trigger at will) is spent on unknown ids.
        raise InvalidCredentials(_INVALID_CREDENTIAL)
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        key_format.forget(key.key_id)
        raise InvalidCredentials(_INVALID_CREDENTIAL)
    if not key_format.verified_secrets.contains(key.key_id, parsed.secret):
        if not await auth.hasher.verify_async(key.secret_hash, parsed.secret):
            raise InvalidCredentials(_INVALID_CREDENTIAL)
        key_format.verified_secrets.remember(key.key_id, parsed.secret)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        await ApiKey.filter(id=key.id).update(last_used_at=now)
    principal = Principal(kind=PrincipalKind.API_KEY, id=key.id, role=key.role, name=key.name)
    key_format.known_keys.remember(key.key_id, parsed.secret, principal, key.expires_at)
    return principal


async def authenticate(credential: str, auth: AuthSettings) -> Principal:
    """The caller behind a bearer credential (API key or access token).

    Raises :class:`InvalidCredentials` with the same message whatever is wrong.
    """
    if key_format.looks_like_api_key(credential):
        return await _api_key_principal(credential, auth)
    return await _user_principal(credential, auth)


@dataclass(frozen=True)
class LoginSuccess:
    """A new session and its access token."""

    access_token: str
    expires_at: datetime
    user: StaffUser


async def login(
    email: str, password: str, client_address: str | None, auth: AuthSettings
) -> LoginSuccess:
    """Sign a staff user in.

    Every attempt is counted first (atomically, per account and per client address), so
    concurrent guesses cannot slip past the limit; a success gives its attempts back. Unknown
    account, inactive account and wrong password give the same error after the same work (one
    argon2 verification, off the event loop).
    """
    normalized = email.strip().lower()
    account_key = auth.keyed_digest("login-account", normalized)
    address_key = auth.keyed_digest("login-address", client_address or "unknown")
    async with in_transaction():
        account_attempts = await ratelimit.count_attempt(account_key, ACCOUNT_LOGIN_LIMIT)
        address_attempts = await ratelimit.count_attempt(address_key, ADDRESS_LOGIN_LIMIT)
    over_account = account_attempts > ACCOUNT_LOGIN_LIMIT.attempts
    over_address = address_attempts > ADDRESS_LOGIN_LIMIT.attempts
    if over_account or over_address:
        if account_attempts == ACCOUNT_LOGIN_LIMIT.attempts + 1 or (
            address_attempts == ADDRESS_LOGIN_LIMIT.attempts + 1
        ):
            await audit.record(ANONYMOUS, "auth.login_rate_limited")  # once per window
        raise RateLimited("Too many failed sign-ins. Try again later.")
    user = None
    if not has_control_characters(normalized):
        user = await StaffUser.get_or_none(email=normalized)
    if user is not None and user.active:
        verified = await auth.hasher.verify_async(user.password_hash, password)
    else:
        await auth.hasher.verify_nothing_async(password)
        verified = False
    if not verified or user is None:
        await audit.record(
            ANONYMOUS,
            "auth.login_failed",
            target_type="staff_user" if user else None,
            target_id=user.id if user else None,
        )
        raise InvalidCredentials(_BAD_CREDENTIALS)
    now = clock.now()
    upgraded = (
        await auth.hasher.hash_async(password)
        if auth.hasher.needs_rehash(user.password_hash)
        else None
    )
    async with in_transaction():
        fresh = await StaffUser.filter(id=user.id).select_for_update().get()
        if not fresh.active or fresh.password_hash != user.password_hash:
            # Deactivated or given a new password while this attempt was being checked.
            raise InvalidCredentials(_BAD_CREDENTIALS)
        changes: dict[str, Any] = {"last_login_at": now}
        if upgraded is not None:
            changes["password_hash"] = upgraded
        await StaffUser.filter(id=user.id).update(**changes)
        session = await StaffSession.create(
            id=uuid.uuid4(), user=fresh, created_at=now, expires_at=now + auth.access_token_ttl
        )
        await ratelimit.clear(account_key)
        await ratelimit.give_back(address_key, ADDRESS_LOGIN_LIMIT)
        actor = Principal(PrincipalKind.USER, user.id, fresh.role, fresh.display_name, session.id)
        await audit.record(actor, "auth.login", target_type="staff_session", target_id=session.id)
    token = issue_access_token(auth.token_secret, user.id, session.id, session.expires_at)
    return LoginSuccess(access_token=token, expires_at=session.expires_at, user=fresh)


async def logout(actor: Principal) -> datetime:
    """End the caller's session; its token stops working at once. Returns when."""
    _require_user(actor)
    if actor.session_id is None:
        raise InvalidStateTransition("There is no session to end.")
    now = clock.now()
    async with in_transaction():
        await StaffSession.filter(id=actor.session_id, revoked_at__isnull=True).update(
            revoked_at=now
        )
        await audit.record(
            actor, "auth.logout", target_type="staff_session", target_id=actor.session_id
        )
    return now


@dataclass(frozen=True)
class RevokedSessions:
    """The staff user whose sessions ended, and how many were open."""

    user: StaffUser
    count: int


async def revoke_sessions(
    actor: Principal, user_id: uuid.UUID, field_path: str = "input.staffUserId"
) -> RevokedSessions:
    """End every open session of a staff user; ``field_path`` names the id in errors."""
    user = await _get_user(user_id, field_path)
    async with in_transaction():
        count = await StaffSession.filter(user_id=user.id, revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        await audit.record(
            actor, "auth.sessions_revoked", target_type="staff_user", target_id=user.id
        )
    return RevokedSessions(user=user, count=count)


# -------------------------------------------------------------------------- staff users


def staff_users(role: Role | None = None, include_inactive: bool = False) -> QuerySet[StaffUser]:
    """Staff users, optionally of one role; inactive ones only when asked.

    Callers that show the rows must audit the read (:func:`audit_staff_read`).
    """
    query = StaffUser.all()
    if role is not None:
        query = query.filter(role=role)
    if not include_inactive:
        query = query.filter(active=True)
    return query


STAFF_PERSONAL_FIELDS = ("display_name", "email")


async def audit_staff_read(actor: Principal, users: list[StaffUser]) -> None:
    """Record that ``actor`` read these staff records (names and work emails are personal)."""
    await audit.record_many(
        actor,
        "staff_user.read",
        target_type="staff_user",
        target_ids=[user.id for user in users],
        fields=STAFF_PERSONAL_FIELDS,
    )


async def is_active_staff(user_id: uuid.UUID) -> bool:
    """True when an active staff user has this id (work can be assigned to them)."""
    return await StaffUser.exists(id=user_id, active=True)


async def active_staff_roles(user_ids: list[uuid.UUID]) -> dict[uuid.UUID, Role]:
    """The role of each active staff user among ``user_ids`` (others are left out)."""
    rows = await StaffUser.filter(id__in=user_ids, active=True).values_list("id", "role")
    return {user_id: Role(role) for user_id, role in rows}


async def get_staff_user(actor: Principal, user_id: uuid.UUID) -> StaffUser:
    """One staff user (the read is audited)."""
    user = await _get_user(user_id)
    await audit_staff_read(actor, [user])
    return user


async def staff_users_by_ids(actor: Principal, ids: list[uuid.UUID]) -> list[StaffUser | None]:
    """The staff users ``ids`` in order (None for an id of nobody); the read of those found
    is audited."""
    found = {user.id: user for user in await StaffUser.filter(id__in=ids)}
    await audit_staff_read(actor, list(found.values()))
    return [found.get(user_id) for user_id in ids]


async def create_staff_user(
    actor: Principal,
    *,
    email: str,
    display_name: str,
    role: Role,
    password: str,
    auth: AuthSettings,
) -> StaffUser:
    """Add a staff user who can sign in with ``password``."""
    issues: list[FieldIssue] = []
    normalized: str | None = None
    try:
        normalized = normalize_email(email, "input.email")
    except ValidationFailed as error:
        issues.append(FieldIssue("input.email", ErrorCode.VALIDATION, error.message))
    try:
        name = _display_name(display_name, "input.displayName")
    except ValidationFailed as error:
        issues.append(FieldIssue("input.displayName", ErrorCode.VALIDATION, error.message))
    issues.extend(password_issues(password, "input.password", email=normalized))
    if issues:
        raise ValidationFailed.from_issues(issues)
    assert normalized is not None
    if await StaffUser.exists(email=normalized):
        raise Conflict("A staff user with this email exists.", field="input.email")
    password_hash = await auth.hasher.hash_async(password)
    now = clock.now()
    try:
        async with in_transaction():
            user = await StaffUser.create(
                id=uuid.uuid4(),
                email=normalized,
                display_name=name,
                role=role,
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
                password_changed_at=now,
            )
            await audit.record(
                actor,
                "staff_user.create",
                target_type="staff_user",
                target_id=user.id,
                fields=["email", "display_name"],
            )
    except IntegrityError:
        raise Conflict("A staff user with this email exists.", field="input.email") from None
    return user


@dataclass(frozen=True)
class StaffUserChanges:
    """What to change of a staff user; None keeps the current value."""

    display_name: str | None = None
    role: Role | None = None
    active: bool | None = None


async def update_staff_user(
    actor: Principal, user_id: uuid.UUID, changes: StaffUserChanges
) -> StaffUser:
    """Change a staff user's name, role or active flag; the last active admin stays admin."""
    user = await _get_user(user_id, "input.id")
    role, active = changes.role, changes.active
    name = (
        _display_name(changes.display_name, "input.displayName")
        if changes.display_name is not None
        else None
    )
    changed: list[str] = []
    if name is not None and name != user.display_name:
        changed.append("display_name")
    if role is not None and role != user.role:
        changed.append("role")
    if active is not None and active != user.active:
        changed.append("active")
    if not changed:
        return user
    demoting = (
        user.role == Role.ADMIN
        and user.active
        and ((role is not None and role != Role.ADMIN) or active is False)
    )
    async with in_transaction():
        locked = await StaffUser.filter(id=user.id).select_for_update().get()
        if demoting:
            # Lock the admin rows so two admins cannot demote each other at the same time.
            admins = (
                await StaffUser.filter(role=Role.ADMIN, active=True)
                .order_by("id")
                .select_for_update()
            )
            if not any(admin.id != user.id for admin in admins):
                raise InvalidStateTransition(
                    "This is the last active admin; make another admin first.",
                    field="input.role" if "role" in changed else "input.active",
                )
        updates: dict[str, Any] = {"updated_at": clock.now()}
        if "display_name" in changed:
            updates["display_name"] = name
        if "role" in changed:
            updates["role"] = role
        if "active" in changed:
            updates["active"] = active
        await StaffUser.filter(id=user.id).update(**updates)
        lowered = ("role" in changed and role != Role.ADMIN) or active is False
        if "role" in changed or active is False:
            await StaffSession.filter(user_id=user.id, revoked_at__isnull=True).update(
                revoked_at=updates["updated_at"]
            )
        if lowered:
            await _revoke_keys_issued_by(user.id, updates["updated_at"])
        if "display_name" in changed:
            await audit.record(
                actor,
                "staff_user.update",
                target_type="staff_user",
                target_id=user.id,
                fields=["display_name"],
            )
        if "role" in changed:
            await audit.record(
                actor,
                f"staff_user.role_change.{locked.role.value}.to.{role.value if role else ''}",
                target_type="staff_user",
                target_id=user.id,
            )
        if "active" in changed:
            await audit.record(
                actor,
                "staff_user.activate" if active else "staff_user.deactivate",
                target_type="staff_user",
                target_id=user.id,
            )
    return await StaffUser.get(id=user.id)


async def _revoke_keys_issued_by(user_id: uuid.UUID, when: datetime) -> int:
    """Revoke the API keys a user created, and the keys those keys created, transitively.

    A key must not outlive the authority of whoever issued it.
    """
    revoked = 0
    issuers = [user_id]
    while issuers:
        keys = await ApiKey.filter(created_by_id__in=issuers, revoked_at__isnull=True)
        if not keys:
            break
        await ApiKey.filter(id__in=[k.id for k in keys]).update(revoked_at=when)
        for key in keys:
            key_format.forget(key.key_id)
        revoked += len(keys)
        issuers = [k.id for k in keys]
    return revoked


async def change_password(
    actor: Principal, current_password: str, new_password: str, auth: AuthSettings
) -> StaffUser:
    """The signed-in user replaces their password; other sessions end. Returns the user (its
    ``password_changed_at`` says when)."""
    user = await StaffUser.get_or_none(id=_require_user(actor))
    if user is None:
        raise InvalidStateTransition("The account changed meanwhile; sign in again.")
    if not await auth.hasher.verify_async(user.password_hash, current_password):
        raise InvalidCredentials(
            "The current password is incorrect.", field="input.currentPassword"
        )
    issues = password_issues(new_password, "input.newPassword", email=user.email)
    if issues:
        raise ValidationFailed.from_issues(issues)
    new_hash = await auth.hasher.hash_async(new_password)
    now = clock.now()
    async with in_transaction():
        fresh = await StaffUser.filter(id=user.id).select_for_update().get()
        if fresh.password_hash != user.password_hash or not fresh.active:
            raise InvalidStateTransition("The account changed meanwhile; sign in again.")
        await StaffUser.filter(id=user.id).update(
            password_hash=new_hash, password_changed_at=now, updated_at=now
        )
        await (
            StaffSession.filter(user_id=user.id, revoked_at__isnull=True)
            .exclude(id=actor.session_id)
            .update(revoked_at=now)
        )
        await audit.record(
            actor, "auth.password_changed", target_type="staff_user", target_id=user.id
        )
    return await StaffUser.get(id=user.id)


async def reset_password(
    actor: Principal, user_id: uuid.UUID, new_password: str, auth: AuthSettings
) -> StaffUser:
    """An admin sets a staff user's password; all that user's sessions end."""
    user = await _get_user(user_id, "input.id")
    issues = password_issues(new_password, "input.newPassword", email=user.email)
    if issues:
        raise ValidationFailed.from_issues(issues)
    new_hash = await auth.hasher.hash_async(new_password)
    now = clock.now()
    async with in_transaction():
        await StaffUser.filter(id=user.id).update(
            password_hash=new_hash, password_changed_at=now, updated_at=now
        )
        await StaffSession.filter(user_id=user.id, revoked_at__isnull=True).update(revoked_at=now)
        await audit.record(
            actor, "auth.password_reset", target_type="staff_user", target_id=user.id
        )
    return await StaffUser.get(id=user.id)


# ----------------------------------------------------------------------------- API keys


def api_keys(role: Role | None = None, include_revoked: bool = False) -> QuerySet[ApiKey]:
    """API keys (never their secrets), optionally of one role; revoked ones only when asked."""
    query = ApiKey.all()
    if role is not None:
        query = query.filter(role=role)
    if not include_revoked:
        query = query.filter(revoked_at__isnull=True)
    return query


async def api_keys_by_ids(ids: list[uuid.UUID]) -> list[ApiKey | None]:
    """The API keys ``ids`` in order (None for an id of no key)."""
    found = {key.id: key for key in await ApiKey.filter(id__in=ids)}
    return [found.get(key_id) for key_id in ids]


@dataclass(frozen=True)
class CreatedKey:
    """A new API key; ``full_key`` exists only in this object and is shown once."""

    key: ApiKey
    full_key: str


async def create_api_key(
    actor: Principal,
    *,
    name: str,
    role: Role,
    expires_at: datetime | None,
    auth: AuthSettings,
) -> CreatedKey:
    """Issue an API key with ``role``; the secret is returned once and stored hashed."""
    label = _display_name(name, "input.name")
    now = clock.now()
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValidationFailed("Give the expiry with a time zone.", field="input.expiresAt")
        if expires_at <= now:
            raise ValidationFailed("The expiry must be in the future.", field="input.expiresAt")
    key_id, secret, full_key = key_format.new_key()
    secret_hash = await auth.hasher.hash_async(secret)
    async with in_transaction():
        key = await ApiKey.create(
            id=uuid.uuid4(),
            key_id=key_id,
            name=label,
            role=role,
            secret_hash=secret_hash,
            created_at=now,
            created_by_kind=actor.kind.value,
            created_by_id=actor.id,
            expires_at=expires_at,
        )
        await audit.record(actor, "api_key.create", target_type="api_key", target_id=key.id)
    return CreatedKey(key=key, full_key=full_key)


async def revoke_api_key(
    actor: Principal, api_key_id: uuid.UUID, field_path: str = "input.id"
) -> ApiKey:
    """Revoke a key; it stops working at once in every process. ``field_path`` names the id
    in errors."""
    key = await ApiKey.get_or_none(id=api_key_id)
    if key is None:
        raise NotFound("No API key has this id.", field=field_path)
    if key.revoked_at is not None:
        raise InvalidStateTransition("This API key is already revoked.", field=field_path)
    key.revoked_at = clock.now()
    async with in_transaction():
        await key.save(update_fields=["revoked_at"])
        await audit.record(actor, "api_key.revoke", target_type="api_key", target_id=key.id)
    key_format.forget(key.key_id)
    return key


# ---------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Bootstrap:
    """The first admin, with a password and an API key to show once."""

    user: StaffUser
    password: str
    api_key: str


async def needs_bootstrap() -> bool:
    """True while no admin exists."""
    return not await StaffUser.exists(role=Role.ADMIN)


BOOTSTRAP_LOCK_KEY = 0x626F6F74  # "boot"


async def bootstrap(email: str, display_name: str, auth: AuthSettings) -> Bootstrap:
    """Create the first admin and an admin API key, atomically; refused once an admin exists."""
    password = secrets.token_urlsafe(18)
    async with in_transaction():
        await get_connection("default").execute_query(
            "SELECT pg_advisory_xact_lock($1)", [BOOTSTRAP_LOCK_KEY]
        )
        if not await needs_bootstrap():
            raise Conflict("cdlm is already bootstrapped: an admin exists.")
        user = await create_staff_user(
            SYSTEM,
            email=email,
            display_name=display_name,
            role=Role.ADMIN,
            password=password,
            auth=auth,
        )
        created = await create_api_key(
            SYSTEM, name="bootstrap admin key", role=Role.ADMIN, expires_at=None, auth=auth
        )
    return Bootstrap(user=user, password=password, api_key=created.full_key)
