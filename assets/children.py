"""Child tables: lists nested in JSON records (a hotline call's processing steps), loaded as tables of their own.

A contract's `format.children.<name>` becomes the curated table `<dataset>__<name>`, described by a contract
derived from the parent's (`child_contract`): the parent's primary key (and partition column, so a
replace_partition load replaces the children of exactly the periods it replaces), `thu_tu` (the element's
1-based position in the list) and the child's own columns; the parent's load mode applies.

Child rows are loaded in the parent's `curated` step, just before the parent's rows, from the batch's archived
files (immutable, so reading them again gives exactly the rows the parent was read with). A child row whose
parent row was rejected goes to the child's quarantine as `parent_rejected`: the child table never holds an
orphan, and rows read = loaded + quarantined holds for it with its own load-log rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pandas as pd

from assets import batches, flow
from assets.batches import Staged
from assets.clean import ORIGINAL_PREFIX
from assets.contract import Column, Contract
from assets.extract import extract
from assets.extract.base import ROW_COLUMN
from assets.extract.csv import ORIGINAL, REASONS
from assets.extract.json import PARENT_COLUMN, SEQ_COLUMN

SEQ = "thu_tu"
PARENT_REJECTED = "parent_rejected"


def _inherited(parent: Contract) -> list[str]:
    period = [parent.partitioning.column] if parent.partitioning else []
    return list(dict.fromkeys([*parent.primary_key, *period]))


def child_contract(parent: Contract, name: str) -> Contract:
    child = parent.format.children[name]
    columns = {c: parent.columns[c] for c in _inherited(parent)}
    columns[SEQ] = Column(type="integer", required=True, description=f"Thứ tự trong danh sách '{child.path}'")
    return Contract.model_validate({
        "dataset": f"{parent.dataset}__{name}", "title": child.title,
        "description": f"Child table of {parent.dataset}: one row per element of '{child.path}' in each record, "
                       f"keyed by {', '.join(parent.primary_key)} and {SEQ}.",
        "department": parent.department, "landing": parent.landing,
        "format": {"type": parent.format.type, "records_path": parent.format.records_path},
        "columns": {**columns, **child.columns}, "primary_key": [*parent.primary_key, SEQ],
        "partitioning": parent.partitioning, "load": parent.load,
        # The parent's suite judges the batch; a child only rejects rows.
        "quality": {"max_rejected_share": 1.0, "min_rows": 0}, "source_file": parent.source_file,
    })


def validated_children(parent: Contract, validated: pd.DataFrame | Staged,
                       files: list[dict]) -> Iterator[tuple[Contract, pd.DataFrame]]:
    """(child contract, cleaned and validated child rows) for each child table of the batch's files."""
    if not parent.format.children or not files:
        return
    texts: dict[str, list[pd.DataFrame]] = {name: [] for name in parent.format.children}
    for f in files:
        got = extract(parent, Path(f["archive_path"]).read_bytes(), f["file_name"])
        for name, frame in got.children.items():
            texts[name].append(frame.assign(**{flow.FILE_COLUMN: f["sha256"]}))
    keys = _inherited(parent)
    parents = batches.read(validated, [flow.FILE_COLUMN, ROW_COLUMN, REASONS, *(ORIGINAL_PREFIX + k for k in keys)]).rename(
        columns={ROW_COLUMN: PARENT_COLUMN, REASONS: "_parent_reasons"})
    for name, frames in texts.items():
        contract = child_contract(parent, name)
        rows = pd.concat(frames, ignore_index=True).merge(parents, how="left", on=[flow.FILE_COLUMN, PARENT_COLUMN],
                                                          indicator=True)
        # The parent's key as the department wrote it: the child cleans it exactly as the parent did.
        text = pd.DataFrame({k: rows[ORIGINAL_PREFIX + k] for k in keys})
        text[SEQ] = rows[SEQ_COLUMN].astype("str")
        for col in parent.format.children[name].columns:
            text[col] = rows[col]
        text[ROW_COLUMN] = rows[PARENT_COLUMN]  # the record the element is in
        rejected = rows["_parent_reasons"].notna() | (rows["_merge"] != "both")
        text[REASONS] = pd.Series(PARENT_REJECTED, index=rows.index, dtype=object).where(rejected, None)
        text[ORIGINAL] = None
        text[flow.FILE_COLUMN] = rows[flow.FILE_COLUMN]
        cleaned = flow.clean_batch(contract, text)
        yield contract, (flow.validate(contract, cleaned).frame if len(cleaned) else cleaned)
