"""CORS as a browser applies it: a page on another origin calls the API with ``fetch``.

The API is served with ``CDLM_CORS_ORIGINS`` naming one page server's origin; a second page
server, on another port, is another origin. Both serve the same page, which files a data
subject request and then asks for its status. Chromium reads the answers on the listed origin
and refuses them to the other (``fetch`` rejects with a ``TypeError``), whose request never
reaches the API because its preflight is refused.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cdlm.app import create_app
from cdlm.config import Settings
from cdlm.dsr.models import DataSubjectRequest
from cdlm.vault.service import Vault
from tests.support.browser import chromium, requires_browser
from tests.support.serving import serving

pytestmark = requires_browser

#: The GraphQL documents the page sends, aliased so that the page reads ``submitted`` and
#: ``request`` whatever the fields are called.
SUBMIT = """
mutation Submit($input: SubmitDataSubjectRequestInput!) {
  submitted: submitDataSubjectRequest(input: $input) {
    __typename
    ... on DataSubjectRequestReceived { requestId status }
    ... on UserError { code message }
  }
}
"""
STATUS = """
query Status($requestId: ID!) {
  request: dataSubjectRequestStatus(requestId: $requestId) { requestId status }
}
"""
SUBMISSION = {
    "type": "ACCESS",
    "identifier": {"kind": "EMAIL", "value": "juniper.vale@example.com"},
}

#: The page: files a request, asks for its status, and writes what happened into #result.
PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Privacy centre</title></head>
<body>
<pre id="result"></pre>
<script>
const documents = %(documents)s;
const api = new URLSearchParams(location.search).get("api");

async function graphql(query, variables) {
  const response = await fetch(api, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "Accept": "application/graphql-response+json",
    },
    body: JSON.stringify({ query, variables }),
  });
  return {
    status: response.status,
    requestId: response.headers.get("X-Request-ID"),
    body: await response.json(),
  };
}

async function fileAndFollow() {
  try {
    const filed = await graphql(documents.submit, { input: documents.submission });
    const submitted = filed.body.data.submitted;
    const asked = await graphql(documents.status, { requestId: submitted.requestId });
    return { submitted, requestId: filed.requestId, request: asked.body.data.request };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}

fileAndFollow().then((result) => {
  document.getElementById("result").textContent = JSON.stringify(result);
});
</script>
</body>
</html>
"""


async def privacy_centre(request: Request) -> HTMLResponse:
    documents = {"submit": SUBMIT, "status": STATUS, "submission": SUBMISSION}
    return HTMLResponse(PAGE % {"documents": json.dumps(documents)})


@dataclass
class Origins:
    api: str
    listed: str
    other: str


@pytest.fixture
async def origins(settings: Settings, vault: Vault) -> AsyncIterator[Origins]:
    """Two page servers (two origins) and the API, which lets the first call it."""
    pages = Starlette(routes=[Route("/", privacy_centre)])
    async with AsyncExitStack() as stack:
        listed = await stack.enter_async_context(serving(pages))
        other = await stack.enter_async_context(serving(pages))
        api = create_app(replace(settings, cors_origins=(listed,)), vault=vault)
        api_origin = await stack.enter_async_context(serving(api))
        yield Origins(api=api_origin, listed=listed, other=other)


async def open_page(origin: str, api: str) -> tuple[dict[str, Any], list[str]]:
    """What the page on ``origin`` made of calling ``api``, and what the browser logged."""
    async with chromium() as browser:
        page = await browser.new_page()
        await page.goto(f"{origin}/?{urlencode({'api': f'{api}/graphql'})}")
        text = await page.wait_for("document.getElementById('result').textContent")
        result: dict[str, Any] = json.loads(text)
        return result, page.log


async def test_a_listed_origin_files_a_request_and_reads_its_status(origins: Origins) -> None:
    result, log = await open_page(origins.listed, origins.api)
    assert "error" not in result, (result, log)
    submitted = result["submitted"]
    assert submitted["__typename"] == "DataSubjectRequestReceived"
    assert result["request"] == {"requestId": submitted["requestId"], "status": submitted["status"]}
    assert result["requestId"]  # X-Request-ID is exposed to the page
    assert await DataSubjectRequest.all().count() == 1


async def test_another_origin_cannot_read_the_api(origins: Origins) -> None:
    result, log = await open_page(origins.other, origins.api)
    assert result == {"error": "TypeError: Failed to fetch"}
    assert any("CORS policy" in line for line in log), log
    # The preflight was refused, so the mutation itself was never sent.
    assert await DataSubjectRequest.all().count() == 0
