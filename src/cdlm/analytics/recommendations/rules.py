"""The rules of personalization, as data: how much each kind of interaction weighs, why a
customer may not be personalized, and which next best action the scores call for.

Pure: no I/O. The thresholds are frozen tables read top to bottom; changing a rule is changing
a row here (and its test).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from cdlm.consent.models import Decision
from cdlm.consent.service import Answer
from cdlm.core.vocabulary import LawfulBasis


@dataclass(frozen=True)
class Weights:
    """How much one interaction with an item says about a customer's taste: a purchase more
    than a view. A customer's weight for an item is the largest of their interactions."""

    purchase: float = 1.0
    view: float = 0.25


WEIGHTS = Weights()
#: A past item's influence halves every this many days before the customer's latest
#: interaction (relative recency: an inactive customer still gets recommendations).
HALF_LIFE_DAYS = 30.0
#: How many of the customer's most recent distinct items recommendations start from.
RECENT_ITEMS = 20
#: Largest ``first`` of ``Customer.recommendations``.
MAX_RECOMMENDATIONS = 50
DEFAULT_RECOMMENDATIONS = 10
#: Popular items kept by each run for cold starts (and to fill short lists).
POPULAR_ITEMS = 200


class Refusal(StrEnum):
    """Why personalization does not answer for a customer."""

    PURPOSE_UNDEFINED = "purpose_undefined"
    RESTRICTED = "restricted"
    NO_CONSENT = "no_consent"
    CONSENT_DENIED = "consent_denied"
    CONSENT_WITHDRAWN = "consent_withdrawn"
    OBJECTED = "objected"


#: Each refusal in words, for the people reading the answer.
REFUSAL_REASONS: dict[Refusal, str] = {
    Refusal.PURPOSE_UNDEFINED: "The personalization purpose is not defined: nobody may be "
    "personalized until a privacy officer creates it.",
    Refusal.RESTRICTED: "Processing of this customer is restricted (GDPR Art. 18): stored, "
    "not processed.",
    Refusal.NO_CONSENT: "The customer has not consented to personalization.",
    Refusal.CONSENT_DENIED: "The customer refused personalization.",
    Refusal.CONSENT_WITHDRAWN: "The customer withdrew their consent to personalization.",
    Refusal.OBJECTED: "The customer opted out of or objected to personalization.",
}


def refusal_of(answer: Answer | None) -> Refusal | None:
    """Why ``answer`` (of :func:`cdlm.consent.service.answers` for the personalization
    purpose; None: the purpose is not defined) refuses, or None when it permits."""
    if answer is None:
        return Refusal.PURPOSE_UNDEFINED
    if answer.permitted:
        return None
    if answer.restricted:
        return Refusal.RESTRICTED
    latest = answer.latest
    if answer.purpose.lawful_basis is LawfulBasis.CONSENT:
        if latest is None:
            return Refusal.NO_CONSENT
        if latest.decision is Decision.WITHDRAWN:
            return Refusal.CONSENT_WITHDRAWN
        return Refusal.CONSENT_DENIED
    # Another lawful basis: only the person's opt-out or objection stops it.
    return Refusal.OBJECTED


# ------------------------------------------------------------------------ next best action


class Action(StrEnum):
    """What to do next with a customer."""

    WIN_BACK = "win_back"
    RETAIN = "retain"
    UPSELL = "upsell"
    NURTURE = "nurture"
    NONE = "none"


class Score(StrEnum):
    """The scores of ``customer_attributes`` the rules read (their column names)."""

    CHURN_RISK = "churn_risk"
    P_ALIVE = "p_alive"
    EXPECTED_VALUE_365D = "expected_value_365d"
    RFM_RECENCY = "rfm_recency"
    RFM_FREQUENCY = "rfm_frequency"
    RFM_MONETARY = "rfm_monetary"


@dataclass(frozen=True)
class Bound:
    """One condition on one score: ``at_least <= value < below`` (either side open). A
    missing score fails it."""

    score: Score
    at_least: float | None = None
    below: float | None = None

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.at_least is None or value >= self.at_least) and (
            self.below is None or value < self.below
        )


@dataclass(frozen=True)
class ActionRule:
    """One row of the table: the action, when it applies (every bound holds, and a
    recommended item exists when ``needs_item``) and why, in words for the agent or
    marketer."""

    action: Action
    bounds: tuple[Bound, ...]
    reason: str
    needs_item: bool = False


#: Read top to bottom; the first rule that holds decides. "High value" is the RFM monetary
#: quintile (what the customer has spent, comparable across currencies): the expected value
#: is itself discounted by the churn risk, so it cannot say a churning customer was valuable.
ACTION_RULES: tuple[ActionRule, ...] = (
    ActionRule(
        Action.WIN_BACK,
        (Bound(Score.CHURN_RISK, at_least=0.7), Bound(Score.RFM_MONETARY, at_least=4)),
        "A high-value customer (top two spend quintiles) is likely lost (churn risk at least "
        "0.7): make a win-back offer.",
    ),
    ActionRule(
        Action.RETAIN,
        (Bound(Score.CHURN_RISK, at_least=0.4), Bound(Score.RFM_MONETARY, at_least=3)),
        "A customer of at least median spend is cooling down (churn risk at least 0.4): a "
        "retention touch (service, loyalty benefit) before they go.",
    ),
    ActionRule(
        Action.UPSELL,
        (
            Bound(Score.CHURN_RISK, below=0.4),
            Bound(Score.P_ALIVE, at_least=0.7),
            Bound(Score.RFM_FREQUENCY, at_least=3),
        ),
        "An active, frequent buyer (P(alive) at least 0.7, frequency quintile 3 or more, churn "
        "risk below 0.4): offer the top recommended item.",
        needs_item=True,
    ),
    ActionRule(
        Action.NURTURE,
        (Bound(Score.P_ALIVE, at_least=0.5), Bound(Score.RFM_FREQUENCY, below=3)),
        "A new or occasional buyer who is still active (P(alive) at least 0.5, frequency "
        "quintile below 3): build the relationship with content rather than offers.",
    ),
)
#: When no rule holds, or the customer has no scores yet.
NO_RULE = "No rule applies to these scores: no action."
UNSCORED = "No analytics run has scored this customer yet (no purchase before its as-of date)."


@dataclass(frozen=True)
class NextAction:
    """The decided action, why, and the scores the deciding rule read."""

    action: Action
    reason: str
    scores: dict[Score, float | None]
    wants_item: bool


def next_action(
    scores: Mapping[Score, float | Decimal | None] | None, has_item: bool
) -> NextAction:
    """The first rule of :data:`ACTION_RULES` the customer's ``scores`` (None: never scored)
    satisfy; ``has_item``: a recommendation exists for an upsell."""
    if scores is None or all(scores.get(s) is None for s in Score):
        return NextAction(Action.NONE, UNSCORED, {}, False)
    values = {s: None if (v := scores.get(s)) is None else float(v) for s in Score}
    for rule in ACTION_RULES:
        if rule.needs_item and not has_item:
            continue
        if all(bound.holds(values[bound.score]) for bound in rule.bounds):
            used = {bound.score: values[bound.score] for bound in rule.bounds}
            return NextAction(rule.action, rule.reason, used, rule.needs_item)
    return NextAction(Action.NONE, NO_RULE, values, False)
