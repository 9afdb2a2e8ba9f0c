"""Compiled plans: a validated query document turned once into a direct walk over its results.

Ordinary execution resolves a document field by field through graphql-core and Strawberry: for
a page of 50 customers that is some 2,000 resolver calls, each wrapped in an info object,
extension chain and completion step. Most of that work depends on the document alone. A
:class:`Plan` is made from a document the ordinary executor has just answered without errors
and kept per process (documents, not data: nothing of a caller is cached). Later requests with
the same document run the root resolvers as usual (same permission check, same service calls,
same audit) and then build the response by walking the plan over the returned objects: each
field read by attribute or by its synchronous resolver, masked and serialized by the schema's
own types.

A document is planned only when every field below its root fields is of a concrete object
type and resolves synchronously without ``info`` (plain attributes, or resolver methods whose
arguments come from the document), and its only extensions are role checks and masking. It
has no directives and no abstract types. Anything unusual at run time (a permission the
caller lacks, an error, an awaitable result, a null where the schema forbids one) abandons the
plan for that request and the ordinary executor answers instead, so responses are the same
either way (tests run both and compare).
"""

from __future__ import annotations

import builtins
import inspect
import logging
import operator
import types
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import (
    INFO_PARAMSPEC,
    PARENT_PARAMSPEC,
    ROOT_PARAMSPEC,
    SELF_PARAMSPEC,
)
from strawberry.types.info import Info

from cdlm.core.personal_data import PersonalData
from cdlm.core.roles import Role
from cdlm.graphql.masking import PersonalField, mask
from cdlm.graphql.permissions import PublicAccess, RoleAccess

log = logging.getLogger("cdlm.graphql.plans")

#: Documents whose plans a process keeps (frontends send the same few operations).
PLAN_CACHE_SIZE = 256


class Abandon(Exception):
    """The plan cannot answer this request; the ordinary executor will."""


class NotPlannable(Exception):
    """The document cannot be planned."""


@dataclass(frozen=True)
class FieldPlan:
    """How to answer one response key of an object."""

    key: str
    type: GraphQLOutputType
    typename: str | None  #: set for ``__typename``
    read: Callable[[Any, dict[str, Any]], Any] | None
    node: FieldNode
    definition: GraphQLField | None
    field: StrawberryField | None
    roles: frozenset[Role] | None
    mask: PersonalData | None
    children: tuple[FieldPlan, ...]
    has_arguments: bool = False
    complete: Callable[[_Run, Any], Any] = lambda run, value: value
    #: Python types whose values are the answer as they are (an unmasked String or Boolean),
    #: with None when the field is nullable: the common case, answered without a call.
    passthrough: frozenset[builtins.type] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "complete", _completer(self.type, self))
        has = self.definition is not None and bool(self.definition.args)
        object.__setattr__(self, "has_arguments", has)
        nullable = not isinstance(self.type, GraphQLNonNull)
        plain = _PLAIN.get(getattr(_unwrapped(self.type), "name", ""))
        if (
            plain is not None
            and self.mask is None
            and not isinstance(_unwrapped_non_null(self.type), GraphQLList)
        ):
            kinds = {plain, type(None)} if nullable else {plain}
            object.__setattr__(self, "passthrough", frozenset(kinds))


@dataclass(frozen=True)
class RootPlan:
    """A root field: resolved as ordinary execution resolves it, then walked."""

    plan: FieldPlan
    parent: GraphQLObjectType
    roles: frozenset[Role] | None


@dataclass(frozen=True)
class Plan:
    """A compiled query document."""

    operation: OperationDefinitionNode
    fragments: dict[str, FragmentDefinitionNode]
    roots: tuple[RootPlan, ...]


