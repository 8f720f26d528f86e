"""Golden outputs from the TFLite-Micro reference interpreter.

The `tflite-micro` package runs TFLM's own reference kernels, so its outputs
are what the firmware must reproduce bit for bit. It runs in a child process
(`python -m harness.model.reference`: the job on stdin, the outputs on
stdout): a too-small arena or a bad model can kill the interpreter with a
segmentation fault, and that must not take the harness (and the results it
already has) down with it. The child starts while the firmware builds and
boots, so it costs no wall time.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import subprocess
import sys
import threading

import numpy as np

from ..errors import InfraError


def compute(model: bytes, vectors: list[list[np.ndarray]], arena_size: int,
            n_outputs: int) -> list[list[np.ndarray]]:
    """Run the vectors in order through one interpreter (state carries over
    between invokes exactly as it does on the device)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    outputs = []
    for vector in vectors:
        for i, value in enumerate(vector):
            interpreter.set_input(value, i)
        interpreter.invoke()
        outputs.append([np.array(interpreter.get_output(i), copy=True) for i in range(n_outputs)])
    return outputs


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


class ReferenceRunner:
    """Computes references in a child process, concurrently with the boot.

    The job goes to the child on its stdin and the outputs come back on its
    stdout: no temporary files, so a killed `hil` leaves nothing on disk
    (a job or its outputs can be hundreds of MB). The child gets a
    parent-death signal, so it never outlives `hil` either."""

    def __init__(self, model: bytes, n_outputs: int) -> None:
        self.model = model
        self.n_outputs = n_outputs
        self.arena_size = max(16 << 20, 20 * len(model))
        self._proc: subprocess.Popen | None = None
        self._exchange: threading.Thread | None = None
        self._reply: tuple[bytes, bytes] | None = None

    def submit(self, vectors: list[list[np.ndarray]]) -> None:
        self._start(("outputs", self.model, vectors, self.arena_size, self.n_outputs))

    def submit_intermediates(self, vector: list[np.ndarray], tensors: list[int]) -> None:
        self._start(("intermediates", self.model, vector, tensors, self.arena_size))

    def _start(self, job_args: tuple) -> None:
        self.close()
        job = pickle.dumps(job_args, protocol=pickle.HIGHEST_PROTOCOL)
        parent = os.getpid()
        self._reply = None
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "harness.model.reference"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, preexec_fn=lambda: _die_with_parent(parent))

        def exchange() -> None:  # feeding stdin while draining stdout: neither pipe can fill up and stall
            try:
                self._reply = proc.communicate(job)
            except (OSError, ValueError):  # closed under us (close() or the child killed)
                self._reply = (b"", b"")

        self._exchange = threading.Thread(target=exchange, name="hil-reference-pipe", daemon=True)
        self._exchange.start()

    def result(self, timeout: float = 600) -> list[list[np.ndarray]]:
        assert self._proc is not None, "submit() first"
        self._exchange.join(timeout)
        if self._exchange.is_alive():
            self.close()
            raise InfraError(f"the TFLite-Micro reference took longer than {timeout:g} s")
        stdout, stderr = self._reply or (b"", b"")
        code = self._proc.returncode
        if code != 0:
            how = (f"died with signal {signal.Signals(-code).name}" if code < 0
                   else f"failed: {stderr.decode(errors='replace').strip().splitlines()[-1:] or code}")
            raise InfraError(f"the TFLite-Micro reference interpreter {how}",
                             hint="the model may need a larger arena or use an operator TFLM lacks")
        try:
            return pickle.loads(stdout)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing
            raise InfraError(f"the TFLite-Micro reference returned no readable result ({exc})") from exc

    def close(self) -> None:
        """Stop the child if it still runs. Safe to call twice."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._exchange is not None:
            self._exchange.join(5)


def _main() -> None:
    """The child: a job on stdin, its outputs on stdout. Anything else that
    writes to stdout (TFLM's C++ logging) is sent to stderr instead, so the
    reply stays one clean pickle."""
    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    kind, *args = pickle.loads(sys.stdin.buffer.read())
    result = compute(*args) if kind == "outputs" else intermediates(*args)
    reply.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    reply.close()


if __name__ == "__main__":
    _main()
