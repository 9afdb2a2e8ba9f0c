"""The linkage engine on ~2,000 generated records: training, scoring, incremental runs, and
that decrypted values stay in memory (no file, no log line, nothing in the model)."""

from __future__ import annotations

import io
import json
import logging
import math
import re
import tempfile
from collections.abc import Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from bench.people import LabelledRecord, people

from cdlm.matching import engine
from cdlm.matching.engine import MatchingError, Resources, ScoredPair
from cdlm.matching.features import MatchRecord, match_record

pytestmark = pytest.mark.pure

MAX_PAIRS = 50_000
BASE = {
    "given_name": "Robert",
    "family_name": "Quennell",
    "email": "robert.quennell61@example.org",
    "phone": "+447412300611",
    "birth_date": "1961-04-09",
    "address_line1": "14 Larkspur Road",
    "city": "Harrogate",
    "postal_code": "HG1 4QT",
    "country": "GB",
}
#: The same person again, with one kind of noise each.
VARIANTS = {
    "email_typo": {**BASE, "email": "robert.qeunnell61@example.org"},
    "nickname": {**BASE, "given_name": "Bob"},
    "transposed_birth": {**BASE, "birth_date": "1961-09-04"},
    "new_phone": {**BASE, "phone": "+447598800112"},
    "moved": {
        **BASE,
        "address_line1": "3 Orchard Close",
        "city": "Leeds",
        "postal_code": "LS6 2AB",
    },
}
#: Other people near the base record.
OTHERS = {
    "household": {**BASE, "given_name": "Margaret", "email": "mquennell@example.net",
                  "birth_date": "1963-11-30"},
    "namesake": {"given_name": "Robert", "family_name": "Quennell", "phone": "+447455500321",
                 "email": "rquennell@example.com", "birth_date": "1990-02-17",
                 "address_line1": "80 Mill Lane", "city": "Bath", "postal_code": "BA2 3DE"},
    "neighbour": {**BASE, "given_name": "Hannah", "family_name": "Ostrowska",
                  "email": "hannah.o@example.com", "phone": "+447533300444",
                  "birth_date": "1988-06-21", "address_line1": "16 Larkspur Road"},
}  # fmt: skip


def _records(labelled: Sequence[LabelledRecord]) -> list[MatchRecord]:
    return [match_record(row.record_id, row.profile, row.external_ids) for row in labelled]


@pytest.fixture(scope="module")
def population() -> list[LabelledRecord]:
    return people(1000, seed=3)


@pytest.fixture(scope="module")
def records(population: list[LabelledRecord]) -> list[MatchRecord]:
    crafted = [
        match_record(f"x-{name}", profile)
        for name, profile in {"base": BASE, **VARIANTS, **OTHERS}.items()
    ]
    return _records(population) + crafted


