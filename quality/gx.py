"""Run a dataset contract's expectations with Great Expectations 1.x on a cleaned pandas batch.

Contracts carry expectations as plain data:
    {"expectation": "expect_column_values_to_be_in_set",
     "kwargs": {"column": "kenh", "value_set": [...]}, "severity": "error" | "warn"}

- `check_expectation(spec)` checks one of them against a static table (names, required and allowed
  kwargs) without importing GX, so the Dagster code location loads fast; a test keeps the table equal
  to GX's real classes.
- `validate(df, suite_name, expectations, docs_dir)` runs them with GX and returns per-expectation
  outcomes, with the POSITIONAL rows that failed row-level (map) expectations, GX's result JSON and,
  when `docs_dir` is given, the path of this validation's Data Docs page. `df` may also be rows staged on
  disk (`assets.batches.Staged`), larger than memory: each expectation then reads only its columns.
- `row_level(name)`: whether an expectation judges each row (map) or the batch (table/aggregate).

GX stays the definition of every expectation, but GX does not always run: quality.fastcheck evaluates the
common expectation types vectorised, with GX's own semantics and result format (differential tests in
tests/test_fastcheck.py), and GX itself evaluates the rest (engine="gx", or KHO_VALIDATION_ENGINE=gx, runs
everything in GX). The Data Docs page is always rendered by GX, from the merged results.

GX (~3-10 s to import) is imported only when an expectation needs it or a Data Docs page is asked for.
Custom expectations `expect_column_values_to_be_valid_tax_code` and
`expect_column_values_to_be_current_ward_code` are registered with GX on first use.
"""

from __future__ import annotations

import difflib
import fcntl
import functools
import json
import os
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import pandas as pd

    from assets.batches import Staged

SEVERITIES = ("error", "warn")

COLUMN_MAP = "column_map"
COLUMN_PAIR_MAP = "column_pair_map"
MULTICOLUMN_MAP = "multicolumn_map"
COLUMN_AGGREGATE = "column_aggregate"
TABLE = "table"
_ROW_LEVEL_KINDS = frozenset({COLUMN_MAP, COLUMN_PAIR_MAP, MULTICOLUMN_MAP})


class ExpectationSpec(NamedTuple):
    kind: str  # one of the kind constants above (GX's base class)
    required: tuple[str, ...]  # kwargs GX requires
    optional: tuple[str, ...]  # other kwargs GX accepts from a contract


# kwargs that belong to the expectation class but not to a contract: we set them (severity,
# result_format, catch_exceptions, meta) or they are GX Cloud / internal fields.
MANAGED_FIELDS = frozenset({
    "id", "meta", "notes", "result_format", "description", "catch_exceptions", "rendered_content",
    "severity", "windows", "batch_id", "library_metadata",
})

_ROW = ("condition_parser", "mostly", "row_condition")
_MULTI = ("condition_parser", "ignore_row_if", "mostly", "row_condition")
_COND = ("condition_parser", "row_condition")
_BETWEEN = ("condition_parser", "max_value", "min_value", "row_condition", "strict_max", "strict_min")

