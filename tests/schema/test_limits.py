"""The validator's bounds: lengths checked before entries are read, depth counted from the body,
and the running size a lower bound on what is stored (so refusing early never refuses a
document that would fit)."""

from __future__ import annotations

from typing import Any

import pytest
from _pytest.mark import ParameterSet

from graphsec.schema.limits import DocumentTooLarge, Limits
from graphsec.schema.security import SECURE_SCORE, SECURE_SCORE_CONTROL_PROFILE
from graphsec.schema.types import EntityType
from graphsec.schema.values import ValidationError, check_body, complete
from graphsec.storage.sql.statements import encode_doc
from tests.conftest import score
from tests.test_seed import generate


class Unreadable(list[Any]):
    """An array whose entries must not be looked at."""

    def __iter__(self) -> Any:
        raise AssertionError("the entries were read")

    def __getitem__(self, index: Any) -> Any:
        raise AssertionError("the entries were read")


@pytest.mark.parametrize("body", [
    pytest.param({"controlScores": Unreadable([{}] * 11)}, id="declared-collection"),
    pytest.param({"controlScores": [{"x": Unreadable([0] * 11)}]}, id="dynamic-array"),
])
def test_a_long_array_is_refused_before_its_entries_are_read(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        check_body(SECURE_SCORE, body, "create", Limits(max_collection_items=10))
    assert "11 entries, more than the limit of 10" in str(caught.value)


def test_many_small_nested_items_stop_the_walk_once_the_document_cannot_fit() -> None:
    # 2,000 × 500 empty objects: every array within the length bound, 1 M items in all
    body: dict[str, Any] = {"controlScores": [{"x": [{}] * 500} for _ in range(2000)]}
    with pytest.raises(DocumentTooLarge) as caught:
        check_body(SECURE_SCORE, body, "create", Limits(max_document_bytes=100_000))
    stopped_at = int(caught.value.target.split("[")[1].split("]")[0])
    assert stopped_at < 100  # of 2,000: the walk stopped at the bound, not at the end


def test_the_declared_types_nest_five_levels() -> None:
    """GRAPHSEC_MAX_JSON_DEPTH's minimum of 6 leaves room for them and one level of extras."""
    body = {"complianceInformation": [{"certificationControls": [{"name": "CIS"}]}]}
    check_body(SECURE_SCORE_CONTROL_PROFILE, body, "create", Limits(max_depth=5))
    with pytest.raises(ValidationError) as caught:
        check_body(SECURE_SCORE_CONTROL_PROFILE, body, "create", Limits(max_depth=4))
    assert caught.value.problems[0].target == "complianceInformation[0].certificationControls[0]"


def _tricky() -> list[ParameterSet]:
    """Bodies whose stored form is shorter than they look, or barely longer."""
    return [
        pytest.param(SECURE_SCORE, score(createdDateTime="2024-03-19T15:21:00.1234567+14:00"),
                     id="offset-normalized-to-Z"),
        pytest.param(SECURE_SCORE, score(activeUserCount=1.0, currentScore=5),
                     id="numbers-normalized"),
        pytest.param(SECURE_SCORE, score(controlScores=[{}, {}, {"x": {}, "y": []}]),
                     id="empty-values-completed"),
        pytest.param(SECURE_SCORE, {"controlScores": [{"a": [[], {}, None, True, "é"]}]},
                     id="dynamic-json"),
        pytest.param(SECURE_SCORE, {}, id="empty-body"),
    ]


def _samples() -> list[ParameterSet]:
    _, data = generate(tenants=2, days=3)
    entities = {"scores": SECURE_SCORE, "profiles": SECURE_SCORE_CONTROL_PROFILE}
    return [pytest.param(entities[key], doc, id=f"sample-{key}-{i}")
            for key in entities for i, doc in enumerate(data[key][:3])]


@pytest.mark.parametrize(("entity", "body"), _tricky() + _samples())
def test_a_document_exactly_at_the_limit_is_never_refused_early(
    entity: EntityType, body: dict[str, Any]
) -> None:
    doc = check_body(entity, body, "create")
    size = len(encode_doc(complete(entity, doc)))
    assert check_body(entity, body, "create", Limits(max_document_bytes=size)) == doc
