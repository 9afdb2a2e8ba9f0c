"""Quality snapshots: the daily analytics run records how good the customer data is, so the
dashboard can show it over time.

Quality scores, present fields and refused values are stored only as they are now; a snapshot
keeps their aggregates at the moment it is taken (the data quality report's score histogram and
field presence, and the open refused values per source system). One is taken by every
analytics run (:func:`take`, called from :mod:`cdlm.analytics.runs`); counts only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from cdlm.core import clock
from cdlm.insight.models import QualitySnapshot
from cdlm.quality import refused
from cdlm.quality import service as quality


async def take(run_id: uuid.UUID | None = None) -> QualitySnapshot:
    """Read the quality figures now and keep them (seven aggregate statements)."""
    report = await quality.report()
    by_source = await refused.open_by_source()
    return await QualitySnapshot.create(
        id=uuid.uuid4(),
        taken_at=clock.now(),
        run_id=run_id,
        customers=report.customers,
        average_score=report.average_score,
        score_buckets=[[low, high, n] for low, high, n in report.score_buckets],
        field_presence=dict(report.field_presence),
        open_refused=[[source, n] for source, n in by_source],
    )


async def latest(before: datetime | None = None) -> QualitySnapshot | None:
    """The newest snapshot (taken before ``before``), or None."""
    query = QualitySnapshot.all()
    if before is not None:
        query = query.filter(taken_at__lt=before)
    return await query.order_by("-taken_at", "-id").first()
