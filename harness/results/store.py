"""The history store: every suite run, keyed by git commit, branch, dirty
flag, platform, suite and check, so `hil history` and `hil compare` can
answer "what changed since main?".

SQLite by default (a file under .hil/), PostgreSQL when a team points
`project.store` at a `postgresql://` URL. SQLAlchemy Core keeps one code
path for both; the full suite document is kept as JSON next to the indexed
columns, so nothing is lost and old documents stay readable.

Each run's identity (harness/suite.py run_identity) is kept in columns too:
complete (every job of the suite ran) and clean (no uncommitted changes),
the selection, the config hash and the reference version, so that
`hil compare` and `hil history` can pick the runs that mean something for
a commit. A store written by an older hil is upgraded in place when opened
(the missing columns are added, and filled from the stored documents).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from .. import extras
from ..errors import InfraError, UsageError
from .compare import energy_basis

log = logging.getLogger(__name__)

metadata = sa.MetaData()

suite_runs = sa.Table(
    "hil_suite_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("suite", sa.String(200), nullable=False, index=True),
    sa.Column("commit", sa.String(64), index=True),
    sa.Column("branch", sa.String(200), index=True),
    sa.Column("dirty", sa.Boolean),
    sa.Column("subject", sa.Text),
    sa.Column("started", sa.String(32), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("shards", sa.String(200)),
    sa.Column("document", sa.Text, nullable=False),
    # the run's identity (added by hil 0.1 issue 12; older stores are upgraded in place)
    sa.Column("complete", sa.Boolean),
    sa.Column("clean", sa.Boolean),
    sa.Column("selection", sa.Text),  # JSON: keyword, shards, jobs_selected, jobs_defined
    sa.Column("config_hash", sa.String(64), index=True),
    sa.Column("reference_version", sa.String(100), index=True),
)

case_results = sa.Table(
    "hil_cases", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("hil_suite_runs.id", ondelete="CASCADE"), index=True),
    sa.Column("platform", sa.String(100), index=True),
    sa.Column("model", sa.String(200), index=True),
    sa.Column("check_name", sa.String(100), index=True),
    sa.Column("status", sa.String(20)),
    sa.Column("measured", sa.Float),
    sa.Column("message", sa.Text),
)

metric_values = sa.Table(
    "hil_metrics", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("hil_suite_runs.id", ondelete="CASCADE"), index=True),
    sa.Column("platform", sa.String(100), index=True),
    sa.Column("model", sa.String(200), index=True),
    sa.Column("metric", sa.String(100), index=True),
    sa.Column("value", sa.Float),
    sa.Column("unit", sa.String(50)),
    sa.Column("basis", sa.Text),  # JSON: energy_basis of an estimated figure (harness/power/energy.py)
)

_UNITS = {"count": None, "energy_uj": "uJ", "cycles_estimate": "cycles (estimate)", "latency_ms": "ms (estimate)",
          "flash_bytes": "bytes", "ram_bytes": "bytes",
          "arena_bytes": "bytes", "model_bytes": "bytes", "accuracy": "fraction",
          # the user's truth (checks/truth.py)
          "float_top1_agreement": "fraction", "float_cosine": "fraction", "expected_match": "fraction"}


@dataclass(frozen=True)
class StoredRun:
    id: int
    suite: str
    commit: str | None
    branch: str | None
    dirty: bool | None
    subject: str | None
    started: str
    status: str
    passed: int
    total: int
    complete: bool | None = None
    clean: bool | None = None
    selection: dict | None = None
    config_hash: str | None = None
    reference_version: str | None = None

    def describe(self) -> str:
        """'run #12 of abc1234567 (2026-12-03 10:20, complete, clean)'."""
        from ..suite import describe_identity

        when = self.started.replace("T", " ")[:16]
        return (f"run #{self.id} of {(self.commit or 'no commit')[:10]} "
                f"({when}, {describe_identity(self.identity())})")

    def identity(self) -> dict:
        return {"complete": self.complete, "clean": self.clean, **(self.selection or {})}


def _stored_run(row: Sequence) -> StoredRun:
    """A StoredRun from a runs() row, its fields in order; the selection is stored as JSON."""
    values = list(row)
    values[12] = json.loads(values[12]) if values[12] else None
    return StoredRun(*values)

def store_url(spec: str, root: Path) -> str:
    """A store setting (file path or URL) as an SQLAlchemy URL."""
    if spec.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + spec.split("://", 1)[1]
    if "://" in spec:
        return spec
    path = (root / spec).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _identity_columns(doc: dict) -> dict:
    from ..suite import identity_of

    identity = identity_of(doc)
    selection = {k: identity.get(k) for k in ("keyword", "shards", "jobs_selected", "jobs_defined")}
    reference = ((doc.get("provenance") or {}).get("reference") or {}).get("version")
    return {"complete": bool(identity.get("complete")), "clean": identity.get("clean"),
            "selection": json.dumps(selection), "config_hash": identity.get("config_hash"),
            "reference_version": reference}


def upgrade(engine: sa.Engine) -> list[str]:
    """Bring a store made by an older hil to this schema: add the columns it
    lacks (ALTER TABLE ... ADD COLUMN, nullable) and fill the identity
    columns from each run's stored document. Returns what was added."""
    inspector = sa.inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))
                    added.append(f"{table.name}.{column.name}")
        if "hil_suite_runs.complete" in added:
            rows = conn.execute(sa.select(suite_runs.c.id, suite_runs.c.document)).all()
            for run_id, document in rows:
                conn.execute(suite_runs.update().where(suite_runs.c.id == run_id)
                             .values(**_identity_columns(json.loads(document))))
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(engine, checkfirst=True)
    return added


