"""Find where the device's outputs diverge from the reference: run the
graph one operator further at a time (INVOKE UNTIL), read that operator's
outputs from the device (GET_TENSOR), and compare them with the same
tensors of the TFLM reference (kept with kPreserveAllTensors). The first
operator whose output differs is where the bug is.

A model that keeps state across invokes (resource variables) is not
localised: partial invokes would change its state.
"""

from __future__ import annotations

import logging

import numpy as np

from ..link.protocol import DeviceClient
from ..model.reference import ReferenceRunner
from ..model.tflite import ModelInfo

log = logging.getLogger(__name__)


def localize(client: DeviceClient, model: ModelInfo, vector: list[np.ndarray], vector_index: int,
             reference: ReferenceRunner) -> dict:
    """A `localization` entry for the result: the first diverging operator,
    or None with the number of operators that matched."""
    if any(op.name in ("VAR_HANDLE", "ASSIGN_VARIABLE", "READ_VARIABLE") for op in model.operators):
        return {"vector": vector_index, "skipped": "the model keeps state across invokes (resource variables)"}
    wanted = sorted({t for op in model.operators for t in op.outputs if t in model.tensors})
    reference.submit_intermediates(vector, wanted)
    golden = reference.result()
    raw_inputs = [np.ascontiguousarray(v, dtype=s.dtype).tobytes() for s, v in zip(model.inputs, vector)]
    checked = 0
    for op in model.operators:
        for i, raw in enumerate(raw_inputs):  # earlier partial runs may have reused the input memory
            client.set_input(i, raw)
        client.invoke(until=op.index)
        for t in op.outputs:
            spec = model.tensors.get(t)
            if spec is None or t not in golden:
                continue
            got = np.frombuffer(client.get_tensor(t), dtype=spec.dtype)
            want = np.asarray(golden[t]).reshape(-1)
            checked += 1
            if got.size != want.size or got.tobytes() != want.astype(spec.dtype).tobytes():
                diff = (np.abs(got.astype(np.float64) - want.astype(np.float64))
                        if got.size == want.size else np.array([np.inf]))
                return {"vector": vector_index, "tensors_checked": checked, "first_divergence": {
                    "op_index": op.index, "op": op.name, "tensor": t, "tensor_name": spec.name,
                    "max_abs_diff": float(np.nanmax(diff)), "mismatches": int(np.count_nonzero(diff)),
                    "elements": int(want.size)}}
    return {"vector": vector_index, "tensors_checked": checked, "first_divergence": None}


def describe(entry: dict) -> str:
    if entry.get("skipped"):
        return f"not localised: {entry['skipped']}"
    d = entry.get("first_divergence")
    if d is None:
        return f"all {entry['tensors_checked']} intermediate tensors match the reference (vector {entry['vector']})"
    return (f"first divergence at operator {d['op_index']} ({d['op']}), tensor {d['tensor']} "
            f"'{d['tensor_name']}': {d['mismatches']}/{d['elements']} elements differ, largest |diff| "
            f"{d['max_abs_diff']:g} (vector {entry['vector']})")