# GX 1.24 core expectations that run on pandas, plus our custom ones.
# Left out: SQL-only ones (like patterns, query/other-table/unexpected-rows expectations).
# tests/test_gx.py asserts this table equals what GX's classes declare.
SUPPORTED_EXPECTATIONS: dict[str, ExpectationSpec] = {
    "expect_column_distinct_values_to_be_in_set": ExpectationSpec(COLUMN_AGGREGATE, ("column", "value_set"), _COND),
    "expect_column_distinct_values_to_contain_set": ExpectationSpec(COLUMN_AGGREGATE, ("column", "value_set"), _COND),
    "expect_column_distinct_values_to_equal_set": ExpectationSpec(COLUMN_AGGREGATE, ("column", "value_set"), _COND),
    "expect_column_kl_divergence_to_be_less_than": ExpectationSpec(COLUMN_AGGREGATE, ("column",), (
        "bucketize_data", "condition_parser", "internal_weight_holdout", "max_value", "min_value",
        "partition_object", "row_condition", "tail_weight_holdout", "threshold")),
    "expect_column_max_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_mean_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_median_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_min_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_most_common_value_to_be_in_set": ExpectationSpec(
        COLUMN_AGGREGATE, ("column", "value_set"), ("condition_parser", "row_condition", "ties_okay")),
    "expect_column_pair_values_a_to_be_greater_than_b": ExpectationSpec(
        COLUMN_PAIR_MAP, ("column_A", "column_B"), ("condition_parser", "ignore_row_if", "mostly", "or_equal",
                                                    "row_condition")),
    "expect_column_pair_values_to_be_equal": ExpectationSpec(COLUMN_PAIR_MAP, ("column_A", "column_B"), _MULTI),
    "expect_column_pair_values_to_be_in_set": ExpectationSpec(
        COLUMN_PAIR_MAP, ("column_A", "column_B", "value_pairs_set"), _MULTI),
    "expect_column_proportion_of_non_null_values_to_be_between": ExpectationSpec(
        COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_proportion_of_unique_values_to_be_between": ExpectationSpec(
        COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_quantile_values_to_be_between": ExpectationSpec(
        COLUMN_AGGREGATE, ("column", "quantile_ranges"), ("allow_relative_error", "condition_parser",
                                                          "row_condition")),
    "expect_column_stdev_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_sum_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_to_exist": ExpectationSpec(TABLE, ("column",), ("column_index",)),
    "expect_column_type_to_be": ExpectationSpec(TABLE, ("column", "type_"), ()),
    "expect_column_unique_value_count_to_be_between": ExpectationSpec(COLUMN_AGGREGATE, ("column",), _BETWEEN),
    "expect_column_value_lengths_to_be_between": ExpectationSpec(COLUMN_MAP, ("column",), (*_BETWEEN, "mostly")),
    "expect_column_value_lengths_to_equal": ExpectationSpec(COLUMN_MAP, ("column", "value"), _ROW),
    "expect_column_value_z_scores_to_be_less_than": ExpectationSpec(
        COLUMN_MAP, ("column", "double_sided", "threshold"), _ROW),
    "expect_column_values_to_be_between": ExpectationSpec(COLUMN_MAP, ("column",), (*_BETWEEN, "mostly")),
    "expect_column_values_to_be_dateutil_parseable": ExpectationSpec(COLUMN_MAP, ("column",), _ROW),
    "expect_column_values_to_be_decreasing": ExpectationSpec(COLUMN_MAP, ("column",), (*_ROW, "strictly")),
    "expect_column_values_to_be_in_set": ExpectationSpec(COLUMN_MAP, ("column", "value_set"), _ROW),
    "expect_column_values_to_be_in_type_list": ExpectationSpec(COLUMN_MAP, ("column",), (*_ROW, "type_list")),
    "expect_column_values_to_be_increasing": ExpectationSpec(COLUMN_MAP, ("column",), (*_ROW, "strictly")),
    "expect_column_values_to_be_json_parseable": ExpectationSpec(COLUMN_MAP, ("column",), _ROW),
    "expect_column_values_to_be_null": ExpectationSpec(COLUMN_MAP, ("column",), _ROW),
    "expect_column_values_to_be_of_type": ExpectationSpec(COLUMN_MAP, ("column", "type_"), _ROW),
    "expect_column_values_to_be_unique": ExpectationSpec(COLUMN_MAP, ("column",), _ROW),
    "expect_column_values_to_match_json_schema": ExpectationSpec(COLUMN_MAP, ("column", "json_schema"), _ROW),
    "expect_column_values_to_match_regex": ExpectationSpec(COLUMN_MAP, ("column",), (*_ROW, "regex")),
    "expect_column_values_to_match_regex_list": ExpectationSpec(
        COLUMN_MAP, ("column", "regex_list"), (*_ROW, "match_on")),
    "expect_column_values_to_match_strftime_format": ExpectationSpec(
        COLUMN_MAP, ("column", "strftime_format"), _ROW),
    "expect_column_values_to_not_be_in_set": ExpectationSpec(COLUMN_MAP, ("column", "value_set"), _ROW),
    "expect_column_values_to_not_be_null": ExpectationSpec(COLUMN_MAP, ("column",), _ROW),
    "expect_column_values_to_not_be_outliers": ExpectationSpec(
        COLUMN_MAP, ("column",), (*_ROW, "method", "multiplier")),
    "expect_column_values_to_not_match_regex": ExpectationSpec(COLUMN_MAP, ("column", "regex"), _ROW),
    "expect_column_values_to_not_match_regex_list": ExpectationSpec(COLUMN_MAP, ("column", "regex_list"), _ROW),
    "expect_compound_columns_to_be_unique": ExpectationSpec(MULTICOLUMN_MAP, ("column_list",), _MULTI),
    "expect_multicolumn_sum_to_equal": ExpectationSpec(MULTICOLUMN_MAP, ("column_list", "sum_total"), _MULTI),
    "expect_multicolumn_values_to_be_equal": ExpectationSpec(MULTICOLUMN_MAP, ("column_list",), _MULTI),
    "expect_select_column_values_to_be_unique_within_record": ExpectationSpec(
        MULTICOLUMN_MAP, ("column_list",), _MULTI),
    "expect_table_column_count_to_be_between": ExpectationSpec(TABLE, (), ("max_value", "min_value")),
    "expect_table_column_count_to_equal": ExpectationSpec(TABLE, ("value",), ()),
    "expect_table_columns_to_match_ordered_list": ExpectationSpec(TABLE, (), ("column_list",)),
    "expect_table_columns_to_match_set": ExpectationSpec(TABLE, (), ("column_set", "exact_match")),
    "expect_table_row_count_to_be_between": ExpectationSpec(TABLE, (), _BETWEEN),
    "expect_table_row_count_to_equal": ExpectationSpec(TABLE, ("value",), _COND),
    # Ours (defined in _register_custom_expectations).
    "expect_column_values_to_be_valid_tax_code": ExpectationSpec(COLUMN_MAP, ("column",), _ROW),
    "expect_column_values_to_be_current_ward_code": ExpectationSpec(COLUMN_MAP, ("column",), (*_ROW, "value_set")),
}

