"""The result store on SQLite and on a real PostgreSQL server.

The PostgreSQL case needs a server: `./run.sh test` (and so .ci/run) starts
Debian's postgresql and sets HIL_TEST_POSTGRES_URL; without it the case is
skipped with that reason.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
import sqlalchemy as sa

from harness.errors import HilError
from harness.results.store import ResultStore, store_url

PG = os.environ.get("HIL_TEST_POSTGRES_URL")


def _doc(suite: str, commit: str, branch: str, count: float, status="passed"):
    return {"schema": "hil.suite/1", "suite": suite, "started": "2026-11-26T05:00:00Z", "status": status,
            "git": {"commit": commit, "branch": branch, "dirty": False, "subject": f"commit {commit[:4]}"},
            "shards": [],
            "jobs": [{"id": "p/m", "platform": "p", "model": "m", "status": status, "result": "r.json",
                      "metrics": {"count": count, "count_kind": "instructions", "ram_bytes": 1000,
                                  "energy_uj": 1.5, "accuracy": None}}],
            "cases": [{"id": "p/m/bit_exact", "platform": "p", "model": "m", "check": "bit_exact",
                       "status": status, "message": "ok", "measured": 5, "limit": 5}]}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield ResultStore(store_url(".hil/results.db", tmp_path))
        return
    if not PG:
        pytest.skip("no PostgreSQL server: HIL_TEST_POSTGRES_URL is unset (./run.sh test starts one)")
    db = ResultStore(store_url(PG, tmp_path))
    yield db
    with db.engine.begin() as conn:  # leave the shared database as it was
        for table in ("hil_metrics", "hil_cases", "hil_suite_runs"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table} CASCADE"))


def test_record_and_query_by_commit_branch_and_suite(store):
    suite = f"s-{uuid.uuid4().hex[:6]}"
    first = store.record(_doc(suite, "a" * 40, "main", 100))
    second = store.record(_doc(suite, "b" * 40, "feature", 120, status="failed"))
    store.record(_doc("other-suite", "c" * 40, "main", 1))
    assert second > first
    runs = store.runs(suite=suite)
    assert [r.id for r in runs] == [second, first]
    assert (runs[0].status, runs[0].passed, runs[0].total, runs[0].branch) == ("failed", 0, 1, "feature")
    assert store.latest(commit="aaaa", suite=suite)["jobs"][0]["metrics"]["count"] == 100
    assert store.latest(branch="feature", suite=suite)["git"]["commit"] == "b" * 40
    assert store.latest(commit="ffff", suite=suite) is None
    assert [d["git"]["commit"][0] for d in store.history(suite=suite)] == ["a", "b"]  # oldest first
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT metric, value, unit FROM hil_metrics WHERE run_id = :r ORDER BY metric"),
                            {"r": first}).all()
    assert ("count", 100.0, "instructions") in rows and ("energy_uj", 1.5, "uJ") in rows


def test_unreachable_server_is_an_infrastructure_error(tmp_path):
    with pytest.raises(HilError) as info:
        ResultStore(store_url("postgresql://nobody:x@127.0.0.1:1/none", tmp_path))
    assert info.value.exit_code == 3 and "cannot open the result store" in str(info.value)
    assert "x@" not in str(info.value), "the password must not be printed"


def _old_schema(engine) -> None:
    """The tables as hil wrote them before runs had an identity (no
    complete/clean/selection/config_hash/reference_version, no metric basis)."""
    old = sa.MetaData()
    sa.Table("hil_suite_runs", old,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("suite", sa.String(200), nullable=False, index=True),
             sa.Column("commit", sa.String(64), index=True), sa.Column("branch", sa.String(200), index=True),
             sa.Column("dirty", sa.Boolean), sa.Column("subject", sa.Text),
             sa.Column("started", sa.String(32), nullable=False), sa.Column("status", sa.String(20), nullable=False),
             sa.Column("shards", sa.String(200)), sa.Column("document", sa.Text, nullable=False))
    sa.Table("hil_cases", old, sa.Column("run_id", sa.Integer, sa.ForeignKey("hil_suite_runs.id"), index=True),
             sa.Column("platform", sa.String(100)), sa.Column("model", sa.String(200)),
             sa.Column("check_name", sa.String(100)), sa.Column("status", sa.String(20)),
             sa.Column("measured", sa.Float), sa.Column("message", sa.Text))
    sa.Table("hil_metrics", old, sa.Column("run_id", sa.Integer, sa.ForeignKey("hil_suite_runs.id"), index=True),
             sa.Column("platform", sa.String(100)), sa.Column("model", sa.String(200)),
             sa.Column("metric", sa.String(100)), sa.Column("value", sa.Float), sa.Column("unit", sa.String(50)))
    old.create_all(engine)
    full, partial = _doc("old", "a" * 40, "main", 100), _doc("old", "a" * 40, "main", 100)
    partial["selection"] = "an386 and kws"
    with engine.begin() as conn:
        for doc in (full, partial):
            conn.execute(sa.text("INSERT INTO hil_suite_runs (suite, \"commit\", branch, dirty, subject, started, "
                                 "status, shards, document) VALUES ('old', :c, 'main', false, 's', "
                                 "'2026-11-26T05:00:00Z', 'passed', '[]', :d)"),
                         {"c": "a" * 40, "d": json.dumps(doc)})


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_store_made_by_an_older_hil_is_upgraded_in_place(kind, tmp_path):
    """A real store file (and database) created with the old schema: opening
    it adds the identity columns and fills them from the stored documents."""
    if kind == "postgresql" and not PG:
        pytest.skip("no PostgreSQL server: HIL_TEST_POSTGRES_URL is unset (./run.sh test starts one)")
    location = PG if kind == "postgresql" else ".hil/old.db"
    assert location is not None  # skipped above without a server
    url = store_url(location, tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a clean slate on the shared server
        for table in ("hil_metrics", "hil_cases", "hil_suite_runs"):
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table} CASCADE" if kind == "postgresql"
                                 else f"DROP TABLE IF EXISTS {table}"))
    _old_schema(engine)
    try:
        db = ResultStore(url)
        assert {"hil_suite_runs.complete", "hil_suite_runs.clean", "hil_suite_runs.config_hash",
                "hil_suite_runs.reference_version", "hil_metrics.basis"} <= set(db.upgraded)
        runs = db.runs(suite="old")
        assert [(r.complete, r.clean) for r in runs] == [(False, True), (True, True)]  # newest (the -k run) first
        assert runs[0].selection is not None
        assert runs[0].selection["keyword"] == "an386 and kws"
        assert [r.id for r in db.runs(suite="old", complete_only=True, clean_only=True)] == [runs[1].id]
        new = db.record(_doc("old", "b" * 40, "main", 90))
        assert db.runs(suite="old", commit="bbbb")[0].id == new
        assert ResultStore(url).upgraded == []  # once is enough
    finally:
        if kind == "postgresql":
            with engine.begin() as conn:
                for table in ("hil_metrics", "hil_cases", "hil_suite_runs"):
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {table} CASCADE"))
