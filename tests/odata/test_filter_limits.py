"""How deep ``$filter`` lambdas may nest: two levels (a collection inside a collection's item),
never more, because each level multiplies a filter's work by a collection's length."""

from __future__ import annotations

import pytest

from graphsec.errors import BadRequest
from graphsec.odata.filter import parse_filter
from graphsec.odata.filter_ast import And, Lambda
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORE_CONTROL_PROFILE
from graphsec.schema.types import EntityType

ALLOWED = [
    pytest.param(SECURE_SCORE, "controlScores/any(a: a/score gt 1)", id="one-level"),
    pytest.param(SECURE_SCORE_CONTROL_PROFILE,
                 "complianceInformation/any(c: c/certificationControls/any(k: k/name eq 'x'))",
                 id="collection-in-an-item"),
    pytest.param(SECURE_SCORE,
                 "controlScores/any(a: controlScores/any(b: b/score eq a/score))",
                 id="two-levels-over-the-entity"),
    pytest.param(SECURE_SCORE, "controlScores/all(a: enabledServices/any())",
                 id="any-without-variable-inside"),
    pytest.param(SECURE_SCORE,
                 "controlScores/any(a: a/score gt 1) and controlScores/any(b: enabledServices/"
                 "any(s: s eq 'x')) and enabledServices/any(s: s eq 'y')",
                 id="side-by-side-lambdas-do-not-add-up"),
]


@pytest.mark.parametrize(("entity", "text"), ALLOWED)
def test_lambdas_up_to_two_levels_are_accepted(entity: EntityType, text: str) -> None:
    expr = parse_filter(text, entity)
    outer = expr.items if isinstance(expr, And) else (expr,)
    assert all(isinstance(e, Lambda) for e in outer)


DEEP = "controlScores/any(v1: controlScores/any(v2: controlScores/any(v3: v3/score eq -1)))"
TOO_DEEP = [
    pytest.param(DEEP, id="three-levels"),
    pytest.param("controlScores/any(v1: controlScores/any(v2: controlScores/any(v3: "
                 "controlScores/any(v4: controlScores/any(v5: v5/score eq -1)))))",
                 id="the-reported-five-levels"),
    pytest.param("controlScores/all(a: controlScores/all(b: enabledServices/any()))",
                 id="innermost-any-without-variable"),
    pytest.param("currentScore gt 1 or not controlScores/any(a: enabledServices/any(s: "
                 "controlScores/all(b: b/score eq 1)))", id="under-or-and-not"),
]


@pytest.mark.parametrize("text", TOO_DEEP)
def test_lambdas_nested_deeper_than_two_are_400_naming_the_limit(text: str) -> None:
    with pytest.raises(BadRequest) as info:
        parse_filter(text, SECURE_SCORE)
    assert info.value.status == 400
    assert info.value.code == "BadRequest"
    assert "more than 2 levels" in info.value.message