class ResultStore:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("postgresql+psycopg://"):
            extras.require("psycopg", "a PostgreSQL result store")
        try:
            log.debug("opening the result store %s", url.split("@")[-1])
            self.engine = sa.create_engine(url, future=True)
            metadata.create_all(self.engine)
            self.upgraded = upgrade(self.engine)
        except sa.exc.ArgumentError as exc:
            raise UsageError(f"store {url!r} is not a database URL: {exc}",
                             hint="use a file path (SQLite) or postgresql://user:password@host/database") from exc
        except sa.exc.OperationalError as exc:
            raise InfraError(f"cannot open the result store {self.safe_url()}: {exc.orig}",
                             hint="check that the database server runs and the URL's credentials") from exc
        except sa.exc.DatabaseError as exc:  # a file that is not (or no longer) a database
            raise InfraError(f"cannot use the result store {self.safe_url()}: {exc.orig}",
                             hint="move the damaged file away (a new store is created), or set project.store "
                                  "(--store) to another path") from exc

    def safe_url(self) -> str:
        """The store's URL with any password hidden: what messages may show."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def record(self, doc: dict) -> int:
        """Store one hil.suite/1 document; returns its run id."""
        git = doc.get("git", {})
        with self.engine.begin() as conn:
            inserted = conn.execute(suite_runs.insert().values(
                suite=doc["suite"], commit=git.get("commit"), branch=git.get("branch"), dirty=git.get("dirty"),
                subject=git.get("subject"), started=doc["started"], status=doc["status"],
                shards=json.dumps(doc.get("shards", [])), document=json.dumps(doc),
                **_identity_columns(doc))).inserted_primary_key
            assert inserted is not None, "a one-row insert has its key"
            run_id = inserted[0]
            cases = [{"run_id": run_id, "platform": c["platform"], "model": c["model"], "check_name": c["check"],
                      "status": c["status"], "measured": c.get("measured"), "message": c["message"]}
                     for c in doc.get("cases", [])]
            if cases:
                conn.execute(case_results.insert(), cases)
            metrics = []
            for job in doc.get("jobs", []):
                m = job.get("metrics", {})
                for name, unit in _UNITS.items():
                    if m.get(name) is not None:
                        metrics.append({"run_id": run_id, "platform": job["platform"], "model": job["model"],
                                        "metric": name, "value": float(m[name]),
                                        "unit": unit or m.get("count_kind"),
                                        "basis": json.dumps(energy_basis(m)) if name == "energy_uj" else
                                        json.dumps(m.get("cycles_basis")) if name in ("cycles_estimate", "latency_ms")
                                        else None})
            if metrics:
                conn.execute(metric_values.insert(), metrics)
        log.info("stored suite run %s (%s, %d metric values) in %s", run_id, doc["status"], len(metrics), self.safe_url())
        return int(run_id)

    def runs(self, suite: str | None = None, branch: str | None = None, limit: int | None = 20,
             commit: str | None = None, complete_only: bool = False, clean_only: bool = False) -> list[StoredRun]:
        """Stored runs, newest first (a commit may be a prefix)."""
        passed = sa.func.sum(sa.case((case_results.c.status == "passed", 1), else_=0))
        query = (sa.select(suite_runs.c.id, suite_runs.c.suite, suite_runs.c.commit, suite_runs.c.branch,
                           suite_runs.c.dirty, suite_runs.c.subject, suite_runs.c.started, suite_runs.c.status,
                           sa.func.coalesce(passed, 0), sa.func.count(case_results.c.run_id),
                           suite_runs.c.complete, suite_runs.c.clean, suite_runs.c.selection,
                           suite_runs.c.config_hash, suite_runs.c.reference_version)
                 .select_from(suite_runs.outerjoin(case_results, case_results.c.run_id == suite_runs.c.id))
                 .group_by(suite_runs.c.id).order_by(suite_runs.c.id.desc()).limit(limit))
        if suite:
            query = query.where(suite_runs.c.suite == suite)
        if branch:
            query = query.where(suite_runs.c.branch == branch)
        if commit:
            query = query.where(suite_runs.c.commit.like(f"{commit}%"))
        if complete_only:
            query = query.where(suite_runs.c.complete.is_(True))
        if clean_only:
            query = query.where(suite_runs.c.clean.is_(True))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_stored_run(row) for row in rows]

    def document(self, run_id: int) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(suite_runs.c.document).where(suite_runs.c.id == run_id)).first()
        if row is None:
            raise UsageError(f"no stored run with id {run_id}", hint="`hil history` lists the stored runs")
        return json.loads(row[0])

    def latest(self, *, commit: str | None = None, branch: str | None = None, suite: str | None = None) -> dict | None:
        """The newest stored suite run for a commit (full or prefix) or a branch."""
        query = sa.select(suite_runs.c.document).order_by(suite_runs.c.id.desc()).limit(1)
        if commit:
            query = query.where(suite_runs.c.commit.like(f"{commit}%"))
        if branch:
            query = query.where(suite_runs.c.branch == branch)
        if suite:
            query = query.where(suite_runs.c.suite == suite)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return json.loads(row[0]) if row else None

    def history(self, suite: str | None = None, branch: str | None = None, limit: int = 50) -> list[dict]:
        """Suite documents, oldest first (for trend plots)."""
        ids = [r.id for r in self.runs(suite, branch, limit)]
        return [self.document(i) for i in reversed(ids)]
