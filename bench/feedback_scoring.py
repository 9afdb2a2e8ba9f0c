"""Sentiment scoring of one feedback text at ingestion, worst cases within the 16 KiB of
properties: the time VADER takes on the whole text (as texts were scored before they were
bounded) and on its scored part (:func:`cdlm.customers.feedback.compound`: the first 1,000
characters, at most 50 emoji). Target: a few milliseconds per event whatever the text.

``python -m bench feedback_scoring``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cdlm.customers.feedback import analyzer, compound

#: Texts of about 16,000 bytes of properties, the most VADER has to do per character.
TEXTS = {
    "emoji (4,000)": "🙂" * 4_000,
    "emoji and words": "🙂 a " * 4_000,
    "short words": ("no not very good but bad " * 700)[:16_000],
    "one letter words": "a " * 8_000,
}


def _seconds(score: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    score(text)
    return time.perf_counter() - started


def run() -> None:
    """Print, per worst-case text, the seconds to score it whole and bounded."""
    analyzer()  # the lexicon is read once per process, not per event
    print("feedback scoring, one text (seconds): whole text / bounded (what ingestion does)")
    for name, text in TEXTS.items():
        whole = _seconds(lambda t: analyzer().polarity_scores(t), text)
        bounded = min(_seconds(compound, text) for _ in range(5))
        print(f"  {name:<18} {len(text):>6} chars  whole {whole:8.3f}  bounded {bounded:8.4f}")


if __name__ == "__main__":
    run()
