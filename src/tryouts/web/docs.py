"""``/docs``: the API reference, rendered on the server from ``/openapi.json`` (no CDN, no inline script)."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter()


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render(spec: dict[str, Any]) -> str:
    """The OpenAPI document as one readable HTML page."""
    parts = [f"<h1>{_e(spec['info']['title'])} API <small>{_e(spec['info']['version'])}</small></h1>",
             f"<p>{_e(spec['info'].get('description', ''))}</p>",
             '<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI '
             f"{_e(spec.get('openapi', ''))}).</p>"]
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f'<section class="op"><h2><code>{_e(method.upper())} {_e(path)}</code></h2>')
            parts.append(f"<p>{_e(op.get('summary', ''))}</p>")
            params = op.get("parameters") or []
            if params:
                parts.append("<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Required</th><th>About</th></tr>")
                for p in params:
                    schema = p.get("schema", {})
                    kind = schema.get("type") or " | ".join(x.get("type", "?") for x in schema.get("anyOf", []))
                    parts.append(f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td><td>{_e(kind)}</td>"
                                 f"<td>{'yes' if p.get('required') else 'no'}</td>"
                                 f"<td>{_e(p.get('description', schema.get('description', '')))}</td></tr>")
                parts.append("</table>")
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                ref = body.get("$ref", "").rsplit("/", 1)[-1]
                schema = spec.get("components", {}).get("schemas", {}).get(ref, body)
                parts.append(f"<p>JSON body <code>{_e(ref)}</code>:</p><pre>{_e(json.dumps(schema, indent=2))}</pre>")
            parts.append("</section>")
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>Tryouts API</title>"
            '<link rel=stylesheet href="/static/app.css"></head><body class="docs"><main>'
            + "".join(parts) + "</main></body></html>")


@router.get("/docs", include_in_schema=False, response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    return HTMLResponse(render(request.app.openapi()))
