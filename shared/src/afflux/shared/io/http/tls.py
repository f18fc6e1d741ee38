"""One TLS context for every outgoing HTTP client of a process.

httpx builds a new context for each client it makes, reading the whole CA bundle: about
50 ms of CPU per client, which a client made per request (an order outcome asking the
ledger, a portal page asking clicks) or per poll (waiting for /healthz) paid every time.
A context is safe to share between clients and threads once built.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Any

import certifi
import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The context httpx would build by default (``SSL_CERT_FILE`` / ``SSL_CERT_DIR``
    first, else certifi's bundle), built once."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


def request(method: str, url: str, **kwargs: Any) -> httpx.Response:
    """``httpx.request`` on the shared context: for one-off calls and polling loops."""
    return httpx.request(method, url, verify=tls_context(), **kwargs)


def get(url: str, **kwargs: Any) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> httpx.Response:
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> httpx.Response:
    return request("PUT", url, **kwargs)


def head(url: str, **kwargs: Any) -> httpx.Response:
    return request("HEAD", url, **kwargs)


def delete(url: str, **kwargs: Any) -> httpx.Response:
    return request("DELETE", url, **kwargs)
