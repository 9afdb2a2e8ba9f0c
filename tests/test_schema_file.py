"""``schema.graphql`` is generated from the code; it must not drift."""

from __future__ import annotations

from cdlm.api.schema import schema_sdl
from tests.support.lambda_invoke import ROOT


def test_checked_in_schema_matches_the_code() -> None:
    checked_in = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert checked_in == schema_sdl(), "schema.graphql is stale: run `make schema`"


def test_schema_has_the_error_convention() -> None:
    sdl = schema_sdl()
    assert "interface UserError {" in sdl
    assert "code: UserErrorCode!" in sdl
    assert "type ValidationError implements UserError" in sdl
