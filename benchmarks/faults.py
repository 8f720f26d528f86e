"""The fault benchmark: does `hil` give the right verdict when things break?

Runs deliberately broken cases the way a user would (`hil run`, `hil
console`, `hil test` in subprocesses, real QEMU, real firmware, the real
TFLM reference), classifies each outcome and prints one Markdown table row
per category (issue 11):

  right           the expected exit code (and verdicts, for noise) and a message naming the problem
  wrong           a wrong exit class, or a wrong output accepted
  internal error  "internal error" or a Python traceback in the output
  hang            did not finish within the case's (generous) timeout
  leak            a QEMU / reference process of the run, or a hil-reference-* temp dir, left behind
  lost            results obtained but missing from the result file or the --json copy
  misread         right exit class, but the message blames the wrong thing

Categories: models (damaged .tflite), inputs (damaged or odd --inputs),
noise (a noisy TCP link between hil and QEMU standing in for a board),
emulator (QEMU killed or stalled mid-run), firmware (misbehaviour builds:
exit 1), disk (full, filling, read-only run directory, $HOME a file),
signals (SIGINT/SIGTERM at several moments, kill -9), paths (relative
paths from another directory), console (console-mode matching).

Every process a case starts carries HIL_FAULTS_CASE=<token> in its
environment and TMPDIR=<the case's own directory>, which is how leaks are
found without confusing them with anything else running on the machine.

Usage:
  .venv/bin/python benchmarks/faults.py                         # everything (~15 min on 2 cores)
  .venv/bin/python benchmarks/faults.py --only noise --runs 5   # one category, fewer noisy runs
  .venv/bin/python benchmarks/faults.py --json faults.json --keep

Needs root for the disk category (tmpfs mounts); without it that category
is skipped and says so. Never needs the network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fault_files import with_input_shape, damaged_inputs, damaged_models  # noqa: E402

CLASSES = ["right", "wrong", "internal error", "hang", "leak", "lost", "misread"]
CATEGORIES = ["models", "inputs", "noise", "emulator", "firmware", "disk", "signals", "paths", "console"]
NOISE_LEVELS = (1e-4, 1e-3)


# -- cases and their outcomes --------------------------------------------------------------


@dataclass
class Case:
    category: str
    name: str
    argv: list[str]                           # arguments of `hil` (or of `program`)
    expect: tuple[int, ...]                   # right exit codes (a negative code: killed by that signal)
    keywords: tuple[str, ...] = ()            # regexes that must all match the message when the exit is not 0
    forbidden: tuple[str, ...] = ()           # regexes that must not match it (blaming the wrong thing)
    cwd: Path | None = None
    env: dict = field(default_factory=dict)
    timeout: float = 120.0
    run_dir: Path | None = None               # the --workdir of the case
    json_copy: Path | None = None             # the --json of the case
    json_required: bool = False               # the --json copy must exist whatever happened to the run dir
    killed: bool = False                      # hil itself is killed: a "running" document is expected
    during: Callable[["Case", subprocess.Popen], str] | None = None   # acts while hil runs; returns a note
    around: Callable[[], ContextManager[list[str]]] | None = None     # set-up/tear-down; yields extra argv
    judge: Callable[["Case", dict], tuple[str, str] | None] | None = None  # extra verdict on the record
    memory_limit: int | None = None           # bytes of address space for hil (cases that may balloon)
    note: str = ""
    dir: Path = field(kw_only=True)           # the case's own directory (Context.case makes it)
    program: tuple[str, ...] = ("-m", "harness")   # `python -m pytest`, `python -m robot` for the plugin and library


def _proc_environ_has(pid: str, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return marker in fh.read()
    except OSError:
        return False


def case_processes(token: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process started for a case."""
    marker = f"HIL_FAULTS_CASE={token}\0".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if _proc_environ_has(pid, marker):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[0]
            except OSError:
                continue
            if state != "Z":
                found.append((int(pid), cmd.strip()))
    return found


def _load_json(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"unreadable": True}


