"""/openapi.json and the docs page /api/swagger-ui, served offline: Swagger UI's files come from the
swagger-ui-bundle package, through us, never from a CDN."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import falcon
from swagger_ui_bundle import swagger_ui_path

from ..errors import NotFound
from .base import Route

DOCS = "/api/swagger-ui"
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "favicon-16x16.png",
          "favicon-32x32.png")
INIT = "kammthaar-init.js"

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Kammthaar API</title>
  <link rel="stylesheet" href="{DOCS}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS}/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS}/swagger-ui-bundle.js"></script>
  <script src="{DOCS}/swagger-ui-standalone-preset.js"></script>
  <script src="{DOCS}/{INIT}"></script>
</body>
</html>
"""

# validatorUrl null: Swagger UI would otherwise send the description to an online validator.
INIT_JS = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    validatorUrl: null,
    withCredentials: true,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'")


class OpenApiResource:
    auth_required = False

    def __init__(self, api):
        self.api = api

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.api.openapi


class PageResource:
    auth_required = False

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.text = PAGE
        resp.set_header("Content-Security-Policy", CSP)


class AssetResource:
    """One of Swagger UI's files (an allow-list: no path reaches the file system)."""

    auth_required = False

    def __init__(self):
        root = Path(swagger_ui_path)
        self.files = {name: root / name for name in ASSETS}
        self._cache: dict[str, bytes] = {}

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name in ("", "index.html"):
            return PageResource().on_get(req, resp)
        if name == INIT:
            resp.content_type = "application/javascript"
            resp.text = INIT_JS
            return
        path = self.files.get(name)
        if path is None:
            raise NotFound(f"no file {name!r} in the docs page")
        data = self._cache.get(name)
        if data is None:
            data = self._cache[name] = path.read_bytes()
        resp.content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        resp.data = data
        resp.cache_control = ["public", "max-age=86400"]


def routes(api) -> list:
    return [
        Route("/openapi.json", OpenApiResource(api), "This description (OpenAPI 3)", {"type": "object"},
              tag="operations", auth=False, source_header=False),
        Route(DOCS, PageResource(), "The browsable docs page", None, tag="operations", auth=False,
              content={"text/html": {"schema": {"type": "string"}}}, source_header=False),
        Route(DOCS + "/{name}", AssetResource(), "The docs page's files", None, tag="operations", auth=False,
              content={"*/*": {"schema": {"type": "string", "format": "binary"}}}, source_header=False,
              errors=(404,), params=({"name": "name", "in": "path", "required": True,
                                      "schema": {"type": "string"}},), extra={"hidden": True}),
    ]
