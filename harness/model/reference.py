"""Golden outputs from the TFLite-Micro reference interpreter.

The `tflite-micro` package runs TFLM's own reference kernels, so its outputs
are what the firmware must reproduce bit for bit. It runs in a child process
(`python -m harness.model.reference IN OUT`): a too-small arena or a bad
model can kill the interpreter with a segmentation fault, and that must not
take the harness (and the results it already has) down with it. The child
starts while the firmware builds and boots, so it costs no wall time.
"""

from __future__ import annotations

import pickle
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

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


class ReferenceRunner:
    """Computes references in a child process, concurrently with the boot."""

    def __init__(self, model: bytes, n_outputs: int) -> None:
        self.model = model
        self.n_outputs = n_outputs
        self.arena_size = max(16 << 20, 20 * len(model))
        self._tmp = tempfile.TemporaryDirectory(prefix="hil-reference-")
        self._proc: subprocess.Popen | None = None

    def submit(self, vectors: list[list[np.ndarray]]) -> None:
        self._start(("outputs", self.model, vectors, self.arena_size, self.n_outputs))

    def submit_intermediates(self, vector: list[np.ndarray], tensors: list[int]) -> None:
        self._start(("intermediates", self.model, vector, tensors, self.arena_size))

    def _start(self, job_args: tuple) -> None:
        job = Path(self._tmp.name) / "job.pickle"
        job.write_bytes(pickle.dumps(job_args))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.model.reference", str(job), str(job.with_suffix(".out"))],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def result(self, timeout: float = 600) -> list[list[np.ndarray]]:
        assert self._proc is not None, "submit() first"
        try:
            _, stderr = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            raise InfraError(f"the TFLite-Micro reference took longer than {timeout:g} s") from None
        code = self._proc.returncode
        if code != 0:
            how = (f"died with signal {signal.Signals(-code).name}" if code < 0
                   else f"failed: {stderr.decode(errors='replace').strip().splitlines()[-1:] or code}")
            raise InfraError(f"the TFLite-Micro reference interpreter {how}",
                             hint="the model may need a larger arena or use an operator TFLM lacks")
        out = Path(self._tmp.name) / "job.out"
        return pickle.loads(out.read_bytes())

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._tmp.cleanup()


def _main(job: str, out: str) -> None:
    kind, *args = pickle.loads(Path(job).read_bytes())
    result = compute(*args) if kind == "outputs" else intermediates(*args)
    Path(out).write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
