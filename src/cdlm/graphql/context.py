"""Per-request context: request id, settings, caller and DataLoaders.

A new :class:`Context` (and so new DataLoaders) is built for every request; nothing here is
cached at module level, because a warm Lambda container serves many callers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from cdlm.config import Settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

BatchFunction = Callable[[list[K]], Awaitable[list[V]]]


class Loaders:
    """The request's DataLoaders, one per batch function, created on first use.

    Domains write batch functions (``<thing>_by_<key>`` in their ``loaders.py``) and resolvers
    call ``info.context.loaders.get(customers_by_id).load(customer_id)``.
    """

    def __init__(self) -> None:
        self._loaders: dict[Callable[..., Any], DataLoader[Any, Any]] = {}

    def get(self, batch: Callable[[list[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
        """The DataLoader of this request for ``batch``."""
        loader = self._loaders.get(batch)
        if loader is None:
            loader = DataLoader(load_fn=batch)
            self._loaders[batch] = loader
        return cast(DataLoader[K, V], loader)


@dataclass
class Context:
    """What every resolver can reach through ``info.context``."""

    request: Request
    response: Response
    request_id: str
    settings: Settings
    loaders: Loaders = field(default_factory=Loaders)
