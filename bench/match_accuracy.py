"""Accuracy of one profile per person, end to end.

Labelled people with realistic noise (:mod:`bench.people`) are ingested one record at a time
through ``ingestCustomer`` on the real ASGI app, matched by a real match run at the configured
thresholds, and read back as clusters through ``customers { sources { id } }``. Prints the
pairwise precision, recall and F1 of the profiles against the truth, before the run
(deterministic matching alone) and after it, and how many pairs of records of different people
sharing a household phone or address ended in one profile (target: 0).

``python -m bench.match_accuracy [--people N] [--seed S]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import replace
from itertools import combinations
from typing import Any

import httpx

from bench.people import LabelledRecord, household_pairs, people, true_pairs
from bench.support import benchmark_workspace, report
from cdlm.app import create_app
from cdlm.auth.service import create_api_key
from cdlm.auth.settings import auth_settings
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.matching import runs

INGEST = """
mutation($input: IngestCustomerInput!) {
  ingestCustomer(input: $input) {
    ... on CustomerIngested { sourceRecordId }
    ... on UserError { code message }
  }
}"""
PROFILES = """
query($after: String) {
  customers(first: 100, after: $after, filter: {includeRestricted: true}) {
    edges { node { id sources { id } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
CONCURRENCY = 4


def _input(record: LabelledRecord) -> dict[str, Any]:
    p = record.profile
    address = {
        "line1": p.get("address_line1"),
        "city": p.get("city"),
        "postalCode": p.get("postal_code"),
        "country": p.get("country"),
    }
    system = record.external_ids[0].split(":", 1)[0] if record.external_ids else "web-form"
    return {
        "source": {
            "system": system,
            "kind": "CRM" if record.external_ids else "WEB_FORM",
            "collectedAt": "2026-06-01T12:00:00+00:00",
            "lawfulBasis": "CONTRACT",
            "purpose": "essential.service",
        },
        "profile": {
            "givenName": p.get("given_name"),
            "familyName": p.get("family_name"),
            "email": p.get("email"),
            "phone": p.get("phone"),
            "birthDate": p.get("birth_date"),
            "address": {k: v for k, v in address.items() if v},
        },
        "externalIds": list(record.external_ids),
    }


async def _ingest(
    http: httpx.AsyncClient, headers: dict[str, str], records: list[LabelledRecord]
) -> tuple[dict[str, str], int]:
    """Source record id → labelled record id, and how many records were refused."""
    sources: dict[str, str] = {}
    refused = 0
    queue = list(enumerate(records))

    async def worker() -> None:
        nonlocal refused
        while queue:
            _, record = queue.pop()
            response = await http.post(
                "/graphql",
                json={"query": INGEST, "variables": {"input": _input(record)}},
                headers=headers,
            )
            answer = response.json()["data"]["ingestCustomer"]
            if "sourceRecordId" in answer:
                sources[answer["sourceRecordId"]] = record.record_id
            else:
                refused += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return sources, refused


async def _clusters(
    http: httpx.AsyncClient, headers: dict[str, str], sources: dict[str, str]
) -> list[list[str]]:
    """The labelled record ids of each profile, read back through the API."""
    clusters: list[list[str]] = []
    after = None
    while True:
        body = (
            await http.post(
                "/graphql",
                json={"query": PROFILES, "variables": {"after": after}},
                headers=headers,
            )
        ).json()["data"]["customers"]
        for edge in body["edges"]:
            held = [sources[s["id"]] for s in edge["node"]["sources"] if s["id"] in sources]
            if held:
                clusters.append(held)
        if not body["pageInfo"]["hasNextPage"]:
            return clusters
        after = body["pageInfo"]["endCursor"]


def _scores(
    clusters: list[list[str]], truth: set[tuple[str, str]], households: set[tuple[str, str]]
) -> dict[str, float]:
    predicted = {
        (a, b) if a < b else (b, a) for members in clusters for a, b in combinations(members, 2)
    }
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "profiles": len(clusters),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "household_pairs_merged": len(predicted & households),
        "wrong_pairs": len(predicted - truth),
    }


async def run(count: int = 3000, seed: int = 7, auto: float | None = None) -> None:
    records = people(count, seed=seed)
    truth = true_pairs(records)
    households = household_pairs(records) - truth
    async with benchmark_workspace() as (_, settings, vault):
        if auto is not None:
            settings = replace(settings, matching=replace(settings.matching, auto_merge_above=auto))
        key = await create_api_key(
            SYSTEM, name="bench", role=Role.ADMIN, expires_at=None, auth=auth_settings(settings)
        )
        headers = {"Authorization": f"Bearer {key.full_key}"}
        app = create_app(settings, vault=vault)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=120
        ) as http:
            started = time.perf_counter()
            sources, refused = await _ingest(http, headers, records)
            report(
                "match accuracy: ingestCustomer (ASGI)",
                {
                    "people": count,
                    "records": len(records),
                    "refused": refused,
                    "seconds": round(time.perf_counter() - started, 1),
                },
            )
            before = _scores(await _clusters(http, headers, sources), truth, households)
            report("match accuracy: deterministic only", before)
            started = time.perf_counter()
            evidence = await runs.run(
                SYSTEM, vault, runs.options_from(settings, full=True, train=True)
            )
            report(
                "match accuracy: match run",
                {
                    **{
                        k: v
                        for k, v in runs.evidence_json(evidence).items()
                        if k not in ("run_id", "full", "trained")
                    },
                    "review_above": settings.matching.review_above,
                    "auto_merge_above": settings.matching.auto_merge_above or "off",
                    "wall_seconds": round(time.perf_counter() - started, 1),
                },
            )
            after = _scores(await _clusters(http, headers, sources), truth, households)
            report("match accuracy: after the run", after)
            by_person: dict[int, int] = defaultdict(int)
            for record in records:
                by_person[record.person] += 1
            report(
                "match accuracy: truth",
                {
                    "people": len(by_person),
                    "true_pairs": len(truth),
                    "household_pairs": len(households),
                },
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--auto", type=float, help="auto-merge threshold (default: the setting)")
    args = parser.parse_args()
    logging.disable(logging.INFO)
    asyncio.run(run(args.people, args.seed, args.auto))


if __name__ == "__main__":
    main()
