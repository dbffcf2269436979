"""Response cache per snapshot: a published snapshot never changes, so a successful GET of a
`/quant` endpoint is a pure function of (snapshot id, path, query string). The middleware
resolves the pointer (one small file read), answers repeated requests from a bounded LRU of
response bodies and stores new 200 answers; a new snapshot id misses by construction, so a
publish is visible on the next request. Health endpoints (time-dependent) are never cached."""

from __future__ import annotations

import threading
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quant_resources.snapshots import SnapshotError, SnapshotReader

CACHED_PREFIX = "/api/v1/quant/"


class SnapshotResponseCache:
    """ASGI middleware; `max_entries` bodies of at most `max_body_bytes` each."""

    def __init__(self, app: ASGIApp, reader_of, max_entries: int = 512, max_body_bytes: int = 2 << 20):
        self.app = app
        self.reader_of = reader_of
        self.max_entries = max_entries
        self.max_body_bytes = max_body_bytes
        self._entries: OrderedDict[tuple, tuple[int, list, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(CACHED_PREFIX):
            await self.app(scope, receive, send)
            return
        reader: SnapshotReader = self.reader_of(scope)
        try:
            snapshot_id = reader.current_id()
        except SnapshotError:
            await self.app(scope, receive, send)
            return
        key = (snapshot_id, scope["path"], scope.get("query_string", b""))
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
        if entry is not None:
            status, headers, body = entry
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, self._recording(key, send))

    def _recording(self, key: tuple, send: Send) -> Send:
        start: dict = {}
        chunks: list[bytes] = []

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and start.get("status") == 200:
                    self._store(key, start, b"".join(chunks))
            await send(message)

        return record

    def _store(self, key: tuple, start: dict, body: bytes) -> None:
        if len(body) > self.max_body_bytes:
            return
        with self._lock:
            self._entries[key] = (200, list(start.get("headers", [])), body)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
