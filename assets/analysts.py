"""What analysts get beyond the curated tables: marts, the data dictionary and the open-data export, as assets."""

from __future__ import annotations

from assets.dictionary import build_dictionary_asset
from assets.marts import build_mart_assets
from assets.open_data import build_open_data_asset


def build_analyst_assets(contracts) -> list:
    contracts = tuple(contracts)
    return [*build_mart_assets(contracts), build_dictionary_asset(contracts), build_open_data_asset(contracts)]
