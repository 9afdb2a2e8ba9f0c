"""Text rules shared by every domain: control characters and text direction overrides."""

from __future__ import annotations

import pytest

from cdlm.core.errors import ValidationFailed
from cdlm.core.text import BIDI_CONTROLS, has_control_characters, staff_text

pytestmark = pytest.mark.pure


def test_the_bidirectional_controls_are_the_embeddings_overrides_and_isolates() -> None:
    assert sorted(f"U+{ord(ch):04X}" for ch in BIDI_CONTROLS) == [
        "U+202A", "U+202B", "U+202C", "U+202D", "U+202E",
        "U+2066", "U+2067", "U+2068", "U+2069",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "text",
    ["a\x00b", "tab\there", "line\nbreak", "del\x7f", "c1\x85", "\u202eevil", "a\u2066b\u2069"],
)
def test_control_and_direction_characters_are_found(text: str) -> None:
    assert has_control_characters(text)


@pytest.mark.parametrize(
    "text",
    # Letters of any script, marks that only hint direction, joiners and plain spaces pass.
    ["Anna Müller", "محمد", "שלום\u200fabc", "a\u200db", "\xa0nbsp", "🙂"],
)
def test_ordinary_text_passes(text: str) -> None:
    assert not has_control_characters(text)


def test_staff_text_refuses_direction_overrides_and_keeps_line_breaks() -> None:
    with pytest.raises(ValidationFailed) as refused:
        staff_text("refund \u202egnp.exe", "input.reason", required=True)
    assert refused.value.field == "input.reason"
    assert staff_text(" two\nlines ", "input.note", required=False) == "two\nlines"
