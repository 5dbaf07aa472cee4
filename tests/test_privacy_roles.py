"""PostgreSQL roles on the real server: analysts read curated and mart, never quarantine or kho; audited grants.

Roles are cluster-wide, so every name here is unique to the run, and everything is dropped afterwards.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from assets.access import DEPLOY_FILE, roles_sql
from tests.conftest import PG_ADMIN_URL, server_unavailable

pytestmark = pytest.mark.postgres


def test_deploy_file_is_the_generated_script():
    assert DEPLOY_FILE.read_text(encoding="utf-8") == roles_sql(), "regenerate: python -m assets.access"


def _url(user: str) -> sa.URL:
    return sa.make_url(PG_ADMIN_URL).set(database="test", username=user)


@pytest.fixture
def cluster():
    u = uuid.uuid4().hex[:8]
    names = {"writer": f"kho_writer_{u}", "analyst": f"kho_analyst_{u}", "person": f"an_{u}",
             "zones": {z: f"{z}_{u}" for z in ("curated", "mart", "quarantine", "kho")}}
    admin = sa.create_engine(_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        admin.connect().close()
    except sa.exc.OperationalError as e:
        server_unavailable("PostgreSQL", e)
    z = names["zones"]
    engines = []

    def connect(user: str) -> sa.Engine:
        engine = sa.create_engine(_url(user), isolation_level="AUTOCOMMIT")
        engines.append(engine)
        return engine

    try:
        with admin.connect() as conn:
            # A table from before the setup (created by someone else) must be handed over and readable too.
            conn.exec_driver_sql(f"CREATE SCHEMA {z['curated']}; CREATE TABLE {z['curated']}.cu (a int);"
                                 f"INSERT INTO {z['curated']}.cu VALUES (1)")
            script = roles_sql(names["writer"], names["analyst"], z)
            for _ in range(2):  # idempotent; run as psql runs it: one script, no placeholders
                conn.connection.driver_connection.execute(script)
            conn.exec_driver_sql(f"CREATE ROLE {names['person']} LOGIN IN ROLE {names['analyst']}")
        yield names, admin, connect
    finally:
        for engine in engines:
            engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS " + ", ".join(z.values()) + " CASCADE")
            for role in (names["person"], names["analyst"], names["writer"]):
                if conn.exec_driver_sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}'").first():
                    conn.exec_driver_sql(f"DROP OWNED BY {role} CASCADE; DROP ROLE {role}")
        admin.dispose()


def _denied(engine: sa.Engine, sql: str) -> bool:
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql).all()
    except sa.exc.ProgrammingError as e:
        assert "permission denied" in str(e)
        return True
    return False


def test_analyst_reads_curated_and_mart_only(cluster):
    names, admin, connect = cluster
    z = names["zones"]
    writer = connect(names["writer"])
    with writer.connect() as conn:  # the pipeline creates its tables after the setup: default privileges apply
        for zone in ("curated", "mart", "quarantine", "kho"):
            conn.exec_driver_sql(f"CREATE TABLE {z[zone]}.t (ma text); INSERT INTO {z[zone]}.t VALUES ('{zone}')")
    analyst = connect(names["person"])
    with analyst.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT ma FROM {z['curated']}.t").scalar() == "curated"
        assert conn.exec_driver_sql(f"SELECT ma FROM {z['mart']}.t").scalar() == "mart"
        assert conn.exec_driver_sql(f"SELECT a FROM {z['curated']}.cu").scalar() == 1
    for sql in (f"SELECT * FROM {z['quarantine']}.t", f"SELECT * FROM {z['kho']}.t",
                f"SELECT * FROM {z['kho']}.access_grants", f"CREATE TABLE {z['curated']}.mine (a int)",
                f"SELECT {z['kho']}.grant_access('{names['person']}', '{z['quarantine']}.t', 'x', 'y')"):
        assert _denied(analyst, sql), sql
    with analyst.connect() as conn:  # not even the names of restricted tables' schemas are usable
        assert conn.exec_driver_sql(f"SELECT has_schema_privilege('{z['quarantine']}', 'USAGE')").scalar() is False


def test_personal_data_access_is_granted_only_with_an_audit_row(cluster):
    names, admin, connect = cluster
    z, person = names["zones"], names["person"]
    with connect(names["writer"]).connect() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {z['quarantine']}.ho_so (so_cccd text);"
                             f"INSERT INTO {z['quarantine']}.ho_so VALUES ('079203001234');"
                             f"CREATE TABLE {z['quarantine']}.khac (a int)")
    analyst = connect(person)
    assert _denied(analyst, f"SELECT * FROM {z['quarantine']}.ho_so")
    with admin.connect() as conn:
        with pytest.raises(sa.exc.IntegrityError):  # no legal basis, no grant
            conn.exec_driver_sql(f"SELECT {z['kho']}.grant_access('{person}', '{z['quarantine']}.ho_so', ' ', 'x')")
        conn.exec_driver_sql(f"SELECT {z['kho']}.grant_access('{person}', '{z['quarantine']}.ho_so', "
                             "'Luật 91/2025/QH15; Quyết định giao nhiệm vụ số 1', 'Đối soát hồ sơ bị loại')")
    with analyst.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT so_cccd FROM {z['quarantine']}.ho_so").scalar() == "079203001234"
    assert _denied(analyst, f"SELECT * FROM {z['quarantine']}.khac")  # only what was granted
    with admin.connect() as conn:
        row = conn.exec_driver_sql(f"SELECT * FROM {z['kho']}.access_grants").mappings().one()
        assert row["grantee"] == person and row["object"] == f"{z['quarantine']}.ho_so"
        assert row["legal_basis"].startswith("Luật 91/2025") and row["granted_by"] == "postgres"
        assert row["granted_at"] is not None and row["revoked_at"] is None
        assert conn.exec_driver_sql(
            f"SELECT {z['kho']}.revoke_access('{person}', '{z['quarantine']}.ho_so')").scalar() == 1
        assert conn.exec_driver_sql(f"SELECT revoked_at FROM {z['kho']}.access_grants").scalar() is not None
    assert _denied(analyst, f"SELECT * FROM {z['quarantine']}.ho_so")
