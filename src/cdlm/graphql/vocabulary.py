"""GraphQL enums shared by several domains' APIs, registered once."""

from __future__ import annotations

import strawberry

from cdlm.core.identifiers import IdentifierKind
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind

strawberry.enum(LifecycleStage, description="Where a customer is in the relationship.")
strawberry.enum(SourceKind, description="Kind of touchpoint data came from.")
strawberry.enum(LawfulBasis, description="GDPR Art. 6(1) lawful basis of processing.")
strawberry.enum(IdentifierKind, description="Kinds of identifier, strongest first.")

__all__ = ["IdentifierKind", "LawfulBasis", "LifecycleStage", "SourceKind"]
