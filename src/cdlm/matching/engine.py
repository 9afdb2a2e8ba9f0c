"""Probabilistic record linkage (Fellegi-Sunter) with Splink 5 on an in-process DuckDB.

The caller decrypts profiles, builds :class:`~cdlm.matching.features.MatchRecord` s, trains a
model (:func:`train`) and scores pairs (:func:`predict`); it stores only ids, scores and the
level and weight of each comparison. Decrypted values stay in this process's memory:

- DuckDB runs in memory with no temporary directory (past its memory limit a query fails
  instead of spilling to disk), external access off and its configuration locked;
- Splink's loggers are held at WARNING or above while the engine runs, no chart is drawn,
  and errors raised here name the stage and the exception type, never its message (DuckDB
  quotes data in its messages);
- the model JSON holds settings and m/u probabilities only: Splink computes its
  term-frequency tables from the records of each run and never saves them.

Comparisons and blocking rules are data below; a few levels are "scored under" another
comparison (fixed m = u, weight 0) where comparisons are not independent, so that the joint
evidence is weighed once: names swapped between the name fields; a phone shared with the
postal address (a household shares both); the same names with alike email addresses
(namesakes' addresses are made of their names too).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa  # type: ignore[import-untyped]
from splink import Linker, SettingsCreator, block_on
from splink import blocking_rule_library as brl
from splink import comparison_level_library as cll
from splink import comparison_library as cl
from splink.backends.duckdb import DuckDBAPI
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_level_creator import ComparisonLevelCreator
from splink.internals.exceptions import EMTrainingException

from cdlm.matching.features import ARRAY_COLUMNS, COLUMNS, MatchRecord

if TYPE_CHECKING:
    from splink.internals.splink_dataframe import SplinkDataFrame

#: Jaro-Winkler similarities from which names count as close, closest first.
NAME_SIMILARITY = (0.92, 0.88)
#: Jaro-Winkler similarity and Levenshtein distance of close email local parts.
EMAIL_SIMILARITY, EMAIL_DISTANCE = 0.88, 2
#: Rules that admit (almost) no false match (columns equal; external ids: one token shared),
#: and the share of true matches they are assumed to find: the prior probability that two
#: records match is estimated from them.
DETERMINISTIC_RULES = (("email",), ("given_canonical", "family_name", "birth_date"))
DETERMINISTIC_RECALL = 0.85
#: Blocking of the EM passes; each estimates m for the comparisons it does not block on (a
#: pass that cannot run is skipped: cdlm profiles rarely share an email, ingest merges those).
#: Never a phone or an address: households share them, and EM would learn that they match.
TRAINING_BLOCKS = (("birth_date",), ("email",), ("given_canonical", "family_name"))
#: Blocking of the pairs to score; then swapped names, then one shared external id.
PREDICTION_BLOCKS = (
    ("email",),
    ("phone",),
    ("phone_last7",),
    ("given_canonical", "family_name"),
    ("birth_date", "family_key"),
    ("birth_date", "given_canonical"),
    ("birth_date", "given_initial"),
    ("birth_date", "email_domain"),
    ("postal_code",),
    ("email_local", "given_initial"),
)
SWAPPED_NAMES_RULE = "l.given_name = r.family_name AND l.family_name = r.given_name"
EXTERNAL_IDS = "external_ids"
#: Least m probability of a level: one never seen among EM's matches counts as seen rarely
#: instead of weighing minus infinity (u likewise: less than once in the sampled pairs).
M_FLOOR = 1e-4
#: Pairs per chunk of the u sample (memory per query).
U_CHUNK_PAIRS = 200_000
#: m and u of a level scored under another comparison (weight 0).
NEUTRAL = 0.01
#: The model's fixed identity, so that the same training gives the same JSON.
LINKER_UID = "cdlm"
FOCUS_COLUMN, DONE_COLUMN = "in_focus", "is_done"
_SPLINK_LOGGER = "splink"


class MatchingError(RuntimeError):
    """The engine failed; the message names the stage and exception type, never a value."""


@dataclass(frozen=True, slots=True)
class Resources:
    """What the in-memory DuckDB may use: past the memory limit a query fails (no spill)."""

    memory_limit_mb: int = 1536
    threads: int = 2


@dataclass(frozen=True, slots=True)
class ComparisonScore:
    """One comparison of a pair: its name, the level reached and that level's match weight
    (log2 Bayes factor, term-frequency adjustment included)."""

    name: str
    level: str
    weight: float


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """A scored pair of records (``left_id < right_id``): ids, scores and labels only.

    ``match_weight`` is the prior's weight (:func:`prior_weight`) plus the comparisons'.
    """

    left_id: str
    right_id: str
    probability: float
    match_weight: float
    comparisons: tuple[ComparisonScore, ...]


# --- comparisons and blocking (backend-neutral Splink creators) ---------------------------


def _level(level: ComparisonLevelCreator, label: str) -> ComparisonLevelCreator:
    return level.configure(label_for_charts=label)


def _neutral(level: ComparisonLevelCreator, label: str) -> ComparisonLevelCreator:
    """A level scored under another comparison: fixed m = u, so its weight is 0."""
    return level.configure(
        label_for_charts=label,
        m_probability=NEUTRAL,
        u_probability=NEUTRAL,
        fix_m_probability=True,
        fix_u_probability=True,
    )


def _null(*columns: str) -> ComparisonLevelCreator:
    levels = [cll.NullLevel(column) for column in columns]
    return _level(levels[0] if len(levels) == 1 else cll.And(*levels), "Null")


def _exact(column: str, label: str = "Exact match", *, tf: bool = False) -> ComparisonLevelCreator:
    return _level(cll.ExactMatchLevel(column, term_frequency_adjustments=tf), label)


def _jaro_winkler(column: str) -> list[ComparisonLevelCreator]:
    return [
        _level(cll.JaroWinklerLevel(column, threshold), f"Jaro-Winkler >= {threshold}")
        for threshold in NAME_SIMILARITY
    ]


def _swapped() -> ComparisonLevelCreator:
    return cll.ColumnsReversedLevel("given_name", "family_name", symmetrical=True)


def _initial() -> ComparisonLevelCreator:
    """Same first letter, one side being only that letter."""
    one_letter = [
        cll.CustomLevel(f"length(given_name_{side}) = 1", base_dialect_str="duckdb")
        for side in "lr"
    ]
    return _level(
        cll.And(cll.ExactMatchLevel("given_initial"), cll.Or(*one_letter)), "Initial match"
    )


def _same_address() -> ComparisonLevelCreator:
    return cll.And(cll.ExactMatchLevel("postal_code"), cll.ArrayIntersectLevel("street_tokens", 2))


def _household() -> ComparisonLevelCreator:
    return cll.And(cll.ExactMatchLevel("phone"), _same_address())


def _similar_email() -> ComparisonLevelCreator:
    """Local parts alike, addresses not equal."""
    return cll.And(
        cll.Not(cll.ExactMatchLevel("email")),
        cll.Or(
            cll.ExactMatchLevel("email_local"),
            cll.ExactMatchLevel("email_letters"),
            cll.And(
                cll.ExactMatchLevel("email_domain"),
                cll.LevenshteinLevel("email_local", EMAIL_DISTANCE),
            ),
            cll.JaroWinklerLevel("email_local", EMAIL_SIMILARITY),
        ),
    )


def _namesakes() -> ComparisonLevelCreator:
    """Same names (or nicknames) and alike email addresses: namesakes' addresses are made of
    their names too, so the three are weighed together (under email)."""
    return cll.And(
        cll.ExactMatchLevel("given_canonical"),
        cll.ExactMatchLevel("family_name"),
        _similar_email(),
    )


def _comparison(
    name: str, description: str, levels: Sequence[ComparisonLevelCreator]
) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name=name,
        comparison_description=description,
        comparison_levels=[*levels, _level(cll.ElseLevel(), "All other comparisons")],
    )


def comparisons() -> list[cl.CustomComparison]:
    """The comparisons, as Splink library creators (no SQL dialect chosen yet)."""
    return [
        _comparison("given_name", "Given name", [
            _null("given_name"),
            _neutral(_namesakes(), "Same names, email alike (scored under EMAIL)"),
            _exact("given_name", tf=True),
            _level(_swapped(), "Given and family names swapped"),
            _exact("given_canonical", "Nickname match"),
            *_jaro_winkler("given_name"),
            _initial(),
        ]),
        _comparison("family_name", "Family name", [
            _null("family_name"),
            _neutral(_namesakes(), "Same names, email alike (scored under EMAIL)"),
            _exact("family_name", tf=True),
            _neutral(_swapped(), "Given and family names swapped (scored under GIVEN_NAME)"),
            *_jaro_winkler("family_name"),
        ]),
        _comparison("birth_date", "Birth date", [
            _null("birth_date"),
            _exact("birth_date"),
            _level(cll.ColumnsReversedLevel("birth_date", "birth_swapped"),
                   "Day and month transposed"),
            _level(cll.LevenshteinLevel("birth_date", 1), "One character differs"),
            _exact("birth_year_month", "Same year and month"),
            _exact("birth_year", "Same year"),
        ]),
        _comparison("email", "Email address", [
            _null("email"),
            _exact("email"),
            _level(_namesakes(), "Same names, email alike"),
            _exact("email_local", "Same local part"),
            # A handle renumbered at another provider, or a namesake's: EM weighs it.
            _exact("email_letters", "Same letters, other digits or dots"),
            _level(cll.And(cll.ExactMatchLevel("email_domain"),
                           cll.LevenshteinLevel("email_local", EMAIL_DISTANCE)),
                   f"Same domain, local part Levenshtein <= {EMAIL_DISTANCE}"),
            _level(cll.JaroWinklerLevel("email_local", EMAIL_SIMILARITY),
                   f"Local part Jaro-Winkler >= {EMAIL_SIMILARITY}"),
            _exact("email_domain", "Same domain"),
        ]),
        _comparison("phone", "Phone number", [
            _null("phone"),
            _level(_household(), "Exact match, same address"),
            _exact("phone"),
            _exact("phone_last7", "Same last 7 digits"),
        ]),
        _comparison("address", "Postal address", [
            _null("postal_code", "street_tokens", "city"),
            _neutral(_household(), "Same address and phone (scored under PHONE)"),
            _level(_same_address(), "Same postcode and street"),
            _exact("postal_code", "Same postcode"),
            _level(cll.And(cll.ArrayIntersectLevel("street_tokens", 2),
                           cll.ExactMatchLevel("city")), "Same street and city"),
            _exact("city", "Same city"),
        ]),
        _comparison("external_id", "External ids", [
            _null(EXTERNAL_IDS),
            _level(cll.ArrayIntersectLevel(EXTERNAL_IDS, 1), "Shared external id"),
            _level(cll.ArrayIntersectLevel("external_namespaces", 1),
                   "Same system, different id"),
        ]),
    ]  # fmt: skip


def _shared_external_id() -> BlockingRuleCreator:
    return block_on(EXTERNAL_IDS, arrays_to_explode=[EXTERNAL_IDS])


def blocking_rules() -> list[BlockingRuleCreator]:
    """The rules generating the pairs to score (near-linear in the number of records). The
    external-id rule explodes its array, and Splink removes a pair found twice only when the
    exploding rule comes last."""
    return [
        *(block_on(*columns) for columns in PREDICTION_BLOCKS),
        brl.CustomRule(SWAPPED_NAMES_RULE, sql_dialect="duckdb"),
        _shared_external_id(),
    ]


def settings(*, dialect: str | None = None) -> dict[str, Any]:
    """The Splink settings: dedupe_only on ``unique_id`` with :func:`comparisons` and
    :func:`blocking_rules`.

    Backend-neutral: comparisons and blocking rules are Splink library creators that write
    their SQL for the backend they run on (custom SQL is written for DuckDB and translated by
    Splink), so the same dict runs on Splink's Spark backend (``SparkAPI``) as on DuckDB.
    With ``dialect`` (``"duckdb"``, ``"spark"``) it is rendered as JSON-ready SQL instead.
    """
    values: dict[str, Any] = {
        "link_type": "dedupe_only",
        "unique_id_column_name": "unique_id",
        "comparisons": comparisons(),
        "blocking_rules_to_generate_predictions": blocking_rules(),
        "retain_matching_columns": False,
        "retain_intermediate_calculation_columns": False,
        "linker_uid": LINKER_UID,
    }
    if dialect is None:
        return values
    return SettingsCreator(**values).create_settings_dict(dialect)


# --- a private, in-memory DuckDB -------------------------------------------------------------


@contextmanager
def _quiet() -> Iterator[None]:
    """Splink's loggers at WARNING or above (their debug output holds SQL and counts)."""
    splink_logger = logging.getLogger(_SPLINK_LOGGER)
    before = splink_logger.level
    splink_logger.setLevel(max(before, logging.WARNING))
    try:
        yield
    finally:
        splink_logger.setLevel(before)


