"""Feedback events: scored for sentiment at ingestion, with their survey answers checked.

An event whose type is a feedback type (``CDLM_FEEDBACK_EVENT_TYPES``; by default ``review``,
``survey_answer``, ``support_message`` and ``social_mention``) may carry, in its properties:

- a text: the first of :data:`TEXT_KEYS` holding a non-blank string. It is scored with VADER
  (Hutto & Gilbert 2014, ``vaderSentiment``; its lexicon ships in the package and is English:
  other languages score near 0). The compound score, from -1 (most negative) to 1 (most
  positive), is kept in clear on the event; the text stays in the sealed properties only.
- ``nps``: a Net Promoter answer, a whole number from 0 to 10;
- ``csat``: a customer satisfaction answer, a whole number from 1 to 5.

Both answers are kept in clear too. A malformed answer refuses the event (an item status: the
other events of the batch are stored). VADER is imported with the first feedback event a
process scores, never at start, and its analyzer is built once per process.

VADER's work grows with the square of a text's words, and each emoji it reads becomes the
words of its description (``🙂``: "slightly smiling face"). So the work per text is bounded:
only its first :data:`SCORED_CHARACTERS` characters are scored, and of the emoji among them
(the characters of VADER's emoji table) only the first :data:`SCORED_EMOJI`; later ones are
dropped before scoring (:func:`bounded`). A batch's texts are scored off the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cdlm.config import FEEDBACK_TYPES
from cdlm.core.errors import ErrorCode

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

#: The event types scored when ``CDLM_FEEDBACK_EVENT_TYPES`` is not set.
DEFAULT_TYPES: Final = FEEDBACK_TYPES
#: Property keys read as the feedback's text, in this order (the first non-blank string wins).
TEXT_KEYS: Final = ("text", "comment", "message", "body")
NPS: Final = range(0, 11)
CSAT: Final = range(1, 6)
#: VADER's standard thresholds on the compound score (Hutto & Gilbert 2014; the package's
#: README): positive from 0.05, negative from -0.05, neutral in between.
POSITIVE_FROM: Final = 0.05
NEGATIVE_FROM: Final = -0.05
#: Characters of a text scored (the first ones; the rest is not read).
SCORED_CHARACTERS: Final = 1_000
#: Emoji of a text scored (the first ones among its scored characters; later ones are dropped).
SCORED_EMOJI: Final = 50


@dataclass(frozen=True)
class FeedbackScores:
    """What is kept in clear of one feedback event (None: not given)."""

    sentiment: float | None = None
    nps: int | None = None
    csat: int | None = None


@dataclass(frozen=True)
class AnswerProblem:
    """Why a survey answer in the properties cannot be stored."""

    key: str
    code: ErrorCode
    message: str


@functools.cache
def analyzer() -> SentimentIntensityAnalyzer:
    """VADER's analyzer, built on first use (reading its lexicon) and kept for the process."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def bounded(text: str) -> str:
    """The part of ``text`` that is scored: its first :data:`SCORED_CHARACTERS` characters,
    without the emoji after the first :data:`SCORED_EMOJI` of them."""
    emojis = analyzer().emojis
    kept: list[str] = []
    seen = 0
    for ch in text[:SCORED_CHARACTERS]:
        if ch in emojis:
            seen += 1
            if seen > SCORED_EMOJI:
                continue
        kept.append(ch)
    return "".join(kept)


def compound(text: str) -> float:
    """VADER's compound score of the :func:`bounded` part of ``text``, -1 to 1 (rounded to 4
    decimals, as VADER does)."""
    return float(analyzer().polarity_scores(bounded(text))["compound"])


def text_of(properties: Mapping[str, Any]) -> str | None:
    """The feedback's text: the first of :data:`TEXT_KEYS` holding a non-blank string."""
    for key in TEXT_KEYS:
        value = properties.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _answer(properties: Mapping[str, Any], key: str, scale: range) -> int | AnswerProblem | None:
    if key not in properties or properties[key] is None:
        return None
    value = properties[key]
    wording = f"properties.{key} is a whole number from {scale.start} to {scale.stop - 1}."
    if isinstance(value, bool) or not isinstance(value, int | float):
        return AnswerProblem(key, ErrorCode.INVALID_FORMAT, wording)
    if isinstance(value, float) and not value.is_integer():
        return AnswerProblem(key, ErrorCode.INVALID_FORMAT, wording)
    if int(value) not in scale:
        return AnswerProblem(key, ErrorCode.IMPLAUSIBLE, wording)
    return int(value)


def score(properties: Mapping[str, Any] | None) -> FeedbackScores | list[AnswerProblem]:
    """The clear scores of a feedback event's properties, or what is wrong with its answers
    (the text is scored only when the answers are fine)."""
    if not properties:
        return FeedbackScores()
    nps = _answer(properties, "nps", NPS)
    csat = _answer(properties, "csat", CSAT)
    problems = [a for a in (nps, csat) if isinstance(a, AnswerProblem)]
    if problems:
        return problems
    text = text_of(properties)
    return FeedbackScores(
        sentiment=compound(text) if text is not None else None,
        nps=nps if isinstance(nps, int) else None,
        csat=csat if isinstance(csat, int) else None,
    )


def polarity(sentiment: float) -> str:
    """``positive``, ``neutral`` or ``negative`` by VADER's thresholds."""
    if sentiment >= POSITIVE_FROM:
        return "positive"
    if sentiment <= NEGATIVE_FROM:
        return "negative"
    return "neutral"
