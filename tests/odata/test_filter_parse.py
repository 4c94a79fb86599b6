"""``$filter`` parsing and type checking: what is accepted, and the message for what is not."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphsec.errors import BadRequest
from graphsec.odata.filter import parse_filter
from graphsec.odata.filter_ast import (
    And,
    Compare,
    Const,
    In,
    Kind,
    Lambda,
    Literal,
    Match,
    Not,
    Or,
    Prop,
)
from graphsec.schema.security import SECURE_SCORE

VALID = [
    pytest.param("createdDateTime ge 2024-02-01T00:00:00Z", Compare, id="datetime"),
    pytest.param("createdDateTime lt 2024-02-01T00:00:00.1234567+05:30", Compare,
                 id="datetime-fraction-offset"),
    pytest.param("createdDateTime ge 2024-02-01T00:00Z", Compare, id="datetime-no-seconds"),
    pytest.param("enabledServices/any(s:s eq 'HasExchange')", Lambda, id="any-primitive"),
    pytest.param("currentScore gt 300", Compare, id="double-gt-int"),
    pytest.param("currentScore ge -1.5e2", Compare, id="negative-exponent"),
    pytest.param("vendorInformation/provider eq 'SecureScore'", Compare, id="complex-path"),
    pytest.param("controlScores/any(c: c/controlName eq 'AdminMFA' and c/score gt 5)", Lambda,
                 id="any-complex"),
    pytest.param("controlScores/all(c: c/score ge 0)", Lambda, id="all"),
    pytest.param("controlScores/any()", Lambda, id="any-empty"),
    pytest.param("controlScores/any(c: enabledServices/any(s: s eq c/controlName))", Lambda,
                 id="nested-lambda-outer-variable"),
    pytest.param("id in ('a')", In, id="in-one"),
    pytest.param("id in ('a', 'b',  'c')", In, id="in-many"),
    pytest.param("id in ('a',)", In, id="in-trailing-comma"),
    pytest.param("id in('a','b')", In, id="in-no-space"),
    pytest.param("startswith(id,'a_')", Match, id="startswith"),
    pytest.param("startsWith(id, 'a')", Match, id="startsWith-camel"),
    pytest.param("ENDSWITH(id,'x')", Match, id="endswith-upper"),
    pytest.param("contains(vendorInformation/vendor,'%')", Match, id="contains"),
    pytest.param("startswith(id,'a') eq false", Not, id="match-eq-false"),
    pytest.param("not(id eq 'a')", Not, id="not-paren"),
    pytest.param("not startswith(id,'a')", Not, id="not-space"),
    pytest.param("(id eq 'a')and(id ne 'b')", And, id="and-no-space"),
    pytest.param("id eq'a' or id eq 'b' or id eq 'c'", Or, id="or-chain"),
    pytest.param("  id eq 'a'  ", Compare, id="surrounding-space"),
    pytest.param("( id eq 'a' )", Compare, id="inner-space"),
    pytest.param("ID eq 'a'", Compare, id="case-insensitive-name"),
    pytest.param("VendorInformation/Provider eq 'x'", Compare, id="case-insensitive-path"),
    pytest.param("currentScore eq null", Compare, id="eq-null"),
    pytest.param("null ne vendorInformation", Compare, id="complex-ne-null"),
    pytest.param("currentScore add 1 sub 2 mul 3 div 4 mod 5 gt 0", Compare, id="arith"),
    pytest.param("-currentScore lt 0", Compare, id="negate"),
    pytest.param("activeUserCount div 2 eq 1", Compare, id="int-div"),
    pytest.param("tolower(id) eq 'a' and toupper(id) eq 'A'", And, id="case-functions"),
    pytest.param("length(trim(id)) gt 2", Compare, id="length-trim"),
    pytest.param("concat(id, 'x') eq 'ax'", Compare, id="concat"),
    pytest.param("indexof(id, 'b') eq 1", Compare, id="indexof"),
    pytest.param("substring(id, 1) eq 'b' or substring(id, 0, 1) eq 'a'", Or, id="substring"),
    pytest.param("year(createdDateTime) eq 2024 and month(createdDateTime) eq 2", And,
                 id="date-parts"),
    pytest.param("day(createdDateTime) eq 1 or hour(createdDateTime) eq 0 or "
                 "minute(createdDateTime) eq 0 or second(createdDateTime) eq 0", Or,
                 id="time-parts"),
    pytest.param("controlScores/any(c: c/count eq '4')", Lambda, id="dynamic-string"),
    pytest.param("averageComparativeScores/any(a: a/deviceScore gt 10)", Lambda,
                 id="dynamic-number"),
    pytest.param("controlScores/any(c: c/on eq true or c/x/y eq null)", Lambda,
                 id="dynamic-bool-null-nested"),
    pytest.param("controlScores/any(c: startswith(c/implementationStatus, 'imp'))", Lambda,
                 id="dynamic-match"),
    pytest.param("azureTenantId eq 'it''s'", Compare, id="quote-escape"),
    pytest.param("true", Const, id="bool-literal"),
    pytest.param("currentScore eq 1 and (maxScore eq 2 or not (activeUserCount eq 3))", And,
                 id="precedence"),
    pytest.param("'a' eq id", Compare, id="literal-left"),
]


@pytest.mark.parametrize(("text", "node"), VALID)
def test_valid(text: str, node: type) -> None:
    assert isinstance(parse_filter(text, SECURE_SCORE), node)


INVALID = [
    pytest.param("currentScore eq 'abc'",
                 "cannot compare 'currentScore' (Edm.Double) with the string 'abc'",
                 id="wrong-literal"),
    pytest.param("id eq 5", "cannot compare 'id' (Edm.String) with the number 5",
                 id="string-vs-number"),
    pytest.param("createdDateTime ge '2024-02-01T00:00:00Z'", "Edm.DateTimeOffset",
                 id="quoted-datetime"),
    pytest.param("createdDateTime ge 2024-02-01", "Date literals", id="date-literal"),
    pytest.param("createdDateTime ge 2024-02-01T00:00:00", "no UTC offset", id="no-offset"),
    pytest.param("createdDateTime ge 2024-02-01T00:00:00.12345678Z", "7 fractional digits",
                 id="too-precise"),
    pytest.param("createdDateTime ge 2024-02-30T00:00:00Z", "not a valid Edm.DateTimeOffset",
                 id="no-such-day"),
    pytest.param("foo eq 1", "Could not find a property named 'foo' on type "
                 "'microsoft.graph.secureScore'", id="unknown-property"),
    pytest.param("vendorInformation/foo eq 'x'", "'foo' on type "
                 "'microsoft.graph.securityVendorInformation'", id="closed-complex"),
    pytest.param("controlScores/controlName eq 'x'", "is a collection", id="path-through-coll"),
    pytest.param("enabledServices eq 'x'", "collection", id="collection-compare"),
    pytest.param("id/x eq 'a'", "has no property 'x'", id="path-through-primitive"),
    pytest.param("currentScore/any(c: c eq 1)", "not a collection", id="any-on-scalar"),
    pytest.param("vendorInformation eq 'x'", "complex value compares only with null",
                 id="complex-compare"),
    pytest.param("startswith(currentScore, 'a')", "'currentScore' (Edm.Double) is not a string",
                 id="startswith-double"),
    pytest.param("year(id) eq 1", "needs Edm.DateTimeOffset", id="year-on-string"),
    pytest.param("length(currentScore) eq 1", "needs Edm.String", id="length-on-double"),
    pytest.param("round(currentScore) eq 1", "'round' is not supported", id="unsupported-fn"),
    pytest.param("frobnicate(id) eq 1", "'frobnicate' is not supported", id="unknown-fn"),
    pytest.param("startswith(id)", "takes 2 arguments", id="arity"),
    pytest.param("id add 1 eq 2", "needs numbers", id="arith-on-string"),
    pytest.param("currentScore gt null", "only eq and ne", id="gt-null"),
    pytest.param("currentScore", "is not a condition", id="not-a-condition"),
    pytest.param("id eq 'a' and", "ends too early", id="dangling-and"),
    pytest.param("id eq 'a')", "position 9", id="extra-paren"),
    pytest.param("id eq 'a' #", "position 10", id="bad-character"),
    pytest.param("id eq 'abc", "not closed", id="unterminated-string"),
    pytest.param("id in ()", "position", id="empty-in"),
    pytest.param("id in (id, 'a')", "must be literals", id="in-non-literal"),
    pytest.param("controlScores/any(c: c/count eq c/total)", "only be compared with a string",
                 id="dynamic-vs-dynamic"),
    pytest.param("controlScores/any(c: c/count add 1 eq 2)", "needs numbers",
                 id="dynamic-arith"),
    pytest.param("controlScores/any(c: controlScores/any(c: c/score eq 1))", "already in use",
                 id="shadowed-variable"),
    pytest.param("c/score eq 1", "Could not find a property named 'c'", id="variable-out-of-scope"),
    pytest.param("currentScore eq 1e999", "out of range", id="infinite"),
    pytest.param("currentScore eq 99999999999999999999", "out of range", id="huge-int"),
    pytest.param("createdDateTime ge duration'P1D'", "Duration literals", id="duration"),
    pytest.param("vendorInformation/microsoft.graph.x eq 1", "Type-cast", id="type-cast"),
    pytest.param("microsoft.graph.x eq 1", "Qualified names", id="qualified-name"),
    pytest.param("id eq true", "cannot compare", id="string-vs-bool"),
    pytest.param("(" * 40 + "id eq 'a'" + ")" * 40, "parentheses", id="deep-parens"),
    pytest.param("not " * 40 + "id eq 'a'", "levels deep", id="deep-not"),
    pytest.param(" or ".join(["id eq 'a'"] * 200), "too complex", id="too-many-nodes"),
    pytest.param("a/" * 40 + "b eq 1", "segments", id="long-path"),
    pytest.param("", "empty", id="empty"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid(text: str, fragment: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_filter(text, SECURE_SCORE)
    assert fragment in info.value.message


def test_values_are_typed() -> None:
    expr = parse_filter("currentScore gt 300 and createdDateTime ge 2024-02-01T00:00:00.5+01:00",
                        SECURE_SCORE)
    assert isinstance(expr, And)
    first, second = expr.items
    assert first == Compare("gt", Prop(None, ("currentScore",), Kind.DOUBLE, "Edm.Double"),
                            Literal(300, Kind.INT, "300"))
    assert isinstance(second, Compare)
    assert second.right == Literal(17067420005000000, Kind.DATETIME,
                                   "2024-02-01T00:00:00.5+01:00")


def test_names_are_canonical() -> None:
    expr = parse_filter("CONTROLSCORES/any(c: c/CONTROLNAME eq 'x')", SECURE_SCORE)
    assert isinstance(expr, Lambda)
    assert expr.collection.path == ("controlScores",)
    assert isinstance(expr.predicate, Compare)
    assert expr.predicate.left == Prop("c", ("controlName",), Kind.STRING, "Edm.String")


def test_keyword_prefixed_names_are_names() -> None:
    for name in ("anything", "allowed", "nullable", "trueish", "falsehood"):
        with pytest.raises(BadRequest, match=f"property named '{name}'"):
            parse_filter(f"{name} eq 1", SECURE_SCORE)


def test_long_or_chain_is_flat() -> None:
    expr = parse_filter(" or ".join(f"id eq 'x{i}'" for i in range(100)), SECURE_SCORE)
    assert isinstance(expr, Or)
    assert len(expr.items) == 100


FILTERISH = st.lists(
    st.sampled_from([*"()/,:'-. ", "id", " eq ", " and ", " or ", "not ", "any", "all", "null",
                     "1", "2.5", "'a'", "controlScores", "c", "/any(", "startswith(", "x",
                     "2024-02-01T00:00:00Z", " in ", "tolower(", "c/score", " gt "]),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), FILTERISH))
def test_fuzz_only_bad_request(text: str) -> None:
    with contextlib.suppress(BadRequest):
        parse_filter(text, SECURE_SCORE)