def execute(case: Case, ctx: "Context") -> dict:
    """Run one case, then classify it: one record for the JSON and the table."""
    token = uuid.uuid4().hex[:12]
    tmp = case.dir / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"category": case.category, "name": case.name, "expect": list(case.expect),
                              "note": case.note}
    with contextlib.ExitStack() as stack:
        extra = stack.enter_context(case.around()) if case.around else []
        argv = [*case.argv, *extra]
        env = {**os.environ, **ctx.env, "HIL_FAULTS_CASE": token, "TMPDIR": str(tmp), **case.env}
        command = [ctx.python, *case.program, *map(str, argv)]
        record["command"] = _shell_line(command, case.cwd or ctx.work, {**ctx.env, **case.env})
        limit = case.memory_limit

        def child_setup() -> None:
            # as from a terminal: a background shell job inherits SIGINT ignored, which hil rightly respects
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
                signal.signal(sig, signal.SIG_DFL)
            if limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        started = time.monotonic()
        with open(case.dir / "stdout.txt", "wb") as out, open(case.dir / "stderr.txt", "wb") as err:
            proc = subprocess.Popen(command, cwd=case.cwd or ctx.work, env=env, stdout=out, stderr=err,
                                    stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=child_setup)
            hung = False
            try:
                if case.during:
                    record["during"] = case.during(case, proc)
                proc.wait(timeout=max(1.0, case.timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                hung = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        record["duration_s"] = round(time.monotonic() - started, 2)
        record["exit_code"] = proc.returncode
        leaks = _leaks(token, tmp)
    output = (case.dir / "stdout.txt").read_text(errors="replace") + (case.dir / "stderr.txt").read_text(errors="replace")
    record["output_tail"] = output[-2500:]
    record["leaks"] = leaks
    run_doc = _load_json(case.run_dir / "result.json") if case.run_dir else None
    json_doc = _load_json(case.json_copy)
    record["vectors_in_result"] = len((json_doc or run_doc or {}).get("vectors") or [])
    message = output + " " + json.dumps(((json_doc or run_doc) or {}).get("error") or "")
    record["class"], record["detail"] = classify(case, record, message, hung, run_doc, json_doc)
    record["result"] = _verdicts(json_doc or run_doc)
    if case.judge and record["class"] == "right":
        judged = case.judge(case, record)
        if judged:
            record["class"], record["detail"] = judged
    return record


def _leaks(token: str, tmp: Path) -> list[str]:
    """Processes of the case still alive a few seconds after hil ended, and
    reference temp dirs left behind. Both are cleaned up after being noted."""
    deadline = time.monotonic() + 3.0
    alive = case_processes(token)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = case_processes(token)
    found = [f"process {pid}: {cmd[:160]}" for pid, cmd in alive]
    for pid, _ in alive:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for d in tmp.glob("hil-reference-*"):
        size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
        found.append(f"temp dir {d.name} ({size} bytes)")
        shutil.rmtree(d, ignore_errors=True)
    return found


def _verdicts(doc: dict | None) -> dict | None:
    """What a run decided, in a form two runs can be compared by."""
    if not doc or "vectors" not in doc:
        return None
    return {"status": doc.get("status"), "exit_code": doc.get("exit_code"),
            "vectors": [[v.get("status"), v.get("max_abs_diff"), v.get("top1")] for v in doc["vectors"]],
            "counts": [(v.get("count") or {}).get("value") for v in doc["vectors"]],
            "link": (doc.get("device") or {}).get("link") or doc.get("link")}


def classify(case: Case, record: dict, message: str, hung: bool, run_doc: dict | None,
             json_doc: dict | None) -> tuple[str, str]:
    """Exactly one class per case, the most serious first."""
    code = record["exit_code"]
    if hung:
        return "hang", f"no exit within {case.timeout:.0f} s"
    if re.search(r"internal error|Traceback \(most recent call last\)", message, re.IGNORECASE):
        line = next((ln for ln in message.splitlines() if re.search(r"internal error|Error:|Exception", ln)), "")
        return "internal error", line.strip()[:300]
    if code not in case.expect:
        return "wrong", f"exit {code}, expected {' or '.join(map(str, case.expect))}"
    if record["leaks"]:
        return "leak", "; ".join(record["leaks"])[:300]
    lost = _lost(case, code, run_doc, json_doc)
    if lost:
        return "lost", lost
    if code != 0:
        missing = [k for k in case.keywords if not re.search(k, message, re.IGNORECASE)]
        if missing:
            return "misread", f"the message does not mention {missing}"
        blamed = [k for k in case.forbidden if re.search(k, message, re.IGNORECASE)]
        if blamed:
            return "misread", f"the message says {blamed}"
    return "right", ""


def _lost(case: Case, code: int, run_doc: dict | None, json_doc: dict | None) -> str:
    if case.json_copy is None:
        return ""
    ran = len((run_doc or {}).get("vectors") or [])
    if json_doc is None:
        if case.json_required or ran or code in (0, 1):
            return f"no --json copy ({ran} vectors in the run directory)"
        return ""
    if json_doc.get("unreadable"):
        return "the --json copy is not valid JSON"
    if len(json_doc.get("vectors") or []) < ran:
        return f"the --json copy has {len(json_doc['vectors'])} vectors, the run directory {ran}"
    if not case.killed and json_doc.get("status") == "running":
        return "the --json copy still says status 'running' after hil exited"
    doc_code = json_doc.get("exit_code")
    if not case.killed and doc_code is not None and doc_code != code:
        return f"the --json copy says exit code {doc_code}, hil exited {code}"
    return ""


def _shell_line(command: list[str], cwd: Path, env: dict) -> str:
    shown = {k: v for k, v in env.items() if k in ("HOME", "HIL_CACHE_DIR", "PYTHONPATH")}
    prefix = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in shown.items())
    return f"(cd {shlex.quote(str(cwd))} && {prefix + ' ' if prefix else ''}{shlex.join(map(str, command))})"


# -- the context: firmware built once, the hil tree under test ------------------------------


class Context:
    def __init__(self, root: Path, work: Path, python: str) -> None:
        self.root = root
        self.work = work
        self.python = python
        self.env = {"PYTHONPATH": str(root)} if root != HERE.parent else {}
        self.tests = root / "tests"
        self.demo = root / "models" / "demo" / "gesture.tflite"
        self.demo_set = root / "models" / "demo" / "gesture_test.npz"
        self.small = root / "models" / "test" / "mlp_per_tensor.tflite"
        self.firmware: dict[str, Path] = {}
        self.noise_baseline: dict | None = None
        self.skipped: dict[str, str] = {}                 # category -> why it did not run
        self.closers: list[Callable[[], object]] = []     # run at the end (boards, proxies)
        self.proxy_source: str | None = None              # the noisy link's source, once the noise cases ran
        sys.path.insert(0, str(self.tests))
        self._n = 0

    def case(self, category: str, name: str, argv: list, expect: tuple[int, ...], *, run: bool = True,
             **kw) -> Case:
        """A case with its own directory; `run` cases get --workdir and --json there."""
        self._n += 1
        d = self.work / category / f"{self._n:03d}"
        d.mkdir(parents=True, exist_ok=True)
        c = Case(category, name, [str(a) for a in argv], expect, dir=d, **kw)
        if run:
            c.run_dir = c.run_dir or d / "run"
            c.json_copy = c.json_copy or d / "result.json"
            if "--workdir" not in c.argv:
                c.argv += ["--workdir", str(c.run_dir)]
            if "--json" not in c.argv:
                c.argv += ["--json", str(c.json_copy)]
        return c

    def build(self, name: str, *args: str) -> Path:
        """`hil build ... -q` as a user runs it; the ELF path it prints."""
        if name not in self.firmware:
            proc = subprocess.run([self.python, "-m", "harness", "build", "-q", *args], capture_output=True,
                                  text=True, env={**os.environ, **self.env}, cwd=self.work, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"hil build {' '.join(args)} failed: {proc.stdout}{proc.stderr}")
            self.firmware[name] = Path(proc.stdout.strip().splitlines()[-1])
        return self.firmware[name]

    def runner(self, **defines: str) -> Path:
        args = ["-p", "mps2-an386"] + [a for k, v in sorted(defines.items()) for a in ("-D", f"{k}={v}")]
        return self.build("runner" + "".join(f"-{k}={v}" for k, v in sorted(defines.items())), *args)

    def console_elf(self, name: str, scenario: int) -> Path:
        from console_fw import build_console_elf

        key = f"console-{name}"
        if key not in self.firmware:
            self.firmware[key] = build_console_elf(self.work / "console-fw", name, CONSOLE_SCENARIO=scenario)
        return self.firmware[key]


# -- helpers for acting while hil runs ---------------------------------------------------------


def wait_for_vectors(case: Case, proc: subprocess.Popen, n: int, timeout: float = 60.0) -> bool:
    """Until the run directory's result holds n vectors (hil is mid-run)."""
    deadline = time.monotonic() + timeout
    assert case.run_dir is not None, "a run case (Context.case gives it a run directory)"
    while time.monotonic() < deadline and proc.poll() is None:
        doc = _load_json(case.run_dir / "result.json")
        if doc and len(doc.get("vectors") or []) >= n:
            return True
        time.sleep(0.05)
    return False


def emulator_pids(proc: subprocess.Popen) -> list[int]:
    """QEMU processes started by this hil (its descendants named qemu-system-*)."""
    children: dict[int, list[int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1])
        except (OSError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    found: list[int] = []
    todo = [proc.pid]
    while todo:
        parent = todo.pop()
        for child in children.get(parent, []):
            todo.append(child)
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().startswith("qemu-system"):
                    found.append(child)
    return found


def signal_emulator(sig: signal.Signals, after_vectors: int = 3, resume_after: float | None = None):
    def act(case: Case, proc: subprocess.Popen) -> str:
        if after_vectors and not wait_for_vectors(case, proc, after_vectors):
            return f"hil ended before {after_vectors} vectors: nothing signalled"
        deadline = time.monotonic() + 60
        pids = emulator_pids(proc)
        while not pids and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            pids = emulator_pids(proc)
        for pid in pids:
            os.kill(pid, sig)
        if resume_after is not None:
            time.sleep(resume_after)
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)
        return f"{sig.name} to QEMU {pids} after {after_vectors} vectors"
    return act


def signal_hil(sig: signal.Signals, delay: float | None = None, after_vectors: int = 3, group: bool = False):
    """Signal hil `delay` seconds after start, or once `after_vectors` are done."""
    def act(case: Case, proc: subprocess.Popen) -> str:
        if delay is not None:
            time.sleep(delay)
            when = f"{delay} s after start"
        else:
            wait_for_vectors(case, proc, after_vectors)
            when = f"after {after_vectors} vectors"
        if proc.poll() is not None:
            return f"hil ended before {when}"
        (os.killpg if group else os.kill)(proc.pid, sig)
        return f"{sig.name} to hil{' (process group)' if group else ''} {when}"
    return act


@contextlib.contextmanager
def tmpfs(path: Path, size: str, fill: bool = False, read_only: bool = False):
    """A small tmpfs at `path` (optionally full, or read-only), unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True, capture_output=True)
    try:
        if fill:
            fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT)
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * 1024):
                    pass
            os.close(fd)
        yield []
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def can_mount(work: Path) -> str | None:
    probe = work / ".mount-probe"
    try:
        with tmpfs(probe, "16k"):
            pass
        return None
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot mount a tmpfs here ({exc}); run as root"


# -- the categories: each returns its cases --------------------------------------------------


def cases_models(ctx: Context) -> list[Case]:
    fw = ctx.runner()
    files = damaged_models(ctx.demo, ctx.work / "files" / "models", ctx.root / "models" / "test" / "unsupported_gather.tflite")
    cases = []
    for f in files:
        limit = 6 << 30 if "huge" in f.name else None  # never let one case take the machine's memory
        # with --firmware the firmware judges the operators (README); hil's own runner lets the host know
        firmware = [] if "unsupported" in f.name else ["--firmware", fw]
        cases.append(ctx.case("models", f.name, ["run", "--model", f.path, *firmware, "-n", "3"], f.expect,
                              keywords=f.keywords, memory_limit=limit, note=f.note,
                              judge=_decided_before_boot if 0 not in f.expect else None))
    # inputs bigger than the device's memory (an386: 1 MB arena; lm3s6965evb: 64 KB of RAM): refused on
    # the host, naming bytes, before anything boots
    for platform, elements, label in (("mps2-an386", 1 << 20, "3 MB"), ("lm3s6965evb", 1 << 18, "768 KB")):
        too_big = ctx.work / "files" / "models" / f"input_{label.replace(' ', '')}.tflite"
        too_big.write_bytes(with_input_shape(ctx.demo.read_bytes(), (1, elements, 1, 3)))
        cases.append(ctx.case("models", f"a {label} input on {platform}", ["run", "--model", too_big, "-p", platform,
                                                                            "-n", "2"],
                              (2,), keywords=("bytes",), judge=_decided_before_boot, memory_limit=6 << 30,
                              timeout=300))
    return cases


def _decided_before_boot(case: Case, record: dict) -> tuple[str, str] | None:
    """Bad input the host can know about is refused before QEMU starts."""
    if record["exit_code"] == 2 and case.run_dir and (case.run_dir / "qemu.log").exists():
        return "misread", "exit 2, but only after QEMU booted (the host could have known before)"
    return None


def cases_inputs(ctx: Context) -> list[Case]:
    fw = ctx.runner()
    cases = []
    for f in damaged_inputs(ctx.demo_set, ctx.work / "files" / "inputs"):
        cases.append(ctx.case("inputs", f.name, ["run", "--model", ctx.demo, "--inputs", f.path, "--firmware", fw],
                              f.expect, keywords=f.keywords, note=f.note,
                              judge=_decided_before_boot if 0 not in f.expect else _one_hot_accuracy))
    # the same damage through a suite: hil test reads the file from hil.toml
    project = ctx.work / "files" / "suite-bad-inputs"
    (project / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy(ctx.demo, project / "gesture.tflite")
    good = (ctx.work / "files" / "inputs" / "good.npz").read_bytes()
    (project / "data" / "cut.npz").write_bytes(good[: len(good) // 2])
    (project / "hil.toml").write_text('[project]\nname = "faults"\nstore = ".hil/results.db"\n'
                                      'platforms = ["mps2-an386"]\n\n[[models]]\nname = "gesture"\n'
                                      'path = "gesture.tflite"\nvectors = { file = "data/cut.npz" }\n')
    cases.append(ctx.case("inputs", "hil test: a damaged inputs file in hil.toml", ["test"], (2,), run=False,
                          cwd=project, keywords=("cut.npz",), timeout=240))
    return cases


def _one_hot_accuracy(case: Case, record: dict) -> tuple[str, str] | None:
    if "one-hot" in case.name:
        doc = _load_json(case.json_copy) or {}
        if "accuracy" not in (doc.get("summary") or {}):
            return "misread", "one-hot labels accepted but no accuracy reported (labels ignored)"
    return None


def cases_noise(ctx: Context, runs: int) -> list[Case]:
    """A noisy TCP link between hil and QEMU standing in for a board: first a
    clean run, then `runs` seeded runs per bit-error rate, both directions,
    with bytes dropped and duplicated at a tenth of that rate per byte."""
    from boardsim import QemuBoard

    proxy_class, ctx.proxy_source = noisy_proxy_class(ctx)
    board = QemuBoard(ctx.work / "board", board_id="HILSIM0001")
    ctx.closers.append(board.close)
    platform = board.platform_file(ctx.work / "qemu-board.toml")
    fw = ctx.build("board", "-p", str(platform))
    port = int(board.socket_url.rsplit(":", 1)[1])
    common = ["run", "--model", ctx.small, "--platform", platform, "--probe", "HILSIM0001", "--firmware", fw,
              "-n", "10", "--seed", "3"]
    cases = [ctx.case("noise", "clean link (baseline)", [*common, "--port", board.socket_url], (0,),
                      judge=_remember_baseline(ctx))]
    for ber in NOISE_LEVELS:
        for seed in range(runs):
            cases.append(ctx.case("noise", f"BER {ber:g} seed {seed}", common, (0, 3), timeout=240,
                                  keywords=("link|not detected",), forbidden=(r"\bhung\b", "firmware fail"),
                                  around=_proxied(proxy_class, port, ber, seed), judge=_same_as_baseline(ctx)))
    link_words: dict[str, Any] = dict(keywords=("link|not detected",), forbidden=(r"\bhung\b", "firmware fail"), timeout=240)
    cases += [
        ctx.case("noise", "link cut during the model load (after 2,000 bytes)", common, (3,),
                 around=_proxied(proxy_class, port, 0.0, 0, cut_after=2000), **link_words),
        ctx.case("noise", "link cut mid-run (after 6,000 of the run's 7,500 bytes)", common, (3,),
                 around=_proxied(proxy_class, port, 0.0, 0, cut_after=6000), **link_words),
        ctx.case("noise", "a link that stays unusable (BER 2e-2)", common, (3,),
                 around=_proxied(proxy_class, port, 2e-2, 0), **link_words),
    ]
    return cases


def noisy_proxy_class(ctx: Context):
    """The project's noisy link (tests/noisy_link.py of this checkout, so an
    older tree under --hil-root meets the same noise)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from noisy_link import NoisyProxy

    return NoisyProxy, "tests/noisy_link.py"


