"""JQL text to a syntax tree, for the subset okr-sync evaluates on its own mirror.

Written from Jira's documented grammar (the "Advanced searching" reference): keywords
and field names are case-insensitive; values are unquoted words or strings in double
or single quotes with ``\\"``, ``\\'``, ``\\\\``, ``\\n``, ``\\t``, ``\\r``, ``\\uXXXX``
escapes; ``AND`` binds tighter than ``OR`` and ``NOT`` tighter than both (``&&``,
``||`` and ``!`` are their symbols); lists are ``(a, b)``; ``ORDER BY`` ends a query.

Nothing here ever *guesses*: whatever Jira's grammar allows but this module does not
read with certainty (a reserved character or word outside quotes, a history operator,
an empty list, a function call) raises :class:`NotLocal`, and the caller asks Jira.
This is an independent implementation: it shares no code with the sandbox's JQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "And",
    "Clause",
    "Empty",
    "Expr",
    "Literal_",
    "Not",
    "NotLocal",
    "Operand",
    "Or",
    "ParsedQuery",
    "parse",
]


class NotLocal(Exception):
    """This JQL cannot be answered exactly from the mirror (the reason says why); ask Jira."""


Operator = Literal["=", "!=", ">", ">=", "<", "<=", "~", "!~", "in", "not in", "is", "is not"]


@dataclass(frozen=True)
class Literal_:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Empty:
    """``EMPTY`` / ``NULL``."""


Operand = Literal_ | Empty


@dataclass(frozen=True)
class Clause:
    #: The field as written, lower-cased (``"epic link"``, ``"fixversion"``).
    field: str
    op: Operator
    operands: tuple[Operand, ...]
    is_list: bool


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
class ParsedQuery:
    where: Expr | None
    #: ``ORDER BY`` fields, lower-cased; the order does not change who matches.
    order_by: tuple[str, ...]


# Jira's documented reserved words: unquoted, they are refused as values and field names.
_RESERVED_WORD_LIST = """
a an abort access add after alias all alter and any are as asc audit avg before begin
between boolean break by byte catch cf char character check checkpoint collate collation
column commit connect continue count create current date decimal declare decrement default
defaults define delete delimiter desc difference distinct divide do double drop else empty
encoding end equals escape exclusive exec execute exists explain false fetch file field
first float for from function go goto grant greater group having identified if immediate
in increment index initial inner inout input insert int integer intersect intersection into
is isempty isnull join last left less like limit lock long max min minus mode modify modulo
more multiply next noaudit not notin nowait null number object of on option or order outer
output power previous prior privileges public raise raw remainder rename resource return
returns revoke right row rowid rownum rows select session set share size sqrt start strict
string subtract sum synonym table then to trans transaction trigger true uid union unique
update user validate values view when whenever where while with was changed
"""
RESERVED_WORDS = frozenset(_RESERVED_WORD_LIST.split())

# Characters Jira reserves outside quotes (its list; "-" and ":" are not in it).
_RESERVED_CHARS = frozenset("+.;?|*/%^$#@[]{}&")
_WORD_END = frozenset("=!<>()~,\"'")
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_MAX_DEPTH = 50

_Kind = Literal["word", "string", "op", "(", ")", ",", "end"]


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str

    def word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            out.append(_Token("end", ""))
            return out
        ch, two = text[i], text[i : i + 2]
        if ch in "\"'":
            value, i = _string(text, i)
            out.append(_Token("string", value))
        elif ch in "(),":
            out.append(_Token(ch, ch))  # type: ignore[arg-type]
            i += 1
        elif two in ("&&", "||"):
            out.append(_Token("word", "and" if two == "&&" else "or"))
            i += 2
        elif two in ("!=", "!~", "<=", ">="):
            out.append(_Token("op", two))
            i += 2
        elif ch in "=<>~":
            out.append(_Token("op", ch))
            i += 1
        elif ch == "!":
            out.append(_Token("word", "not"))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _WORD_END:
                if text[i] in _RESERVED_CHARS:
                    raise NotLocal(f"the reserved character {text[i]!r} outside quotes")
                i += 1
            out.append(_Token("word", text[start:i]))


def _string(text: str, start: int) -> tuple[str, int]:
    quote, i = text[start], start + 1
    chars: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(chars), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt == "u" and _HEX4.fullmatch(text[i + 2 : i + 6]):
                chars.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise NotLocal(f"the escape '\\{nxt}' in a string")
            chars.append(_ESCAPES[nxt])
            i += 2
            continue
        chars.append(ch)
        i += 1
    raise NotLocal("a string without its closing quote")


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind != "end":
            self.pos += 1
        return token

    def expect(self, kind: _Kind) -> None:
        if self.take().kind != kind:
            raise NotLocal(f"expected {kind!r}")

    def query(self) -> ParsedQuery:
        where = None if self.tok.word("order") or self.tok.kind == "end" else self.or_expr()
        order: list[str] = []
        if self.tok.word("order"):
            self.take()
            if not self.take().word("by"):
                raise NotLocal("ORDER without BY")
            order.append(self.order_key())
            while self.tok.kind == ",":
                self.take()
                order.append(self.order_key())
        if self.tok.kind != "end":
            raise NotLocal(f"unexpected {self.tok.text!r}")
        return ParsedQuery(where, tuple(order))

    def order_key(self) -> str:
        name = self.field_name()
        if self.tok.word("asc", "desc"):
            self.take()
        return name

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.tok.word("or"):
            self.take()
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Expr:
        terms = [self.not_expr()]
        while self.tok.word("and"):
            self.take()
            terms.append(self.not_expr())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def not_expr(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise NotLocal("nested too deeply")
        try:
            if self.tok.word("not"):
                self.take()
                return Not(self.not_expr())
            if self.tok.kind == "(":
                self.take()
                inner = self.or_expr()
                self.expect(")")
                return inner
            return self.clause()
        finally:
            self.depth -= 1

    def field_name(self) -> str:
        token = self.take()
        if token.kind == "string":
            return token.text.lower()
        if token.kind != "word" or token.text.lower() in RESERVED_WORDS:
            raise NotLocal(f"{token.text!r} where a field name belongs")
        return token.text.lower()

    def clause(self) -> Clause:
        field = self.field_name()
        op = self.operator()
        if op in ("is", "is not"):
            if not self.take().word("empty", "null"):
                raise NotLocal("IS without EMPTY")
            return Clause(field, op, (Empty(),), is_list=False)
        if self.tok.kind == "(":
            return Clause(field, op, self.operand_list(), is_list=True)
        return Clause(field, op, (self.operand(),), is_list=False)

    def operator(self) -> Operator:
        token = self.take()
        if token.kind == "op":
            return token.text  # type: ignore[return-value]
        if token.word("in"):
            return "in"
        if token.word("is"):
            if self.tok.word("not"):
                self.take()
                return "is not"
            return "is"
        if token.word("not") and self.tok.word("in"):
            self.take()
            return "not in"
        raise NotLocal(f"the operator {token.text!r}")

    def operand_list(self) -> tuple[Operand, ...]:
        self.take()  # (
        if self.tok.kind == ")":
            raise NotLocal("an empty list")
        items = [self.operand()]
        while self.tok.kind == ",":
            self.take()
            items.append(self.operand())
        self.expect(")")
        return tuple(items)

    def operand(self) -> Operand:
        token = self.take()
        if token.kind == "string":
            return Literal_(token.text, quoted=True)
        if token.kind != "word":
            raise NotLocal(f"{token.text or 'the end'!r} where a value belongs")
        if token.word("empty", "null"):
            return Empty()
        if token.text.lower() in RESERVED_WORDS:
            raise NotLocal(f"the reserved word {token.text!r} unquoted")
        if self.tok.kind == "(":
            raise NotLocal(f"the function {token.text}()")
        return Literal_(token.text, quoted=False)


def parse(jql: str) -> ParsedQuery:
    """Parse ``jql``; :class:`NotLocal` when it is outside what is read with certainty."""
    return _Parser(_tokens(jql)).query()
