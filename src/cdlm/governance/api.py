"""GraphQL API of governance: the data map and the records of processing, with each data
category's owner and steward and the staff's privacy-training coverage."""

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.auth.api import StaffUserNode, staff_user_node
from cdlm.auth.training import RoleCoverage
from cdlm.core.roles import OVERSIGHT_ROLES, Role
from cdlm.governance import datamap, loaders, ropa
from cdlm.governance.datamap import DataSubjectCategory
from cdlm.governance.stewardship import Ownership
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.permissions import allow
from cdlm.graphql.vocabulary import LawfulBasis

describe_enum(
    DataSubjectCategory,
    "Whose personal data it is.",
    {
        DataSubjectCategory.CUSTOMER: "The customers cdlm keeps profiles of.",
        DataSubjectCategory.REQUESTER: "People who file data subject requests (who may not be "
        "customers).",
        DataSubjectCategory.EMPLOYEE: "Staff who sign in to cdlm.",
    },
)


@strawberry.type(description="How many active staff users of a role have current privacy training.")
class RoleTrainingCoverage:
    role: Role = strawberry.field(description="The role.")
    staff_users: int = strawberry.field(description="Active staff users with the role.")
    trained: int = strawberry.field(
        description="Of them, those with a current privacy training (completed, not expired)."
    )
    share: float | None = strawberry.field(
        description="`trained` over `staffUsers`, 0 to 1 (4 decimals); null when the role has "
        "no active staff user."
    )
    required: bool = strawberry.field(
        description="True when the role needs current training to access personal data "
        "(`CDLM_REQUIRE_TRAINING`)."
    )

    @classmethod
    def of(cls, coverage: RoleCoverage) -> "RoleTrainingCoverage":
        return cls(
            role=coverage.role,
            staff_users=coverage.staff_users,
            trained=coverage.trained,
            share=coverage.share,
            required=coverage.required,
        )


async def _ownership(info: Info[Any, Any], category: str) -> Ownership:
    found: Ownership = await info.context.loaders.get(loaders.ownership_by_category).load(category)
    return found


async def _staff(info: Info[Any, Any], user_id: uuid.UUID | None) -> StaffUserNode | None:
    return await staff_user_node(info, user_id) if user_id is not None else None


@strawberry.type(
    description="Who owns and who stewards one data category of the data map. Staff users "
    "are read as the caller's role may see them (the read is audited)."
)
class DataCategoryOwnership:
    category: str = strawberry.field(
        description="The data category owners are assigned at: a fideslang key at its second "
        "level (`user.contact`, `user.name`...; `user` for whole records)."
    )
    assigned_at: datetime | None = strawberry.field(
        description="When the current owner and steward were assigned; null: never."
    )
    unowned: bool = strawberry.field(
        description="True when nobody, or only a deactivated staff user, owns the category: "
        "it is flagged in the records of processing until `assignDataOwnership` gives it an "
        "active owner."
    )
    owner_id: strawberry.Private[uuid.UUID | None]
    steward_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The staff user accountable for it; null: unowned.")
    async def owner(self, info: Info[Any, Any]) -> StaffUserNode | None:
        return await _staff(info, self.owner_id)

    @strawberry.field(
        description="The staff user who looks after its quality (data-quality issues of the "
        "category are routed to them); null: unowned."
    )
    async def steward(self, info: Info[Any, Any]) -> StaffUserNode | None:
        return await _staff(info, self.steward_id)

    @classmethod
    def of(cls, owned: Ownership) -> "DataCategoryOwnership":
        row = owned.row
        return cls(
            category=owned.category,
            assigned_at=row.assigned_at if row else None,
            unowned=owned.unowned,
            owner_id=row.owner_id if row else None,
            steward_id=row.steward_id if row else None,
        )


