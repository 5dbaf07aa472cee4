"""Errors that name the file, the place and the reason, so a clerk or an engineer can act on them."""

from __future__ import annotations


class ExportError(Exception):
    """A departmental export that cannot be read as the contract says.

    `place` is where in the file the problem is (a row, a cell, a byte offset, a sheet, a JSON path).
    These are data faults: retrying will not help, so runs fail at once and are never retried.
    """

    def __init__(self, file: str, reason: str, place: str | None = None):
        self.file, self.reason, self.place = file, reason, place
        where = f" at {place}" if place else ""
        super().__init__(f"{file}{where}: {reason}")


class ContractError(Exception):
    """A contract file that is wrong: names the file, the field and the problem."""

    def __init__(self, file: str, field: str, problem: str):
        self.file, self.field, self.problem = file, field, problem
        super().__init__(f"{file}: field '{field}': {problem}")
