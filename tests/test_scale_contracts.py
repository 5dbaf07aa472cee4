"""Scale: a code location with 200 contracts loads in seconds (issue 8).

200 copies of the dossier contract under other names, in a temporary folder, through the real
`pipelines.definitions.build_definitions` (its `load_contracts` pointed at that folder). Measured and printed:
reading the contracts, building Definitions, and resolving them as the code server does when it loads.
The bound asserted is generous so CI noise does not flake; the target is about 3 s.
"""

from __future__ import annotations

import time

import pytest
from dagster import Definitions

from assets.contract import CONTRACTS_DIR, load_contracts

N = 200


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contracts")
    source = (CONTRACTS_DIR / "ho_so_tthc.yaml").read_text(encoding="utf-8")
    for i in range(N):
        name = f"ho_so_tthc_{i:03d}"
        text = source.replace("dataset: ho_so_tthc", f"dataset: {name}", 1).replace(
            "trung_tam_hcc/ho_so_tthc/", f"trung_tam_hcc/{name}/", 1).replace(
            "code: trung_tam_hcc", f"code: don_vi_{i % 20:02d}", 1)
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


def test_200_contracts_build_definitions_in_seconds(folder, monkeypatch, capsys):
    import pipelines.definitions as module

    start = time.perf_counter()
    contracts = load_contracts(folder)
    read = time.perf_counter() - start
    assert len(contracts) == N

    monkeypatch.setattr(module, "load_contracts", lambda directory=folder: load_contracts(directory))
    start = time.perf_counter()
    defs = module.build_definitions()
    built = time.perf_counter() - start
    start = time.perf_counter()
    Definitions.validate_loadable(defs)  # what `dagster dev` / the code server does on load
    resolved = time.perf_counter() - start

    keys = defs.resolve_all_asset_keys()
    assert sum(1 for k in keys if k.path[0].startswith("ho_so_tthc_")) == 4 * N
    with capsys.disabled():
        print(f"\n[scale] {N} contracts: read {read:.2f} s, build Definitions {built:.2f} s "
              f"(target ~3 s), resolve for the code server {resolved:.2f} s")
    assert read + built < 10, f"building Definitions from {N} contracts took {read + built:.1f} s"
    assert read + built + resolved < 30
