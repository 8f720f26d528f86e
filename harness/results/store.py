"""The history store: every suite run, keyed by git commit, branch, dirty
flag, platform, suite and check, so `hil history` and `hil compare` can
answer "what changed since main?".

SQLite by default (a file under .hil/), PostgreSQL when a team points
`project.store` at a `postgresql://` URL. SQLAlchemy Core keeps one code
path for both; the full suite document is kept as JSON next to the indexed
columns, so nothing is lost and old documents stay readable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ..errors import InfraError, UsageError

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
)

_UNITS = {"count": None, "energy_uj": "uJ", "flash_bytes": "bytes", "ram_bytes": "bytes",
          "arena_bytes": "bytes", "model_bytes": "bytes", "accuracy": "fraction"}


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


def store_url(spec: str, root: Path) -> str:
    """A store setting (file path or URL) as an SQLAlchemy URL."""
    if spec.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + spec.split("://", 1)[1]
    if "://" in spec:
        return spec
    path = (root / spec).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class ResultStore:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = sa.create_engine(url, future=True)
            metadata.create_all(self.engine)
        except sa.exc.ArgumentError as exc:
            raise UsageError(f"store {url!r} is not a database URL: {exc}",
                             hint="use a file path (SQLite) or postgresql://user:password@host/database") from exc
        except sa.exc.OperationalError as exc:
            raise InfraError(f"cannot open the result store {self._safe_url()}: {exc.orig}",
                             hint="check that the database server runs and the URL's credentials") from exc

    def _safe_url(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def record(self, doc: dict) -> int:
        """Store one hil.suite/1 document; returns its run id."""
        git = doc.get("git", {})
        with self.engine.begin() as conn:
            run_id = conn.execute(suite_runs.insert().values(
                suite=doc["suite"], commit=git.get("commit"), branch=git.get("branch"), dirty=git.get("dirty"),
                subject=git.get("subject"), started=doc["started"], status=doc["status"],
                shards=json.dumps(doc.get("shards", [])), document=json.dumps(doc))).inserted_primary_key[0]
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
                                        "unit": unit or m.get("count_kind")})
            if metrics:
                conn.execute(metric_values.insert(), metrics)
        return int(run_id)

    def runs(self, suite: str | None = None, branch: str | None = None, limit: int = 20) -> list[StoredRun]:
        passed = sa.func.sum(sa.case((case_results.c.status == "passed", 1), else_=0))
        query = (sa.select(suite_runs.c.id, suite_runs.c.suite, suite_runs.c.commit, suite_runs.c.branch,
                           suite_runs.c.dirty, suite_runs.c.subject, suite_runs.c.started, suite_runs.c.status,
                           sa.func.coalesce(passed, 0), sa.func.count(case_results.c.run_id))
                 .select_from(suite_runs.outerjoin(case_results, case_results.c.run_id == suite_runs.c.id))
                 .group_by(suite_runs.c.id).order_by(suite_runs.c.id.desc()).limit(limit))
        if suite:
            query = query.where(suite_runs.c.suite == suite)
        if branch:
            query = query.where(suite_runs.c.branch == branch)
        with self.engine.connect() as conn:
            return [StoredRun(*row) for row in conn.execute(query)]

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
