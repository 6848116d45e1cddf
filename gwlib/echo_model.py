"""The reference router's model of the echo backends.

Like the upstream conformance echo server (``gateway-api/conformance/echo-basic``): the
backend reports what it received, and a request header
``X-Echo-Set-Header: Name:value,Other:value`` makes it set those response headers.
"""
from __future__ import annotations

ECHO_SET_HEADER = "X-Echo-Set-Header"


def parse_set_header(value: str | None) -> list[tuple[str, str]]:
    """``"X-Foo:1,X-Bar: two"`` → ``[("X-Foo", "1"), ("X-Bar", "two")]`` (entries without
    a colon are ignored, as the echo server does)."""
    out: list[tuple[str, str]] = []
    if not value:
        return out
    for part in value.split(","):
        name, sep, val = part.partition(":")
        name = name.strip()
        if not sep or not name:
            continue
        out.append((name, val.strip()))
    return out


def response_headers(received_headers) -> list[tuple[str, str]]:
    """The headers the echo backend sets on its response for the request it received.

    ``received_headers`` is a :class:`gwlib.filters.Headers` (or any object with ``get``).
    """
    return parse_set_header(received_headers.get(ECHO_SET_HEADER))
