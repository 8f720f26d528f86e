"""Golden outputs from the TFLite-Micro reference interpreter.

The `tflite-micro` package runs TFLM's own reference kernels, so its outputs
are what the firmware must reproduce bit for bit. It runs in a child process
(`python -m harness.model.reference`: the job on stdin, the outputs on
stdout): a too-small arena or a bad model can kill the interpreter with a
segmentation fault, and that must not take the harness (and the results it
already has) down with it. The child starts while the firmware builds and
boots and returns each vector's outputs as soon as it has them, so the
device's first verdict does not wait for the whole batch.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import io
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InfraError
from ..spawn import popen
from .reference_cache import describe, prune, size_limit, size_text, touch

log = logging.getLogger(__name__)


def _interpreter(model: bytes, arena_size: int, n_outputs: int):
    """One interpreter; returns invoke(vector) -> its outputs. State
    carries over between invokes exactly as it does on the device."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)

    def invoke(vector: list[np.ndarray]) -> list[np.ndarray]:
        for i, value in enumerate(vector):
            interpreter.set_input(value, i)
        interpreter.invoke()
        return [np.array(interpreter.get_output(i), copy=True) for i in range(n_outputs)]

    return invoke


def compute(model: bytes, vectors: list[list[np.ndarray]], arena_size: int,
            n_outputs: int) -> list[list[np.ndarray]]:
    """Run the vectors in order through one interpreter, in this process."""
    invoke = _interpreter(model, arena_size, n_outputs)
    return [invoke(vector) for vector in vectors]


