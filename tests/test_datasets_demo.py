"""`kho demo`'s exports, all five datasets in one go: each loads, and each quarantines exactly its seeded defects."""

from __future__ import annotations

import json
import os


from assets.contract import load_contracts
from assets.demo import businesses, dossiers, health, hotline, permits
from pipelines.cli import write_demo_exports
from tests.conftest import query, run_datasets



def test_demo_loads_every_dataset(data_dir, monkeypatch):
    contracts = load_contracts()
    permit_env = next(c for c in contracts if c.dataset == "giay_phep_xay_dung").format.url_env
    monkeypatch.setenv(permit_env, "")  # the demo sets it; this restores it after the test
    written = write_demo_exports(data_dir / "landing")
    assert written[-1].name == "so_xay_dung.sqlite"
    assert os.environ[permit_env] == f"sqlite:///{written[-1]}"

    assert run_datasets(data_dir, *contracts).success
    log = query(data_dir, "SELECT * FROM kho_load_log").set_index("dataset")
    assert (log["status"] == "loaded").all()
    feedback = json.loads(written[3].read_text(encoding="utf-8"))["data"]["items"]
    steps_read, steps_bad = hotline.expected_steps(feedback)
    expected = {  # dataset: (rows read, rows quarantined)
        "ho_so_tthc": (2000 + 3 + 1, dossiers.expected_quarantine()),
        "dang_ky_doanh_nghiep": (300 + 1, businesses.expected_quarantine()),
        "co_so_y_te": (300 + 1, health.expected_quarantine()),
        "phan_anh_1022": (len(feedback), hotline.expected_quarantine()),
        "phan_anh_1022__buoc_xu_ly": (steps_read, steps_bad),
        "giay_phep_xay_dung": (300 + 1, permits.expected_quarantine()),
    }
    got = {ds: (int(r.rows_read), int(r.rows_quarantined)) for ds, r in log.iterrows()}
    assert got == expected
    assert (log["rows_loaded"] == log["rows_read"] - log["rows_quarantined"]).all()
    assert (log["rows_loaded"] > 0).all() and (log["rows_quarantined"] > 0).all()

    # The TCVN3 register reads back as Vietnamese, the SQL pull landed as a snapshot, the steps hang on their calls.
    assert query(data_dir, "SELECT count(*) AS n FROM co_so_y_te WHERE ten_co_so LIKE 'Bệnh viện%'")["n"][0] > 0
    assert log.loc["giay_phep_xay_dung", "file_name"].startswith("so_xay_dung/giay_phep_xay_dung/giay_phep_xay_dung_full_")
    orphans = query(data_dir, "SELECT count(*) AS n FROM phan_anh_1022__buoc_xu_ly s WHERE NOT EXISTS "
                               "(SELECT 1 FROM phan_anh_1022 p WHERE p.ma_phan_anh = s.ma_phan_anh)")
    assert orphans["n"][0] == 0