# GX rejects these when every one of the group is missing (a root validator, not a required field).
AT_LEAST_ONE_OF: dict[str, tuple[str, ...]] = {
    "expect_column_values_to_be_between": ("min_value", "max_value"),
    "expect_column_value_lengths_to_be_between": ("min_value", "max_value"),
}

# Vintage-aware ward codes: the default asks quality.admin_units for the post-2025-07-01 codes.
# Replaceable (tests, or a pipeline pinned to another reference table); a `value_set` kwarg wins.
def _default_current_codes() -> frozenset[str]:
    from quality import admin_units

    return frozenset(admin_units.current_codes())


_current_codes_provider: Callable[[], frozenset[str]] = _default_current_codes


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None  # the column of single-column expectations
    kwargs: dict
    severity: str  # "error" | "warn"
    success: bool
    unexpected_count: int | None
    unexpected_rows: list[int]  # positions in the validated df of the failing rows (row-level only)
    # True when GX judged this expectation row by row on this batch, so unexpected_rows is complete.
    # False for table/aggregate expectations, for a map expectation that raised (e.g. missing column),
    # and for type expectations GX settles on the column dtype (non-object columns).
    row_level: bool
    observed_value: object | None
    exception: str | None = None  # GX's message when evaluating the expectation raised
    unexpected_percent: float | None = None  # of the rows GX judged (map expectations)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the expectation reads: `column`, `column_A`/`column_B` or `column_list`."""
        if self.column:
            return (self.column,)
        if "column_A" in self.kwargs:
            return (self.kwargs["column_A"], self.kwargs["column_B"])
        return tuple(self.kwargs.get("column_list") or ())

    @property
    def reason_code(self) -> str:
        """Quarantine reason code: `<expectation>:<column>[,<column>...]`, like the cleaner's `invalid_date:<column>`."""
        return f"{self.expectation}:{','.join(self.columns)}" if self.columns else self.expectation

    @property
    def quarantines(self) -> bool:
        """Its failing rows are rejected one by one: an error-level map expectation without a `mostly`
        tolerance. With `mostly` < 1 the expectation judges the batch (e.g. a null ratio), not rows."""
        mostly = self.kwargs.get("mostly")
        return self.row_level and self.severity == "error" and (mostly is None or mostly >= 1)

    @property
    def blocks(self) -> bool:
        """It fails the blocking check: an error-level failure that is not settled by quarantining rows."""
        return self.severity == "error" and not self.success and not (self.quarantines and self.unexpected_rows)


@dataclass
class Outcome:
    success: bool  # no error-severity expectation failed
    results: list[ExpectationOutcome] = field(default_factory=list)  # one per spec, in spec order
    result_json: dict = field(default_factory=dict)  # ExpectationSuiteValidationResult.to_json_dict()
    docs_path: str | None = None  # this validation's Data Docs page


def row_level(expectation_name: str) -> bool:
    """True for map expectations (each row passes or fails), False for table/aggregate ones."""
    return _spec(expectation_name).kind in _ROW_LEVEL_KINDS


