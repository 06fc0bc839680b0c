"""Sweep URLs: what reaches the driver, and what is refused (no server needed)."""

from __future__ import annotations

import urllib.parse

import pytest

from execo_engine.store.locations import check_location, kind_of, shown
from execo_engine.store.postgresql.store import parse_url, with_sweep
from execo_engine.store.postgresql.urls import without_password


def driver_parameters(conninfo: str) -> dict[str, str]:
    """The query parameters as libpq reads them: split on ``&`` and the first ``=``, then
    percent-decoded once (a ``+`` stays a ``+``)."""
    query = urllib.parse.urlsplit(conninfo).query
    pairs = [part.partition("=") for part in query.split("&") if part]
    assert all("=" not in value for _, _, value in pairs)  # libpq refuses a second "="
    return {urllib.parse.unquote(k): urllib.parse.unquote(v) for k, _, v in pairs}


@pytest.mark.parametrize(
    "query",
    [
        "options=-c%20search_path%3Dmine&application_name=my%20sweep",  # encoded, as libpq wants
        "options=-c search_path=mine&application_name=my sweep",  # as a person types it
    ],
)
def test_parameters_reach_the_driver_unchanged(query):
    conninfo, sweep, lease = parse_url(f"postgresql://u:pw@db:5433/exp?sweep=a/b&lease=9&{query}")
    assert (sweep, lease) == ("a/b", 9.0)
    assert conninfo.startswith("postgresql://u:pw@db:5433/exp?")
    assert driver_parameters(conninfo) == {
        "options": "-c search_path=mine",
        "application_name": "my sweep",
    }


def test_a_plus_stays_a_plus():
    conninfo, _, _ = parse_url("postgresql://db/exp?sweep=s&application_name=a+b%2Bc")
    assert driver_parameters(conninfo) == {"application_name": "a+b+c"}


def test_another_sweep_of_the_same_database_keeps_the_parameters():
    url = with_sweep("postgresql://db/exp?sweep=s&options=-c%20search_path%3Dmine", "s/t 1")
    conninfo, sweep, _ = parse_url(url)
    assert sweep == "s/t 1"
    assert driver_parameters(conninfo) == {"options": "-c search_path=mine"}


@pytest.mark.parametrize("lease", ["0", "-5", "nan", "inf", "soon"])
def test_bad_leases_are_refused_naming_the_url_without_its_password(lease):
    with pytest.raises(ValueError, match="lease must be a") as error:
        parse_url(f"postgresql://u:secret@db/exp?sweep=s&lease={lease}")
    assert "secret" not in str(error.value) and "u@db/exp" in str(error.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@db/exp?sweep=s", "postgresql://u@db/exp?sweep=s"),
        ("postgresql://u@db/exp?sweep=s&password=secret", "postgresql://u@db/exp?sweep=s"),
        (
            "postgresql://u@db/exp?password=secret&sweep=s&lease=9",
            "postgresql://u@db/exp?sweep=s&lease=9",
        ),
    ],
)
def test_a_url_is_shown_without_its_password_wherever_it_is(url, shown):
    assert without_password(url) == shown


def test_a_url_without_a_host_keeps_its_slashes():
    url = "postgresql:///exp?host=127.0.0.1&port=5499&sweep=s"
    conninfo, sweep, _ = parse_url(url)
    assert sweep == "s"
    assert conninfo.startswith("postgresql:///exp?")
    assert driver_parameters(conninfo) == {"host": "127.0.0.1", "port": "5499"}
    assert without_password(url) == url
    assert with_sweep(url, "t").startswith("postgresql:///exp?sweep=t&")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:secret@[::1/exp?sweep=s",
        "postgresql://u:sec@ret@[::1/exp?sweep=s",
        "postgresql://u@[::1/exp?sweep=s&password=secret",
    ],
)
def test_a_url_that_cannot_be_split_is_named_without_its_password(url):
    for parse in (parse_url, without_password):
        with pytest.raises(ValueError) as error:
            parse(url)
        shown = "postgresql://u@[::1/exp?sweep=s" + ("&password=***" if "&" in url else "")
        assert str(error.value) == (
            f"{shown}: not a URL (Invalid IPv6 URL): write postgresql://user@host:port/"
            f"database?sweep=NAME, an IPv6 host in brackets (postgresql://user@[::1]/"
            f"database?sweep=NAME)"
        )


@pytest.mark.parametrize("scheme", ["POSTGRESQL", "PostgreSQL", "postgres", "Postgres"])
def test_the_scheme_is_case_insensitive(scheme):
    url = f"{scheme}://u:secret@db/exp?sweep=s"
    assert kind_of(url) is kind_of("postgresql://db/exp?sweep=s") is not kind_of("exp")
    conninfo, sweep, _ = parse_url(url)
    assert (conninfo, sweep) == (f"{scheme.lower()}://u:secret@db/exp", "s")  # as libpq takes it
    assert shown(url) == f"{scheme.lower()}://u@db/exp?sweep=s"


@pytest.mark.parametrize(
    ("url", "hidden"),
    [
        ("postgresql:/u:secret@db/exp?sweep=s", "postgresql:/u@db/exp?sweep=s"),
        ("POSTGRES:u:secret@db/exp?sweep=s", "POSTGRES:u@db/exp?sweep=s"),
        (
            "postgresql:/u@db/exp?password=secret&sweep=s",
            "postgresql:/u@db/exp?password=***&sweep=s",
        ),
    ],
)
def test_a_location_that_starts_as_a_url_but_is_none_is_refused_without_its_password(url, hidden):
    with pytest.raises(ValueError) as error:
        check_location(url)
    assert str(error.value) == (
        f"{hidden}: not a postgresql:// URL: write postgresql://user@host:port/database?sweep=NAME"
    )
