"""Tables of analytics: the evidence of each analytics run.

Nothing here is personal: a run holds counts, the as-of moment, the currencies whose amounts it
could not convert, and the fitted model parameters of the whole population.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields

from cdlm.core.tables import Model


class AnalyticsRunStatus(StrEnum):
    """The state of an analytics run."""

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class AnalyticsRun(Model):
    """One refresh of the customers' scores (RFM, lifetime value, churn risk), with its
    evidence: what was counted, the fits and their log-likelihoods, or why nothing was fitted."""

    id = fields.UUIDField(primary_key=True)
    status = fields.CharEnumField(AnalyticsRunStatus, max_length=16, db_index=True)
    as_of = fields.DatetimeField(description="End of the observation window (exclusive)")
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    duration_seconds = fields.FloatField(default=0.0)
    purchase_types: list[str] = fields.JSONField(description="Event types counted as purchases")
    currency = fields.CharField(max_length=3, description="Reporting currency")
    customers_scored = fields.IntField(default=0)
    customers_cleared = fields.IntField(
        default=0, description="Customers whose earlier scores were removed"
    )
    purchases = fields.IntField(default=0, description="Purchase events counted")
    buyers = fields.IntField(default=0, description="Customers with a purchase")
    repeat_buyers = fields.IntField(default=0, description="Buyers on more than one day")
    skipped_amounts: dict[str, int] = fields.JSONField(
        default=dict, description="Currency -> purchases whose amount had no rate"
    )
    bgnbd_r = fields.FloatField(null=True)
    bgnbd_alpha = fields.FloatField(null=True, description="In days")
    bgnbd_a = fields.FloatField(null=True)
    bgnbd_b = fields.FloatField(null=True)
    bgnbd_log_likelihood = fields.FloatField(null=True)
    bgnbd_converged = fields.BooleanField(null=True)
    gamma_gamma_p = fields.FloatField(null=True)
    gamma_gamma_q = fields.FloatField(null=True)
    gamma_gamma_v = fields.FloatField(null=True)
    gamma_gamma_log_likelihood = fields.FloatField(null=True)
    gamma_gamma_converged = fields.BooleanField(null=True)
    note = fields.CharField(
        max_length=500, null=True, description="Why a model was not fitted or not used"
    )
    error = fields.CharField(max_length=200, null=True, description="Error class, no values")

    class Meta:
        table = "analytics_runs"
        indexes = (("status", "started_at"),)