class _Collected(logging.Handler):
    """Every log record, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass(frozen=True)
class Run:
    """One training and scoring of the records, and what it left behind."""

    model: str
    everything: list[ScoredPair]  # every blocked pair (threshold 0)
    count: int
    output: str  # log lines at DEBUG, stdout and stderr
    files: list[Path]  # created in a fresh working directory and a fresh TMPDIR


@pytest.fixture(scope="module")
def run(records: list[MatchRecord], tmp_path_factory: pytest.TempPathFactory) -> Run:
    work, temp = tmp_path_factory.mktemp("cwd"), tmp_path_factory.mktemp("tmp")
    collected, out, err = _Collected(), io.StringIO(), io.StringIO()
    root = logging.getLogger()
    level = root.level
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(out), redirect_stderr(err):
        patch.chdir(work)
        patch.setenv("TMPDIR", str(temp))
        patch.setattr(tempfile, "tempdir", str(temp))
        root.addHandler(collected)
        root.setLevel(logging.DEBUG)
        try:
            model = engine.train(records, max_pairs=MAX_PAIRS)
            everything = engine.predict(records, model, threshold=0.0)
            count = engine.comparison_count(records, model)
        finally:
            root.removeHandler(collected)
            root.setLevel(level)
    output = "\n".join([*collected.lines, out.getvalue(), err.getvalue()])
    return Run(model, everything, count, output, [*work.rglob("*"), *temp.rglob("*")])


@pytest.fixture(scope="module")
def model(run: Run) -> str:
    return run.model


@pytest.fixture(scope="module")
def everything(run: Run) -> list[ScoredPair]:
    return run.everything


def _ids(pairs: Sequence[ScoredPair]) -> set[tuple[str, str]]:
    return {(pair.left_id, pair.right_id) for pair in pairs}


def _probability(pairs: Sequence[ScoredPair], left: str, right: str) -> float:
    low, high = sorted((left, right))
    found = [p.probability for p in pairs if (p.left_id, p.right_id) == (low, high)]
    return found[0] if found else 0.0


def test_training_is_deterministic_and_copes_with_profiles_merged_on_their_email(
    records: list[MatchRecord],
) -> None:
    # Profiles in cdlm are already merged on a shared email: the EM pass blocked on email has
    # no pair to learn from and is skipped, without losing a comparison or the prior.
    first_with: dict[str, MatchRecord] = {}
    for record in records:
        first_with.setdefault(record.email or record.unique_id, record)
    distinct = list(first_with.values())
    model = engine.train(distinct, max_pairs=MAX_PAIRS)
    assert engine.train(distinct, max_pairs=MAX_PAIRS) == model
    settings = json.loads(model)
    assert len(settings["comparisons"]) == 7
    assert settings["probability_two_random_records_match"] < 0.001
    given = settings["comparisons"][0]["comparison_levels"]
    exact = next(level for level in given if level["label_for_charts"] == "Exact match")
    assert exact["m_probability"] > 10 * exact["u_probability"]


def test_without_any_pair_the_rules_find_the_prior_is_one_match_among_all_pairs(
    population: list[LabelledRecord],
) -> None:
    first: dict[int, LabelledRecord] = {}
    for row in population:
        first.setdefault(row.person, row)
    singles = _records(list(first.values())[:300])
    model = json.loads(engine.train(singles, max_pairs=20_000))
    assert model["probability_two_random_records_match"] == pytest.approx(2 / (300 * 299))


def test_the_model_is_a_splink_model_with_trained_parameters(model: str) -> None:
    settings = json.loads(model)
    assert settings["link_type"] == "dedupe_only"
    assert settings["unique_id_column_name"] == "unique_id"
    assert 0 < settings["probability_two_random_records_match"] < 0.01
    names = [c["output_column_name"] for c in settings["comparisons"]]
    assert names == [
        "given_name", "family_name", "birth_date", "email", "phone", "address", "external_id",
    ]  # fmt: skip
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if not level.get("is_null_level"):
                assert 0 < level["m_probability"] <= 1
                assert 0 < level["u_probability"] <= 1


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", text.casefold()))


def test_the_model_holds_no_value(population: list[LabelledRecord], model: str) -> None:
    # Every word of the trained model is a word of the untrained settings (or a float's "e"):
    # no name, email, street or city of the training data, and no term-frequency table.
    settings_words = _words(json.dumps(engine.settings(dialect="duckdb")))
    assert _words(model) - settings_words <= {"e"}
    given = {
        word
        for row in population
        for word in _words(row.profile.get("given_name", ""))
        if len(word) > 1  # not an initial
    }
    assert len(given) > 100
    leaked = given & _words(model)
    assert leaked <= settings_words  # words like "max" that the settings themselves use
    assert leaked <= {"max"}
    assert "quennell" not in model.casefold()
    assert "tf_" not in json.dumps(json.loads(model)["comparisons"]).replace("tf_adjustment", "")


def test_typo_d_duplicates_score_above_0_9(everything: list[ScoredPair]) -> None:
    for name in VARIANTS:
        assert _probability(everything, "x-base", f"x-{name}") > 0.9, name


def test_different_people_score_below_0_9(everything: list[ScoredPair]) -> None:
    for name in OTHERS:
        assert _probability(everything, "x-base", f"x-{name}") < 0.9, name


def test_most_true_pairs_score_high_and_few_false_ones(
    population: list[LabelledRecord], everything: list[ScoredPair]
) -> None:
    person = {row.record_id: row.person for row in population}
    truth = {
        (a.record_id, b.record_id) if a.record_id < b.record_id else (b.record_id, a.record_id)
        for a in population
        for b in population
        if a.person == b.person and a.record_id != b.record_id
    }
    found = {(p.left_id, p.right_id) for p in everything if p.probability >= 0.95}
    found = {pair for pair in found if pair[0] in person and pair[1] in person}
    assert len(found & truth) / len(truth) > 0.9
    assert len(found & truth) / len(found) > 0.9


def test_pairs_are_ordered_by_id_and_carry_labels_and_weights(
    everything: list[ScoredPair], model: str
) -> None:
    prior = engine.prior_weight(model)
    settings = json.loads(model)
    labels = {
        c["output_column_name"]: {level["label_for_charts"] for level in c["comparison_levels"]}
        for c in settings["comparisons"]
    }
    assert everything
    for pair in everything:
        assert pair.left_id < pair.right_id
        assert [c.name for c in pair.comparisons] == list(labels)
        for score in pair.comparisons:
            assert score.level in labels[score.name]
            if score.level == "Null":
                assert score.weight == 0
        total = prior + sum(score.weight for score in pair.comparisons)
        assert total == pytest.approx(pair.match_weight, abs=1e-9)
        assert pair.probability == pytest.approx(1 / (1 + 2**-pair.match_weight), rel=1e-9)
    exact = [
        s
        for p in everything
        for s in p.comparisons
        if (s.name, s.level) == ("email", "Exact match")
    ]
    assert exact
    assert all(s.weight > 5 for s in exact)


def test_a_threshold_keeps_the_pairs_at_or_above_it(
    records: list[MatchRecord], model: str, everything: list[ScoredPair]
) -> None:
    kept = engine.predict(records, model, threshold=0.9)
    assert _ids(kept) == {(p.left_id, p.right_id) for p in everything if p.probability >= 0.9}


def test_focus_scores_only_pairs_with_a_side_in_focus(
    records: list[MatchRecord], model: str, everything: list[ScoredPair]
) -> None:
    focus = {record.unique_id for record in records[::7]}
    found = engine.predict(records, model, threshold=0.0, focus=focus)
    expected = {(p.left_id, p.right_id) for p in everything if {p.left_id, p.right_id} & focus}
    assert _ids(found) == expected
    assert engine.comparison_count(records, model, focus=focus) == len(expected)


def test_done_skips_pairs_with_a_side_compared_in_an_earlier_chunk(
    records: list[MatchRecord], model: str, everything: list[ScoredPair]
) -> None:
    done = {record.unique_id for record in records[::5]}
    found = engine.predict(records, model, threshold=0.0, done=done)
    assert _ids(found) == {
        (p.left_id, p.right_id) for p in everything if not {p.left_id, p.right_id} & done
    }


def test_chunks_of_focus_with_done_cover_every_pair_once(
    records: list[MatchRecord], model: str, everything: list[ScoredPair]
) -> None:
    ids = [record.unique_id for record in records]
    chunks = [set(ids[: len(ids) // 2]), set(ids[len(ids) // 2 :])]
    done: set[str] = set()
    seen: list[tuple[str, str]] = []
    for chunk in chunks:
        pairs = engine.predict(records, model, threshold=0.0, focus=chunk, done=done)
        seen += sorted(_ids(pairs))
        done |= chunk
    assert len(seen) == len(set(seen))
    assert set(seen) == _ids(everything)


def test_an_empty_focus_scores_nothing(records: list[MatchRecord], model: str) -> None:
    assert engine.predict(records, model, threshold=0.0, focus=set()) == []
    assert engine.comparison_count(records, model, focus=set()) == 0


def test_the_comparison_count_is_the_number_of_pairs_scored(
    records: list[MatchRecord], run: Run, everything: list[ScoredPair]
) -> None:
    assert run.count == len(everything)
    # The blocking keeps the count near-linear: a few pairs per record.
    assert len(everything) < 5 * len(records)
    assert engine.comparison_count(records) == len(everything)  # the settings' own rules


def test_training_and_scoring_write_no_file(run: Run) -> None:
    assert run.files == []


def test_duckdb_runs_in_memory_without_a_spill_directory() -> None:
    con = engine.connection(Resources(memory_limit_mb=256, threads=1))
    try:
        settings = dict(
            con.sql(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('temp_directory', 'enable_external_access', 'lock_configuration', "
                "'memory_limit', 'threads')"
            ).fetchall()
        )
        assert settings["temp_directory"] == ""
        assert settings["enable_external_access"] == "false"
        assert settings["lock_configuration"] == "true"
        assert settings["memory_limit"] == "244.1 MiB"
        assert settings["threads"] == "1"
        assert con.sql("SELECT current_setting('temp_directory')").fetchall() == [("",)]
        with pytest.raises(Exception, match="locked"):
            con.execute("SET temp_directory = '/tmp/spill'")
        with pytest.raises(Exception, match="disabled"):
            con.execute("COPY (SELECT 1) TO 'out.csv'")
    finally:
        con.close()


def _values(population: Sequence[LabelledRecord]) -> set[str]:
    """Values distinctive enough to be told apart from ordinary words in a log line."""
    found = set()
    for row in population:
        for key in ("email", "phone", "family_name", "given_name", "address_line1"):
            value = row.profile.get(key, "")
            if len(value) >= 6:
                found.add(value.casefold())
    return found


def test_no_value_reaches_the_logs_or_the_console(
    run: Run, population: list[LabelledRecord]
) -> None:
    assert "splink" in run.output  # the capture works: Splink warns of unobserved levels
    leaked = [value for value in _values(population) if value in run.output.casefold()]
    assert leaked == []
    assert logging.getLogger("splink").level == logging.NOTSET  # restored afterwards


def test_no_value_reaches_captured_logs_when_scoring(
    caplog: pytest.LogCaptureFixture,
    population: list[LabelledRecord],
    records: list[MatchRecord],
    model: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    engine.predict(records, model, threshold=0.5, focus={r.unique_id for r in records[:50]})
    leaked = [value for value in _values(population) if value in caplog.text.casefold()]
    assert leaked == []


def test_errors_name_the_stage_but_no_value(records: list[MatchRecord]) -> None:
    with pytest.raises(MatchingError, match=r"reading the model \(JSONDecodeError\)"):
        engine.predict(records[:10], "{not json", threshold=0.5)
    with pytest.raises(MatchingError) as raised:
        engine.train(records, resources=Resources(memory_limit_mb=1, threads=1))
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__
    assert "Robert" not in str(raised.value)
    assert "@" not in str(raised.value)


def test_ids_must_be_unique_and_thresholds_probabilities(
    records: list[MatchRecord], model: str
) -> None:
    with pytest.raises(ValueError, match="unique"):
        engine.predict([records[0], records[0]], model, threshold=0.5)
    for threshold in (-0.1, 1.5):
        with pytest.raises(ValueError, match="probability"):
            engine.predict(records, model, threshold=threshold)
    assert engine.predict(records[:1], model, threshold=0.0) == []
    assert engine.comparison_count(records[:1], model) == 0


def test_the_settings_are_backend_neutral_until_rendered() -> None:
    neutral = engine.settings()
    assert neutral["link_type"] == "dedupe_only"
    assert neutral["unique_id_column_name"] == "unique_id"
    assert not any(isinstance(c, dict) for c in neutral["comparisons"])
    duckdb_sql = json.dumps(engine.settings(dialect="duckdb"))
    spark_sql = json.dumps(engine.settings(dialect="spark"))
    assert "jaro_winkler_similarity(" in duckdb_sql
    assert "jaro_winkler_similarity(" not in spark_sql
    assert "jaro_winkler(" in spark_sql
    rules = engine.settings(dialect="spark")["blocking_rules_to_generate_predictions"]
    assert rules[-1]["arrays_to_explode"] == ["external_ids"]


def test_a_match_weight_is_a_probability_through_the_logistic_function() -> None:
    model = json.dumps({"probability_two_random_records_match": 0.2})
    assert engine.prior_weight(model) == pytest.approx(math.log2(0.25))
