"""Localisation, a step of a run: find where the device's outputs diverge
from the reference by running the graph one operator further at a time
(INVOKE UNTIL), reading that operator's outputs from the device
(GET_TENSOR) and handing them, with the same tensors of the TFLM reference
(kept with kPreserveAllTensors), to checks/localize.py to judge. The first
operator whose output differs is where the bug is.

A model that keeps state across invokes (resource variables) is not
localised: partial invokes would change its state.
"""

from __future__ import annotations

import logging

import numpy as np

from .checks.localize import STATEFUL, divergence
from .link.protocol import DeviceClient
from .model.reference import ReferenceRunner
from .model.tflite import ModelInfo

log = logging.getLogger(__name__)


def localize(client: DeviceClient, model: ModelInfo, vector: list[np.ndarray], vector_index: int,
             reference: ReferenceRunner) -> dict:
    """A `localization` entry for the result: the first diverging operator,
    or None with the number of operators that matched."""
    if any(op.name in STATEFUL for op in model.operators):
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
            checked += 1
            found = divergence(client.get_tensor(t), golden[t], spec.dtype)
            if found is not None:
                return {"vector": vector_index, "tensors_checked": checked, "first_divergence": {
                    "op_index": op.index, "op": op.name, "tensor": t, "tensor_name": spec.name, **found}}
    return {"vector": vector_index, "tensors_checked": checked, "first_divergence": None}
