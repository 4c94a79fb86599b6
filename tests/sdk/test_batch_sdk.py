"""JSON batching through msgraph-sdk's own classes (msgraph-core's ``BatchRequestContent``,
``BatchRequestContentCollection``, ``client.batch``) against a real graphsec server.

What the SDK does here is what it does against Graph, defects included (docs/batching.md lists
them): it writes ``depends_on`` rather than ``dependsOn``, so Graph and graphsec ignore its
dependencies; it cannot read a JSON object body back as a typed model, so callers read statuses
and headers; and msgraph-core imports ``deprecated`` without declaring it (graphsec's ``sdk``
extra installs it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kiota_abstractions.authentication import BaseBearerTokenAuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.secure_score import SecureScore
from msgraph.generated.security.secure_scores.secure_scores_request_builder import (
    SecureScoresRequestBuilder,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_middleware_options
from msgraph_core import GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_content_collection import (
    BatchRequestContentCollection,
)
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.requests.batch_response_content import BatchResponseContent
from msgraph_core.requests.batch_response_content_collection import (
    BatchResponseContentCollection,
)

from tests.sdk.conftest import StaticToken
from tests.support.server import RunningServer

Batches = list[list[dict[str, Any]]]


@pytest.fixture
async def batching_client(graphsec_server: RunningServer, writer_token: str
                          ) -> AsyncIterator[tuple[GraphServiceClient, Batches]]:
    """A v1.0 client whose ``$batch`` POSTs are recorded (their ``requests`` arrays)."""
    sent: Batches = []

    async def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/$batch"):
            sent.append(json.loads(request.content)["requests"])

    transport = httpx.AsyncHTTPTransport()
    http = httpx.AsyncClient(transport=transport, timeout=30.0, trust_env=False,
                             event_hooks={"request": [record]})
    http = GraphClientFactory.create_with_default_middleware(client=http,
                                                             options=graph_middleware_options)
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(writer_token)),
                                  client=http)
    adapter.base_url = graphsec_server.base_url("v1.0")
    yield GraphServiceClient(request_adapter=adapter), sent
    await http.aclose()
    await transport.aclose()


def a_score(n: int) -> SecureScore:
    return SecureScore(id=f"batch-{n}", current_score=float(n), max_score=100.0,
                       created_date_time=datetime(2024, 1, 1 + n % 28, tzinfo=UTC))


def item(info: Any, ident: str, depends_on: list[str | BatchRequestItem] | None = None
         ) -> BatchRequestItem:
    return BatchRequestItem(request_information=info, id=ident, depends_on=depends_on or [])


async def test_a_batch_built_with_the_sdk(batching_client: tuple[GraphServiceClient, Batches],
                                          graphsec_server: RunningServer) -> None:
    client, sent = batching_client
    scores = client.security.secure_scores
    content = BatchRequestContent({})  # the default argument is one dict shared by all
    content.add_request("create", item(scores.to_post_request_information(a_score(1)), "create"))
    content.add_request("missing", item(scores.by_secure_score_id("nope")
                                        .to_get_request_information(), "missing"))
    query = SecureScoresRequestBuilder.SecureScoresRequestBuilderGetQueryParameters(
        filter="currentScore ge 0", select=["id", "currentScore"], top=1, count=True)
    content.add_request("list", item(scores.to_get_request_information(
        RequestConfiguration(query_parameters=query)), "list"))
    response = await client.batch.post(batch_request_content=content)
    assert isinstance(response, BatchResponseContent)

    assert response.get_response_status_codes() == {"create": 201, "missing": 404, "list": 200}
    responses = response.responses
    assert responses is not None
    created = responses["create"]
    assert created.headers is not None
    assert created.headers["Location"] == (
        f"{graphsec_server.base_url('v1.0')}/security/secureScores/batch-1")
    assert created.headers["request-id"] != responses["list"].headers["request-id"]  # type: ignore[index]
    # the SDK percent-encodes the query options of a request: graphsec parses them as sent
    assert sent[0][2]["url"].startswith("/security/secureScores?%24count=true&%24filter=")

    # it cannot parse a JSON object body back into a model (graph-second-wave.md §1.2): the
    # status and headers are what a Python caller reads; the raw body is still on the wire
    with pytest.raises(ValueError, match="Unable to deserialize batch response"):
        response.get_response_by_id("create", SecureScore)

    stored = await scores.by_secure_score_id("batch-1").get()
    assert stored is not None
    assert stored.current_score == 1.0


async def test_45_requests_go_out_as_three_batches(
        batching_client: tuple[GraphServiceClient, Batches]) -> None:
    client, sent = batching_client
    scores = client.security.secure_scores
    collection = BatchRequestContentCollection()
    for n in range(45):
        collection.add_batch_request_item(
            item(scores.to_post_request_information(a_score(n)), f"r{n}"))
    result = await client.batch.post(batch_request_content=collection)
    assert isinstance(result, BatchResponseContentCollection)

    assert [len(requests) for requests in sent] == [20, 20, 5]
    statuses: dict[str, int] = {}
    # responses_status_codes itself raises TypeError (docs/batching.md)
    for batch in result.get_responses():  # type: ignore[no-untyped-call]
        statuses.update(batch.get_response_status_codes())
    assert statuses == {f"r{n}": 201 for n in range(45)}
    page = await scores.get()
    assert page is not None
    assert page.value is not None
    assert len(page.value) == 45


async def test_the_sdk_s_dependencies_are_lost_as_against_graph(
        batching_client: tuple[GraphServiceClient, Batches]) -> None:
    """``depends_on`` on the wire: the dependent request runs although its dependency failed,
    as Graph runs it. Sent as ``dependsOn`` (the key Graph reads), it would answer 424."""
    client, sent = batching_client
    scores = client.security.secure_scores
    content = BatchRequestContent({})
    content.add_request("first", item(scores.by_secure_score_id("nope")
                                      .to_get_request_information(), "first"))
    content.add_request("second", item(scores.to_post_request_information(a_score(2)),
                                       "second", depends_on=["first"]))
    response = await client.batch.post(batch_request_content=content)
    assert isinstance(response, BatchResponseContent)
    assert sent[0][1]["depends_on"] == ["first"]
    assert "dependsOn" not in sent[0][1]
    assert response.get_response_status_codes() == {"first": 404, "second": 201}