class Planner:
    """Compiles documents against one Strawberry schema and runs their plans."""

    def __init__(self, schema: Any, roots: frozenset[str]) -> None:
        self.schema = schema
        self.roots = roots
        self._plans: OrderedDict[tuple[str, str | None], Plan | None] = OrderedDict()

    # ---------------------------------------------------------------- compiling

    def known(self, query: str, operation_name: str | None) -> Plan | bool | None:
        """The plan of a document; None when it cannot be planned; False when not yet tried."""
        key = (query, operation_name)
        if key not in self._plans:
            return False
        self._plans.move_to_end(key)
        return self._plans[key]

    def learn(self, query: str, operation_name: str | None, document: Any) -> None:
        """Compile a document the ordinary executor has just answered without errors."""
        try:
            plan: Plan | None = self._compile(document, operation_name)
        except NotPlannable:
            plan = None
        self._plans[(query, operation_name)] = plan
        while len(self._plans) > PLAN_CACHE_SIZE:
            self._plans.popitem(last=False)

    def _compile(self, document: Any, operation_name: str | None) -> Plan:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        chosen = [
            o
            for o in operations
            if operation_name is None or (o.name is not None and o.name.value == operation_name)
        ]
        if len(chosen) != 1 or chosen[0].operation is not OperationType.QUERY:
            raise NotPlannable
        operation = chosen[0]
        graphql_schema: GraphQLSchema = self.schema._schema
        query_type = graphql_schema.query_type
        assert query_type is not None
        roots = []
        for key, nodes in self._collect([operation.selection_set], fragments).items():
            name = nodes[0].name.value
            if name not in self.roots:
                raise NotPlannable
            plan = self._field(query_type, key, nodes, fragments)
            roots.append(RootPlan(plan, query_type, plan.roles))
        return Plan(operation, fragments, tuple(roots))

    @staticmethod
    def _collect(
        selection_sets: Sequence[SelectionSetNode], fragments: dict[str, FragmentDefinitionNode]
    ) -> OrderedDict[str, list[FieldNode]]:
        found: OrderedDict[str, list[FieldNode]] = OrderedDict()

        def walk(selection_set: SelectionSetNode) -> None:
            for node in selection_set.selections:
                if node.directives:
                    raise NotPlannable
                if isinstance(node, FieldNode):
                    key = node.alias.value if node.alias else node.name.value
                    found.setdefault(key, []).append(node)
                elif isinstance(node, InlineFragmentNode):
                    walk(node.selection_set)
                elif isinstance(node, FragmentSpreadNode):
                    fragment = fragments.get(node.name.value)
                    if fragment is None or fragment.directives:
                        raise NotPlannable
                    walk(fragment.selection_set)

        for selection_set in selection_sets:
            walk(selection_set)
        return found

    def _field(
        self,
        parent: GraphQLObjectType,
        key: str,
        nodes: list[FieldNode],
        fragments: dict[str, FragmentDefinitionNode],
    ) -> FieldPlan:
        name = nodes[0].name.value
        if name == "__typename":
            return FieldPlan(key, parent, parent.name, None, nodes[0], None, None, None, None, ())
        definition = parent.fields.get(name)
        if definition is None or name.startswith("__"):
            raise NotPlannable
        field = self._strawberry_field(parent, name)
        roles, kind = self._extensions(field)
        named = _named(definition.type)
        children: tuple[FieldPlan, ...] = ()
        if not is_leaf_type(named):
            if not isinstance(named, GraphQLObjectType):
                raise NotPlannable  # interfaces and unions are resolved at run time
            subfields = self._collect(
                [n.selection_set for n in nodes if n.selection_set is not None], fragments
            )
            children = tuple(
                self._field(named, child, child_nodes, fragments)
                for child, child_nodes in subfields.items()
            )
        is_root = parent is self.schema._schema.query_type
        read = None if is_root else self._reader(field)
        return FieldPlan(
            key, definition.type, None, read, nodes[0], definition, field, roles, kind, children
        )

    def _strawberry_field(self, parent: GraphQLObjectType, name: str) -> StrawberryField:
        definition = parent.extensions.get("strawberry-definition")
        if not isinstance(definition, StrawberryObjectDefinition):
            raise NotPlannable
        for field in definition.fields:
            if self.schema.config.name_converter.get_graphql_name(field) == name:
                return field
        raise NotPlannable

    @staticmethod
    def _extensions(field: StrawberryField) -> tuple[frozenset[Role] | None, PersonalData | None]:
        roles = None
        kind = None
        for extension in field.extensions:
            if isinstance(extension, RoleAccess):
                roles = extension.roles
            elif isinstance(extension, PersonalField):
                kind = extension.kind
            elif not isinstance(extension, PublicAccess):
                raise NotPlannable
        if field.permission_classes and roles is None:
            raise NotPlannable
        return roles, kind

    @staticmethod
    def _reader(field: StrawberryField) -> Callable[[Any, dict[str, Any]], Any]:
        resolver = field.base_resolver
        if resolver is None:
            get = operator.attrgetter(field.python_name)
            return lambda source, arguments: get(source)
        function: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
        reserved = resolver.reserved_parameters
        if inspect.iscoroutinefunction(function) or reserved.get(INFO_PARAMSPEC) is not None:
            raise NotPlannable
        if reserved.get(ROOT_PARAMSPEC) is not None or reserved.get(PARENT_PARAMSPEC) is not None:
            raise NotPlannable
        if reserved.get(SELF_PARAMSPEC) is None:
            raise NotPlannable  # resolvers here are methods of their types

        def call(source: Any, arguments: dict[str, Any]) -> Any:
            return function(source, **arguments)

        return call

    # ---------------------------------------------------------------- running

    async def run(
        self, plan: Plan, context: Any, variables: dict[str, Any] | None, root_value: Any
    ) -> dict[str, Any]:
        """The response data of ``plan`` for this request; :class:`Abandon` when the ordinary
        executor must answer instead."""
        graphql_schema: GraphQLSchema = self.schema._schema
        coerced = get_variable_values(
            graphql_schema, plan.operation.variable_definitions or [], variables or {}
        )
        if isinstance(coerced, list):
            raise Abandon  # the ordinary executor reports the variables' errors
        caller = context.caller()
        role = caller.role if caller is not None else None
        run = _Run(self, plan, coerced, role, context)
        data: dict[str, Any] = {}
        for root in plan.roots:
            data[root.plan.key] = await run.root(root, root_value)
        return data


