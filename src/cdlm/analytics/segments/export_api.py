"""GraphQL API of segment exports: ``SegmentExport`` and the ``exportSegment`` mutation."""

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics.segments import export, service
from cdlm.analytics.segments.api import SegmentNode
from cdlm.analytics.segments.models import SegmentExport
from cdlm.core.roles import Role
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import (
    NotFoundError,
    Outcomes,
    PolicyViolationError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import Node, NodeKind, global_id, in_order, parse_id, rows_fetcher

#: Who exports segments and reads exports: personal data leaves cdlm.
EXPORTERS = (Role.ADMIN, Role.PRIVACY_OFFICER)

describe_enum(
    export.ExportFormat,
    "How a segment export's file is written.",
    {
        export.ExportFormat.CSV: "Comma-separated values with a header row (UTF-8); an "
        "empty cell is a value not held.",
        export.ExportFormat.JSON_LINES: "One JSON object per line (UTF-8); null is a value "
        "not held.",
    },
    name="SegmentExportFormat",
)


async def segments_by_id(ids: list[uuid.UUID]) -> list[SegmentNode | None]:
    """Segments by id, in order (DataLoader batch)."""
    return in_order(await service.segments_by_ids(ids), ids, SegmentNode.from_row)  # type: ignore[return-value]


@strawberry.type(description="How many customers an export considered, wrote and left out.")
class SegmentExportCounts:
    members_evaluated: int = strawberry.field(
        description="Members of the segment when the export was made."
    )
    members_exported: int = strawberry.field(description="Rows written to the file.")
    left_out_for_consent: int = strawberry.field(
        description="Members left out because the purpose may not process their data "
        "(no consent, an objection, or restricted processing)."
    )


@strawberry.type(
    name="SegmentExport",
    description="A file of a segment's members made for one purpose: only members the "
    "purpose may process at export time, only the fields its data categories cover. The "
    "file itself is fetched through the download link shown once by `exportSegment`.",
)
class SegmentExportNode(Node):
    purpose_code: str = strawberry.field(description="Code of the purpose it was made for.")
    format: export.ExportFormat = strawberry.field(description="How the file is written.")
    created_at: datetime = strawberry.field(description="When it was made.")
    counts: SegmentExportCounts = strawberry.field(description="Who it holds and left out.")
    fields: list[str] = strawberry.field(
        description="The file's columns in order: `customerId` (the customer's database id, "
        "as in the access copy), then API paths below `Customer` (e.g. `profile.email`, "
        "`analytics.attributes.country`)."
    )
    row: strawberry.Private[SegmentExport]

    @classmethod
    def from_row(cls, row: SegmentExport) -> "SegmentExportNode":
        return cls(
            id=global_id("SegmentExport", row.id),
            purpose_code=row.purpose_code,
            format=export.ExportFormat(row.format),
            created_at=row.created_at,
            counts=SegmentExportCounts(
                members_evaluated=row.members_evaluated,
                members_exported=row.members_exported,
                left_out_for_consent=row.left_out_for_consent,
            ),
            fields=list(row.exported_fields),
            row=row,
        )

    @strawberry.field(description="The segment exported (null once it no longer exists).")
    async def segment(self, info: Info[Any, Any]) -> SegmentNode | None:
        found: SegmentNode | None = await info.context.loaders.get(segments_by_id).load(
            self.row.segment_id  # type: ignore[attr-defined]
        )
        return found


@strawberry.input(description="What to export.")
class ExportSegmentInput:
    segment_id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    purpose_code: str = strawberry.field(
        description="Code of the purpose the file is for: members it may not process now are "
        "left out, and only the fields its data categories cover are written. Refused for an "
        "undeclared or notice-only purpose."
    )
    format: export.ExportFormat = strawberry.field(description="How the file is written.")


@strawberry.type(description="The export made, with its download link (shown only here).")
class SegmentExported:
    segment_export: SegmentExportNode = strawberry.field(description="The export made.")
    download_url: str = strawberry.field(
        description="Link to the file, shown once: it works a few times at most and expires "
        "at `expiresAt`. Anyone holding it can fetch the file: hand it on with care."
    )
    expires_at: datetime = strawberry.field(description="When the link stops working (UTC).")


EXPORT_SEGMENT = Outcomes(
    "ExportSegmentResult",
    SegmentExported,
    {
        ValidationError: "the segment id is not a segment's global id",
        NotFoundError: "no segment has this id",
        PolicyViolationError: "no purpose has this code (no lawful basis is recorded), the "
        "purpose is notice-only, or its data categories cover none of the exportable fields",
    },
)
ExportSegmentResult = Annotated[
    SegmentExported | ValidationError | NotFoundError | PolicyViolationError,
    EXPORT_SEGMENT.marker,
]


@strawberry.type
class SegmentExportMutation:
    @strawberry.mutation(
        description=EXPORT_SEGMENT.describe(
            "Write a segment's members to a file for one purpose (CSV or JSON lines), fetched "
            "through a short-lived download link; audited with its counts and fields."
        ),
        extensions=allow(*EXPORTERS, personal=True),
    )
    @errors_as_data
    async def export_segment(
        self,
        info: Info[Any, Any],
        input: Annotated[ExportSegmentInput, strawberry.argument(description="What to export.")],
    ) -> ExportSegmentResult:
        context = info.context
        made = await export.export_segment(
            await require_principal(info),
            context.vault,
            context.auth,
            context.settings,
            export.SegmentExportRequest(
                parse_id(input.segment_id, "input.segmentId", "Segment"),
                input.purpose_code,
                input.format,
            ),
        )
        return SegmentExported(
            segment_export=SegmentExportNode.from_row(made.export),
            download_url=made.download_url,
            expires_at=made.expires_at,
        )


#: How node(id:) fetches segment exports.
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of(
        "SegmentExport", EXPORTERS, rows_fetcher(export.exports_by_ids, SegmentExportNode.from_row)
    ),
)
