"""The OpenAPI docs page works offline: Swagger UI's assets are served by the API itself."""

from __future__ import annotations

from fastapi.testclient import TestClient

from quant_api.app import create_app


def test_docs_page_loads_its_assets_from_the_api(tmp_path):
    client = TestClient(create_app(serving_dir=tmp_path))
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn.jsdelivr.net" not in page.text and "unpkg.com" not in page.text
    assert "/static-offline-docs/swagger-ui-bundle.js" in page.text
    bundle = client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert client.get("/openapi.json").json()["info"]["title"] == "quant-platform API"
