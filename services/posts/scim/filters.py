"""SCIM filters (RFC 7644 §3.4.2.2) to SQLAlchemy: scim2-models parses and type-checks, we only map columns."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import ScimFilter
from scim2_models.path import (AttrPath, AttributeBinding, CompareOperator, Comparison, FilterVisitor, LogicalExpr,
                               LogicalOperator, Not, Present, ValuePath, coerce_value)
from sqlalchemy import ColumnElement, String, and_, cast, func, not_, or_

from services.posts.scim.errors import ScimInvalidFilter


@dataclass(frozen=True)
class Predicate:
    """An attribute no single column holds (a group's members): builds the condition for `eq`."""

    equals: Callable[[Any], ColumnElement[bool]]


# (attribute, sub-attribute) as scim2-models binds them -> (SQL expression, compared case-insensitively)
ColumnMap = dict[tuple[str, str | None], tuple[Any, bool]]


class _SqlFilter(FilterVisitor[ColumnElement[bool]]):
    def __init__(self, scim_filter: ScimFilter, columns: ColumnMap):
        self.filter, self.columns = scim_filter, columns
        self.parent: AttrPath | None = None  # set while inside a value selection such as emails[...]

    def _column(self, attr_path: AttrPath) -> tuple[Any, bool, AttributeBinding]:
        if self.parent is not None:  # inside emails[...]: `value` means emails.value
            attr_path = AttrPath(attr=self.parent.attr, sub_attr=attr_path.attr, uri=self.parent.uri)
        binding = self.filter.resolve_comparison(attr_path, strict=False)
        found = binding and self.columns.get((binding.field_name, binding.sub_field_name))
        if not found:
            raise ScimInvalidFilter(f"Filtering on {attr_path} is not supported.")
        return *found, binding

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement[bool]:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_not(self, node: Not) -> ColumnElement[bool]:
        return not_(self.visit(node.expr))

    def visit_value_path(self, node: ValuePath) -> ColumnElement[bool]:
        self.parent = node.attr_path  # the grammar allows no nested selections, so one level is enough
        try:
            return self.visit(node.val_filter)
        finally:
            self.parent = None

    def visit_present(self, node: Present) -> ColumnElement[bool]:
        column, _, _ = self._column(node.attr_path)
        if isinstance(column, Predicate):
            raise ScimInvalidFilter(f"pr is not supported on {node.attr_path}.")
        if column.type.python_type is str:
            return and_(column.is_not(None), column != "")
        return column.is_not(None)

    def visit_comparison(self, node: Comparison) -> ColumnElement[bool]:
        column, folded, binding = self._column(node.attr_path)
        value = coerce_value(binding, node.value, node.op)
        if isinstance(column, Predicate):
            if node.op != CompareOperator.eq:
                raise ScimInvalidFilter(f"Only eq is supported on {node.attr_path}.")
            return column.equals(value)
        if isinstance(value, str) and column.type.python_type is not str:
            column = cast(column, String)  # ids: a malformed one simply matches nothing
        if isinstance(value, str) and folded:
            column, value = func.lower(column), value.lower()
        if value is None:
            return column.is_(None) if node.op == CompareOperator.eq else column.is_not(None)
        return _OPERATORS[node.op](column, value)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_OPERATORS = {
    CompareOperator.eq: lambda c, v: c == v,
    CompareOperator.ne: lambda c, v: or_(c != v, c.is_(None)),
    CompareOperator.co: lambda c, v: c.like(f"%{_escape(v)}%", escape="\\"),
    CompareOperator.sw: lambda c, v: c.like(f"{_escape(v)}%", escape="\\"),
    CompareOperator.ew: lambda c, v: c.like(f"%{_escape(v)}", escape="\\"),
    CompareOperator.gt: lambda c, v: c > v,
    CompareOperator.ge: lambda c, v: c >= v,
    CompareOperator.lt: lambda c, v: c < v,
    CompareOperator.le: lambda c, v: c <= v,
}


def to_sql(expression: str, *, model: type, columns: ColumnMap) -> ColumnElement[bool]:
    """The WHERE clause for a SCIM filter on `model`; invalidFilter for syntax or unsupported attributes."""
    if len(expression) > 1000:
        raise ScimInvalidFilter("The filter is too long.")
    scim_filter = ScimFilter[model](expression)  # raises InvalidFilterException on bad syntax or types
    return _SqlFilter(scim_filter, columns).visit(scim_filter.ast)
