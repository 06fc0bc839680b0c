"""Sweep URLs: ``postgresql://user@host/db?sweep=NAME&lease=SECONDS`` parsed into what the
driver takes, shown without a password, and naming other sweeps of the same database."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from execo_engine.store.lease import DEFAULT_LEASE, check_lease


def without_password(url: str) -> str:
    """``url`` as it can be printed or logged: without the password of ``user:password@``
    nor a ``password=`` query parameter."""
    parts = _split(url)
    user, _, host = parts.netloc.rpartition("@")
    user = user.partition(":")[0]
    shown = _unsplit(parts._replace(netloc=f"{user}@{host}" if user else host))
    query = _query(url)
    if any(key == "password" for key, _ in query):
        shown = _with_query(shown, [(k, v) for k, v in query if k != "password"])
    return shown


def _hidden(url: str) -> str:
    """``url``, one that cannot be split, without the password of ``user:password@`` nor the
    value of a ``password=`` parameter."""
    hidden = re.sub(r"^([^:]*:/*[^:@/?#]*):[^/?#]*@", r"\1@", url)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", hidden)


def _split(url: str) -> urllib.parse.SplitResult:
    """``url`` split in its parts, its scheme in lower case; a ``ValueError`` naming it
    (without its password) and saying how to write it if it cannot be (no ``//`` after the
    scheme, unbalanced brackets of an IPv6 host)."""
    how = "write postgresql://user@host:port/database?sweep=NAME"
    if not url.partition(":")[2].startswith("//"):
        raise ValueError(f"{_hidden(url)}: not a postgresql:// URL: {how}")
    try:
        return urllib.parse.urlsplit(url)
    except ValueError as error:
        raise ValueError(
            f"{_hidden(url)}: not a URL ({error}): {how}, an IPv6 host in brackets "
            f"(postgresql://user@[::1]/database?sweep=NAME)"
        ) from None


def _unsplit(parts: urllib.parse.SplitResult) -> str:
    """``parts`` joined again, keeping the ``//`` of an empty host (``postgresql:///db?host=
    ...``, which :func:`urllib.parse.urlunsplit` drops, making a URL libpq refuses)."""
    url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return (
        url
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def _query(url: str) -> list[tuple[str, str]]:
    """The query parameters of ``url``, percent-decoded (a ``+`` stays a ``+``, as libpq
    reads it; a value may hold ``=``)."""
    parts = _split(url).query.split("&")
    pairs = [part.partition("=") for part in parts if part]
    return [(urllib.parse.unquote(key), urllib.parse.unquote(value)) for key, _, value in pairs]


def _with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    """``url`` with these query parameters, each percent-encoded (libpq decodes them back)."""
    query = "&".join(
        f"{urllib.parse.quote(key, safe='')}={urllib.parse.quote(value, safe='')}"
        for key, value in pairs
    )
    return _unsplit(_split(url)._replace(query=query))


def checked_lease(value: Any, shown: str) -> float:
    """``value`` as a lease (the same rules as for directories:
    :func:`execo_engine.store.lease.check_lease`); ``ValueError`` naming ``shown`` otherwise."""
    try:
        return check_lease(value)
    except ValueError as error:
        raise ValueError(f"{shown}: {error} (URL parameter &lease=SECONDS)") from None


def parse_url(url: str) -> tuple[str, str, float]:
    """``(conninfo for the driver, sweep name, lease seconds)`` of a sweep URL."""
    query = _query(url)
    found = dict(query)
    sweep = found.get("sweep", "")
    shown = without_password(url)
    if not sweep:
        raise ValueError(f"{shown}: a PostgreSQL sweep URL needs ?sweep=NAME")
    lease = checked_lease(found.get("lease", DEFAULT_LEASE), shown)
    conninfo = _with_query(url, [(k, v) for k, v in query if k not in ("sweep", "lease")])
    return conninfo, sweep, lease


def with_sweep(url: str, sweep: str) -> str:
    """``url`` naming another sweep of the same database."""
    pairs = [(k, v) for k, v in _query(url) if k != "sweep"]
    return _with_query(url, [("sweep", sweep), *pairs])
