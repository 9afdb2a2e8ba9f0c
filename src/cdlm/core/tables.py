"""The base class of every cdlm table (Tortoise model).

Tortoise reads each model class's source (``inspect.getsource``, which parses the whole module
again for every class) to turn ``#:`` comments into field descriptions. cdlm describes its
fields in docstrings and the data map instead and writes no such comments, so that reading is
skipped: with ~40 models it was a tenth of the API's start-up. Field descriptions stay as they
were (none came from comments); ``tests/core/test_tables.py`` checks that no ``#:`` comment is
written in a model, where it would now be ignored.
"""

from __future__ import annotations

from typing import Any

from tortoise.models import Model as TortoiseModel
from tortoise.models import ModelMeta


class _TableMeta(ModelMeta):
    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        attrs.setdefault("_no_comments", True)  # Tortoise reads this from the class body only
        return super().__new__(mcs, name, bases, attrs)


class Model(TortoiseModel, metaclass=_TableMeta):
    """A Tortoise model whose class source is not read at import."""

    class Meta:
        abstract = True
