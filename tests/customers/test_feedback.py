"""Feedback events: VADER scores at ingestion, survey answers checked per item, the text kept
sealed, and each customer's sentiment average kept current and erased with them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.connection import get_connection

from cdlm.auth.settings import AuthSettings
from cdlm.config import ConfigError, load_settings
from cdlm.core.roles import Role
from cdlm.customers import attributes, feedback, rights
from cdlm.customers.models import Customer, CustomerAttributes, Event
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer

INGEST = """
mutation($events: [EventInput!]!) {
  ingestEvents(input: {events: $events}) {
    __typename
    ... on EventsIngested {
      accepted rejected items { index status eventId issues { field code message } }
    }
  }
}
"""
READ = """
query($id: ID!) {
  customer(id: $id) {
    events(first: 10) { nodes { type sentiment nps csat } }
    analytics { attributes { sentimentAverage } }
  }
}
"""
BASE = datetime(2026, 6, 1, 12, tzinfo=UTC)
#: VADER 3.3.2's compound scores of these sentences (polarity_scores(...)["compound"]).
HAPPY = "The delivery was fast and the staff were wonderful!"
HAPPY_SCORE = 0.6114
ANGRY = "Terrible service, the parcel arrived broken and nobody answered."
ANGRY_SCORE = -0.7351


def item(customer: str, n: int, type_: str = "review", **properties: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "occurredAt": (BASE + timedelta(minutes=n)).isoformat(),
        "sourceSystem": "surveys",
        "channel": "web",
        "customerId": customer,
        "properties": properties or None,
    }


@pytest.fixture
async def ingest(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


async def send(gql: GraphQLClient, headers: dict[str, str], events: list[dict[str, Any]]) -> Any:
    body = await gql(INGEST, {"events": events}, headers=headers)
    assert "errors" not in body, body
    return body["data"]["ingestEvents"]


async def test_texts_are_scored_with_vader_and_kept_sealed(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str], admin_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="fan@example.com")
    cid = gid("Customer", customer.customer_id)
    result = await send(
        gql,
        ingest,
        [
            item(cid, 0, text=HAPPY, nps=10),
            item(cid, 1, "support_message", message=ANGRY, csat=1),
            item(cid, 2, "page.viewed", text=HAPPY),  # not a feedback type: not scored
            item(cid, 3, "survey_answer", nps=8),  # an answer without text
        ],
    )
    assert result["accepted"] == 4
    rows = {e.type: e for e in await Event.filter(customer_id=customer.customer_id)}
    assert (rows["review"].sentiment, rows["review"].nps, rows["review"].csat) == (
        HAPPY_SCORE,
        10,
        None,
    )
    assert (rows["support_message"].sentiment, rows["support_message"].csat) == (ANGRY_SCORE, 1)
    assert (rows["page.viewed"].sentiment, rows["page.viewed"].nps) == (None, None)
    assert (rows["survey_answer"].sentiment, rows["survey_answer"].nps) == (None, 8)
    # The text is nowhere in clear: not in any column of the stored rows.
    raw = await get_connection("default").execute_query_dict(
        "SELECT * FROM events WHERE customer_id = $1", [customer.customer_id]
    )
    for row in raw:
        for value in row.values():
            shown = value if isinstance(value, bytes) else str(value).encode()
            assert b"wonderful" not in shown
            assert b"Terrible" not in shown
    # The average of the scored feedback (the page view does not count).
    stored = await CustomerAttributes.get(customer_id=customer.customer_id)
    assert stored.sentiment_average == pytest.approx((HAPPY_SCORE + ANGRY_SCORE) / 2)
    read = await gql(READ, {"id": cid}, headers=admin_headers)
    shown = {e["type"]: e for e in read["data"]["customer"]["events"]["nodes"]}
    assert shown["review"] == {"type": "review", "sentiment": HAPPY_SCORE, "nps": 10, "csat": None}
    assert shown["support_message"]["sentiment"] == ANGRY_SCORE
    assert read["data"]["customer"]["analytics"]["attributes"]["sentimentAverage"] == (
        pytest.approx((HAPPY_SCORE + ANGRY_SCORE) / 2)
    )


async def test_survey_answers_out_of_range_refuse_their_item_only(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="answers@example.com")
    cid = gid("Customer", customer.customer_id)
    result = await send(
        gql,
        ingest,
        [
            item(cid, 0, "survey_answer", nps=0, csat=5),
            item(cid, 1, "survey_answer", nps=11),
            item(cid, 2, "survey_answer", csat=0),
            item(cid, 3, "survey_answer", nps="9"),
            item(cid, 4, "survey_answer", nps=7.5),
            item(cid, 5, "survey_answer", nps=True),
            item(cid, 6, "survey_answer", nps=9.0, csat=-1, text=HAPPY),
            item(cid, 7, "order.placed", nps=11),  # not feedback: the answer is not read
        ],
    )
    statuses = [
        (i["status"], [(p["field"], p["code"]) for p in i["issues"]]) for i in result["items"]
    ]
    path = "input.events.{}.properties".format
    assert statuses == [
        ("ACCEPTED", []),
        ("REJECTED", [(path(1), "IMPLAUSIBLE")]),
        ("REJECTED", [(path(2), "IMPLAUSIBLE")]),
        ("REJECTED", [(path(3), "INVALID_FORMAT")]),
        ("REJECTED", [(path(4), "INVALID_FORMAT")]),
        ("REJECTED", [(path(5), "INVALID_FORMAT")]),
        ("REJECTED", [(path(6), "IMPLAUSIBLE")]),
        ("ACCEPTED", []),
    ]
    assert result["items"][1]["issues"][0]["message"] == (
        "properties.nps is a whole number from 0 to 10."
    )
    assert result["items"][2]["issues"][0]["message"] == (
        "properties.csat is a whole number from 1 to 5."
    )
    stored = await Event.filter(customer_id=customer.customer_id).order_by("occurred_at")
    assert [(e.type, e.nps, e.csat, e.sentiment) for e in stored] == [
        ("survey_answer", 0, 5, None),
        ("order.placed", None, None, None),
    ]
    # Nothing was scored: no average.
    assert not await CustomerAttributes.filter(
        customer_id=customer.customer_id, sentiment_average__isnull=False
    ).exists()


async def test_the_average_follows_new_feedback_and_goes_with_erasure(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="regular@example.com")
    other = await make_customer(vault, email="other@example.com")
    cid, oid = gid("Customer", customer.customer_id), gid("Customer", other.customer_id)
    await send(gql, ingest, [item(cid, 0, text=HAPPY), item(oid, 0, text=ANGRY)])
    await send(gql, ingest, [item(cid, 1, "social_mention", body=ANGRY)])
    await send(gql, ingest, [item(cid, 2, "social_mention", body=ANGRY)])
    averages = {
        a.customer_id: a.sentiment_average
        for a in await CustomerAttributes.all()  # type: ignore[attr-defined]
    }
    assert averages[customer.customer_id] == pytest.approx((HAPPY_SCORE + 2 * ANGRY_SCORE) / 3)
    assert averages[other.customer_id] == pytest.approx(ANGRY_SCORE)
    await rights.erase(customer.customer_id, rights.Keep())
    assert not await CustomerAttributes.exists(customer_id=customer.customer_id)
    assert await CustomerAttributes.exists(customer_id=other.customer_id)


async def test_the_feedback_types_are_a_setting(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str]
) -> None:
    assert load_settings({}).feedback_types == {
        "review",
        "survey_answer",
        "support_message",
        "social_mention",
    }
    assert load_settings({"CDLM_FEEDBACK_EVENT_TYPES": "app_review, chat"}).feedback_types == {
        "app_review",
        "chat",
    }
    with pytest.raises(ConfigError, match="CDLM_FEEDBACK_EVENT_TYPES: 'Bad Type'"):
        load_settings({"CDLM_FEEDBACK_EVENT_TYPES": "review,Bad Type"})
    with pytest.raises(ConfigError, match="CDLM_FEEDBACK_EVENT_TYPES: must name at least one"):
        load_settings({"CDLM_FEEDBACK_EVENT_TYPES": " , "})


@pytest.mark.pure
def test_vader_is_not_imported_when_the_api_starts(tmp_path: Any) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CDLM_")},
        "CDLM_DATA_DIR": str(tmp_path),
    }
    probe = (
        "import sys, cdlm.app, cdlm.api.schema as s; s.create_schema(); "
        "import cdlm.customers.events; print('vaderSentiment' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip() == "False"


async def test_the_analytics_run_catches_up_moved_events_and_restrictions(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str]
) -> None:
    kept = await make_customer(vault, email="kept@example.com")
    restricted = await make_customer(vault, email="quiet@example.com")
    await send(
        gql,
        ingest,
        [
            item(gid("Customer", kept.customer_id), 0, text=HAPPY),
            item(gid("Customer", restricted.customer_id), 0, text=ANGRY),
        ],
    )
    # An event moved here as a merge would, and a restriction since.
    moved = await Event.get(customer_id=restricted.customer_id)
    await Event.filter(id=moved.id).update(customer_id=kept.customer_id)
    await Customer.filter(id=restricted.customer_id).update(restricted_at=datetime.now(UTC))
    await Event.create(
        id=uuid.uuid4(),
        customer_id=restricted.customer_id,
        type="review",
        channel="web",
        occurred_at=BASE,
        received_at=BASE,
        source_system="surveys",
        sentiment=0.5,
    )
    await attributes.refresh_all_sentiment()
    averages = {a.customer_id: a.sentiment_average for a in await CustomerAttributes.all()}  # type: ignore[attr-defined]
    assert averages[kept.customer_id] == pytest.approx((HAPPY_SCORE + ANGRY_SCORE) / 2)
    assert averages[restricted.customer_id] is None


@pytest.mark.pure
def test_only_the_first_characters_and_emoji_of_a_text_are_scored() -> None:
    assert (feedback.SCORED_CHARACTERS, feedback.SCORED_EMOJI) == (1_000, 50)
    assert feedback.bounded("x" * 20_000) == "x" * 1_000
    assert feedback.bounded("🙂" * 4_000) == "🙂" * 50
    # Emoji after the 50th are dropped; the characters between them are kept (the first
    # 1,000 characters are 500 "a🙂" pairs: 500 letters, 50 emoji).
    assert feedback.bounded("a🙂" * 600) == "a🙂" * 50 + "a" * 450
    # A short text is scored whole.
    assert feedback.bounded(HAPPY) == HAPPY
    assert feedback.compound(HAPPY) == HAPPY_SCORE


async def test_long_texts_and_many_emoji_are_scored_on_their_bounded_part(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="emoji@example.com")
    cid = gid("Customer", customer.customer_id)
    scores = feedback.analyzer().polarity_scores
    # 50 smiling faces, then 3,950 disappointed ones: only the smiles are read.
    emoji = "🙂" * 50 + "😞" * 3_950
    # Near the 16 KiB of properties: praise for 1,000 characters, then complaints.
    praise = ("wonderful day " * 80)[:1_000]
    long = praise + "terrible awful " * 1_000
    result = await send(gql, ingest, [item(cid, 0, text=emoji), item(cid, 1, comment=long)])
    assert result["accepted"] == 2
    stored = await Event.filter(customer_id=customer.customer_id).order_by("occurred_at")
    expected = [scores("🙂" * 50)["compound"], scores(praise)["compound"]]
    assert [e.sentiment for e in stored] == expected
    # Read whole, both texts would be negative: the bound decides what is scored.
    assert scores("🙂" * 50 + "😞" * 950)["compound"] < 0
    assert scores(long[:3_000])["compound"] < 0
    assert all(score > 0 for score in expected)


async def test_texts_are_scored_off_the_event_loop(
    gql: GraphQLClient, vault: Vault, ingest: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = await make_customer(vault, email="threads@example.com")
    cid = gid("Customer", customer.customer_id)
    threads: list[int] = []
    real_score = feedback.score

    def score(properties: Any) -> Any:
        threads.append(threading.get_ident())
        return real_score(properties)

    monkeypatch.setattr(feedback, "score", score)
    loop_thread = threading.get_ident()
    await send(gql, ingest, [item(cid, 0, text=HAPPY), item(cid, 1, "survey_answer", nps=9)])
    assert len(threads) == 2
    assert loop_thread not in threads
    threads.clear()
    await send(gql, ingest, [item(cid, 2, "survey_answer", nps=9)])  # no text: no thread
    assert threads == [loop_thread]
