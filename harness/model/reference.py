"""Golden outputs from the TFLite-Micro reference interpreter.

The `tflite-micro` package runs TFLM's own reference kernels, so its outputs
are what the firmware must reproduce bit for bit. It runs in a child process:
a too-small arena or a bad model can kill the interpreter with a
segmentation fault, and that must not take the harness (and the results it
already has) down with it.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from ..errors import InfraError


def _run_reference(model: bytes, vectors: list[list[np.ndarray]], arena_size: int) -> list[list[np.ndarray]]:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    outputs = []
    for vector in vectors:
        for i, value in enumerate(vector):
            interpreter.set_input(value, i)
        interpreter.invoke()
        results, i = [], 0
        while True:
            try:
                results.append(np.array(interpreter.get_output(i), copy=True))
            except (IndexError, RuntimeError, ValueError):
                break
            i += 1
        outputs.append(results)
    return outputs


class ReferenceRunner:
    """Computes references in a child process, concurrently with the boot."""

    def __init__(self, model: bytes, n_outputs: int) -> None:
        self.model = model
        self.n_outputs = n_outputs
        self.arena_size = max(16 << 20, 20 * len(model))
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, vectors: list[list[np.ndarray]]) -> Future:
        return self._pool.submit(_run_reference, self.model, vectors, self.arena_size)

    def result(self, future: Future, timeout: float = 300) -> list[list[np.ndarray]]:
        try:
            outputs = future.result(timeout=timeout)
        except BrokenProcessPool as exc:
            raise InfraError("the TFLite-Micro reference interpreter crashed (its process died)",
                             hint="the model may need a larger arena or be unsupported by TFLM") from exc
        except Exception as exc:
            raise InfraError(f"the TFLite-Micro reference failed: {exc}",
                             hint="check that the model runs in tflite-micro") from exc
        return [out[: self.n_outputs] for out in outputs]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