def _proxied(proxy_class, port: int, ber: float, seed: int, **more):
    @contextlib.contextmanager
    def around():
        proxy = proxy_class(("127.0.0.1", port), ber=ber, drop=ber / 10, dup=ber / 10, seed=seed, direction="both",
                            **more)
        url = proxy.start()
        try:
            yield ["--port", url]
        finally:
            proxy.stop()
    return around


def _remember_baseline(ctx: Context):
    def judge(case: Case, record: dict):
        ctx.noise_baseline = record["result"]
        return None
    return judge


def _same_as_baseline(ctx: Context):
    def judge(case: Case, record: dict):
        record["completed"] = False
        if record["exit_code"] != 0:
            return None  # exit 3 naming the link: an honest "link broken"
        base = ctx.noise_baseline
        got = record["result"]
        if base is None or got is None:
            return "lost", "no result document to compare with the clean run"
        if got["vectors"] != base["vectors"]:
            return "wrong", "verdicts or outputs differ from the clean run"
        record["completed"] = True
        record["counts_identical"] = got["counts"] == base["counts"]
        return None
    return judge


def cases_emulator(ctx: Context) -> list[Case]:
    fw = ctx.runner()
    run = ["run", "--model", ctx.demo, "--firmware", fw, "-n", "300", "--invoke-timeout", "5"]
    not_firmware = (r"\bhung\b", r"\bhang\b", "firmware failed")
    return [
        ctx.case("emulator", "QEMU killed (SIGKILL) mid-run", run, (3,), keywords=("QEMU|emulator",),
                 forbidden=not_firmware, during=signal_emulator(signal.SIGKILL)),
        ctx.case("emulator", "QEMU killed (SIGKILL) as soon as it runs", run, (3,), keywords=("QEMU|emulator",),
                 forbidden=not_firmware, during=signal_emulator(signal.SIGKILL, after_vectors=0)),
        ctx.case("emulator", "QEMU stalled (SIGSTOP) mid-run", run, (3,), keywords=("stall|stopped|not running|emulator",),
                 forbidden=not_firmware, during=signal_emulator(signal.SIGSTOP)),
        ctx.case("emulator", "QEMU stalled (SIGSTOP) as soon as it runs", run, (3,),
                 keywords=("stall|stopped|not running|emulator",), forbidden=not_firmware,
                 during=signal_emulator(signal.SIGSTOP, after_vectors=0)),
        ctx.case("emulator", "QEMU paused 1 s (SIGSTOP, SIGCONT) mid-run", run, (0,),
                 during=signal_emulator(signal.SIGSTOP, resume_after=1.0)),
    ]


