"""A JQL subset for the Jira sandbox: tokenizer and recursive-descent parser to an AST.

Evaluation over issue records lives in :mod:`jql_eval`; this module only knows syntax.
Error texts follow Jira's wording, because connectors surface them to users verbatim.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from okr_sync.sandbox.jira.jql_ast import (
    And,
    Clause,
    EmptyValue,
    Expr,
    FunctionCall,
    JqlError,
    JqlSyntaxError,
    JqlValidationError,
    Not,
    Op,
    Operand,
    Or,
    OrderKey,
    Query,
    UnboundedJqlError,
    Value,
)

__all__ = [
    "And", "Clause", "EmptyValue", "Expr", "FunctionCall", "JqlError", "JqlSyntaxError",
    "JqlValidationError", "Not", "Op", "Operand", "Or", "OrderKey", "Query", "UnboundedJqlError",
    "Value", "parse_jql",
]

_SYNTAX_PREFIX = "Error in the JQL Query: "
_VALID_OPERATORS = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', "
    "'IN', 'NOT IN', 'IS' and 'IS NOT'."
)
# Words Jira refuses as unquoted values or field names (a subset of its long list).
_RESERVED = frozenset(
    {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc",
     "was", "changed", "from", "to", "on", "during", "before", "after"}
)
# Characters Jira reserves outside quoted strings.
_RESERVED_CHARS = frozenset("%^$#@;?{}&|+")
_PUNCT = frozenset("(),=!<>~\"'")
_MAX_DEPTH = 64


class _Kind(enum.Enum):
    WORD = "word"
    STRING = "string"
    OP = "op"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    EOF = "eof"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    line: int
    col: int

    @property
    def where(self) -> str:
        return f"(line {self.line}, character {self.col})"

    def is_word(self, *words: str) -> bool:
        return self.kind is _Kind.WORD and self.text.lower() in words


def _syntax(message: str, token: _Token | None = None) -> JqlSyntaxError:
    suffix = f" {token.where}" if token is not None and token.kind is not _Kind.EOF else ""
    return JqlSyntaxError(f"{_SYNTAX_PREFIX}{message}{suffix}")


def _reserved_char(ch: str, line: int, col: int) -> JqlSyntaxError:
    return _syntax(
        f"The character '{ch}' is a reserved JQL character. You must enclose it "
        f"in a string or use the escape '\\u{ord(ch):04x}' instead.",
        _Token(_Kind.WORD, ch, line, col),
    )


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", " ": " "}


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.line = 1
        self.col = 1

    def _advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.text[self.i] == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1
            self.i += 1

    def tokens(self) -> list[_Token]:
        out: list[_Token] = []
        text = self.text
        while True:
            while self.i < len(text) and text[self.i].isspace():
                self._advance()
            if self.i >= len(text):
                out.append(_Token(_Kind.EOF, "", self.line, self.col))
                return out
            line, col, ch = self.line, self.col, text[self.i]
            two = text[self.i : self.i + 2]
            if ch in "\"'":
                out.append(self._string(ch, line, col))
            elif ch == "(":
                out.append(_Token(_Kind.LPAREN, ch, line, col))
                self._advance()
            elif ch == ")":
                out.append(_Token(_Kind.RPAREN, ch, line, col))
                self._advance()
            elif ch == ",":
                out.append(_Token(_Kind.COMMA, ch, line, col))
                self._advance()
            elif two in ("!=", "!~", "<=", ">=", "&&", "||"):
                kind = _Kind.WORD if two in ("&&", "||") else _Kind.OP
                word = {"&&": "and", "||": "or"}.get(two, two)
                out.append(_Token(kind, word, line, col))
                self._advance(2)
            elif ch in "=<>~":
                out.append(_Token(_Kind.OP, ch, line, col))
                self._advance()
            elif ch == "!":
                out.append(_Token(_Kind.WORD, "not", line, col))
                self._advance()
            elif ch in "&|":
                out.append(_Token(_Kind.WORD, "and" if ch == "&" else "or", line, col))
                self._advance()
            elif ch in _RESERVED_CHARS:
                raise _reserved_char(ch, line, col)
            else:
                out.append(self._word(line, col))

    def _string(self, quote: str, line: int, col: int) -> _Token:
        text = self.text
        self._advance()
        chars: list[str] = []
        while True:
            if self.i >= len(text):
                raise _syntax(
                    f"The quoted string '{''.join(chars)}' has not been completed.",
                    _Token(_Kind.STRING, "", line, col),
                )
            ch = text[self.i]
            if ch == quote:
                self._advance()
                return _Token(_Kind.STRING, "".join(chars), line, col)
            if ch == "\\" and self.i + 1 < len(text):
                nxt = text[self.i + 1]
                if nxt == "u" and self.i + 6 <= len(text):
                    chars.append(chr(int(text[self.i + 2 : self.i + 6], 16)))
                    self._advance(6)
                    continue
                if nxt in _ESCAPES:
                    chars.append(_ESCAPES[nxt])
                    self._advance(2)
                    continue
                raise _syntax(
                    f"The escape sequence '\\{nxt}' in the string is illegal.",
                    _Token(_Kind.STRING, "", self.line, self.col),
                )
            chars.append(ch)
            self._advance()

    def _word(self, line: int, col: int) -> _Token:
        text = self.text
        start = self.i
        while self.i < len(text):
            ch = text[self.i]
            if ch.isspace() or ch in _PUNCT:
                break
            if ch in _RESERVED_CHARS:
                raise _reserved_char(ch, self.line, self.col)
            self._advance()
        return _Token(_Kind.WORD, text[start : self.i], line, col)


_OPS = {"=": Op.EQ, "!=": Op.NE, ">": Op.GT, ">=": Op.GE, "<": Op.LT, "<=": Op.LE,
        "~": Op.LIKE, "!~": Op.NOT_LIKE}


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.pos]

    def _at(self, kind: _Kind) -> bool:
        # A method, not an inline test, so type narrowing does not outlive _next().
        return self.tok.kind is kind

    def _next(self) -> _Token:
        token = self.tokens[self.pos]
        if token.kind is not _Kind.EOF:
            self.pos += 1
        return token

    def query(self) -> Query:
        where: Expr | None = None
        if not self.tok.is_word("order") and self.tok.kind is not _Kind.EOF:
            where = self.or_expr()
        order: tuple[OrderKey, ...] = ()
        if self.tok.is_word("order"):
            order = self.order_by()
        if self.tok.kind is not _Kind.EOF:
            if where is None:
                raise _syntax(f"Expecting a field name but got '{self.tok.text}'.", self.tok)
            raise _syntax(f"Expecting either 'OR' or 'AND' but got '{self.tok.text}'.", self.tok)
        return Query(where, order)

    def or_expr(self) -> Expr:
        terms = [self.and_expr()]
        while self.tok.is_word("or"):
            self._next()
            terms.append(self.and_expr())
        return terms[0] if len(terms) == 1 else Or(tuple(terms))

    def and_expr(self) -> Expr:
        terms = [self.not_expr()]
        while self.tok.is_word("and"):
            self._next()
            terms.append(self.not_expr())
        return terms[0] if len(terms) == 1 else And(tuple(terms))

    def not_expr(self) -> Expr:
        if self.tok.is_word("not"):
            self._next()
            return Not(self._nested(self.not_expr))
        if self.tok.kind is _Kind.LPAREN:
            self._next()
            inner = self._nested(self.or_expr)
            if not self._at(_Kind.RPAREN):
                if self._at(_Kind.EOF):
                    raise _syntax("Expecting ')' before the end of the query.")
                raise _syntax(f"Expecting ')' but got '{self.tok.text}'.", self.tok)
            self._next()
            return inner
        return self.clause()

    def _nested(self, rule: Callable[[], Expr]) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _syntax("The query is nested too deeply.", self.tok)
        try:
            return rule()
        finally:
            self.depth -= 1

    def field_name(self) -> str:
        token = self.tok
        if token.kind is _Kind.STRING:
            self._next()
            return token.text
        if token.kind is _Kind.WORD:
            if token.text.lower() in _RESERVED:
                raise _syntax(
                    f"'{token.text}' is a reserved JQL word. You must surround it in "
                    "quotation marks to use it in a query.",
                    token,
                )
            self._next()
            return token.text
        if token.kind is _Kind.EOF:
            raise _syntax("Expecting a field name before the end of the query.")
        raise _syntax(f"Expecting a field name but got '{token.text}'.", token)

    def clause(self) -> Clause:
        field = self.field_name()
        op = self.operator()
        if op in (Op.IS, Op.IS_NOT):
            token = self.tok
            if not token.is_word("empty", "null"):
                shown = token.text if token.kind is not _Kind.EOF else "the end of the query"
                raise _syntax(f"Expecting 'EMPTY' but got '{shown}'.", token)
            self._next()
            return Clause(field, op, (EmptyValue(),))
        if op in (Op.IN, Op.NOT_IN):
            if self.tok.kind is _Kind.LPAREN:
                return Clause(field, op, self.operand_list(), is_list=True)
            return Clause(field, op, (self.operand(),))
        if self.tok.kind is _Kind.LPAREN:
            return Clause(field, op, self.operand_list(), is_list=True)
        return Clause(field, op, (self.operand(),))

    def operator(self) -> Op:
        token = self.tok
        if token.kind is _Kind.OP:
            self._next()
            return _OPS[token.text]
        if token.is_word("in"):
            self._next()
            return Op.IN
        if token.is_word("is"):
            self._next()
            if self.tok.is_word("not"):
                self._next()
                return Op.IS_NOT
            return Op.IS
        if token.is_word("not"):
            self._next()
            if self.tok.is_word("in"):
                self._next()
                return Op.NOT_IN
            raise _syntax(f"Expecting 'IN' but got '{self.tok.text}'.", self.tok)
        if token.is_word("was", "changed"):
            raise _syntax(f"The history operator '{token.text}' is not supported here.", token)
        if token.kind is _Kind.EOF:
            raise _syntax(f"Expecting operator before the end of the query. {_VALID_OPERATORS}")
        raise _syntax(f"Expecting operator but got '{token.text}'. {_VALID_OPERATORS}", token)

    def operand_list(self) -> tuple[Operand, ...]:
        self._next()  # '('
        items = [self.operand()]
        while self.tok.kind is _Kind.COMMA:
            self._next()
            items.append(self.operand())
        if self.tok.kind is not _Kind.RPAREN:
            if self.tok.kind is _Kind.EOF:
                raise _syntax("Expecting ')' before the end of the query.")
            raise _syntax(f"Expecting ')' but got '{self.tok.text}'.", self.tok)
        self._next()
        return tuple(items)

    def operand(self) -> Operand:
        token = self.tok
        if token.kind is _Kind.STRING:
            self._next()
            return Value(token.text, quoted=True)
        if token.kind is _Kind.WORD:
            lowered = token.text.lower()
            if lowered in ("empty", "null"):
                self._next()
                return EmptyValue()
            if lowered in _RESERVED:
                raise _syntax(
                    f"'{token.text}' is a reserved JQL word. You must surround it in "
                    "quotation marks to use it in a query.",
                    token,
                )
            self._next()
            if self.tok.kind is _Kind.LPAREN:
                return FunctionCall(token.text, self.function_args())
            return Value(token.text)
        if token.kind is _Kind.EOF:
            raise _syntax("Expecting either a value, list or function before the end of the query.")
        raise _syntax(
            f"Expecting either a value, list or function but got '{token.text}'. You must "
            f"surround '{token.text}' in quotation marks to use it as a value.",
            token,
        )

    def function_args(self) -> tuple[str, ...]:
        self._next()  # '('
        args: list[str] = []
        while self.tok.kind is not _Kind.RPAREN:
            if self.tok.kind not in (_Kind.WORD, _Kind.STRING):
                if self.tok.kind is _Kind.EOF:
                    raise _syntax("Expecting ')' before the end of the query.")
                raise _syntax(f"Expecting ')' but got '{self.tok.text}'.", self.tok)
            args.append(self._next().text)
            if self._at(_Kind.COMMA):
                self._next()
        self._next()  # ')'
        return tuple(args)

    def order_by(self) -> tuple[OrderKey, ...]:
        self._next()  # ORDER
        if not self.tok.is_word("by"):
            shown = self.tok.text if self.tok.kind is not _Kind.EOF else "the end of the query"
            raise _syntax(f"Expecting 'by' but got '{shown}'.", self.tok)
        self._next()
        keys = [self.order_key()]
        while self.tok.kind is _Kind.COMMA:
            self._next()
            keys.append(self.order_key())
        return tuple(keys)

    def order_key(self) -> OrderKey:
        field = self.field_name()
        descending: bool | None = None
        if self.tok.is_word("asc", "desc"):
            descending = self._next().text.lower() == "desc"
        return OrderKey(field, descending)



def parse_jql(text: str) -> Query:
    """Parse ``text``; raise :class:`JqlSyntaxError` with Jira's wording when it is invalid."""
    return _Parser(_Lexer(text).tokens()).query()
