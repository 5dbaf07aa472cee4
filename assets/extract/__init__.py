"""Extract: the bytes of one export -> a table of text with the contract's column names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assets.extract.base import Extracted

if TYPE_CHECKING:
    from assets.contract import Contract


def extract(contract: "Contract", data: bytes, file: str) -> Extracted:
    fmt = contract.format
    columns = {name: col.headers for name, col in contract.columns.items()}
    required = {name for name, col in contract.columns.items() if col.required}
    if fmt.type == "csv":
        from assets.extract.csv import read_csv

        return read_csv(data, file, columns, required, encoding=fmt.encoding, delimiter=fmt.delimiter)
    if fmt.type in ("xlsx", "xls"):
        from assets.extract.excel import read_excel

        return read_excel(data, file, columns, sheet=fmt.sheet)
    raise NotImplementedError(f"{file}: format '{fmt.type}' has no reader yet")
