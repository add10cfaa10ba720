"""How much one GraphQL operation may ask for, checked before anything runs.

- tokens: parsing stops at the limit, so a huge document costs no more than a small one (one
  anonymous 900 KB query of 48,000 aliased ``vens`` once held the API for 55 s and 800 MB);
- depth: fields nested in fields, fragments included (introspection's ``__`` fields aside:
  GraphiQL's own query is deep, and production turns introspection off);
- aliases: every aliased field counts each time its fragment is spread, since each one is
  resolved again.

The body cap (body_limit) comes first, and list fields cap their ``limit`` (pagination).
A refusal is a GraphQL error with ``extensions.code`` ``TOO_COMPLEX``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension

TOO_COMPLEX = {"code": "TOO_COMPLEX", "field": None}
# graphql-core's words when parsing stops at max_tokens or at the recursion limit.
_PARSER_LIMITS = ("tokens. Parsing aborted.", "nested too deeply. Parsing aborted.")


def _fragments(context: Any) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}


class _Measure:
    """Depth and alias count of selection sets, each fragment measured once (a fragment spread
    twice in a fragment spread twice... costs nothing extra), cycles counted as nothing (the
    standard rules refuse them)."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode]):
        self.fragments = fragments
        self._memo: dict[str, tuple[int, int]] = {}

    def __call__(self, selection_set: SelectionSetNode | None) -> tuple[int, int]:
        depth = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                aliases += selection.alias is not None
                if selection.name.value.startswith("__"):
                    continue
                inner_depth, inner_aliases = self(selection.selection_set)
                depth, aliases = max(depth, 1 + inner_depth), aliases + inner_aliases
            elif isinstance(selection, InlineFragmentNode):
                inner_depth, inner_aliases = self(selection.selection_set)
                depth, aliases = max(depth, inner_depth), aliases + inner_aliases
            elif isinstance(selection, FragmentSpreadNode):
                inner_depth, inner_aliases = self.fragment(selection.name.value)
                depth, aliases = max(depth, inner_depth), aliases + inner_aliases
        return depth, aliases

    def fragment(self, name: str) -> tuple[int, int]:
        if name not in self._memo:
            fragment = self.fragments.get(name)
            self._memo[name] = (0, 0)  # in progress: a cycle adds nothing
            self._memo[name] = self(fragment.selection_set) if fragment else (0, 0)
        return self._memo[name]


def size_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    class OperationSize(ValidationRule):
        def __init__(self, context):
            super().__init__(context)
            self.measure = _Measure(_fragments(context))

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
            depth, aliases = self.measure(node.selection_set)
            if depth > max_depth:
                self.report_error(GraphQLError(
                    f"the operation nests fields {depth} deep; at most {max_depth} are allowed",
                    node, extensions=TOO_COMPLEX))
            if aliases > max_aliases:
                self.report_error(GraphQLError(
                    f"the operation has {aliases} aliased fields; at most {max_aliases} are allowed",
                    node, extensions=TOO_COMPLEX))
            return self.SKIP

    return OperationSize


class GraphQLLimits(SchemaExtension):
    def __init__(self, max_tokens: int, rules: tuple[type[ValidationRule], ...]):
        self.max_tokens = max_tokens
        self.rules = rules

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = context.validation_rules + self.rules
        yield

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if isinstance(error, GraphQLSyntaxError) and error.message.endswith(_PARSER_LIMITS):
                error.extensions = dict(TOO_COMPLEX)
                if "tokens" in error.message:
                    error.message = f"the document has more than {self.max_tokens} tokens; parsing stopped there"

    def on_validate(self) -> Iterator[None]:
        yield
        # graphql-core gives up on a document past its error limit or its recursion limit (e.g. a
        # few hundred fields of the same name, which it compares pairwise).
        for error in self.execution_context.pre_execution_errors or ():
            if isinstance(error, ValidationAbortedError):
                error.extensions = dict(TOO_COMPLEX)
                if error.message == "Validation aborted.":
                    error.message = "the document is too complex to validate"


def graphql_limits(*, max_tokens: int, max_depth: int, max_aliases: int,
                   introspection: bool) -> Callable[[], GraphQLLimits]:
    """The extension's factory: the rules are built once, the extension once per operation."""
    rules = (size_rule(max_depth, max_aliases),)
    if not introspection:
        rules += (NoSchemaIntrospectionCustomRule,)
    return lambda: GraphQLLimits(max_tokens, rules)
