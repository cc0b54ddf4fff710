"""A Delta table handle refreshed incrementally, and the backoff after a lost commit race."""

from __future__ import annotations

import random
import time

from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

__all__ = ["TableHandle", "backoff_after_conflict"]


class TableHandle:
    """One Delta table, loaded once and then refreshed incrementally; None until it exists."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None) -> None:
        self.uri, self._options = uri, storage_options
        self._table: DeltaTable | None = None

    def current(self) -> DeltaTable | None:
        """The table at its latest version, or None when there is no table yet."""
        if self._table is not None:
            self._table.update_incremental()
            return self._table
        try:
            self._table = DeltaTable(self.uri, storage_options=self._options)
        except TableNotFoundError:
            return None
        return self._table

    def forget(self) -> None:
        """Drops the loaded table: the next ``current()`` loads it afresh."""
        self._table = None


def backoff_after_conflict(attempt: int) -> None:
    """Sleeps before retrying a commit that lost to a concurrent one (jittered, capped)."""
    time.sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))
