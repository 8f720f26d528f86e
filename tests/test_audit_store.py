"""A result store file that is not a database (damaged, or some other
file at project.store) is infrastructure (exit 3) naming the file, never
a traceback: `hil test` ended with sqlalchemy's DatabaseError traceback
and exit 1 (a firmware failure) after its jobs passed, and `hil history`
likewise. No emulator runs here."""

from __future__ import annotations

import pytest

from harness.errors import EXIT_INFRA, InfraError
from harness.results.store import ResultStore, store_url
from helpers import hil


def test_a_damaged_store_file_is_infrastructure_naming_it(tmp_path):
    db = tmp_path / "results.db"
    db.write_text("garbage, not SQLite\n" * 10)
    with pytest.raises(InfraError) as caught:
        ResultStore(store_url(str(db), tmp_path))
    assert caught.value.exit_code == EXIT_INFRA and str(db) in str(caught.value)


def test_hil_history_on_a_damaged_store_is_exit_3(tmp_path):
    (tmp_path / "hil.toml").write_text('[project]\nname = "p"\nstore = "results.db"\n[[models]]\nname = "g"\n'
                                       'path = "m.tflite"\n')
    (tmp_path / "m.tflite").write_bytes(b"")  # never read: history only opens the store
    (tmp_path / "results.db").write_text("garbage, not SQLite\n" * 10)
    proc = hil("history", cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "results.db" in proc.stderr
