"""GraphQL of personalization: ``Customer.recommendations`` and ``Customer.nextBestAction``
(the fields are declared on the customer type; their answers are built here).

Both answer only when :func:`cdlm.consent.service.answers` permits the personalization
purpose for the customer, and say why when it does not: a refusal is an answer, never an
empty list. Consent, recommendations and scores load per request through DataLoaders, so a
page of customers costs the same statements as one.
"""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics.recommendations import loaders, rules
from cdlm.analytics.recommendations.service import Ask, Basis, Permission, Recommended
from cdlm.core.errors import ValidationFailed
from cdlm.customers import loaders as customer_loaders
from cdlm.graphql.enums import describe_enum

describe_enum(
    rules.Refusal,
    "Why personalization does not answer for a customer (the consent service's answer for the "
    "personalization purpose, CDLM_PERSONALIZATION_PURPOSE).",
    {
        rules.Refusal.PURPOSE_UNDEFINED: "No purpose with the configured code exists: nobody "
        "is personalized until a privacy officer creates it.",
        rules.Refusal.RESTRICTED: "The customer's processing is restricted (GDPR Art. 18).",
        rules.Refusal.NO_CONSENT: "The purpose rests on consent and the customer never gave it.",
        rules.Refusal.CONSENT_DENIED: "The customer refused consent.",
        rules.Refusal.CONSENT_WITHDRAWN: "The customer withdrew consent.",
        rules.Refusal.OBJECTED: "The purpose rests on another lawful basis and the customer "
        "opted out or objected (GDPR Art. 21).",
    },
    name="PersonalizationRefusal",
)
describe_enum(
    Basis,
    "Where recommended items come from.",
    {
        Basis.ITEM_SIMILARITY: "Items similar (item-to-item cosine similarity) to the "
        "customer's recent purchases and views.",
        Basis.POPULARITY: "The most popular items among customers who allow personalization: "
        "the answer for a cold start, and what fills a list the similar items leave short.",
    },
    name="RecommendationBasis",
)
describe_enum(
    rules.Action,
    "What to do next with a customer.",
    {
        rules.Action.WIN_BACK: "A high-value customer is likely lost: make a win-back offer.",
        rules.Action.RETAIN: "A customer of at least median spend is cooling down: a retention "
        "touch.",
        rules.Action.UPSELL: "An active, frequent buyer: offer the recommended `item`.",
        rules.Action.NURTURE: "A new or occasional buyer still active: build the relationship.",
        rules.Action.NONE: "No rule applies (or no scores yet): no action.",
    },
    name="NextBestActionKind",
)
describe_enum(
    rules.Score,
    "A score of `Customer.analytics` a next-best-action rule reads.",
    {
        rules.Score.CHURN_RISK: "`churnRisk`, 0 (safe) to 1 (lost).",
        rules.Score.P_ALIVE: "`pAlive`, 0 to 1.",
        rules.Score.EXPECTED_VALUE_365D: "`expectedValue365d`, in the reporting currency.",
        rules.Score.RFM_RECENCY: "`rfm.r`, quintile 1 to 5.",
        rules.Score.RFM_FREQUENCY: "`rfm.f`, quintile 1 to 5.",
        rules.Score.RFM_MONETARY: "`rfm.m`, quintile 1 to 5.",
    },
    name="CustomerScore",
)


@strawberry.type(description="One item the customer is likely to want next.")
class RecommendedItem:
    item_id: str = strawberry.field(
        description="The product or content id, as events carry it (`Event.itemId`)."
    )
    score: float = strawberry.field(
        description="How strongly it is recommended: for ITEM_SIMILARITY the sum, over the "
        "customer's recent items, of similarity x interaction weight (purchase 1, view 0.25) "
        "x recency (halving every 30 days before the latest interaction); for POPULARITY the "
        "item's summed interaction weights across customers. Comparable within one basis only."
    )
    basis: Basis = strawberry.field(description="Where this item comes from.")
    because_item_id: str | None = strawberry.field(
        description="The customer's own item that contributed most to this one (\"because "
        'you bought or viewed ..."); null for a popular item.'
    )

    @classmethod
    def of(cls, item: Recommended) -> "RecommendedItem":
        return cls(
            item_id=item.item_id, score=item.score, basis=item.basis, because_item_id=item.because
        )


@strawberry.type(
    description="Items the customer is likely to want next, or why personalization does not "
    "answer for them."
)
class Recommendations:
    permitted: bool = strawberry.field(
        description="True when the personalization purpose may use this customer's data; "
        "false: `refusal` says why and `items` is empty."
    )
    refusal: rules.Refusal | None = strawberry.field(
        description="Why personalization does not answer; null when permitted."
    )
    purpose_code: str = strawberry.field(
        description="The purpose asked (CDLM_PERSONALIZATION_PURPOSE, default personalization)."
    )
    reason: str = strawberry.field(description="The answer in words, for display to staff.")
    basis: Basis | None = strawberry.field(
        description="ITEM_SIMILARITY when at least one item comes from the customer's own "
        "history, POPULARITY for a cold start; null when not permitted."
    )
    items: list[RecommendedItem] = strawberry.field(
        description="Best first, never an item the customer bought (viewed items may come "
        "back). Empty when not permitted, or when no model has been built (`modelBuiltAt` null)."
    )
    model_built_at: datetime | None = strawberry.field(
        description="When the daily analytics run last built the item model; null: never."
    )


