"""Options no run can use are bad usage (exit 2) before anything boots.
`--invoke-timeout 0` (or -1) used to boot and end "no reply to INVOKE
within 0 s", exit 1, a hang blamed on the firmware; `--invoke-timeout nan`
disabled hang detection and passed; `--seed -1` (and `seed = -1` in
hil.toml) was "internal error in hil: ValueError", exit 3."""

from __future__ import annotations

import pytest

from harness.config import load_config
from harness.errors import UsageError
from helpers import MODELS, hil

DEMO = MODELS / "demo" / "gesture.tflite"


@pytest.mark.parametrize("args, option", [(["--invoke-timeout", "0"], "--invoke-timeout"),
                                          (["--invoke-timeout", "-1"], "--invoke-timeout"),
                                          (["--invoke-timeout", "nan"], "--invoke-timeout"),
                                          (["--seed", "-1"], "--seed")])
def test_hil_run_refuses_them_before_booting(tmp_path, args, option):
    proc = hil("run", "-m", DEMO, "-n", "1", *args, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert option in proc.stderr and "booting" not in proc.stderr + proc.stdout


def test_a_negative_seed_in_hil_toml_is_refused_when_it_is_read(tmp_path):
    path = tmp_path / "hil.toml"
    path.write_text(f'[project]\nname = "p"\n[[models]]\nname = "g"\npath = "{DEMO}"\n'
                    'vectors = { random = 2, seed = -1 }\n')
    with pytest.raises(UsageError) as caught:
        load_config(path)
    assert "`models[0].vectors.seed`" in str(caught.value)