def cases_firmware(ctx: Context) -> list[Case]:
    def misbehaving(name: str, defines: dict, expect_words: str, *extra: str, needs_fault: bool = False) -> Case:
        fw = ctx.runner(**defines)
        return ctx.case("firmware", name, ["run", "--model", ctx.demo, "--firmware", fw, "-n", "6", *extra], (1,),
                        keywords=(expect_words,), forbidden=("link broken", "internal error"),
                        judge=_has_fault if needs_fault else None)
    return [
        misbehaving("HardFault at invoke 3 (HIL_FAULT_ON_INVOKE=3)", {"HIL_FAULT_ON_INVOKE": "3"}, "fault",
                    needs_fault=True),
        misbehaving("HardFault at the first invoke (HIL_FAULT_ON_INVOKE=1)", {"HIL_FAULT_ON_INVOKE": "1"}, "fault",
                    needs_fault=True),
        misbehaving("hang at invoke 3 (HIL_HANG_ON_INVOKE=3)", {"HIL_HANG_ON_INVOKE": "3"}, "hung|hang|timed out|timeout",
                    "--invoke-timeout", "3"),
        misbehaving("the last operator computes wrongly (HIL_CORRUPT_OP=10)", {"HIL_CORRUPT_OP": "10"}, "mismatch"),
        misbehaving("reboot at invoke 2 (HIL_REBOOT_ON_INVOKE=2)", {"HIL_REBOOT_ON_INVOKE": "2"}, "reboot",
                    "--invoke-timeout", "3"),
    ]


