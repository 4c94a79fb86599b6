"""Tokens for ``$filter``: odata-query's lexer, with its gaps closed and the input bounded.

odata-query 0.10's lexer and grammar (SLY) need help with forms Graph clients send:

* keywords match as prefixes: ``anything``, ``nullable``, ``trueValue``, ``allowed`` would lex
  as ``any`` + ``thing`` ...; such tokens are re-lexed as one identifier;
* operators need whitespace on both sides: ``not(a)``, ``id in('a')``, ``(a)and(b)``,
  ``x eq'a'`` are rewritten to operator tokens (an identifier straight after an operand can
  only be an operator, so this never changes the meaning of a valid filter);
* function names are case-sensitive (``startsWith`` is unknown): names before ``(`` are
  matched case-insensitively;
* a one-item list ``id in ('a')`` is a syntax error (the library wants ``('a',)``): a comma
  is inserted;
* ``Namespace.EnumType'member'`` does not parse: it becomes a string token carrying the type;
* a DateTimeOffset without an offset is lexed: it is refused here, with a hint about ``+``;
* leading, trailing and in-between whitespace trips the grammar: whitespace tokens are dropped
  once the rewrites above have used them.

Bounds (so that neither the library's recursive helpers nor graphsec's own recursion can
exhaust the stack): at most 32 nested parentheses, 32 segments in a path, 2000 tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from odata_query import ast
from odata_query.exceptions import TokenizingException
from odata_query.grammar import ODATA_FUNCTIONS, ODataLexer
from sly.lex import Token

from graphsec.errors import BadRequest

MAX_PARENS = 32
MAX_PATH = 32
MAX_TOKENS = 2000

_IDENT = re.compile(r"[_a-z](?:\.?\w){0,127}", re.I)
_KEYWORD_TEXT = {"ANY": "any", "ALL": "all", "NULL": "null"}
_OPERATORS: dict[str, tuple[str, type[ast._Node]]] = {
    "eq": ("EQ", ast.Eq), "ne": ("NE", ast.NotEq), "gt": ("GT", ast.Gt), "ge": ("GE", ast.GtE),
    "lt": ("LT", ast.Lt), "le": ("LE", ast.LtE), "in": ("IN", ast.In), "and": ("AND", ast.And),
    "or": ("OR", ast.Or), "add": ("ADD", ast.Add), "sub": ("SUB", ast.Sub),
    "mul": ("MUL", ast.Mult), "div": ("DIV", ast.Div), "mod": ("MOD", ast.Mod),
}
_OPERAND_END = {"ODATA_IDENTIFIER", "NULL", "STRING", "GUID", "DATETIME", "DATE", "TIME",
                "DURATION", "DECIMAL", "INTEGER", "BOOLEAN", "GEOGRAPHY", ")", "SKIP"}
_FUNCTIONS = {name.lower(): name for name in ODATA_FUNCTIONS}
_OFFSET = re.compile(r"(?:[Zz]|[+-]\d\d:\d\d)$")
_DIGITS = {"INTEGER", "DECIMAL", "DATETIME", "DATE", "TIME", "DURATION"}
"""Tokens the library lexes with ``\\d``, which matches any script's digits (``٣``)."""


@dataclass(frozen=True)
class EnumLiteral(ast.String):
    """``microsoft.graph.accountStatus'active'``: a string that names its enum type."""

    type_name: str = ""


def full_name(ident: ast.Identifier) -> str:
    """``ns.name`` of an identifier (the library's own method is untyped)."""
    return ".".join((*ident.namespace, ident.name))


def syntax_error(text: str, index: int | None, what: str | None = None) -> BadRequest:
    """A 400 naming the position (0-based) and what was found there."""
    if index is None or index >= len(text):
        return BadRequest(f"Syntax error in $filter '{_short(text)}': the expression ends too "
                          "early.")
    found = what if what is not None else text[index:index + 20]
    return BadRequest(f"Syntax error at position {index} in $filter '{_short(text)}': "
                      f"unexpected '{found}'.")


def _short(text: str) -> str:
    return text if len(text) <= 200 else text[:197] + "..."


def _token(type_: str, value: object, index: int) -> Token:
    tok = Token()
    tok.type, tok.value, tok.lineno, tok.index = type_, value, 1, index
    return tok


def _identifier(text: str, index: int, end: int) -> Token:
    *ns, name = text[index:end].split(".")
    return _token("ODATA_IDENTIFIER", ast.Identifier(name, tuple(ns)), index)


def _keyword_length(tok: Token) -> int:
    if tok.type == "BOOLEAN":
        return len(tok.value.val)
    return len(_KEYWORD_TEXT.get(tok.type, "")) or 0