@strawberry.type(description="A score a next-best-action rule read, with its value.")
class ScoreUsed:
    score: rules.Score = strawberry.field(description="Which score.")
    value: float | None = strawberry.field(description="Its value; null: not computed.")


@strawberry.type(
    description="What to do next with the customer, decided by fixed rules from the scores of "
    "the last analytics run, or why personalization does not answer for them."
)
class NextBestAction:
    permitted: bool = strawberry.field(
        description="True when the personalization purpose may use this customer's data; "
        "false: `refusal` says why and `action` is null."
    )
    refusal: rules.Refusal | None = strawberry.field(
        description="Why personalization does not answer; null when permitted."
    )
    purpose_code: str = strawberry.field(description="The purpose asked.")
    action: rules.Action | None = strawberry.field(
        description="The action; null when not permitted."
    )
    reason: str = strawberry.field(
        description="Why this action (the rule's thresholds in words), or why none."
    )
    scores: list[ScoreUsed] = strawberry.field(
        description="The scores the deciding rule read (every score when no rule applied); "
        "empty when not permitted or never scored."
    )
    item: RecommendedItem | None = strawberry.field(
        description="For UPSELL: the item to offer (the top recommendation); null otherwise."
    )
    scored_at: datetime | None = strawberry.field(
        description="As-of date of the scores used; null: never scored (or not permitted)."
    )


async def _permission(info: Info[Any, Any], customer_id: Any) -> Permission:
    purpose = info.context.settings.recommendations.purpose
    found: Permission = await info.context.loaders.get(
        loaders.permissions_by_customer, purpose
    ).load(customer_id)
    return found


async def _items(info: Info[Any, Any], customer_id: Any, first: int) -> list[Recommended]:
    settings = info.context.settings
    ask = Ask(settings.analytics.purchase_types, settings.recommendations.view_types, first)
    found: list[Recommended] = await info.context.loaders.get(
        loaders.recommendations_by_customer, ask
    ).load(customer_id)
    return found


def check_first(first: int) -> None:
    """Refuse a ``first`` outside 1..MAX_RECOMMENDATIONS (on the argument ``first``)."""
    if not 1 <= first <= rules.MAX_RECOMMENDATIONS:
        raise ValidationFailed(
            f"first must be between 1 and {rules.MAX_RECOMMENDATIONS}.", field="first"
        )


async def recommendations_of(info: Info[Any, Any], customer_id: Any, first: int) -> Recommendations:
    """``Customer.recommendations(first)``."""
    check_first(first)
    permission = await _permission(info, customer_id)
    if permission.refusal is not None:
        return Recommendations(
            permitted=False,
            refusal=permission.refusal,
            purpose_code=permission.purpose,
            reason=rules.REFUSAL_REASONS[permission.refusal],
            basis=None,
            items=[],
            model_built_at=None,
        )
    items = await _items(info, customer_id, first)
    model = await info.context.loaders.get(loaders.latest_model_by_key).load("latest")
    similar = any(i.basis is Basis.ITEM_SIMILARITY for i in items)
    return Recommendations(
        permitted=True,
        refusal=None,
        purpose_code=permission.purpose,
        reason=_basis_reason(similar, bool(items), model is not None),
        basis=Basis.ITEM_SIMILARITY if similar else Basis.POPULARITY,
        items=[RecommendedItem.of(i) for i in items],
        model_built_at=model.built_at if model is not None else None,
    )


def _basis_reason(similar: bool, any_items: bool, built: bool) -> str:
    if similar:
        return "Items similar to the customer's recent purchases and views."
    if any_items:
        return "Cold start: none of the customer's items is in the model; popular items."
    if not built:
        return "No item model yet: the daily analytics run builds it."
    return "Nothing to recommend: the model has no item the customer has not bought."


async def next_best_action_of(info: Info[Any, Any], customer_id: Any) -> NextBestAction:
    """``Customer.nextBestAction``."""
    permission = await _permission(info, customer_id)
    if permission.refusal is not None:
        return NextBestAction(
            permitted=False,
            refusal=permission.refusal,
            purpose_code=permission.purpose,
            action=None,
            reason=rules.REFUSAL_REASONS[permission.refusal],
            scores=[],
            item=None,
            scored_at=None,
        )
    row = await info.context.loaders.get(customer_loaders.attributes_by_customer).load(customer_id)
    items = await _items(info, customer_id, rules.DEFAULT_RECOMMENDATIONS)
    scores = {s: getattr(row, s.value) for s in rules.Score} if row is not None else None
    decided = rules.next_action(scores, bool(items))
    return NextBestAction(
        permitted=True,
        refusal=None,
        purpose_code=permission.purpose,
        action=decided.action,
        reason=decided.reason,
        scores=[ScoreUsed(score=s, value=v) for s, v in decided.scores.items()],
        item=RecommendedItem.of(items[0]) if decided.wants_item and items else None,
        scored_at=row.scored_at if row is not None else None,
    )