def _has_fault(case: Case, record: dict):
    doc = _load_json(case.json_copy) or {}
    if not doc.get("fault"):
        return "misread", "exit 1 for a fault, but the result's `fault` (PC, LR, CFSR) is empty"
    return None


def cases_disk(ctx: Context) -> list[Case]:
    reason = can_mount(ctx.work)
    if reason:
        ctx.skipped["disk"] = reason
        return []
    fw = ctx.runner()
    run = ["run", "--model", ctx.demo, "--firmware", fw]
    disk_words = ("space|full|disk|read-only|write",)
    home_file = ctx.work / "files" / "home-is-a-file"
    home_file.parent.mkdir(parents=True, exist_ok=True)
    home_file.write_text("not a directory\n")
    cases = []
    for name, size, fill, ro, n in [("run directory on a full disk", "64k", True, False, 10),
                                    ("run directory's disk fills mid-run", "48k", False, False, 50),
                                    ("read-only run directory", "64k", False, True, 10)]:
        c = ctx.case("disk", name, run + ["-n", str(n)], (3,), keywords=disk_words, json_required=True)
        mount = c.dir / "mnt"
        c.run_dir = mount / "run"
        c.argv[c.argv.index("--workdir") + 1] = str(c.run_dir)
        c.around = (lambda m=mount, s=size, f=fill, r=ro: tmpfs(m, s, fill=f, read_only=r))
        if "mid-run" in name:
            c.judge = _json_has_vectors
        cases.append(c)
    ro_json = ctx.case("disk", "--json into a read-only directory", run + ["-n", "3"], (3,),
                       keywords=("json|read-only|result",))
    ro_json.json_copy = ro_json.dir / "ro" / "result.json"
    ro_json.argv[ro_json.argv.index("--json") + 1] = str(ro_json.json_copy)
    ro_json.around = lambda m=ro_json.dir / "ro": tmpfs(m, "16k", read_only=True)
    ro_json.judge = _run_dir_kept
    cases.append(ro_json)
    cases += [
        ctx.case("disk", "$HOME is a file, prebuilt firmware", run + ["-n", "3"], (0,), env={"HOME": str(home_file)}),
        ctx.case("disk", "$HOME is a file, firmware to build", ["run", "--model", ctx.demo, "-n", "3"], (3,),
                 env={"HOME": str(home_file)}, keywords=("HOME|HIL_CACHE_DIR",), timeout=300),
        ctx.case("disk", "$HOME is a file, HIL_CACHE_DIR set", ["run", "--model", ctx.demo, "-n", "3"], (0,),
                 env={"HOME": str(home_file), "HIL_CACHE_DIR": str(ctx.work / "cache")}, timeout=300),
    ]
    return cases