@strawberry.type(description="One place cdlm keeps personal data.")
class DataMapEntry:
    field: str = strawberry.field(
        description="Where it shows in the API, as a camelCase path from its type: "
        "`customer.profile.email`, `staffUser.displayName`; places never shown are named the "
        "same way (`customer.identities.blindIndex`)."
    )
    table: str = strawberry.field(description="The database table (or store) that keeps it.")
    column: str = strawberry.field(description="The column (or part of the store) that keeps it.")
    data_category: str = strawberry.field(
        description="fideslang data category, e.g. `user.contact.email`."
    )
    data_subject: DataSubjectCategory = strawberry.field(description="Whose data it is.")
    encrypted: bool = strawberry.field(
        description="Encrypted at rest (AES-256-GCM under the person's data key)."
    )
    clear_roles: list[Role] = strawberry.field(
        description="Roles that read it in clear; others see it masked or not at all."
    )
    purposes: list[str] = strawberry.field(
        description="Codes of the purposes whose data categories cover it (customer data only)."
    )
    retention: list[str] = strawberry.field(
        description="The retention policies that govern it, in words."
    )
    note: str = strawberry.field(description="What else to know about it; may be empty.")
    ownership_category: str = strawberry.field(
        description="The data category its owner and steward are assigned at: `dataCategory` "
        "cut to fideslang's second level (`user.contact.email` -> `user.contact`)."
    )

    @strawberry.field(
        description="Who owns and stewards its category (`unowned` flags a category nobody owns)."
    )
    async def ownership(self, info: Info[Any, Any]) -> DataCategoryOwnership:
        return DataCategoryOwnership.of(await _ownership(info, self.ownership_category))

    @strawberry.field(
        description="Privacy-training coverage of each role that reads it in clear "
        "(`clearRoles`, in that order)."
    )
    async def training_coverage(self, info: Info[Any, Any]) -> list[RoleTrainingCoverage]:
        loader = info.context.loaders.get(
            loaders.coverage_by_role, info.context.settings.require_training
        )
        return [RoleTrainingCoverage.of(c) for c in await loader.load_many(self.clear_roles)]

    @classmethod
    def of(cls, entry: datamap.Entry) -> "DataMapEntry":
        place = entry.place
        return cls(
            field=datamap.api_path(place.field),
            table=place.table,
            column=place.column,
            data_category=place.data_category,
            data_subject=place.data_subject,
            encrypted=place.encrypted,
            clear_roles=sorted(place.clear_roles),
            purposes=entry.purposes,
            retention=entry.retention,
            note=place.note,
            ownership_category=place.owned_as,
        )


@strawberry.type(description="The controller: who decides why and how personal data is used.")
class DataController:
    name: str = strawberry.field(description="Its name (CDLM_CONTROLLER_NAME).")
    contact: str | None = strawberry.field(
        description="Its privacy contact (CDLM_CONTROLLER_EMAIL); null: not configured."
    )
    privacy_policy: str | None = strawberry.field(
        description="Address of its privacy policy (CDLM_POLICY_URL); null: not configured."
    )


@strawberry.type(
    description="One processing activity: a purpose with its lawful basis, data, subjects and "
    "recipients."
)
class ProcessingActivity:
    purpose: str = strawberry.field(
        description="The purpose's code (cdlm's own activities start with `cdlm.`)."
    )
    name: str = strawberry.field(description="The purpose's name.")
    description: str = strawberry.field(description="What the processing is for.")
    lawful_basis: LawfulBasis = strawberry.field(description="Why it is lawful (GDPR Art. 6(1)).")
    data_use: str = strawberry.field(description="fideslang data use, e.g. `marketing.email`.")
    data_categories: list[str] = strawberry.field(description="fideslang data categories it uses.")
    data_subjects: list[DataSubjectCategory] = strawberry.field(description="Whose data it uses.")
    recipients: list[str] = strawberry.field(
        description="Who receives the data, by name or category."
    )

    @classmethod
    def of(cls, activity: ropa.ProcessingActivity) -> "ProcessingActivity":
        return cls(
            purpose=activity.purpose,
            name=activity.name,
            description=activity.description,
            lawful_basis=activity.lawful_basis,
            data_use=activity.data_use,
            data_categories=activity.data_categories,
            data_subjects=activity.data_subjects,
            recipients=activity.recipients,
        )


