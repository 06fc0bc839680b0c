"""How every store keeps run records: one JSON object per record, as text.

A run record (see :mod:`execo_engine.provenance` for its fields) is a JSON object with a text
``id``; a store keeps it as one line of JSON text (a directory: a line of its ``runs`` file; a
PostgreSQL database: a row of ``execo_runs``), appends it, and gives every record back in the
order it was appended. Run records are plain JSON: nothing read is ever executed nor
unpickled, unknown fields are kept, and a record that is not a JSON object with a text ``id``
(written by hand, or damaged) is skipped with one warning naming where it stands: run records
describe results, they never decide a state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from execo_engine.log import logger

RUNS_FILE = "runs"  #: the file of run records in a sweep directory


def encode_run(record: Mapping[str, Any]) -> str:
    """The one-line JSON text of ``record``; ``ValueError`` naming the field when it is not
    a JSON object with a text ``id`` and JSON values (no NaN)."""
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError(f"a run record needs a text 'id': {dict(record)!r:.200}")
    try:
        return json.dumps(dict(record), separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"run record {record['id']}: not JSON: {error}") from None


def decode_runs(lines: Iterable[tuple[str, bytes | str]], where: str) -> list[dict[str, Any]]:
    """The run records of ``lines`` (``(position, text)`` pairs: the position is where the
    line stands, for a warning), skipping those that are not records, with one warning."""
    records, bad = [], []
    for position, line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            records.append(record)
        else:
            bad.append(position)
    if bad:
        logger.warning(
            "%s: skipped %d unreadable run record(s) (at %s): not a JSON object with a text 'id'",
            where,
            len(bad),
            ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else ""),
        )
    return records