def _json_has_vectors(case: Case, record: dict):
    doc = _load_json(case.json_copy) or {}
    if not doc.get("vectors"):
        return "lost", "the --json copy holds no vectors although the run directory filled only mid-run"
    return None


def _run_dir_kept(case: Case, record: dict):
    if case.run_dir is None or not (case.run_dir / "result.json").is_file():
        return "lost", "the --json target failed and the run directory has no result either"
    return None


def cases_signals(ctx: Context) -> list[Case]:
    fw = ctx.runner()
    run = ["run", "--model", ctx.demo, "--firmware", fw, "-n", "300"]
    cases = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        for delay in (0.3, 1.0, None):
            when = f"{delay} s after start" if delay is not None else "mid-run"
            cases.append(ctx.case("signals", f"{sig.name} {when}", run, (130,), keywords=("interrupt",),
                                  during=signal_hil(sig, delay)))
    cases.append(ctx.case("signals", "Ctrl-C (SIGINT to the process group) mid-run", run, (130,),
                          keywords=("interrupt",), during=signal_hil(signal.SIGINT, group=True)))
    for delay in (1.0, None):
        when = f"{delay} s after start" if delay is not None else "mid-run"
        cases.append(ctx.case("signals", f"kill -9 of hil {when}", run, (-9,), killed=True,
                              during=signal_hil(signal.SIGKILL, delay),
                              note="right when no QEMU, reference child or hil-reference-* dir is left"))
    return cases


