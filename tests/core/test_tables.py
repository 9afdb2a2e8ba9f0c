"""The base class of cdlm's tables: Tortoise does not read the models' source at import."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest
from tortoise.models import Model as TortoiseModel

from cdlm.core.tables import Model
from cdlm.db.orm_config import MODEL_MODULES

pytestmark = pytest.mark.pure


def tables() -> list[type[TortoiseModel]]:
    found = []
    for name in MODEL_MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, TortoiseModel)
                and not value._meta.abstract
                and value.__module__ == name
            ):
                found.append(value)
    return found


def test_every_table_derives_from_the_cdlm_base_and_skips_the_source_reading() -> None:
    found = tables()
    assert len(found) > 30
    for table in found:
        assert issubclass(table, Model), f"{table.__name__}: use cdlm.core.tables.Model"
        assert vars(table).get("_no_comments") is True, table.__name__


def test_no_model_module_writes_tortoise_field_comments() -> None:
    # Tortoise would turn `#: text` before a field into its description; cdlm's base class
    # skips that reading, so such a comment would silently describe nothing.
    for name in MODEL_MODULES:
        source = inspect.getsource(importlib.import_module(name))
        assert not re.search(r"^\s*#:", source, re.MULTILINE), name


def test_the_base_is_abstract_and_adds_no_field() -> None:
    assert Model._meta.abstract
    assert not Model._meta.fields_map
