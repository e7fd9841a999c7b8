"""A vendor stand-in for adapter tests: a real HTTP server on loopback answering what each test sets."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    raw: bytes | None = None
    delay: float = 0.0
    drop: bool = False
    """Close the connection without answering."""
    hold: asyncio.Event | None = None
    """Answer only once this is set (the test does something while the request is at the vendor)."""


@dataclass
class Canned:
    """Answers by path (``default`` for any other) and every request received."""

    answers: dict[str, Answer] = field(default_factory=dict)
    default: Answer = field(default_factory=Answer)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": json.loads(raw) if raw else None,
            }
        )
        answer = self.answers.get(request.path, self.default)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.hold is not None:
            await answer.hold.wait()
        if answer.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if answer.raw is not None:
            return web.Response(status=answer.status, body=answer.raw, content_type="text/html")
        return web.json_response(answer.body, status=answer.status)
