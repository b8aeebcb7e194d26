"""A TCP proxy in front of a Kafka broker that can leave one produce request unanswered, forever.

    with SilencingProxy(("127.0.0.1", broker_port)) as proxy:
        proxy.silence_next_produce_to("prefix.articles.tagged")
        ...  # clients connect to proxy.address (the broker advertises it)
        assert proxy.silenced == 1

The request is swallowed and its connection goes quiet both ways but stays open, as a broker that stopped answering
one connection would: the client learns of it only from its own request timeout.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType
from typing import Self

__all__ = ["SilencingProxy"]

PRODUCE = 0


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


class _Connection:
    def __init__(self, proxy: SilencingProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(proxy.upstream)
        self.silent = False

    def run(self) -> None:
        threading.Thread(target=self._downstream, daemon=True).start()
        try:
            self._upstream()
        finally:
            for sock in (self.client, self.upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _upstream(self) -> None:
        """Client to broker, one request frame at a time (4-byte size, then api_key int16 first)."""
        with contextlib.suppress(OSError):
            while True:
                head = _read_exactly(self.client, 4)
                if head is None:
                    return
                (size,) = struct.unpack(">i", head)
                body = _read_exactly(self.client, size)
                if body is None:
                    return
                if not self.silent and self.proxy.takes(struct.unpack(">h", body[:2])[0], body):
                    self.silent = True
                if not self.silent:
                    self.upstream.sendall(head + body)

    def _downstream(self) -> None:
        with contextlib.suppress(OSError):
            while data := self.upstream.recv(65536):
                if not self.silent:
                    self.client.sendall(data)


class SilencingProxy:
    """Forwards every connection to ``upstream``; see the module docstring."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._topic: bytes | None = None
        self._lock = threading.Lock()
        self.silenced = 0

    def silence_next_produce_to(self, topic: str) -> None:
        with self._lock:
            self._topic = topic.encode()

    def takes(self, api_key: int, request: bytes) -> bool:
        """Whether this request is the one to swallow (then nothing more is swallowed)."""
        with self._lock:
            if api_key != PRODUCE or self._topic is None or self._topic not in request:
                return False
            self._topic = None
            self.silenced += 1
            return True

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                try:
                    connection = _Connection(self, client)
                except OSError:
                    client.close()
                    continue
                threading.Thread(target=connection.run, daemon=True).start()

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._listener.close()
