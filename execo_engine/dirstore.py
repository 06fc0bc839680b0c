"""The bytes of a ParamSweeper persistence directory.

Files (all text, one JSON record a line, see :mod:`execo_engine.codec`):

- ``done``: one element a record, appended and fsync'd, never rewritten;
- ``inprogress``: claim events, ``["+",[host,pid,start],element]`` when an element is taken and
  ``["-",element]`` when it is given back (done, skipped, cancelled, owner dead). It is
  compacted (rewritten with the live claims only, atomically) when mostly made of finished
  claims. Deleting it releases every claim;
- ``sweeps`` (when saved): the elements to iterate on, in order, written atomically;
- ``lock``: the lock file (see :mod:`execo_engine.locking`).

Only these fixed names are ever opened, never through a symbolic link, and nothing read here is
executed or unpickled (unless the codec was told ``allow_pickle=True``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from execo_engine.codec import Codec, PickleNotAllowedError
from execo_engine.journal import Batch, Journal, corrupt_record_error, replace_atomically
from execo_engine.locking import DirectoryLock
from execo_engine.owner import Owner

CLAIM, RELEASE = "+", "-"
ClaimEvent = tuple[str, Owner | None, Any]


def _claim_prefix(owner: Owner) -> str:
    return f'["{CLAIM}",{json.dumps(list(owner), separators=(",", ":"))},'


@dataclass
class Changes:
    """What other writers (and crashed ones) did since the last :meth:`DirectoryStore.read`."""

    done: list[Any] = field(default_factory=list)
    done_restarted: bool = False
    claims: list[ClaimEvent] = field(default_factory=list)
    claims_restarted: bool = False


class DirectoryStore:
    """Reads and appends the records of one persistence directory.

    Every method but :meth:`load_sweeps` must be called inside ``with store.lock:``, and the
    appends after a :meth:`read` in the same locked section.
    """

    def __init__(self, path: str | os.PathLike[str], codec: Codec) -> None:
        self.path = os.fspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise NotADirectoryError(
                f"persistence directory {self.path!r} exists and is not a directory")
        os.makedirs(self.path, exist_ok=True)
        self.codec = codec
        self.lock = DirectoryLock(self.path)
        self._done = Journal(self.path, "done")
        self._claims = Journal(self.path, "inprogress")
        self._sweeps_path = os.path.join(self.path, "sweeps")

    def _decode(self, path: str, batch: Batch) -> list[Any]:
        try:
            return self.codec.decode_lines(batch.records)
        except PickleNotAllowedError as error:
            raise PickleNotAllowedError(f"{path}: {error}") from None
        except ValueError:
            raise corrupt_record_error(path, batch, self.codec.decode) from None

    def read(self) -> Changes:
        """The records appended since the last read; torn last records are repaired."""
        done_batch = self._done.read_new(repair=True)
        claims_batch = self._claims.read_new(repair=True)
        claims = [(record[0], tuple(record[1]) if record[0] == CLAIM else None, record[-1])
                  for record in self._decode(self._claims.path, claims_batch)]
        return Changes(self._decode(self._done.path, done_batch), done_batch.restarted,
                       claims, claims_batch.restarted)  # type: ignore[arg-type]

    def restart(self) -> None:
        """Make the next :meth:`read` return everything (``restarted`` set on both)."""
        self._done.restart()
        self._claims.restart()

    def _lines(self, elements: Iterable[Any], prefix: str = "", suffix: str = "") -> bytes:
        encode = self.codec.encode
        return "".join(f"{prefix}{encode(element)}{suffix}\n" for element in elements).encode()

    def append_done(self, elements: Iterable[Any]) -> int | None:
        """Append done records; returns a descriptor to fsync (and close) after unlocking."""
        data = self._lines(elements)
        if not data:
            return None
        self._done.append(data)
        return self._done.sync_handle()

    def append_claims(self, elements: Iterable[Any], owner: Owner) -> None:
        """Record that ``owner`` took ``elements``."""
        if data := self._lines(elements, _claim_prefix(owner), "]"):
            self._claims.append(data)

    def append_releases(self, elements: Iterable[Any]) -> None:
        """Record that ``elements`` are no longer in progress."""
        if data := self._lines(elements, f'["{RELEASE}",', "]"):
            self._claims.append(data)

    @property
    def claim_records(self) -> int:
        """How many records the ``inprogress`` journal holds (to decide on compaction)."""
        return self._claims.records

    def rewrite_claims(self, claims: dict[Any, Owner]) -> None:
        """Replace the ``inprogress`` journal by exactly ``claims`` (compaction, reset)."""
        self._claims.rewrite(b"".join(
            self._lines([element], _claim_prefix(owner), "]")
            for element, owner in claims.items()))

    def load_sweeps(self) -> list[Any] | None:
        """The saved elements, in order, or None when none were saved."""
        try:
            fd = os.open(self._sweeps_path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        with open(fd, "rb") as f:
            data = f.read()
        return self._decode(self._sweeps_path, Batch(records=data.split(b"\n")[:-1]))

    def save_sweeps(self, elements: Iterable[Any]) -> None:
        """Write the elements to iterate on, atomically and durably."""
        replace_atomically(self._sweeps_path, self._lines(elements))