def _lex(text: str) -> list[Token]:
    """All tokens (whitespace included, so they are contiguous); keyword prefixes fixed."""
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        restart = None
        try:
            for tok in ODataLexer().tokenize(text, index=pos):
                length = _keyword_length(tok)
                if length:
                    m = _IDENT.match(text, tok.index)
                    if m is not None and m.end() > tok.index + length:
                        out.append(_identifier(text, tok.index, m.end()))
                        restart = m.end()
                        break
                out.append(tok)
                if len(out) > MAX_TOKENS:
                    raise BadRequest(f"The $filter has more than {MAX_TOKENS} tokens.")
        except TokenizingException as exc:
            index = exc.token.index
            if text[index] == "'":
                raise BadRequest(f"Syntax error at position {index} in $filter "
                                 f"'{_short(text)}': the string starting there is not closed "
                                 "(a quote inside a string is written '').") from None
            raise syntax_error(text, index, text[index]) from None
        if restart is None:
            break
        pos = restart
    return out


def _prev_operand(tokens: list[Token], i: int) -> bool:
    j = i - 1
    while j >= 0 and tokens[j].type == "WS":
        j -= 1
    return j >= 0 and tokens[j].type in _OPERAND_END


def _rewrite(text: str, tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.type == "ODATA_IDENTIFIER":
            ident: ast.Identifier = tok.value
            name = ident.name.lower()
            if ident.namespace and i > 0 and tokens[i - 1].type == "/":
                raise BadRequest(f"Type-cast segments such as '{full_name(ident)}' are not "
                                 "supported in $filter.")
            if not ident.namespace and name in _OPERATORS and _prev_operand(tokens, i):
                type_, node = _OPERATORS[name]
                tok = _token(type_, node(), tok.index)
            elif not ident.namespace and name == "not" and nxt is not None and nxt.type == "(":
                tok = _token("NOT", ast.Not(), tok.index)
            elif ident.namespace and nxt is not None and nxt.type == "STRING":
                value = EnumLiteral(nxt.value.val, full_name(ident))
                out.append(_token("STRING", value, tok.index))
                nxt.type = "SKIP"
                continue
            elif nxt is not None and nxt.type == "(" and full_name(ident).lower() in _FUNCTIONS:
                real = _FUNCTIONS[full_name(ident).lower()]
                *ns, fname = real.split(".")
                tok = _token("ODATA_IDENTIFIER", ast.Identifier(fname, tuple(ns)), tok.index)
        elif tok.type in _DIGITS and not tok.value.val.isascii():
            raise BadRequest(f"The literal '{tok.value.val}' in $filter is not valid: numbers, "
                             "dates and times are written with the ASCII digits 0-9.")
        elif tok.type == "DATETIME" and not _OFFSET.search(tok.value.val):
            raise BadRequest(
                f"The DateTimeOffset '{tok.value.val}' in $filter has no UTC offset; add Z or "
                "±hh:mm, e.g. 2024-02-01T00:00:00Z (in a URL, send '+' as %2B).")
        elif tok.type == "SKIP":
            continue
        if tok.type != "WS":
            out.append(tok)
    return out


def _single_item_lists(tokens: list[Token]) -> list[Token]:
    """``in ('a')`` → ``in ('a',)``: find the ``)`` closing the list; add a comma if none."""
    out = list(tokens)
    i = 0
    while i < len(out):
        if out[i].type == "IN" and i + 1 < len(out) and out[i + 1].type == "(":
            depth, j, comma = 0, i + 1, False
            while j < len(out):
                t = out[j].type
                depth += (t == "(") - (t == ")")
                comma = comma or (t == "," and depth == 1)
                if depth == 0:
                    break
                j += 1
            if j < len(out) and not comma and j > i + 2:
                out.insert(j, _token(",", ",", out[j].index))
        i += 1
    return out


def _check_bounds(text: str, tokens: list[Token]) -> None:
    depth = path = 0
    for tok in tokens:
        if tok.type == "(":
            depth += 1
            if depth > MAX_PARENS:
                raise BadRequest(f"The $filter nests parentheses more than {MAX_PARENS} deep.")
        elif tok.type == ")":
            depth -= 1
        if tok.type == "/":
            path += 1
            if path >= MAX_PATH:
                raise BadRequest(f"A path in $filter has more than {MAX_PATH} segments.")
        elif tok.type != "ODATA_IDENTIFIER":
            path = 0


def tokenize(text: str) -> list[Token]:
    """The tokens odata-query's parser should see for ``text``; BadRequest if it cannot lex."""
    tokens = _single_item_lists(_rewrite(text, _lex(text)))
    _check_bounds(text, tokens)
    return tokens
