"""``postgresql://`` URLs as locations (see :class:`execo_engine.store.locations.Kind`): a
sweep is a name in a database; the sweeps below ``NAME`` are those named ``NAME/<child>``."""

from __future__ import annotations

from execo_engine.codec import Codec
from execo_engine.store.contract import Store
from execo_engine.store.postgresql.store import PostgresStore, sweeps_below
from execo_engine.store.postgresql.urls import parse_url, with_sweep, without_password


class DatabaseKind:
    """The locations that name a sweep of a PostgreSQL database."""

    def open(self, location: str, codec: Codec, read_only: bool, lease: float | None) -> Store:
        return PostgresStore(location, codec, read_only, lease)

    def check(self, location: str) -> None:
        parse_url(location)

    def child(self, location: str, name: str) -> str:
        return with_sweep(location, f"{parse_url(location)[1]}/{name}")

    def children(self, location: str) -> dict[str, str]:
        return sweeps_below(location)

    def sweeps_at(self, location: str) -> list[str]:
        return list(sweeps_below(location).values()) or [location]

    def shown(self, location: str) -> str:
        return without_password(location)

    def resolved(self, location: str, base: str) -> str:  # noqa: ARG002 (a URL is absolute)
        return location

    def name(self, location: str) -> str:
        return parse_url(location)[1]

    def local_directory(self, location: str) -> str | None:  # noqa: ARG002 (never one)
        return None


DATABASE = DatabaseKind()