def _spec(name: Any) -> ExpectationSpec:
    spec = SUPPORTED_EXPECTATIONS.get(name) if isinstance(name, str) else None
    if spec is None:
        close = difflib.get_close_matches(str(name), SUPPORTED_EXPECTATIONS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown expectation {name!r}{hint}")
    return spec


def check_expectation(spec: Mapping[str, Any]) -> None:
    """Raise ValueError if a contract's expectation spec would not run. Does not import GX."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"an expectation must be a mapping, got {type(spec).__name__}")
    extra = set(spec) - {"expectation", "kwargs", "severity"}
    if extra:
        raise ValueError(f"unknown expectation field(s) {sorted(extra)}; allowed: expectation, kwargs, severity")
    name = spec.get("expectation")
    known = _spec(name)
    kwargs = spec.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{name}: kwargs must be a mapping, got {type(kwargs).__name__}")
    severity = spec.get("severity", "error")
    if severity not in SEVERITIES:
        raise ValueError(f"{name}: severity must be one of {list(SEVERITIES)}, got {severity!r}")
    missing = [k for k in known.required if k not in kwargs]
    if missing:
        raise ValueError(f"{name}: missing required kwarg(s) {missing}")
    unknown = sorted(set(kwargs) - set(known.required) - set(known.optional))
    if unknown:
        raise ValueError(f"{name}: unknown kwarg(s) {unknown}; allowed: {sorted(known.required + known.optional)}")
    group = AT_LEAST_ONE_OF.get(name)
    if group and all(kwargs.get(k) is None for k in group):
        raise ValueError(f"{name}: needs at least one of {list(group)}")
    for key in ("column", "column_A", "column_B"):
        if key in kwargs and not (isinstance(kwargs[key], str) and kwargs[key]):
            raise ValueError(f"{name}: {key} must be a non-empty string, got {kwargs[key]!r}")
    if "column_list" in kwargs and not (
        isinstance(kwargs["column_list"], (list, tuple)) and all(isinstance(c, str) for c in kwargs["column_list"])
    ):
        raise ValueError(f"{name}: column_list must be a list of column names")


# ---- GX side: everything below imports great_expectations lazily ----

_GX_LOCK = threading.RLock()  # GX keeps the active context in a process-wide global
_registered = False
_DOCS_SITE = "kho"
_DOCS_INDEX_LIMIT = 200  # the index page re-reads every listed result on each build
_DATASOURCE = "kho"
_RESULT_FORMAT = {
    "result_format": "COMPLETE",  # COMPLETE is the level that returns unexpected_index_list
    # No failing values in results or Data Docs: columns may hold personal data, and the
    # quarantine keeps the originals anyway. Index queries would repeat the row list as text.
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
}
_GX_SEVERITY = {"error": "critical", "warn": "warning"}


def _register_custom_expectations() -> None:
    """Define our custom expectations; defining the classes registers them with GX."""
    global _registered
    if _registered:
        return
    from great_expectations.execution_engine import PandasExecutionEngine
    from great_expectations.expectations.expectation import ColumnMapExpectation, render_suite_parameter_string
    from great_expectations.expectations.metrics.map_metric_provider import (
        ColumnMapMetricProvider,
        column_condition_partial,
    )
    from great_expectations.render import LegacyRendererType, RenderedStringTemplateContent
    from great_expectations.render.renderer.renderer import renderer

    def prescriptive(template: str):
        # Data Docs sentence; without it GX prints "expect_...(**kwargs)".
        @renderer(renderer_type=LegacyRendererType.PRESCRIPTIVE)
        @render_suite_parameter_string
        def _prescriptive_renderer(cls, configuration=None, result=None, runtime_configuration=None, **kwargs):
            config = configuration or (result.expectation_config if result else None)
            params = dict(config.kwargs) if config else {}
            return [RenderedStringTemplateContent(
                content_block_type="string_template",
                string_template={"template": template, "params": params, "styling": {}},
            )]

        return classmethod(_prescriptive_renderer)

    class ColumnValuesValidTaxCode(ColumnMapMetricProvider):
        condition_metric_name = "column_values.kho_valid_tax_code"

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, **kwargs):
            import numpy as np
            import pandas as pd

            from quality.taxcode import is_valid_tax_code

            # Once per distinct code: the check is Python and codes repeat across dossiers.
            # GX drops nulls before this runs (not-null is its own expectation).
            codes, uniques = pd.factorize(column)
            valid = np.fromiter((is_valid_tax_code(u) for u in uniques), dtype=bool, count=len(uniques))
            return pd.Series(valid[codes], index=column.index)

    class ExpectColumnValuesToBeValidTaxCode(ColumnMapExpectation):
        """Expect values to be valid Vietnamese tax codes (mã số thuế): check digit, branch suffix, 12-digit CCCD."""

        map_metric = "column_values.kho_valid_tax_code"
        success_keys = ("mostly",)
        _prescriptive_renderer = prescriptive("$column values must be valid tax codes (mã số thuế).")

    class ColumnValuesCurrentWardCode(ColumnMapMetricProvider):
        condition_metric_name = "column_values.kho_current_ward_code"
        condition_value_keys = ("value_set",)

        @column_condition_partial(engine=PandasExecutionEngine)
        def _pandas(cls, column, value_set=None, **kwargs):
            codes = value_set if value_set is not None else _current_codes_provider()
            return column.isin(list(codes))

    class ExpectColumnValuesToBeCurrentWardCode(ColumnMapExpectation):
        """Expect values to be commune-level unit codes valid since 2025-07-01 (5-digit text)."""

        value_set: list[str] | None = None  # default: quality.admin_units.current_codes()
        map_metric = "column_values.kho_current_ward_code"
        success_keys = ("mostly", "value_set")
        _prescriptive_renderer = prescriptive("$column values must be current (post 2025-07-01) ward codes.")

    _registered = True


def _gx_frame(df: pd.DataFrame) -> pd.DataFrame:
    """What GX sees: a 0..n-1 RangeIndex (GX reports index labels, we promise positions) and
    text columns as object (GX's type expectations mishandle pandas 3 `str` dtype)."""
    import pandas as pd

    frame = df
    index = frame.index
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        frame = frame.reset_index(drop=True)
    text = {c: object for c, dt in frame.dtypes.items() if dt != object and pd.api.types.is_string_dtype(dt)}
    return frame.astype(text) if text else frame


def _context(docs_dir: str | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    stores, sites = defaults.stores, {}
    if docs_dir:
        # Suites and results persist beside the site: the index builder deletes every page whose
        # source is missing from the stores, so in-memory stores would wipe earlier runs' pages.
        root = os.path.abspath(docs_dir)
        for name, sub in ((defaults.expectations_store_name, "expectations"),
                          (defaults.validation_results_store_name, "validations")):
            stores[name]["store_backend"] = {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": os.path.join(root, ".gx", sub),
            }
        sites[_DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": root},
            "site_index_builder": {
                "class_name": "DefaultSiteIndexBuilder",
                "validation_results_limit": _DOCS_INDEX_LIMIT,
                "show_how_to_buttons": False,
            },
        }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _gx_expectation(spec: Mapping[str, Any], index: int):
    from great_expectations.expectations.registry import get_expectation_impl

    cls = get_expectation_impl(spec["expectation"])
    severity = spec.get("severity", "error")
    # meta carries the spec's position: GX does not return results in suite order.
    return cls(**dict(spec.get("kwargs") or {}), severity=_GX_SEVERITY[severity],
               catch_exceptions=True, meta={"kho_index": index})


def _exception_message(info: Any) -> str | None:
    # exception_info is either one {"raised_exception", "exception_message"} dict or a dict of them per metric.
    if not isinstance(info, dict) or not info:
        return None
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    messages = [m for v in info.values() if (m := _exception_message(v))]
    return "; ".join(dict.fromkeys(messages)) or None


def _outcome(spec: Mapping[str, Any], result: Any) -> ExpectationOutcome:
    kwargs = dict(spec.get("kwargs") or {})
    details = dict(result.result or {}) if result is not None else {}
    index_list = details.get("unexpected_index_list")
    per_row = index_list is not None
    return ExpectationOutcome(
        expectation=spec["expectation"],
        column=kwargs.get("column"),
        kwargs=kwargs,
        severity=spec.get("severity", "error"),
        success=bool(result.success) if result is not None else False,
        unexpected_count=details.get("unexpected_count"),
        unexpected_rows=sorted(int(i) for i in index_list) if per_row else [],
        row_level=per_row,
        observed_value=details.get("observed_value"),
        exception=_exception_message(result.exception_info) if result is not None else "no result from GX",
        unexpected_percent=details.get("unexpected_percent"),
    )


def _docs_path(context: Any, result_id: Any) -> str | None:
    for site in context.get_docs_sites_urls(resource_identifier=result_id, site_names=[_DOCS_SITE]):
        url = site.get("site_url")
        if url and url.startswith("file://"):
            path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
            if os.path.isfile(path):
                return path
    return None


def validate(
    df: pd.DataFrame | Staged, suite_name: str, expectations: list[dict], docs_dir: str | None = None,
    engine: str | None = None,
) -> Outcome:
    """Validate df against the specs; unexpected_rows are positions into df.

    df is a DataFrame, or rows on disk too large for memory: an `assets.batches.Staged` file (or anything with
    `num_rows`, `columns` and `read(columns)` giving the whole batch's named columns, indexed 0..n-1). Those are
    read by column: each expectation is evaluated on the columns its kwargs name, read whole (`_reads`), so the
    outcome is the one the whole frame gives while memory holds only the widest expectation's columns (GX
    fallbacks: the union of theirs). A spec whose columns cannot be told (a row_condition) reads every column.

    engine: "auto" (default; KHO_VALIDATION_ENGINE overrides) evaluates the expectations quality.fastcheck
    reproduces exactly without GX and hands the rest to GX; "gx" runs every expectation in GX. Either way the
    results, result_json (GX's format) and the Data Docs page are the same.
    """
    import pandas as pd

    for spec in expectations:
        check_expectation(spec)  # fail on a bad spec before paying for the GX import
    engine = engine or os.environ.get("KHO_VALIDATION_ENGINE", "auto")
    if engine not in ("auto", "gx"):
        raise ValueError(f"engine must be 'auto' or 'gx', got {engine!r}")

    # Identical specs collapse into one GX expectation (GX suites are sets); map each spec to its first twin.
    first: dict[str, int] = {}
    owner = [first.setdefault(json.dumps([s["expectation"], s.get("kwargs") or {}, s.get("severity", "error")],
                                         sort_keys=True, default=str), i)
             for i, s in enumerate(expectations)]
    unique = [i for i in range(len(expectations)) if owner[i] == i]
    whole = isinstance(df, pd.DataFrame)
    codes = lambda: _current_codes_provider()  # noqa: E731  (looked up at call time: tests replace it)

    fast: dict[int, Any] = {}
    if engine == "auto":
        from quality import fastcheck

        if whole:
            frame = _positional(df)
            for i in unique:
                got = fastcheck.evaluate(frame, expectations[i], codes)
                if got is not None:
                    fast[i] = got
        else:
            fast = _fast_by_column(df, expectations, [i for i in unique if fastcheck.accepts(expectations[i])],
                                   codes)
    slow = [i for i in unique if i not in fast]

    docs_path = None
    by_index: dict[int, Any] = {}
    if slow or docs_dir:
        batches = [(lambda: df, slow)] if whole else _gx_batches(df, expectations, slow)
        with _GX_LOCK:
            suite_result, docs_path = _run_gx(batches, suite_name, expectations, unique, fast, docs_dir, whole)
        result_json = _suite_result_json(suite_result)
        by_index = {r.expectation_config.meta.get("kho_index"): r for r in suite_result.results}
    else:
        result_json = _suite_json(suite_name, [_fast_json(expectations[i], i, fast[i], suite_name) for i in unique])

    results = []
    for i, spec in enumerate(expectations):
        j = owner[i]
        results.append(_fast_outcome(spec, fast[j]) if j in fast else _outcome(spec, by_index.get(j)))
    return Outcome(
        success=all(r.success for r in results if r.severity == "error"),
        results=results,
        result_json=result_json,
        docs_path=docs_path,
    )


# ---- a batch on disk, read by column ----

# What an expectation reads besides the row count: these columns' values (a tuple), only the table's column
# names and types (_SCHEMA), or every column (_EVERYTHING).
_SCHEMA = "schema"
_EVERYTHING = "everything"
_COLUMN_KWARGS = ("column", "column_A", "column_B")
# Expectations on the table's columns and their types (GX's table.columns / table.column_types), not on values.
_SCHEMA_ONLY = frozenset({
    "expect_column_to_exist", "expect_column_type_to_be", "expect_table_column_count_to_be_between",
    "expect_table_column_count_to_equal", "expect_table_columns_to_match_ordered_list",
    "expect_table_columns_to_match_set",
})
# kwargs that name no column (bounds, sets, options...). A condition may name any column.
_PARAMETERS = frozenset(
    {k for s in SUPPORTED_EXPECTATIONS.values() for k in s.required + s.optional}
    - {*_COLUMN_KWARGS, "column_list", "row_condition", "condition_parser"})


def _reads(spec: Mapping[str, Any]) -> tuple[str, ...] | str:
    """The columns an expectation reads (in kwargs order; () for the row count alone), or _SCHEMA, or
    _EVERYTHING for a spec whose columns cannot be told from its kwargs."""
    kwargs = spec.get("kwargs") or {}
    if spec["expectation"] in _SCHEMA_ONLY and not {"row_condition", "condition_parser"} & set(kwargs):
        return _SCHEMA
    columns: list[str] = []
    for key, value in kwargs.items():
        if key in _COLUMN_KWARGS:
            columns.append(value)
        elif key == "column_list":
            columns.extend(value or ())
        elif key not in _PARAMETERS:
            return _EVERYTHING
    return tuple(dict.fromkeys(columns))


def _positional_empty(n: int):
    """n rows, no column: what an expectation on the row count alone needs."""
    import pandas as pd

    return pd.DataFrame(index=pd.RangeIndex(n))


def _fast_by_column(rows, expectations: list[dict], indices: list[int], codes) -> dict[int, Any]:
    """fastcheck on a batch read by column: each spec sees a frame of just its columns (those the batch has:
    a missing one stays missing, as in the whole frame). Specs on the same columns share one frame; a column
    still needed by the next frame is kept, every other one is let go, so memory holds one frame's columns."""
    import pandas as pd

    from quality import fastcheck

    names, n = set(rows.columns), rows.num_rows
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in indices:
        need = _reads(expectations[i])
        if isinstance(need, tuple):
            groups.setdefault(tuple(sorted(c for c in need if c in names)), []).append(i)
    fast: dict[int, Any] = {}
    held: dict[str, Any] = {}
    todo = sorted(groups, key=lambda k: (len(k), k))
    while todo:
        # next: the frame sharing most columns with what is held (then the narrowest)
        key = max(todo, key=lambda k: (len(held.keys() & set(k)), -len(k)))
        todo.remove(key)
        held = {c: held[c] for c in key if c in held}  # let go of the others before reading
        for c in key:
            if c not in held:
                held[c] = rows.read([c])[c]
        frame = pd.DataFrame(held, copy=False) if key else _positional_empty(n)
        for i in groups[key]:
            got = fastcheck.evaluate(frame, expectations[i], codes)
            if got is not None:
                fast[i] = got
        del frame
    return fast


def _gx_batches(rows, expectations: list[dict], slow: list[int]) -> list[tuple[Callable[[], Any], list[int]]]:
    """The frames GX runs on for a batch read by column: the union of the slow specs' columns (every column
    if one needs them all), and for specs on the table's columns alone a frame without rows."""
    on_schema = [i for i in slow if _reads(expectations[i]) == _SCHEMA]
    on_rows = [i for i in slow if i not in on_schema]
    names = list(rows.columns)
    if not on_rows:
        return [(lambda: _schema_frame(rows), on_schema)] if on_schema else []
    needs = [_reads(expectations[i]) for i in on_rows]
    if any(need == _EVERYTHING for need in needs):
        return [(lambda: rows.read(names), on_rows + on_schema)]
    wanted = {c for need in needs for c in need}
    # Every column GX could take for a wanted name, in the batch's order (GX takes the first that matches)
    columns = [c for c in names if any(_gx_may_resolve(w, c) for w in wanted)]
    batches = [(lambda: rows.read(columns) if columns else _positional_empty(rows.num_rows), on_rows)]
    if on_schema:
        batches.append((lambda: _schema_frame(rows), on_schema))
    return batches


def _gx_may_resolve(name: str, column: Any) -> bool:
    """Whether GX could resolve a kwarg's column name to this batch column: GX matches names case-insensitively,
    and quoted, bracketed or backticked (metrics.util.get_dbms_compatible_column_names). A superset is fine:
    GX sees the same candidates, in the same order, as in the whole frame."""
    if not isinstance(column, str):
        return name == str(column)
    folded, target = name.casefold(), column.casefold()
    candidates = {folded, folded.strip('"'), folded.strip("[]"), folded.strip("`")}
    if len(target) >= 2 and target[0] == target[-1] == "`":
        candidates.add("`" + folded + "`")
    return target in candidates or name == column


def _schema_frame(rows):
    """The batch's columns, with their dtypes, without rows."""
    import pandas as pd

    path = getattr(rows, "path", None)
    if path is not None and callable(getattr(rows, "slices", None)):  # a Staged Parquet file: its schema
        import pyarrow.parquet as pq

        return pq.read_schema(path).empty_table().to_pandas()
    return pd.concat([rows.read([c]).iloc[:0] for c in rows.columns], axis=1) if len(rows.columns) else \
        _positional_empty(0)


def _positional(df: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    index = df.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return df
    return df.reset_index(drop=True)


def _batch_id(suite_name: str) -> str:
    return f"{_DATASOURCE}-{suite_name}"


_NO_EXCEPTION = {"raised_exception": False, "exception_traceback": None, "exception_message": None}


def _fast_json(spec: Mapping[str, Any], index: int, got: Any, suite_name: str) -> dict:
    """One ExpectationValidationResult as GX writes it (to_json_dict)."""
    return {
        "success": got.success,
        "expectation_config": {
            "type": spec["expectation"],
            "kwargs": {**dict(spec.get("kwargs") or {}), "batch_id": _batch_id(suite_name)},
            "meta": {"kho_index": index},
            "id": None,
            "severity": _GX_SEVERITY[spec.get("severity", "error")],
        },
        "result": got.result,
        "meta": {"kho_engine": "fastcheck"},
        "exception_info": dict(_NO_EXCEPTION),
    }


def _statistics(successes: list[bool]) -> dict:
    n, ok = len(successes), sum(successes)
    return {"evaluated_expectations": n, "successful_expectations": ok, "unsuccessful_expectations": n - ok,
            "success_percent": ok / n * 100 if n else None}


@functools.cache
def _gx_version() -> str:
    from importlib.metadata import version

    return version("great_expectations")


def _suite_meta(suite_name: str) -> dict:
    from datetime import datetime, timezone

    return {
        "great_expectations_version": _gx_version(),
        "batch_spec": {"batch_data": "PandasDataFrame"},
        "batch_markers": {"ge_load_time": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")},
        "active_batch_definition": {"datasource_name": _DATASOURCE, "data_connector_name": "fluent",
                                    "data_asset_name": suite_name,
                                    "batch_identifiers": {"dataframe": "<DATAFRAME>"}},
    }


def _suite_json(suite_name: str, results: list[dict]) -> dict:
    """ExpectationSuiteValidationResult.to_json_dict() for results computed without GX."""
    successes = [bool(r["success"]) for r in results]
    return {"success": all(successes), "results": results, "suite_name": suite_name, "suite_parameters": {},
            "statistics": _statistics(successes), "meta": _suite_meta(suite_name), "id": None}


def _fast_outcome(spec: Mapping[str, Any], got: Any) -> ExpectationOutcome:
    kwargs = dict(spec.get("kwargs") or {})
    rows = got.unexpected_rows
    return ExpectationOutcome(
        expectation=spec["expectation"],
        column=kwargs.get("column"),
        kwargs=kwargs,
        severity=spec.get("severity", "error"),
        success=got.success,
        unexpected_count=got.result.get("unexpected_count"),
        unexpected_rows=rows.tolist() if rows is not None else [],
        row_level=rows is not None,
        observed_value=got.result.get("observed_value"),
        exception=None,
        unexpected_percent=got.result.get("unexpected_percent"),
    )


def _suite_result_json(suite_result: Any) -> dict:
    """suite_result.to_json_dict(), without GX deep-copying and converting the row positions one by one
    (seconds per million failing rows): lists of Python ints are JSON already, so they are taken out while GX
    serialises the rest and put back after."""
    taken: dict[int, list] = {}
    for k, r in enumerate(suite_result.results):
        rows = r.result.get("unexpected_index_list") if isinstance(r.result, dict) else None
        if isinstance(rows, list) and len(rows) > 1000 and all(type(v) is int for v in rows):
            taken[k] = rows
            r.result["unexpected_index_list"] = []
    try:
        doc = suite_result.to_json_dict()
    finally:
        for k, rows in taken.items():
            suite_result.results[k].result["unexpected_index_list"] = rows
    for k, rows in taken.items():
        doc["results"][k]["result"]["unexpected_index_list"] = list(rows)
    return doc


def _run_gx(batches, suite_name, expectations, unique, fast, docs_dir, whole=True):
    """GX for the specs of each (frame factory, specs) batch, every batch on its frame; with docs_dir, the Data
    Docs page of the whole suite (fast results included: rendering needs no frame). Not `whole` (a batch read
    by column): GX's frames are some of its columns, so their fingerprint, which would not be the batch's, is
    left out of the meta (as when every expectation is fast)."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    _register_custom_expectations()
    context = _context(docs_dir)
    batch_definition = (
        context.data_sources.add_pandas(_DATASOURCE)
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    gx_results, meta = [], None
    for frame, specs in batches:
        if not specs:
            continue
        # Built whole, not by add_expectation: once a suite of that name is in the docs store, each add would
        # rewrite it there (and give the expectation a store id).
        slow_suite = gx.ExpectationSuite(name=suite_name, expectations=[_gx_expectation(expectations[i], i)
                                                                        for i in specs])
        batch = batch_definition.get_batch(batch_parameters={"dataframe": _gx_frame(frame())})
        slow_result = batch.validate(slow_suite, result_format=_RESULT_FORMAT)
        del batch
        gx_results.extend(slow_result.results)
        meta = meta or dict(slow_result.meta)
    meta = meta or _suite_meta(suite_name)
    if not whole and isinstance(meta.get("batch_markers"), dict):
        meta["batch_markers"] = {k: v for k, v in meta["batch_markers"].items() if k != "pandas_data_fingerprint"}
    for i in unique:
        if i in fast:
            doc = _fast_json(expectations[i], i, fast[i], suite_name)
            config = doc["expectation_config"]
            gx_results.append(ExpectationValidationResult(
                success=doc["success"], result=doc["result"], meta=doc["meta"], exception_info=doc["exception_info"],
                expectation_config=ExpectationConfiguration(type=config["type"], kwargs=config["kwargs"],
                                                            meta=config["meta"], severity=config["severity"])))
    order = {i: k for k, i in enumerate(unique)}
    gx_results.sort(key=lambda r: order.get(r.expectation_config.meta.get("kho_index"), len(order)))
    successes = [bool(r.success) for r in gx_results]
    suite_result = ExpectationSuiteValidationResult(
        success=all(successes), results=gx_results, suite_name=suite_name, suite_parameters={},
        statistics=_statistics(successes), meta=meta, batch_id=_batch_id(suite_name))
    docs_path = None
    if docs_dir:
        docs_path = _write_docs(context, suite_name, expectations, unique, suite_result, docs_dir)
    return suite_result, docs_path


def _write_docs(context, suite_name, expectations, unique, suite_result, docs_dir: str) -> str | None:
    """Store the suite and its result beside the site and render this result's Data Docs page."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    suite = gx.ExpectationSuite(name=suite_name, expectations=[_gx_expectation(expectations[i], i) for i in unique])
    identifier = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
        run_id=RunIdentifier(run_name=f"kho-{uuid.uuid4().hex[:12]}"),
        batch_identifier=_batch_id(suite_name),
    )
    # Two runs (processes) may share the docs folder: GX's stores are not safe against that, so take turns.
    with open(Path(docs_dir) / "kho-docs.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        context.suites.add_or_update(suite)
        context.validation_results_store.set(identifier, suite_result)
        context.build_data_docs(site_names=[_DOCS_SITE], resource_identifiers=[identifier])
    return _docs_path(context, identifier)
