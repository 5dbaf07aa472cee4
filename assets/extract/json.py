"""JSON exports and API dumps: records (and lists nested in them) -> tables of text."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pandas as pd

from assets.errors import ExportError
from assets.extract.base import ROW_COLUMN, Extracted

PARENT_COLUMN = "_kho_parent_row"  # child rows: ROW_COLUMN of the record they belong to
SEQ_COLUMN = "_kho_seq"  # child rows: 1-based position in the record's list
COUNT_KEYS = ("total", "count")  # envelope fields that state how many records the export should hold
_MISSING = object()
MAX_EXPONENT = 400
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _Duplicate(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys: that would drop a value without a word.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Duplicate(dup)
    return obj


def _constant(name: str) -> Any:
    raise ValueError(f"'{name}' is not valid JSON")


def _parse(data: bytes, file: str) -> Any:
    if not data.strip():
        raise ExportError(file, "the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ExportError(file, f"not UTF-8 ({e.reason}); JSON exports must be UTF-8", f"byte {e.start}") from None
    try:
        # Decimal keeps the digits as written: 12.50 stays "12.50", 1.5e9 becomes "1500000000".
        doc = json.loads(text, parse_float=_decimal, parse_constant=_constant, object_pairs_hook=_object)
    except RecursionError:
        raise ExportError(file, "invalid JSON: arrays/objects nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ExportError(file, f"invalid JSON: {e.msg}", f"line {e.lineno}, column {e.colno}") from None
    except _Duplicate as e:
        raise ExportError(file, f"an object has the key '{e}' twice; one value would be lost") from None
    except ValueError as e:
        raise ExportError(file, str(e)) from None
    if _SURROGATE.search(text):  # json.loads accepts "\ud800" alone: text no database or Parquet file can hold
        try:
            json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8")
        except UnicodeEncodeError:
            raise ExportError(file, "a string holds an unpaired surrogate escape (\\ud800-\\udfff): not text") from None
        except RecursionError:
            raise ExportError(file, "invalid JSON: arrays/objects nested too deeply") from None
    return doc


def _decimal(token: str) -> Decimal:
    # 1e999999999 is 11 bytes of JSON but a billion digits of text: refuse exponents no export needs.
    value = Decimal(token)
    if "e" in token.lower() and abs(value.as_tuple().exponent) > MAX_EXPONENT:
        raise ValueError(f"the number {token[:40]} is out of range (exponent beyond {MAX_EXPONENT})")
    return value


def text(value: Any) -> str | None:
    """A JSON scalar as text: never a float repr with an exponent, booleans as true/false."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return json.dumps(value, ensure_ascii=False, default=text, separators=(",", ":"))


def _records(doc: Any, records_path: str | None, file: str) -> list:
    if records_path is None:
        if isinstance(doc, list):
            return doc
        lists = [k for k, v in doc.items() if isinstance(v, list)] if isinstance(doc, dict) else []
        raise ExportError(file, "the top level is not an array of records; set format.records_path"
                          + (f" (arrays found under: {', '.join(lists)})" if lists else ""), "$")
    node, envelopes = doc, []
    for i, key in enumerate(records_path.split(".")):
        if not isinstance(node, dict) or key not in node:
            where = ".".join(records_path.split(".")[:i]) or "$"
            keys = list(node) if isinstance(node, dict) else type(node).__name__
            raise ExportError(file, f"records_path '{records_path}' does not exist; {where} has {keys}", where)
        envelopes.append(node)
        node = node[key]
    if not isinstance(node, list):
        raise ExportError(file, f"records_path '{records_path}' is a {type(node).__name__}, not an array",
                          records_path)
    for env in envelopes:  # the top level and every object on the way may state the expected count
        for key in COUNT_KEYS:
            stated = env.get(key)
            if isinstance(stated, int) and not isinstance(stated, bool) and stated != len(node):
                raise ExportError(file, f"the export says {key}={stated} but holds {len(node)} records "
                                  "(truncated or paged export)", key)
    return node


def _get(obj: Any, parts: list[str]) -> Any:
    """Follow a dotted path; a key that itself contains dots is tried before splitting further."""
    if not parts:
        return obj
    if not isinstance(obj, dict):
        return _MISSING
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in obj:
            found = _get(obj[key], parts[n:])
            if found is not _MISSING:
                return found
    return _MISSING