@strawberry.type(description="When one category of data is erased: an active retention policy.")
class ErasureTimeLimit:
    category: str = strawberry.field(
        description="The retention category, e.g. `customers.inactive`."
    )
    rule: str = strawberry.field(description="The policy in words.")
    what: str = strawberry.field(description="What data the category holds; may be empty.")


@strawberry.type(
    description="Records of processing activities (GDPR Art. 30), generated from the live "
    "configuration: purposes, data map, retention policies and security settings."
)
class RecordsOfProcessing:
    generated_at: datetime = strawberry.field(description="When these records were generated.")
    controller: DataController = strawberry.field(description="The controller.")
    processing_activities: list[ProcessingActivity] = strawberry.field(
        description="cdlm's own activities, then one per configured purpose."
    )
    categories_of_data_subjects: list[DataSubjectCategory] = strawberry.field(
        description="Whose personal data is kept (from the data map)."
    )
    categories_of_personal_data: list[str] = strawberry.field(
        description="fideslang categories of the personal data kept (from the data map)."
    )
    processors: list[str] = strawberry.field(
        description="Processors acting for the controller; empty when none is configured."
    )
    transfers_to_third_countries: str = strawberry.field(
        description="Transfers outside the EEA, in words."
    )
    erasure_time_limits: list[ErasureTimeLimit] = strawberry.field(
        description="When each category of data is erased (active retention policies)."
    )
    security_measures: list[str] = strawberry.field(
        description="The technical and organisational security measures in force, in words."
    )
    data_ownership: list[DataCategoryOwnership] = strawberry.field(
        description="Every data category of the data map (at the level owners are assigned), "
        "with its owner and steward; `unowned` flags those nobody owns."
    )
    unowned_categories: list[str] = strawberry.field(
        description="The data categories nobody owns (flagged: assign them with "
        "`assignDataOwnership`); empty when every category has an owner."
    )
    training_coverage: list[RoleTrainingCoverage] = strawberry.field(
        description="Per role: active staff users and those with current privacy training."
    )

    @classmethod
    def of(cls, records: ropa.RecordsOfProcessing) -> "RecordsOfProcessing":
        controller = records.controller
        return cls(
            generated_at=records.generated_at,
            controller=DataController(
                name=controller.name,
                contact=controller.contact,
                privacy_policy=controller.privacy_policy,
            ),
            processing_activities=[
                ProcessingActivity.of(activity) for activity in records.processing_activities
            ],
            categories_of_data_subjects=records.categories_of_data_subjects,
            categories_of_personal_data=records.categories_of_personal_data,
            processors=records.processors,
            transfers_to_third_countries=records.transfers_to_third_countries,
            erasure_time_limits=[
                ErasureTimeLimit(category=limit.category, rule=limit.rule, what=limit.what)
                for limit in records.erasure_time_limits
            ],
            security_measures=records.security_measures,
            data_ownership=[
                DataCategoryOwnership(
                    category=owned.category,
                    assigned_at=owned.assigned_at,
                    unowned=owned.unowned,
                    owner_id=owned.owner_id,
                    steward_id=owned.steward_id,
                )
                for owned in records.data_ownership
            ],
            unowned_categories=records.unowned_categories,
            training_coverage=[RoleTrainingCoverage.of(c) for c in records.training_coverage],
        )


@strawberry.type
class GovernanceQuery:
    @strawberry.field(
        description="Every place personal data is kept, from the live configuration.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def data_map(self) -> list[DataMapEntry]:
        return [DataMapEntry.of(e) for e in await datamap.data_map()]

    @strawberry.field(
        description="Records of processing activities (GDPR Art. 30), generated from the live "
        "configuration (`cdlm ropa` prints them as Markdown or JSON).",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def records_of_processing(self, info: Info[Any, Any]) -> RecordsOfProcessing:
        return RecordsOfProcessing.of(await ropa.processing_records(info.context.settings))
