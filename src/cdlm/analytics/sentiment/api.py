"""GraphQL of feedback rollups: ``feedbackSentiment``."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics.api import RUN_READERS
from cdlm.analytics.sentiment import service
from cdlm.core.periods import MAX_POINTS
from cdlm.graphql.errors import Outcomes, ValidationError, errors_as_data
from cdlm.graphql.permissions import allow
from cdlm.graphql.vocabulary import Interval


@strawberry.input(description="Which feedback to roll up, and by which period.")
class FeedbackSentimentInput:
    from_: datetime = strawberry.field(
        name="from",
        description="Start (inclusive) of the time feedback happened in, with a time zone.",
    )
    to: datetime = strawberry.field(description="End (exclusive), with a time zone; after `from`.")
    interval: Interval = strawberry.field(
        description=f"Period length; the bounds may hold at most {MAX_POINTS} periods (more "
        "is refused with a ValidationError on `input.interval`)."
    )
    channel: str | None = strawberry.field(
        default=None, description="Only this channel code (e.g. web); null: every channel."
    )


@strawberry.type(
    description="Feedback of one period on one channel: counts, sentiment, NPS and CSAT. "
    "Counts only, no person's data."
)
class FeedbackSentimentPoint:
    period_start: datetime = strawberry.field(description="Start of the period (UTC).")
    channel: str = strawberry.field(description="The events' channel code.")
    feedback: int = strawberry.field(
        description="Feedback events (types of CDLM_FEEDBACK_EVENT_TYPES)."
    )
    scored: int = strawberry.field(description="Of them, those with a text scored.")
    average_sentiment: float | None = strawberry.field(
        description="Mean VADER compound score of the scored ones, -1 to 1; null: none scored."
    )
    positive: int = strawberry.field(description="Scored events with compound >= 0.05.")
    neutral: int = strawberry.field(
        description="Scored events with compound between -0.05 and 0.05 (exclusive)."
    )
    negative: int = strawberry.field(description="Scored events with compound <= -0.05.")
    nps_answers: int = strawberry.field(description="Events with an NPS answer (0-10).")
    promoters: int = strawberry.field(description="NPS answers 9 or 10.")
    passives: int = strawberry.field(description="NPS answers 7 or 8.")
    detractors: int = strawberry.field(description="NPS answers 0 to 6.")
    nps: float | None = strawberry.field(
        description="Net Promoter Score: promoters minus detractors in percent of the NPS "
        "answers, -100 to 100; null: no answer."
    )
    csat_answers: int = strawberry.field(description="Events with a CSAT answer (1-5).")
    csat_satisfied: int = strawberry.field(description="CSAT answers 4 or 5.")
    csat_share: float | None = strawberry.field(
        description="Share of satisfied CSAT answers (4-5), 0 to 1; null: no answer."
    )
    csat_average: float | None = strawberry.field(
        description="Mean CSAT answer, 1 to 5; null: no answer."
    )

    @classmethod
    def of(cls, found: service.Rollup) -> "FeedbackSentimentPoint":
        return cls(
            period_start=found.period_start,
            channel=found.channel,
            feedback=found.feedback,
            scored=found.scored,
            average_sentiment=found.average,
            positive=found.positive,
            neutral=found.neutral,
            negative=found.negative,
            nps_answers=found.nps_answers,
            promoters=found.promoters,
            passives=found.passives,
            detractors=found.detractors,
            nps=found.nps,
            csat_answers=found.csat_answers,
            csat_satisfied=found.csat_satisfied,
            csat_share=found.csat_share,
            csat_average=found.csat_average,
        )


@strawberry.type(
    description="Feedback rolled up per period and channel, from the clear scores kept on "
    "feedback events (texts are scored with VADER's English lexicon at ingestion). "
    "Restricted, erased and merged-away customers are left out."
)
class FeedbackSentiment:
    feedback_types: list[str] = strawberry.field(
        description="The event types counted as feedback (CDLM_FEEDBACK_EVENT_TYPES), sorted."
    )
    points: list[FeedbackSentimentPoint] = strawberry.field(
        description="One per period and channel with feedback, oldest period first, then by "
        "channel; periods and channels without feedback are absent."
    )


FEEDBACK_SENTIMENT = Outcomes(
    "FeedbackSentimentResult",
    FeedbackSentiment,
    {
        ValidationError: "a bound lacks a time zone or is out of range once in UTC, `to` is "
        f"not after `from`, the bounds hold more than {MAX_POINTS} periods, or the channel is "
        "not a channel code (every problem is listed with its path)",
    },
)
FeedbackSentimentResult = Annotated[FeedbackSentiment | ValidationError, FEEDBACK_SENTIMENT.marker]


@strawberry.type
class SentimentQuery:
    @strawberry.field(
        description=FEEDBACK_SENTIMENT.describe(
            "Feedback sentiment, NPS and CSAT per period and channel."
        ),
        extensions=allow(*RUN_READERS),
    )
    @errors_as_data
    async def feedback_sentiment(
        self,
        info: Info[Any, Any],
        input: Annotated[
            FeedbackSentimentInput,
            strawberry.argument(description="Bounds, period length and channel."),
        ],
    ) -> FeedbackSentimentResult:
        types = info.context.settings.feedback_types
        found = await service.rollup(
            service.RollupInput(input.from_, input.to, input.interval, types, input.channel)
        )
        return FeedbackSentiment(
            feedback_types=sorted(types), points=[FeedbackSentimentPoint.of(r) for r in found]
        )
