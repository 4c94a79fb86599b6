"""The compiled checker takes only what the general checker accepts, with the same result.

``check_body`` gives a body to the checker compiled for its entity type first and to the
general checker when that one gives up; for every body, right or wrong, the answer must be the
general checker's own: the same normalized values, or the same problems and paths, or the same
413. Bodies are generated from the schema, mostly right, with wrong types, nulls, unknown and
dynamic properties, annotations, numbers at the Int32 bounds and limits small enough to reach.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphsec.sample import Generator
from graphsec.schema.fastcheck import BAIL, compile_entity
from graphsec.schema.limits import DocumentTooLarge, Limits
from graphsec.schema.security import ENTITY_SETS
from graphsec.schema.types import Collection, ComplexType, EdmType, EntityType, EnumType, Primitive
from graphsec.schema.values import ValidationError, _check_body, check_body

ENTITIES = [es.entity_type for es in ENTITY_SETS]
DEFAULT = Limits()
SMALL = Limits(max_collection_items=4, max_depth=3, max_document_bytes=1_500)

JUNK = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=8),
                 st.floats(allow_nan=False, allow_infinity=False), st.just([]), st.just({}),
                 st.sampled_from([2**31, -2**31 - 1, 2**63, 2.5, float(2**31), "2024-06-01",
                                  "2024-13-01T00:00:00Z", "not-a-guid", {"a": [1, {"b": None}]}]))
KEYS = st.sampled_from(["dynamic", "Id", "@odata.type", "@odata.etag", "x@y", "score", "id"])


def primitive(edm: Primitive) -> st.SearchStrategy[Any]:
    """Right values of ``edm``, the bounds among them."""
    if edm.name == "Edm.String":
        return st.text(max_size=30)
    if edm.name in ("Edm.Int32", "Edm.Int64"):
        top = 2**31 - 1 if edm.name == "Edm.Int32" else 2**63 - 1
        return st.one_of(st.integers(-top - 1, top), st.sampled_from([top, -top - 1, 3.0]))
    if edm.name == "Edm.Double":
        return st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-9, 9))
    if edm.name == "Edm.Boolean":
        return st.booleans()
    if edm.name == "Edm.DateTimeOffset":
        return st.sampled_from(["2024-06-01T00:00:00Z", "2024-06-01T02:00:00.1234567+02:00",
                                "2024-06-01t00:00z"])
    return st.sampled_from(["0A1B2C3D-0000-4000-8000-00000000ABCD",
                            "0a1b2c3d-0000-4000-8000-00000000abcd"])


def typed(edm: EdmType, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(edm, Primitive):
        return primitive(edm)
    if isinstance(edm, EnumType):
        member = st.sampled_from(edm.members)
        return st.one_of(member, member.map(str.upper))
    if isinstance(edm, Collection):
        item = typed(edm.item, depth + 1)
        if not isinstance(edm.item, ComplexType):
            item = st.one_of(item, st.none())
        return st.lists(item, max_size=6)
    return complex_value(edm, depth)


def complex_value(edm: ComplexType | EntityType, depth: int) -> st.SearchStrategy[Any]:
    """Right values: any of the declared properties (null where nullable), the type's own
    ``@odata.type`` and other annotations, scalar dynamic properties of an open type."""
    props = {p.name: st.one_of(typed(p.type, depth + 1), st.none()) if p.nullable and
             not isinstance(p.type, Collection) else typed(p.type, depth + 1)
             for p in edm.properties}
    extras: dict[str, st.SearchStrategy[Any]] = {
        "@odata.type": st.sampled_from([f"#{edm}", str(edm).upper()]),
        "@odata.etag": st.text(max_size=5)}
    if isinstance(edm, ComplexType) and edm.open:
        extras["dynamicValue"] = st.one_of(st.text(max_size=9), st.integers(), st.none())
    return st.fixed_dictionaries({}, optional={**props, **extras})


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for k, v in value.items():
            found += paths(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += paths(v, (*at, i))
    return found


def mutated(body: Any, at: tuple[Any, ...], key: str | None, new: Any) -> Any:
    """``body`` with the value at ``at`` replaced by ``new`` (with ``key``: ``new`` added under
    ``key`` to the object found there)."""
    if not at:
        if key is not None and isinstance(body, dict):
            return {**body, key: new}
        return body if key is not None else new
    head, rest = at[0], at[1:]
    if isinstance(body, dict):
        return {**body, head: mutated(body[head], rest, key, new)}
    copy = list(body)
    copy[head] = mutated(body[head], rest, key, new)
    return copy


def outcome(check: Any) -> tuple[Any, ...]:
    try:
        return ("ok", repr(check()))  # repr tells 1 from 1.0, and keeps the order
    except ValidationError as exc:
        return ("invalid", [(p.target, p.message) for p in exc.problems])
    except DocumentTooLarge as exc:
        return ("large", str(exc), exc.target)


@st.composite
def cases(draw: st.DrawFn) -> tuple[EntityType, Any, str, Limits]:
    entity = draw(st.sampled_from(ENTITIES))
    mode = draw(st.sampled_from(["create", "patch"]))
    limits = draw(st.sampled_from([DEFAULT, DEFAULT, SMALL]))
    body = draw(complex_value(entity, 1))
    for _ in range(draw(st.integers(0, 2))):  # none: a right body; else one or two wrong places
        at = draw(st.sampled_from(paths(body)))
        key = draw(st.one_of(st.none(), KEYS))
        body = mutated(body, at, key, draw(JUNK))
    return entity, body, mode, limits


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_body_gets_the_general_checkers_answer(case: tuple[EntityType, Any, str,
                                                                  Limits]) -> None:
    entity, body, mode, limits = case
    both = outcome(lambda: check_body(entity, body, mode, limits))  # type: ignore[arg-type]
    general = outcome(lambda: _check_body(entity, body, mode, limits))  # type: ignore[arg-type]
    assert both == general


def sample_bodies() -> list[tuple[EntityType, dict[str, Any]]]:
    gen = Generator(tenants=2, days=3, controls=20, users=3, seed=7, end=date(2026, 1, 31))
    gen.set_averages(gen.partial_sums(0, 2))
    bodies: list[tuple[EntityType, dict[str, Any]]] = []
    for es in ENTITY_SETS:
        for t in gen.tenants:
            docs = {"secureScores": gen.secure_scores,
                    "secureScoreControlProfiles": gen.control_profiles,
                    "userSecurityProfiles": gen.user_profiles}[es.name](t)
            bodies += [(es.entity_type, orjson.loads(orjson.dumps(d))) for d in docs]
    return bodies


def test_the_compiled_checker_takes_the_sample_data_itself() -> None:
    """Right bodies do not fall back to the general checker (else the compiled one saves
    nothing), and what it returns is the general checker's answer."""
    bodies = sample_bodies()
    assert {e.name for e, _ in bodies} == {e.name for e in ENTITIES}
    for entity, body in bodies:
        compiled = compile_entity(entity, False, DEFAULT)(body)
        assert compiled is not BAIL, (entity.name, body.get("id"))
        assert orjson.dumps(compiled) == orjson.dumps(_check_body(entity, body, "create",
                                                                  DEFAULT))


def test_the_compiled_checker_gives_up_on_what_is_wrong() -> None:
    entity, body = sample_bodies()[0]
    check = compile_entity(entity, False, DEFAULT)
    wrong = [{**body, "currentScore": "high"}, {**body, "unknown": 1},
             {**body, "controlScores": [{**body["controlScores"][0], "score": True}]},
             {**body, "createdDateTime": "yesterday"}]
    for w in wrong:
        assert check(w) is BAIL
