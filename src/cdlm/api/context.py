"""Per-request context: request id, settings, caller and DataLoaders.

A new :class:`Context` (and so new DataLoaders) is built for every request; nothing here is
cached at module level, because a warm Lambda container serves many callers.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from cdlm.audit import reads as read_audit
from cdlm.audit.reads import RequestReads
from cdlm.auth.service import authenticate
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core.errors import AuthenticationRequired, InvalidCredentials, PermissionDenied
from cdlm.core.principal import Principal
from cdlm.dsr.notifier import Notifier
from cdlm.vault.service import Vault

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_INVALID = "Invalid or expired credentials."


class Loaders:
    """The request's DataLoaders, one per batch function, created on first use.

    Domains write batch functions (``<thing>_by_<key>`` in their ``loaders.py``) and resolvers
    call ``info.context.loaders.get(absorbed_by_customer).load(customer_id)``.
    """

    def __init__(self) -> None:
        self._loaders: dict[tuple[Any, ...], DataLoader[Any, Any]] = {}

    def get(self, batch: Callable[..., Awaitable[list[V]]], *bound: Hashable) -> DataLoader[Any, V]:
        """The DataLoader of this request for ``batch`` (with ``bound`` leading arguments,
        such as the vault, passed before the keys)."""
        cache_key = (batch, *bound)
        loader = self._loaders.get(cache_key)
        if loader is None:
            load_fn = functools.partial(batch, *bound) if bound else batch
            loader = DataLoader(load_fn=load_fn)
            self._loaders[cache_key] = loader
        return cast(DataLoader[Any, V], loader)


def bearer_credential(request: Request) -> str | None:
    """The credential of ``Authorization: Bearer …``; raises for any other malformed header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        raise AuthenticationRequired(_INVALID)
    return credential


@dataclass
class Context:
    """What every resolver can reach through ``info.context``."""

    request: Request
    response: Response
    request_id: str
    settings: Settings
    auth: AuthSettings
    vault: Vault
    notifier: Notifier
    loaders: Loaders = field(default_factory=Loaders)
    authenticated_principal: Principal | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _resolved: bool = False
    _rejected: bool = False
    _failure: Exception | None = None
    reads: RequestReads = field(default_factory=RequestReads)

    def audit_read(
        self,
        target_ids: Iterable[uuid.UUID],
        fields: Iterable[str],
        *,
        action: str = "customer.read",
        target_type: str = "customer",
    ) -> None:
        """Note that this request read these targets' personal ``fields``. The request's
        reads are recorded together, before its response is sent (reads that touched no
        personal field are not recorded). Every read of a data subject goes through here, so
        this is where a caller held back from personal data is refused
        (:meth:`admit_personal_data`)."""
        self.admit_personal_data()
        self.reads.note(target_ids, fields, action=action, target_type=target_type)

    def admit_personal_data(self) -> None:
        """Refuse with a top-level FORBIDDEN error when the caller may not access data
        subjects' personal data now (privacy training its role requires is not current: the
        principal says so, decided once when it was authenticated). The one place that
        decides it: every personal read passes here (:meth:`audit_read`), and so does the
        permission of every operation declared as working on personal data
        (``allow(..., personal=True)``)."""
        principal = self.authenticated_principal
        if principal is not None and principal.personal_data_refusal is not None:
            raise PermissionDenied(principal.personal_data_refusal)

    async def settle_deferred(self) -> list[BaseException]:
        """Write the request's read audit (one record per kind of read); returns the failure,
        if any, so the response can be withheld."""
        reads = self.reads.take()
        if not reads or self.authenticated_principal is None:
            return []
        try:
            await read_audit.record(self.authenticated_principal, reads)
        except Exception as failure:
            return [failure]
        return []

    @property
    def client_address(self) -> str | None:
        """The caller's network address (API Gateway's source IP on Lambda)."""
        return self.request.client.host if self.request.client else None

    async def resolve_caller(self) -> None:
        """Authenticate the caller, once, before the operation runs (so permission checks
        are plain, synchronous lookups). Nothing is raised here: a rejection or failure is
        raised by the first field that needs the caller, as a GraphQL error."""
        async with self._lock:
            if self._resolved:
                return
            self._resolved = True
            try:
                credential = bearer_credential(self.request)
                if credential is not None:
                    self.authenticated_principal = await authenticate(credential, self.auth)
            except (InvalidCredentials, AuthenticationRequired):
                self._rejected = True
            except Exception as failure:  # e.g. the database is unreachable
                self._failure = failure

    def caller(self) -> Principal | None:
        """The authenticated caller; None when no credentials were sent. Bad credentials of
        any kind raise the same top-level authentication error."""
        if not self._resolved:
            raise RuntimeError("the caller is resolved when the request's context is built")
        if self._failure is not None:
            raise self._failure
        if self._rejected:
            raise AuthenticationRequired(_INVALID)
        return self.authenticated_principal

    async def principal(self) -> Principal | None:
        """:meth:`caller`, resolving it first if the context was built without it."""
        await self.resolve_caller()
        return self.caller()