@contextmanager
def _private_errors(stage: str) -> Iterator[None]:
    """Errors re-raised without their message, which may quote a value."""
    try:
        yield
    except MatchingError:
        raise
    except Exception as error:
        raise MatchingError(f"Matching failed while {stage} ({type(error).__name__}).") from None


def connection(resources: Resources = Resources()) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that writes no file: no temporary directory to spill to, no external
    access (files, extensions), and its configuration locked against later changes."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET threads = {int(resources.threads)}")
    con.execute(f"SET memory_limit = '{int(resources.memory_limit_mb)}MB'")
    con.execute("SET temp_directory = ''")
    con.execute("SET enable_progress_bar = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _table(records: Sequence[MatchRecord], flags: Mapping[str, list[bool]]) -> pa.Table:
    strings = pa.list_(pa.string())
    columns: dict[str, pa.Array] = {}
    for name in COLUMNS:
        values = [getattr(record, name) for record in records]
        if name in ARRAY_COLUMNS:
            columns[name] = pa.array([list(v) if v else None for v in values], type=strings)
        else:
            columns[name] = pa.array(values, type=pa.string())
    for name, flag in flags.items():
        columns[name] = pa.array(flag, type=pa.bool_())
    return pa.table(columns)


@contextmanager
def _registered(
    records: Sequence[MatchRecord],
    resources: Resources,
    flags: Mapping[str, list[bool]] | None = None,
) -> Iterator[SplinkDataFrame]:
    """The records as a table of a fresh in-memory DuckDB, closed (and freed) afterwards."""
    if len({record.unique_id for record in records}) != len(records):
        raise ValueError("Record ids must be unique.")
    con = connection(resources)
    try:
        with _private_errors("loading the records"):
            table = DuckDBAPI(con).register(_table(records, flags or {}), table_name="records")
        yield table
    finally:
        con.close()


def _linker(table: SplinkDataFrame, model: dict[str, Any]) -> Linker:
    with _private_errors("reading the settings"):
        return Linker(table, model, log_level=None)


# --- training -----------------------------------------------------------------------------


def _deterministic_rules() -> list[str | BlockingRuleCreator]:
    return [*(block_on(*columns) for columns in DETERMINISTIC_RULES), _shared_external_id()]


def _smoothed(model: dict[str, Any], max_pairs: int) -> dict[str, Any]:
    """Every level with m of at least :data:`M_FLOOR` and u of at least 1/``max_pairs``. A
    level observed neither among matches nor among random pairs, and every level of a
    comparison EM could not estimate at all, weighs 0 (m = u)."""
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        untrained = all(level.get("m_probability") is None for level in levels)
        for level in levels:
            m, u = level.get("m_probability"), level.get("u_probability")
            if untrained or (m is None and u is None):
                level["m_probability"] = level["u_probability"] = NEUTRAL
            else:
                level["m_probability"] = max(m or 0.0, M_FLOOR)
                level["u_probability"] = max(u or 0.0, 1 / max_pairs)
    return model


def _prior(linker: Linker, count: int) -> None:
    """The prior from :data:`DETERMINISTIC_RULES`; when they find no pair (no two profiles
    share an email or their names and birth date), one match among all pairs, so that EM
    still has a start."""
    linker.training.estimate_probability_two_random_records_match(
        _deterministic_rules(), recall=DETERMINISTIC_RECALL
    )
    settings_obj = linker._settings_obj
    least = 2 / (count * (count - 1))
    if settings_obj._probability_two_random_records_match < least:
        settings_obj._probability_two_random_records_match = least


def _u_chunks(max_pairs: int) -> int:
    """Chunks of the u sample: enough to bound memory (~200,000 pairs each), no more (each
    costs a query per comparison)."""
    return max(1, min(10, max_pairs // U_CHUNK_PAIRS))


def _expectation_maximisation(linker: Linker, max_pairs: int) -> None:
    """The EM passes of :data:`TRAINING_BLOCKS`, each skipped when it cannot run: its block
    holds no pair (profiles already merged on a shared email hold none), or, on few records,
    EM drives an m probability to 0, which Splink refuses. A comparison no pass estimated
    weighs nothing (:func:`_smoothed`)."""
    settings_obj = linker._settings_obj
    passed = 0
    for columns in TRAINING_BLOCKS:
        # Splink's training session narrows the linker's own model (comparisons, prior) and
        # restores it only on success: keep a copy to restore after a failed pass.
        before = deepcopy(settings_obj.core_model_settings)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*columns), estimate_without_term_frequencies=True, max_pairs=max_pairs
            )
        except (ValueError, EMTrainingException):
            settings_obj.core_model_settings = before
            logging.getLogger(__name__).warning(
                "EM blocked on %s could not run; pass skipped.", ", ".join(columns)
            )
            continue
        passed += 1
    if not passed:
        raise MatchingError("Matching failed while estimating m (too few records to train on).")


def _rounded(value: Any) -> Any:
    """Floats to 12 significant digits: the same training gives the same JSON even where
    parallel sums differ in their last bits."""
    if isinstance(value, float):
        return float(f"{value:.12g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def train(
    records: Sequence[MatchRecord],
    *,
    seed: int = 1,
    max_pairs: int = 2_000_000,
    resources: Resources = Resources(),
) -> str:
    """Train a model on ``records`` and return its JSON (settings and parameters, no values).

    The prior comes from :data:`DETERMINISTIC_RULES` (and shared external ids) at an assumed
    recall of :data:`DETERMINISTIC_RECALL`; u from up to ``max_pairs`` random pairs drawn with
    ``seed``; m by expectation maximisation over :data:`TRAINING_BLOCKS` (each pass capped
    near ``max_pairs`` pairs by Splink's deterministic sampling). The same records and seed
    give the same JSON.
    """
    if len(records) < 2:
        raise ValueError("Training needs at least two records.")
    with _quiet(), _registered(records, resources) as table:
        linker = _linker(table, settings())
        with _private_errors("estimating the prior"):
            _prior(linker, len(records))
        with _private_errors("estimating u"):
            linker.training.estimate_u_using_random_sampling(
                max_pairs=max_pairs, seed=seed, num_chunks=_u_chunks(max_pairs)
            )
        with _private_errors("estimating m"):
            _expectation_maximisation(linker, max_pairs)
        with _private_errors("saving the model"):
            model = linker.misc.save_model_to_json()
    return json.dumps(_rounded(_smoothed(model, max_pairs)), sort_keys=True)


def prior_weight(model_json: str) -> float:
    """The match weight (log2 odds) of the model's prior: a pair's weight is this plus the
    weights of its comparisons."""
    with _private_errors("reading the model"):
        prior = float(json.loads(model_json)["probability_two_random_records_match"])
    return math.log2(prior / (1 - prior))


# --- prediction ---------------------------------------------------------------------------


def _restricted(rules: list[dict[str, Any]], focus: bool, done: bool) -> list[dict[str, Any]]:
    """The model's blocking rules, keeping only pairs with a side in focus and none done."""
    conditions = []
    if focus:
        conditions.append(f"(l.{FOCUS_COLUMN} OR r.{FOCUS_COLUMN})")
    if done:
        conditions.append(f"NOT l.{DONE_COLUMN} AND NOT r.{DONE_COLUMN}")
    if not conditions:
        return rules
    extra = " AND ".join(conditions)
    return [{**rule, "blocking_rule": f"({rule['blocking_rule']}) AND {extra}"} for rule in rules]


def _flags(
    records: Sequence[MatchRecord], focus: Collection[str] | None, done: Collection[str]
) -> dict[str, list[bool]]:
    flags: dict[str, list[bool]] = {}
    if focus is not None:
        wanted = set(focus)
        flags[FOCUS_COLUMN] = [record.unique_id in wanted for record in records]
    if done:
        finished = set(done)
        flags[DONE_COLUMN] = [record.unique_id in finished for record in records]
    return flags


def _prediction_model(
    model_json: str, focus: Collection[str] | None, done: Collection[str]
) -> dict[str, Any]:
    with _private_errors("reading the model"):
        model: dict[str, Any] = json.loads(model_json)
        rules = model["blocking_rules_to_generate_predictions"]
    model["blocking_rules_to_generate_predictions"] = _restricted(
        rules, focus is not None, bool(done)
    )
    return model


@dataclass(frozen=True, slots=True)
class _Described:
    name: str
    labels: Mapping[int, str]  # comparison vector value → label
    tf_adjusted: bool


def _described(model: Mapping[str, Any]) -> list[_Described]:
    """Each comparison's level labels by comparison vector value, numbered as Splink does:
    null levels -1, the others from the highest down to 0."""
    found = []
    for comparison in model["comparisons"]:
        levels = comparison["comparison_levels"]
        value = sum(1 for level in levels if not level.get("is_null_level")) - 1
        labels: dict[int, str] = {}
        for level in levels:
            if level.get("is_null_level"):
                labels[-1] = level["label_for_charts"]
            else:
                labels[value] = level["label_for_charts"]
                value -= 1
        tf = any("tf_adjustment_column" in level for level in levels)
        found.append(_Described(comparison["output_column_name"], labels, tf))
    return found


def _projection(described: Sequence[_Described]) -> str:
    columns = ["unique_id_l", "unique_id_r", "match_probability", "match_weight"]
    for comparison in described:
        weight = f"mw_{comparison.name}"
        if comparison.tf_adjusted:
            weight += f" + mw_tf_adj_{comparison.name}"
        columns += [f"gamma_{comparison.name}", weight]
    return ", ".join(columns)


def _pair(row: tuple[Any, ...], described: Sequence[_Described]) -> ScoredPair:
    left, right, probability, weight = (str(row[0]), str(row[1]), row[2], row[3])
    scores = tuple(
        ComparisonScore(c.name, c.labels[int(row[4 + 2 * i])], float(row[5 + 2 * i]))
        for i, c in enumerate(described)
    )
    if right < left:
        left, right = right, left
    return ScoredPair(left, right, float(probability), float(weight), scores)


def predict(
    records: Sequence[MatchRecord],
    model_json: str,
    *,
    threshold: float,
    focus: Collection[str] | None = None,
    done: Collection[str] = (),
    resources: Resources = Resources(),
) -> list[ScoredPair]:
    """Pairs of ``records`` with a match probability of at least ``threshold``, by ids.

    With ``focus``, only pairs with at least one side in it are generated (an incremental
    run: profiles new or changed since the last one, against everyone in their blocks); pairs
    with a side in ``done`` (compared in an earlier chunk of the run) are not generated. Both
    are conditions added to the model's blocking rules: nothing else is scored.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError("The threshold is a probability between 0 and 1.")
    if len(records) < 2 or (focus is not None and not focus):
        return []
    model = _prediction_model(model_json, focus, done)
    model["retain_matching_columns"] = True  # gives the comparison vector (gamma) columns
    model["retain_intermediate_calculation_columns"] = True  # and the weight columns
    described = _described(model)
    flags = _flags(records, focus, done)
    with _quiet(), _registered(records, resources, flags) as table:
        linker = _linker(table, model)
        with _private_errors("scoring pairs"):
            scored = linker.inference.predict(
                threshold_match_probability=threshold if threshold > 0 else None,
                warning_mode="never",
            )
            rows = (
                table.db_api.duckdb_con.table(scored.physical_name)
                .project(_projection(described))
                .order("unique_id_l, unique_id_r")
                .fetchall()
            )
    return [_pair(row, described) for row in rows]


def comparison_count(
    records: Sequence[MatchRecord],
    model_json: str | None = None,
    *,
    focus: Collection[str] | None = None,
    done: Collection[str] = (),
    resources: Resources = Resources(),
) -> int:
    """How many pairs :func:`predict` would score for the same arguments (the blocking rules of
    the model, or of :func:`settings` without one), counted without scoring them."""
    if len(records) < 2 or (focus is not None and not focus):
        return 0
    model = _prediction_model(model_json or json.dumps(settings(dialect="duckdb")), focus, done)
    rules = model["blocking_rules_to_generate_predictions"]
    flags = _flags(records, focus, done)
    with _quiet(), _registered(records, resources, flags) as table, _private_errors("counting"):
        counts = count_comparisons_from_blocking_rules(
            table, blocking_rules=rules, link_type="dedupe_only", record_sample_proportion=1.0
        )
    return int(counts[-1]["cumulative_comparison_count"]) if counts else 0