def cases_paths(ctx: Context) -> list[Case]:
    """Relative paths given from the user's working directory, which is not
    the run directory QEMU runs in."""
    project = ctx.work / "files" / "project"
    for sub in ("fw", "models", "data", "sub"):
        (project / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(ctx.runner(), project / "fw" / "app.elf")
    shutil.copy(ctx.console_elf("pass", 0), project / "fw" / "console.elf")
    shutil.copy(ctx.demo, project / "models" / "gesture.tflite")
    _good_npz(ctx, project / "data" / "good.npz")
    (project / "hil.toml").write_text('[project]\nname = "faults"\nstore = ".hil/results.db"\n'
                                      'platforms = ["mps2-an386"]\n\n[[models]]\nname = "gesture"\n'
                                      'path = "models/gesture.tflite"\nvectors = { file = "data/good.npz" }\n')
    (project / "test_relative.py").write_text(
        '"""hil\'s pytest plugin with paths relative to where pytest runs."""\n\n\n'
        'def test_stream(hil_dut):\n    hil_dut.load_model("models/gesture.tflite")\n'
        '    batch = hil_dut.stream(count=3, seed=1)\n    assert batch.matches_reference(), batch.explain()\n')
    (project / "relative.robot").write_text(
        "*** Settings ***\nLibrary    harness.robot_library.HilLibrary\n\n*** Test Cases ***\n"
        "Relative Firmware Path\n    Start Target    mps2-an386    firmware=fw/app.elf\n"
        "    Load Model    models/gesture.tflite\n    Stream Vectors    count=3    seed=1\n"
        "    Outputs Should Match Reference\n    Stop Target\n")
    rel_run = ["run", "--model", "models/gesture.tflite", "--inputs", "data/good.npz"]
    return [
        ctx.case("paths", "run --firmware fw/app.elf (relative, all paths relative)",
                 rel_run + ["--firmware", "fw/app.elf", "--workdir", "out/run", "--json", "out/result.json"], (0,),
                 run=False, cwd=project, run_dir=project / "out" / "run", json_copy=project / "out" / "result.json"),
        ctx.case("paths", "run --firmware ../fw/app.elf from a subdirectory",
                 ["run", "--model", "../models/gesture.tflite", "--firmware", "../fw/app.elf", "-n", "3",
                  "--workdir", "run", "--json", "result.json"], (0,), run=False, cwd=project / "sub",
                 run_dir=project / "sub" / "run", json_copy=project / "sub" / "result.json"),
        ctx.case("paths", "run --firmware fw/missing.elf", rel_run + ["--firmware", "fw/missing.elf"], (2,),
                 cwd=project, keywords=("missing.elf",)),
        ctx.case("paths", "console --elf fw/console.elf (relative)",
                 ["console", "--elf", "fw/console.elf", "--expect", "PROJECT EXECUTION SUCCESSFUL", "--timeout", "30"],
                 (0,), cwd=project),
        ctx.case("paths", "console --elf fw/missing.elf", ["console", "--elf", "fw/missing.elf", "--expect", "x"], (2,),
                 cwd=project, keywords=("missing.elf",)),
        ctx.case("paths", "hil test with relative paths in hil.toml", ["test"], (0,), run=False, cwd=project,
                 timeout=240),
        ctx.case("paths", "pytest --hil-firmware fw/app.elf (relative)",
                 ["-q", "-p", "no:cacheprovider", "test_relative.py", "--hil-firmware", "fw/app.elf"], (0,),
                 run=False, cwd=project, program=("-m", "pytest"), timeout=240),
        ctx.case("paths", "Robot Start Target firmware=fw/app.elf (relative)",
                 ["--output", "NONE", "--report", "NONE", "--log", "NONE", "relative.robot"], (0,),
                 run=False, cwd=project, program=("-m", "robot"), timeout=240),
    ]


def _good_npz(ctx: Context, path: Path) -> None:
    import numpy as np

    with np.load(ctx.demo_set) as npz:
        np.savez(path, input_0=npz["input_0"][:6], labels=npz["labels"][:6])


#: what a Cortex-M fault handler prints (the console test firmware's `udf` is a UsageFault)
FAULT_BANNER = "HardFault|UsageFault|BusFault|MemManage"


def cases_console(ctx: Context) -> list[Case]:
    passing, asserting = ctx.console_elf("pass", 0), ctx.console_elf("assert", 1)
    hanging, faulting = ctx.console_elf("hang", 2), ctx.console_elf("hardfault", 3)

    def console(name: str, elf: Path, expect: tuple[int, ...], *args: str, words: tuple[str, ...] = ()) -> Case:
        c = ctx.case("console", name, ["console", "--elf", elf, *args], expect, keywords=words)
        return c
    return [
        console("all expected lines, exit status 0", passing, (0,), "--expect", "Booting", "--expect",
                r"inference took (?P<ticks>\d+) ticks", "--expect", "PROJECT EXECUTION SUCCESSFUL", "--expect-exit", "0"),
        console("a line matching both --expect and --fail", asserting, (1,), "--expect", "test_conv",
                "--fail", "ASSERT FAILED", "--timeout", "20", words=("ASSERT",)),
        console("a --fail line after the last --expect", asserting, (1,), "--expect", "Booting",
                "--fail", "ASSERT FAILED", "--timeout", "20", words=("ASSERT",)),
        console("a fault banner after the last --expect", faulting, (1,), "--expect", "inference took",
                "--fail", FAULT_BANNER, "--timeout", "20", words=("UsageFault",)),
        console("--fail alone with --timeout, firmware that never faults", hanging, (0,), "--fail", FAULT_BANNER,
                "--timeout", "4"),
        console("--fail alone with --timeout, firmware that faults", faulting, (1,), "--fail", FAULT_BANNER,
                "--timeout", "10", words=("UsageFault",)),
        console("line anchors: ^...$ on a whole line", passing, (0,), "--expect", r"^3 tests, 0 failures$",
                "--timeout", "20"),
        console("an expected line that never comes", hanging, (1,), "--expect", "PROJECT EXECUTION SUCCESSFUL",
                "--timeout", "4", words=("PROJECT EXECUTION SUCCESSFUL",)),
    ]


# -- the table -----------------------------------------------------------------------------------


def table(records: list[dict], skipped: dict[str, str]) -> str:
    rows = ["| category | cases tried | " + " | ".join(CLASSES) + " |", "|---" * (len(CLASSES) + 2) + "|"]
    totals = dict.fromkeys(CLASSES, 0)
    for category in CATEGORIES:
        mine = [r for r in records if r["category"] == category]
        if not mine:
            if category in skipped:
                rows.append(f"| {category} | skipped: {skipped[category]} |" + " |" * len(CLASSES))
            continue
        counts = {c: sum(r["class"] == c for r in mine) for c in CLASSES}
        for c in CLASSES:
            totals[c] += counts[c]
        rows.append(f"| {category} | {len(mine)} | " + " | ".join(str(counts[c]) for c in CLASSES) + " |")
    rows.append(f"| **total** | **{len(records)}** | " + " | ".join(f"**{totals[c]}**" for c in CLASSES) + " |")
    return "\n".join(rows)


def noise_summary(records: list[dict]) -> dict:
    out = {}
    for ber in NOISE_LEVELS:
        runs = [r for r in records if r["category"] == "noise" and r["name"].startswith(f"BER {ber:g} ")]
        if runs:
            done = sum(bool(r.get("completed")) for r in runs)
            links = [((r.get("result") or {}).get("link") or {}) for r in runs]
            out[f"{ber:g}"] = {"runs": len(runs), "identical_to_clean": done, "fraction": done / len(runs),
                               "counts_identical": sum(bool(r.get("counts_identical")) for r in runs),
                               "retransmissions": sum(link.get("retransmissions", 0) for link in links),
                               "damaged_frames": sum(link.get("damaged_total", 0) for link in links)}
    return out


def report(records: list[dict], ctx: Context, header: str) -> str:
    lines = [header, "", table(records, ctx.skipped), ""]
    for ber, s in noise_summary(records).items():
        lines.append(f"Noise at BER {ber} (bytes dropped and duplicated at BER/10 each): "
                     f"{s['identical_to_clean']}/{s['runs']} runs complete with verdicts identical to a clean run "
                     f"({100 * s['fraction']:.1f}%), {s['counts_identical']} with identical instruction counts; "
                     f"the link retransmitted {s['retransmissions']} frames and dropped {s['damaged_frames']} "
                     f"damaged ones in all.")
    bad = [r for r in records if r["class"] != "right"]
    if bad:
        lines += ["", "Cases that are not right:", ""]
        for r in bad:
            lines.append(f"- [{r['category']}] {r['name']}: **{r['class']}** (exit {r['exit_code']}) {r['detail']}")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------------


def _commit(root: Path) -> str:
    return subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "(not a git checkout)"


def main() -> int:
    global NOISE_LEVELS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=CATEGORIES, help="run only this category (repeatable)")
    parser.add_argument("--runs", type=int, default=30, help="noisy runs per bit-error rate [30]")
    parser.add_argument("--ber", type=float, action="append",
                        help=f"bit-error rate of the noisy runs (repeatable) [{' and '.join(map(str, NOISE_LEVELS))}]")
    parser.add_argument("--json", type=Path, help="write every case (command, output, class) here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--hil-root", type=Path, default=HERE.parent,
                        help="the hil source tree to test [this checkout]; e.g. a `git archive` of an older commit")
    parser.add_argument("--label", help="what the tree under test is, for the header [its git commit]")
    args = parser.parse_args()
    NOISE_LEVELS = tuple(args.ber or NOISE_LEVELS)
    root = args.hil_root.resolve()
    work = Path(tempfile.mkdtemp(prefix="hil-faults-"))
    ctx = Context(root, work, sys.executable)
    makers = {"models": cases_models, "inputs": cases_inputs, "noise": lambda c: cases_noise(c, args.runs),
              "emulator": cases_emulator, "firmware": cases_firmware, "disk": cases_disk,
              "signals": cases_signals, "paths": cases_paths, "console": cases_console}
    records: list[dict] = []
    started = time.monotonic()
    first_commit = _commit(root)
    try:
        for category in args.only or CATEGORIES:
            try:
                cases = makers[category](ctx)
            except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
                ctx.skipped[category] = f"could not set up: {exc}"[:300]
                print(f"{category}: skipped: {exc}", file=sys.stderr)
                continue
            for case in cases:
                record = execute(case, ctx)
                records.append(record)
                print(f"{category:9} {record['class']:15} exit {record['exit_code']!s:>4} {record['duration_s']:6.1f}s"
                      f"  {case.name}" + (f"  -- {record['detail']}" if record["detail"] else ""),
                      file=sys.stderr, flush=True)
    finally:
        for close in ctx.closers:
            with contextlib.suppress(Exception):
                close()
        elapsed = time.monotonic() - started
        commit = _commit(root)
        if commit != first_commit:  # others committed while it ran: say which code it saw
            commit = f"{first_commit} (at the start) to {commit} (at the end)"
        commit = args.label or commit
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        header = (f"Fault benchmark on {root} at commit {commit}{' (with uncommitted changes)' if dirty else ''}, "
                  f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed / 60:.1f} min; "
                  f"noisy link: {ctx.proxy_source or 'not run'}")
        text = report(records, ctx, header)
        print(text)
        if args.json:
            args.json.write_text(json.dumps({"header": header, "commit": commit, "dirty": bool(dirty),
                                             "skipped": ctx.skipped, "noise": noise_summary(records),
                                             "firmware": {k: str(v) for k, v in ctx.firmware.items()},
                                             "cases": records}, indent=2) + "\n")
        if args.keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            for mount in sorted(work.rglob("mnt"), reverse=True):
                subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)
            shutil.rmtree(work, ignore_errors=True)
    bad = sum(r["class"] not in ("right",) for r in records)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