def intermediates(model: bytes, vector: list[np.ndarray], tensors: list[int], arena_size: int) -> dict[int, np.ndarray]:
    """Every requested tensor of the main graph after one invoke from a
    fresh interpreter (TFLM keeps them all with kPreserveAllTensors)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(
        model, arena_size=arena_size, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, value in enumerate(vector):
        interpreter.set_input(value, i)
    interpreter.invoke()
    return {t: np.array(interpreter.GetTensor(t, 0)["tensor_data"], copy=True) for t in tensors}


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Runs in the child before Python starts: SIGKILL it when hil dies,
    even by `kill -9`; if hil is already gone, do not start at all."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:
        os._exit(1)


def _death_hint(code: int) -> str:
    """What to do about a reference child that ended with `code`. Only a
    crash of its own (a segfault, an abort, an error) points at the model;
    SIGKILL and SIGTERM come from outside it."""
    if code == -signal.SIGKILL:
        return ("it was killed from outside (SIGKILL: the kernel's out-of-memory killer, a container's memory "
                "limit or kill -9); `dmesg` says which: free memory or run fewer jobs at once (-j), then rerun")
    if code in (-signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP):
        return "it was stopped by a signal from outside hil; rerun"
    return "the model may need a larger arena or use an operator TFLM lacks"


class ReferenceRunner:
    """Computes references in a child process, alongside the device.

    The job goes to the child on its stdin (the model, then the vectors in
    chunks) and each vector's outputs come back on its stdout as soon as
    they are computed, so the runner checks vector 0 while the reference
    works on the rest: the device waits only when the reference is slower
    than it. The child runs the vectors in order through one interpreter
    (stateful models see what the device sees). No temporary files, so a
    killed `hil` leaves nothing on disk (a job or its outputs can be
    hundreds of MB). The child gets a parent-death signal, so it never
    outlives `hil` either."""

    CHUNK = 32  # vectors per frame on the child's stdin: the first chunk is there at once

    def __init__(self, model: bytes, n_outputs: int) -> None:
        self.model = model
        self.n_outputs = n_outputs
        self.arena_size = max(16 << 20, 20 * len(model))
        self.total = 0                       # vectors submitted (1 for intermediates)
        self._kind = "outputs"
        self.started: float | None = None    # time.monotonic() at submit
        self.finished: float | None = None   # ... when the last output arrived
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._replies: list = []
        self._ended = False                  # the child's stdout is closed: no more replies
        self._stderr = bytearray()
        self._changed = threading.Condition()
        self._cache: ReferenceCache | None = None
        self.cached = False                  # the outputs came from the cache (no child)

    @property
    def computed(self) -> int:
        """How many vectors' outputs have arrived."""
        return len(self._replies)

    def submit(self, vectors: list[list[np.ndarray]]) -> None:
        """Start computing the outputs of `vectors`, in order; `output(i)`
        returns each as it arrives. Outputs this interpreter version already
        computed for the same model and vectors come from the cache
        (`ReferenceCache`) with no child at all."""
        self.total, self._kind = len(vectors), "outputs"
        self._cache = cache = ReferenceCache.for_job(self.model, vectors, self.arena_size, self.n_outputs)
        cached = cache.load() if cache is not None else None
        self.cached = cached is not None
        if cache is not None and cached is not None:
            self.close()
            self._proc, self._threads = None, []
            self._replies, self._ended, self._stderr = cached, True, bytearray()
            self.started = self.finished = time.monotonic()
            log.info("reference outputs of %d vectors %s", self.total, describe(self.provenance()))
            return
        log.info("reference outputs of %d vectors %s", self.total, describe(self.provenance()))
        chunks = [vectors[i:i + self.CHUNK] for i in range(0, len(vectors), self.CHUNK)]
        self._start([("outputs", self.model, self.arena_size, self.n_outputs), *chunks, None])

    def provenance(self) -> dict:
        """Where the outputs of the last submit() come from (a result's
        `provenance.reference_outputs`): the cache or computed in this run,
        the cache file and its key, whether it holds them, and what the key
        is a hash of."""
        source = "cache" if self.cached else "computed"
        if self._cache is None:
            why = "HIL_REFERENCE_CACHE=0" if os.environ.get("HIL_REFERENCE_CACHE", "1") == "0" else \
                "the cache directory cannot be used"
            return {"source": source, "file": None, "key": None, "kept": False, "note": f"no cache: {why}",
                    "covers": None}
        return self._cache.provenance(source)

    def submit_intermediates(self, vector: list[np.ndarray], tensors: list[int]) -> None:
        self.total, self._kind = 1, "intermediates"
        self._start([("intermediates", self.model, vector, tensors, self.arena_size)])

    def _start(self, frames: list) -> None:
        self.close()
        parent = os.getpid()
        self._replies, self._ended, self._stderr = [], False, bytearray()
        started = time.monotonic()
        self.started, self.finished = started, None
        self._proc = proc = popen(
            [sys.executable, "-m", "harness.model.reference"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, preexec_fn=lambda: _die_with_parent(parent))
        # all three are pipes; binary and buffered, so stderr is a BufferedReader (read1)
        stdin, stdout, stderr = proc.stdin, proc.stdout, cast(io.BufferedReader, proc.stderr)
        assert stdin is not None and stdout is not None
        log.info("reference interpreter started (pid %d) for %d %s", proc.pid, self.total, self._kind)

        # three pipes, a thread each: feeding stdin while draining stdout and stderr, none can fill up and stall
        def feed() -> None:
            try:
                for frame in frames:
                    pickle.dump(frame, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    stdin.flush()
                stdin.close()
            except (OSError, ValueError):  # the child died or was closed under us: its exit status says why
                pass

        def collect() -> None:
            try:
                while True:
                    reply = pickle.load(stdout)
                    with self._changed:
                        self._replies.append(reply)
                        complete = len(self._replies) == self.total
                        if complete:
                            self.finished = finished = time.monotonic()
                            log.info("reference interpreter done: %d %s in %.2f s", self.total, self._kind,
                                     finished - started)
                        self._changed.notify_all()
                    if complete and self._kind == "outputs" and self._cache is not None:
                        self._cache.store(list(self._replies))  # not under the lock: the last verdict waits for no disk
            except Exception:  # noqa: BLE001 - end of stream, or a child killed mid-frame: all end the replies
                pass
            finally:
                proc.wait()
                with self._changed:
                    self._ended = True
                    self._changed.notify_all()

        def drain() -> None:
            try:
                while chunk := stderr.read1(65536):
                    self._stderr = (self._stderr + chunk)[-65536:]
            except (OSError, ValueError):
                pass

        self._threads = [threading.Thread(target=fn, name=f"hil-reference-{fn.__name__}", daemon=True)
                         for fn in (feed, collect, drain)]
        for thread in self._threads:
            thread.start()

    def output(self, index: int, timeout: float = 600, on_wait=None):
        """Vector `index`'s outputs, waiting for them if the reference has
        not got that far. `on_wait(computed, total)` is called about twice
        a second while waiting (progress). `timeout`: seconds without any
        new output before the reference is declared stuck."""
        assert self._proc is not None or self._ended, "submit() first"
        with self._changed:
            last, deadline = len(self._replies), time.monotonic() + timeout
            while len(self._replies) <= index and not self._ended:
                if on_wait is not None:
                    on_wait(len(self._replies), self.total)
                self._changed.wait(0.5)
                if len(self._replies) != last:
                    last, deadline = len(self._replies), time.monotonic() + timeout
                elif time.monotonic() > deadline:
                    break
            if len(self._replies) > index:
                return self._replies[index]
            ended = self._ended
        if not ended:
            self.close()
            raise InfraError(f"the TFLite-Micro reference computed nothing for {timeout:g} s "
                             f"({len(self._replies)} of {self.total} vectors done)")
        for thread in self._threads:
            thread.join(5)
        if self._proc is None:  # from the cache, which held fewer outputs than asked for
            raise InfraError(f"the cached reference outputs have no vector {index}")
        code = self._proc.returncode
        if code == 0:
            raise InfraError(f"the TFLite-Micro reference returned no readable result for vector {index}")
        how = (f"died with signal {signal.Signals(-code).name}" if code < 0
               else f"failed: {bytes(self._stderr).decode(errors='replace').strip().splitlines()[-1:] or code}")
        raise InfraError(f"the TFLite-Micro reference interpreter {how} "
                         f"({len(self._replies)} of {self.total} vectors done)", hint=_death_hint(code))

    def result(self, timeout: float = 600):
        """Everything submitted: every vector's outputs (a list), or the
        intermediate tensors (a dict)."""
        outputs = [self.output(i, timeout) for i in range(self.total)]
        return outputs[0] if self._kind == "intermediates" else outputs

    def close(self) -> None:
        """Stop the child if it still runs. Safe to call twice."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for thread in self._threads:
            thread.join(5)
        for pipe in (self._proc.stdin, self._proc.stdout, self._proc.stderr) if self._proc is not None else ():
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()


@functools.lru_cache(maxsize=1)
def _implementation() -> str:
    """What computes the outputs besides the model and the job: this file
    (how inputs are set and outputs read), numpy, and the installed
    tflite-micro as built, not only its version (its RECORD holds every
    file's hash; a shared object rebuilt in place changes its size or
    time). A package without RECORD raises: no cache then."""
    from importlib.metadata import distribution

    dist = distribution("tflite-micro")
    record = dist.read_text("RECORD")
    if not record:
        raise LookupError("tflite-micro has no RECORD to say which build it is")
    built = hashlib.sha256(record.encode())
    for file in dist.files or ():
        if str(file).endswith(".so"):
            stat = Path(str(dist.locate_file(file))).stat()
            built.update(f"{file} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    here = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return f"tflite-micro {dist.version} {built.hexdigest()[:16]} numpy {np.__version__} reference.py {here}"


class ReferenceCache:
    """The reference outputs of one job (model, vectors in order, arena,
    interpreter version), kept in the build cache's `reference/` directory:
    CI runs the same vectors through the same model on every commit, and
    the reference is the host's largest cost per vector (on a keyword-
    spotting model, about as much CPU as the emulated device). The key
    holds every byte the outputs depend on, so a hit is the same outputs;
    `covers` names them, so a result can say where its reference came from.
    Any problem with the cache (unwritable, damaged file) only costs the
    saving: the child computes as without it. HIL_REFERENCE_CACHE=0 turns
    it off; the directory is kept under HIL_REFERENCE_CACHE_MAX
    (reference_cache.py), least recently used files out first."""

    LIMIT = 64 << 20  # outputs of more bytes are not kept

    def __init__(self, path: Path, vectors: int | None = None, n_outputs: int | None = None,
                 covers: dict | None = None, limit: int | None = None) -> None:
        self.path = path
        self.vectors = vectors      # what a kept file must hold (None: whatever it holds)
        self.n_outputs = n_outputs
        self.covers = covers        # what the key is a hash of (the result's provenance says it)
        self.limit = limit          # the directory's cap in bytes (None: not pruned)
        self.kept = False           # these outputs are in the file now (read from it or written to it)
        self.note: str | None = None  # why they were not kept, when they were not

    @classmethod
    def for_job(cls, model: bytes, vectors: list[list[np.ndarray]], arena_size: int,
                n_outputs: int) -> "ReferenceCache | None":
        """The job's cache file, or None when there is no cache (turned off,
        or the cache directory cannot be used). A cap that is no size is bad
        input (UsageError), raised before anything runs."""
        if os.environ.get("HIL_REFERENCE_CACHE", "1") == "0":
            return None
        limit, _ = size_limit()
        try:
            from ..build.cmake import cache_root

            inputs = hashlib.sha256()
            for vector in vectors:
                for value in vector:
                    array = np.ascontiguousarray(value)
                    inputs.update(f"{array.dtype.str}{array.shape}".encode())
                    inputs.update(array.data)
            model_sha256 = hashlib.sha256(model)
            covers = {"implementation": _implementation(), "model_sha256": model_sha256.hexdigest(),
                      "vectors": len(vectors), "vectors_sha256": inputs.hexdigest(), "arena_bytes": arena_size,
                      "outputs": n_outputs}
            digest = hashlib.sha256(f"hil-reference/3 {covers['implementation']} arena {arena_size} "
                                    f"outputs {n_outputs} vectors {len(vectors)}\n".encode())
            digest.update(model_sha256.digest() + inputs.digest())
            return cls(cache_root() / "reference" / f"{digest.hexdigest()[:32]}.npz", len(vectors), n_outputs,
                       covers, limit)
        except Exception as exc:  # noqa: BLE001 - no cache is never an error
            log.info("no reference cache: %s", exc)
            return None

    @property
    def key(self) -> str:
        return self.path.stem

    def load(self) -> list[list[np.ndarray]] | None:
        """The cached outputs, or None (none kept, or a file that cannot be
        read: that one is removed, so the outputs computed now replace it)."""
        seen = None
        try:
            seen = os.stat(self.path)
            with np.load(self.path, allow_pickle=False) as data:
                n, k = (int(x) for x in data["shape"])
                if (self.vectors is not None and n != self.vectors) or (self.n_outputs is not None and k != self.n_outputs):
                    raise ValueError(f"it holds {n} vectors of {k} outputs, not {self.vectors} of {self.n_outputs}")
                outputs = [[data[f"v{i}_{j}"] for j in range(k)] for i in range(n)]
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - damaged or foreign: computed again, and replaced
            log.warning("ignoring the cached reference outputs %s (%s): removed, computing them again", self.path, exc)
            self._remove_if_unchanged(seen)
            return None
        touch(self.path)  # used now: pruning keeps it longest
        self.kept = True
        return outputs

    def _remove_if_unchanged(self, seen: os.stat_result | None) -> None:
        """Remove the damaged file, unless another process has replaced it since it was read."""
        if seen is None:  # not even its status could be read: not ours to remove
            return
        with contextlib.suppress(OSError):
            now = os.stat(self.path)
            if (now.st_ino, now.st_mtime_ns, now.st_size) == (seen.st_ino, seen.st_mtime_ns, seen.st_size):
                self.path.unlink()

    def store(self, outputs: list[list[np.ndarray]]) -> None:
        """Keep them (atomically: a reader sees all or none), then prune the
        directory to its cap; never raises."""
        arrays: dict[str, Any] = {f"v{i}_{j}": np.asarray(o) for i, vector in enumerate(outputs) for j, o in enumerate(vector)}
        size = sum(a.nbytes for a in arrays.values())
        if size > min(self.LIMIT, self.limit if self.limit is not None else self.LIMIT):
            self.note = f"not kept: {size_text(size)} of outputs, more than the cache keeps per job"
            log.info("reference outputs not cached (%s)", self.note)
            return
        arrays["shape"] = np.array([len(outputs), len(outputs[0]) if outputs else 0])
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, self.path)
            self.kept = True
        except Exception as exc:  # noqa: BLE001 - disk full, unwritable, an output numpy cannot keep: not kept
            self.note = f"not kept: {exc}"
            log.info("reference outputs not cached (%s): %s", self.path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        if self.limit is not None:
            try:
                prune(self.path.parent, self.limit)
            except Exception as exc:  # noqa: BLE001 - a cache that cannot be pruned only grows
                log.info("reference cache not pruned: %s", exc)

    def provenance(self, source: str) -> dict:
        """Where a job's reference outputs came from (the result's
        provenance.reference_outputs)."""
        return {"source": source, "file": str(self.path), "key": self.key, "kept": self.kept, "note": self.note,
                "covers": self.covers}


def _main() -> None:
    """The child: a job on stdin, its outputs on stdout, one frame per
    vector as each is computed. Anything else that writes to stdout
    (TFLM's C++ logging) is sent to stderr instead, so the replies stay
    clean pickles."""
    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    jobs = sys.stdin.buffer
    kind, *args = pickle.load(jobs)
    if kind == "intermediates":
        reply.write(pickle.dumps(intermediates(*args), protocol=pickle.HIGHEST_PROTOCOL))
        reply.close()
        return
    model, arena_size, n_outputs = args
    invoke = _interpreter(model, arena_size, n_outputs)
    while (chunk := pickle.load(jobs)) is not None:
        for vector in chunk:
            reply.write(pickle.dumps(invoke(vector), protocol=pickle.HIGHEST_PROTOCOL))
            reply.flush()  # now: the runner may be waiting for exactly this vector
    reply.close()


if __name__ == "__main__":
    _main()