def _paths(obj: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in obj.items():
        path = prefix + key
        out.extend(_paths(value, path + ".") if isinstance(value, dict) and value else [path])
    return out


def _choose_paths(records: list[dict], columns: dict[str, list[str]], required: set[str],
                  file: str) -> dict[str, str]:
    """Canonical name -> the one source path this file uses, decided over all records."""
    chosen: dict[str, str] = {}
    for name, aliases in columns.items():
        candidates = list(dict.fromkeys([*aliases, name]))  # the canonical name is always an alias
        present = {}
        for path in candidates:
            parts = path.split(".")
            first = next((i for i, r in enumerate(records, 1) if _get(r, parts) is not _MISSING), None)
            if first is not None:
                present[path] = first
        if len(present) > 1:
            (a, ra), (b, rb) = list(present.items())[:2]
            raise ExportError(file, f"fields '{a}' (record {ra}) and '{b}' (record {rb}) both map to column "
                              f"'{name}'", f"record {max(ra, rb)}")
        if present:
            chosen[name] = next(iter(present))
    missing = sorted(required - set(chosen))
    if missing and records:  # an empty export cannot show its fields; min_rows judges it
        found = sorted({p for r in records for p in _paths(r)})
        wanted = "; ".join(f"{m} (as {', '.join(repr(a) for a in columns[m]) or repr(m)})" for m in missing)
        raise ExportError(file, f"required field(s) in no record: {wanted}. Fields found: {found}", "records")
    return chosen


def _scalar(value: Any, file: str, record: int, path: str) -> str | None:
    if isinstance(value, (dict, list)):
        kind = "an object" if isinstance(value, dict) else "an array"
        raise ExportError(file, f"expected a single value, found {kind}", f"record {record}, field '{path}'")
    return text(value)


def _flatten(obj: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _child(records: list[dict], name: str, path: str, file: str) -> pd.DataFrame:
    rows: list[dict[str, str | None]] = []
    parents, seqs = [], []
    for i, record in enumerate(records, 1):
        items = _get(record, path.split("."))
        if items is _MISSING or items is None:
            continue
        if not isinstance(items, list):
            raise ExportError(file, f"child table '{name}': expected an array, found {type(items).__name__}",
                              f"record {i}, field '{path}'")
        for seq, item in enumerate(items, 1):
            flat = _flatten(item) if isinstance(item, dict) else {"value": item}
            row: dict[str, str | None] = {}
            for key, value in flat.items():
                col = key.replace(".", "_")
                if col in row or col in (PARENT_COLUMN, SEQ_COLUMN):
                    raise ExportError(file, f"child table '{name}': two fields become column '{col}'",
                                      f"record {i}, field '{path}[{seq - 1}].{key}'")
                # Arrays inside a child element stay as compact JSON text rather than being dropped.
                row[col] = text(value)
            rows.append(row)
            parents.append(i)
            seqs.append(seq)
    names = list(dict.fromkeys(col for row in rows for col in row))
    frame = pd.DataFrame({c: pd.Series([r.get(c) for r in rows], dtype="str") for c in names},
                         index=range(len(rows)))
    frame[PARENT_COLUMN] = pd.Series(parents, dtype="int64")
    frame[SEQ_COLUMN] = pd.Series(seqs, dtype="int64")
    return frame


def read_json(data: bytes, file: str, columns: dict[str, list[str]], required: set[str],
              records_path: str | None = None,
              children: dict[str, str] | None = None) -> tuple[Extracted, dict[str, pd.DataFrame]]:
    """Records -> Extracted (ROW_COLUMN = 1-based record index) and one frame per child table."""
    records = _records(_parse(data, file), records_path, file)
    for i, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise ExportError(file, f"a record must be an object, found {type(record).__name__}", f"record {i}")
    children = children or {}
    chosen = _choose_paths(records, columns, required, file)

    values = {name: [] for name in columns}
    for i, record in enumerate(records, 1):
        for name, path in chosen.items():
            value = _get(record, path.split("."))
            values[name].append(None if value is _MISSING else _scalar(value, file, i, path))
    frame = pd.DataFrame({name: pd.Series(values[name] if name in chosen else [None] * len(records), dtype="str")
                          for name in columns}, index=range(len(records)))
    frame[ROW_COLUMN] = pd.Series(range(1, len(records) + 1), dtype="int64")

    kids = {name: _child(records, name, path, file) for name, path in children.items()}

    used = set(chosen.values())
    nested = tuple(p + "." for p in children.values())
    unknown = sorted({p for r in records for p in _paths(r)
                      if p not in used and p not in children.values() and not p.startswith(nested)
                      and not any(u.startswith(p + ".") or p.startswith(u + ".") for u in used)})
    notes = [f"fields not in the contract, ignored: {', '.join(unknown)}"] if unknown else []
    absent = [c for c in columns if c not in chosen]
    if absent:
        notes.append(f"optional columns absent from the file, left empty: {', '.join(absent)}")
    return Extracted(frame=frame, encoding="utf-8", notes=notes), kids
