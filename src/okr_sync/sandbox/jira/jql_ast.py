"""The JQL subset's syntax tree and errors (the parser is :mod:`.jql`, evaluation :mod:`.jql_eval`).

Error texts follow Jira's wording, because connectors surface them to users verbatim.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class JqlError(Exception):
    """A JQL query Jira would refuse with HTTP 400; ``messages`` are Jira's errorMessages."""

    def __init__(self, messages: str | list[str]) -> None:
        self.messages: list[str] = [messages] if isinstance(messages, str) else list(messages)
        super().__init__("; ".join(self.messages))


class JqlSyntaxError(JqlError):
    """The query does not parse."""


class JqlValidationError(JqlError):
    """The query parses but names unknown fields, values or unsupported operators."""


class UnboundedJqlError(JqlError):
    """The query has no search restriction (Cloud's /search/jql refuses it)."""

    MESSAGE = (
        "Unbounded JQL queries are not allowed here. "
        "Please add a search restriction to your query."
    )

    def __init__(self) -> None:
        super().__init__(self.MESSAGE)


class Op(enum.Enum):
    EQ = "="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    LIKE = "~"
    NOT_LIKE = "!~"
    IN = "in"
    NOT_IN = "not in"
    IS = "is"
    IS_NOT = "is not"

    def negated(self) -> Op:
        return _NEGATION[self]


_NEGATION = {
    Op.EQ: Op.NE, Op.NE: Op.EQ, Op.GT: Op.LE, Op.LE: Op.GT, Op.GE: Op.LT, Op.LT: Op.GE,
    Op.LIKE: Op.NOT_LIKE, Op.NOT_LIKE: Op.LIKE, Op.IN: Op.NOT_IN, Op.NOT_IN: Op.IN,
    Op.IS: Op.IS_NOT, Op.IS_NOT: Op.IS,
}


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool = False


@dataclass(frozen=True)
class FunctionCall:
    name: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmptyValue:
    pass


Operand = Value | FunctionCall | EmptyValue


@dataclass(frozen=True)
class Clause:
    field: str
    op: Op
    operands: tuple[Operand, ...]
    is_list: bool = False


@dataclass(frozen=True)
class And:
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    terms: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    term: Expr


Expr = Clause | And | Or | Not


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool | None = None  # None: the field's default direction


@dataclass(frozen=True)
class Query:
    where: Expr | None
    order_by: tuple[OrderKey, ...] = ()

    @property
    def bounded(self) -> bool:
        return self.where is not None
