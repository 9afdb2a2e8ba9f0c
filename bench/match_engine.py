"""The record-linkage engine on labelled synthetic people, without a database.

``python -m bench.match_engine [--people N]`` generates people (:mod:`bench.people`), builds
their match records, trains a model, scores the candidate pairs and decides as a match run
does (:mod:`cdlm.matching.decision`): a pair at or above ``--auto`` without a hard conflict is
to be merged, other pairs at or above ``--review`` go to a steward; pairs to merge are
clustered by connected components, and a cluster two of whose members conflict goes to review
whole. The merged clusters are compared with the truth pair by pair. Prints numbers
(accuracy, time, memory); asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import resource
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations

from bench.people import household_pairs, people, true_pairs
from bench.support import report
from cdlm.matching import decision
from cdlm.matching.conflicts import conflicts
from cdlm.matching.decision import Thresholds
from cdlm.matching.engine import ScoredPair, comparison_count, predict, train
from cdlm.matching.features import MatchRecord, match_record

Pair = tuple[str, str]
_IDS = uuid.UUID("6f1c3a52-93e4-4e0b-9a51-2f61f0c0d7a1")


def _uuid(record_id: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, record_id)


def pairs_within(groups: Iterable[Iterable[str]]) -> set[Pair]:
    """Every pair of members of each group (smaller id first)."""
    return {
        (a, b) if a < b else (b, a) for group in groups for a, b in combinations(sorted(group), 2)
    }


def decide(
    scored: Sequence[ScoredPair], by_id: Mapping[str, MatchRecord], thresholds: Thresholds
) -> tuple[list[list[str]], int, int, set[Pair]]:
    """A match run's decision (:mod:`cdlm.matching.decision`): the merged clusters, the pairs
    queued for review, those held back by a conflict, and the held pairs as ids."""
    ids = {_uuid(record_id): record_id for record_id in by_id}
    to_merge: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
    queued, held = 0, set()
    for pair in scored:
        found = conflicts(by_id[pair.left_id], by_id[pair.right_id])
        verdict = decision.decide(pair.probability, found, False, thresholds)
        if verdict.action is decision.Action.MERGE:
            to_merge[(_uuid(pair.left_id), _uuid(pair.right_id))] = pair.probability
        elif verdict.action is decision.Action.REVIEW:
            queued += 1
            if found:
                held.add((pair.left_id, pair.right_id))
    plans, reviewed = decision.plan_merges(
        to_merge,
        lambda a, b: bool(conflicts(by_id[ids[a]], by_id[ids[b]])),
        {node: (ids[node],) for node in ids},
    )
    merged = [[ids[plan.survivor], *(ids[m] for m in plan.merged)] for plan in plans]
    return merged, queued + len(reviewed), len(reviewed), held


def accuracy(found: set[Pair], truth: set[Pair]) -> dict[str, float]:
    """Pairwise precision, recall and F1 of ``found`` against ``truth``."""
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def run(n_people: int, *, review: float, auto: float, seed: int, max_pairs: int) -> None:
    logging.getLogger("splink").setLevel(logging.ERROR)  # level labels the training missed
    labelled = people(n_people, seed=seed)
    records: list[MatchRecord] = [
        match_record(row.record_id, row.profile, row.external_ids) for row in labelled
    ]
    by_id = {record.unique_id: record for record in records}
    truth, households = true_pairs(labelled), household_pairs(labelled)

    compared = comparison_count(records)
    started = time.perf_counter()
    model = train(records, max_pairs=max_pairs)
    trained = time.perf_counter()
    scored = predict(records, model, threshold=review)
    predicted = time.perf_counter()

    merged, queued, cluster_conflicts, held = decide(scored, by_id, Thresholds(review, auto))
    clustered = pairs_within(merged)

    report(
        "match engine: data",
        {
            "people": n_people,
            "records": len(records),
            "true_pairs": len(truth),
            "household_pairs": len(households),
            "pairs_compared": compared,
        },
    )
    report(
        "match engine: cost",
        {
            "train_s": round(trained - started, 1),
            "predict_s": round(predicted - trained, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        },
    )
    report(
        f"match engine: decision (review>={review}, auto>={auto})",
        {
            "scored_pairs": len(scored),
            "merged_clusters": len(merged),
            "queued_for_review": queued,
            "held_by_conflict": len(held),
            "true_pairs_held_by_conflict": len(held & truth),
            "held_by_cluster_conflict": cluster_conflicts,
        },
    )
    report(
        "match engine: clusters vs truth",
        {**accuracy(clustered, truth), "household_pairs_merged": len(clustered & households)},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=15_000, help="people (1-4 records each)")
    parser.add_argument("--review", type=float, default=0.80, help="review threshold")
    parser.add_argument("--auto", type=float, default=0.95, help="auto-merge threshold")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated people")
    parser.add_argument("--max-pairs", type=int, default=2_000_000, help="training sample cap")
    args = parser.parse_args()
    run(args.people, review=args.review, auto=args.auto, seed=args.seed, max_pairs=args.max_pairs)


if __name__ == "__main__":
    main()
