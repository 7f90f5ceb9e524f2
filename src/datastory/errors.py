"""The one error type users see: a clear message, never a bare traceback."""

from __future__ import annotations


class DatastoryError(Exception):
    """A problem the user can fix. The message says what, where and how."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None, fix: str | None = None, record: int | None = None):
        self.problem = message
        self.file = file
        self.row = row          # the row as the user sees it: a text file's line, a sheet's row
        self.record = record    # a text file's record (header = 1), when it may differ from its line
        self.column = column
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.row is not None and self.record is not None and self.record != self.row:
            where.append(f"line {self.row} (record {self.record})")   # after an empty line or a multi-line value
        elif self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        head = (", ".join(where) + ": ") if where else ""
        tail = f"\n  fix: {self.fix}" if self.fix else ""
        return f"{head}{self.problem}{tail}"


class ParamsError(DatastoryError):
    """A parameter file holds a value that is not allowed."""


class DataError(DatastoryError):
    """Input data that cannot be used as it is."""


class ModelError(DatastoryError):
    """A model cannot be trained or scored on this data."""


class DeliveryError(DatastoryError):
    """An email cannot be composed, sent or recorded."""


class ClusterError(DatastoryError):
    """The configured Dask cluster cannot be reached or has no workers."""