class _Run:
    """One request's walk over a plan."""

    def __init__(
        self, planner: Planner, plan: Plan, variables: Any, role: Role | None, context: Any
    ) -> None:
        self.planner = planner
        self.plan = plan
        self.variables = variables
        self.role = role
        self.context = context

    def _arguments(self, plan: FieldPlan) -> dict[str, Any]:
        assert plan.definition is not None
        assert plan.field is not None
        if not plan.definition.args:
            return {}
        given = get_argument_values(plan.definition, plan.node, self.variables)
        return convert_arguments(
            given,
            plan.field.arguments,
            scalar_registry=self.planner.schema.schema_converter.scalar_registry,
            config=self.planner.schema.config,
        )

    async def root(self, root: RootPlan, root_value: Any) -> Any:
        plan = root.plan
        if root.roles is not None and self.role not in root.roles:
            raise Abandon  # the ordinary executor raises the permission error
        assert plan.field is not None
        assert plan.field.base_resolver is not None
        resolver = plan.field.base_resolver
        info = Info(
            _raw_info=GraphQLResolveInfo(
                plan.node.name.value,
                [plan.node],
                plan.type,
                root.parent,
                Path(None, plan.key, root.parent.name),
                self.planner.schema._schema,
                self.plan.fragments,
                root_value,
                self.plan.operation,
                self.variables,
                self.context,
                inspect.isawaitable,  # type: ignore[arg-type]
                None,
                None,  # type: ignore[arg-type]
            ),
            _field=plan.field,
        )
        arguments = self._arguments(plan)
        info_parameter = resolver.reserved_parameters.get(INFO_PARAMSPEC)
        if info_parameter is not None:
            arguments[info_parameter.name] = info
        function: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]
        value = function(root_value, **arguments)
        if inspect.isawaitable(value):
            value = await value
        return plan.complete(self, value)

    def object(self, source: Any, plan: FieldPlan) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for child in plan.children:
            if child.typename is not None:
                shown[child.key] = child.typename
                continue
            if child.roles is not None and self.role not in child.roles:
                raise Abandon  # the ordinary executor raises the permission error
            assert child.read is not None
            arguments = self._arguments(child) if child.has_arguments else _NO_ARGUMENTS
            value = child.read(source, arguments)
            if type(value) in child.passthrough:
                shown[child.key] = value
            else:
                shown[child.key] = child.complete(self, value)
        return shown


def _completer(type_: GraphQLOutputType, plan: FieldPlan) -> Callable[[_Run, Any], Any]:
    """How to complete a value of ``type_`` (made once per field of the plan)."""
    if isinstance(type_, GraphQLNonNull):
        inner = _completer(type_.of_type, plan)

        def non_null(run: _Run, value: Any) -> Any:
            completed = inner(run, value)
            if completed is None:
                raise Abandon  # the ordinary executor reports the null
            return completed

        return non_null
    if isinstance(type_, GraphQLList):
        item = _completer(type_.of_type, plan)

        def listed(run: _Run, value: Any) -> Any:
            if value is None:
                return None
            _refuse_awaitable(value)
            return [item(run, each) for each in value]

        return listed
    if is_leaf_type(type_):
        serialize = type_.serialize
        if isinstance(type_, GraphQLEnumType):
            names = {value.value: name for name, value in type_.values.items()}
            serialize_enum = serialize

            def serialize(value: Any) -> Any:
                name = names.get(value) if isinstance(value, Hashable) else None
                return name if name is not None else serialize_enum(value)

        plain = _PLAIN.get(type_.name)
        if plain is not None:
            slow = serialize

            def serialize(value: Any) -> Any:
                # What the built-in scalars' serializers return for their own Python type.
                return value if type(value) is plain else slow(value)

        kind = plan.mask
        if kind is None:
            return lambda run, value: None if value is None else serialize(value)

        def masked(run: _Run, value: Any) -> Any:
            shown = mask(value, kind, run.role)
            return None if shown is None else serialize(shown)

        return masked

    def an_object(run: _Run, value: Any) -> Any:
        if value is None:
            return None
        _refuse_awaitable(value)
        return run.object(value, plan)

    return an_object


#: Built-in scalars whose serializer returns a value of this exact Python type unchanged.
_PLAIN: dict[str, type] = {"String": str, "Boolean": bool}


def _refuse_awaitable(value: Any) -> None:
    # Resolvers here return values, or a coroutine when they must read more.
    if type(value) is types.CoroutineType:
        close = getattr(value, "close", None)
        if close is not None:
            close()  # never awaited: the ordinary executor reads it again
        raise Abandon


_NO_ARGUMENTS: dict[str, Any] = {}


def _unwrapped_non_null(type_: GraphQLOutputType) -> GraphQLOutputType:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _unwrapped(type_: GraphQLOutputType) -> Any:
    return _unwrapped_non_null(type_)


def _named(type_: GraphQLOutputType) -> Any:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    return type_
