"""The built-in engine's hand-typed schema facts against TFLite's schema.

The engine reads .tflite flatbuffers with its own reader, so the operator
codes, options union types, tensor types and field slots it uses are typed
by hand in C (firmware/engine/schema.h, engine.h and an `enum { ... }` of
option slots at the top of each kernel that reads options). A wrong number
there reads the wrong field silently. This test reads every one of them from
the C sources and compares it with the schema as the installed tflite-micro
package ships it: its flatc-generated reader
(tflite_micro/tensorflow/lite/micro/python/schema_py_generated.py, from
schema.fbs), where `<Table>Add<Field>(builder, v)` calls
`builder.Prepend...Slot(slot, ...)`. No network, no build, no QEMU.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "firmware" / "engine"

# the tables the loader's ENG_SLOT_<TABLE>_<FIELD> names refer to
SLOT_TABLES = {
    "MODEL": "Model",
    "OPCODE": "OperatorCode",
    "SUBGRAPH": "SubGraph",
    "TENSOR": "Tensor",
    "QUANT": "QuantizationParameters",
    "BUFFER": "Buffer",
    "OPERATOR": "Operator",
    "CALLONCEOPTIONS": "CallOnceOptions",
    "VARHANDLEOPTIONS": "VarHandleOptions",
}

# option-slot enums in the kernels: file -> enum name prefix -> options tables
# it reads (ADD, SUB and MUL share one enum)
KERNEL_SLOT_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "binary.c": {"BINARY": ("AddOptions", "SubOptions", "MulOptions")},
    "concat_split.c": {"CONCAT": ("ConcatenationOptions",), "PACK": ("PackOptions",), "UNPACK": ("UnpackOptions",)},
    "conv.c": {"CONV": ("Conv2DOptions",), "DW": ("DepthwiseConv2DOptions",)},
    "fully_connected.c": {"FC": ("FullyConnectedOptions",)},
    "pooling.c": {"POOL": ("Pool2DOptions",)},
    "reduce.c": {"REDUCER": ("ReducerOptions",)},
    "softmax.c": {"SOFTMAX": ("SoftmaxOptions",)},
    "strided_slice.c": {"SS": ("StridedSliceOptions",)},
}
# kernel enums that are not option slots
NOT_SLOTS = {("quantize.c", "KIND")}
# short C field names for schema fields
FIELD_ALIASES = {
    "ACTIVATION": "FusedActivationFunction",
    "DILATION_W": "DilationWFactor",
    "DILATION_H": "DilationHFactor",
    "FILTER_W": "FilterWidth",
    "FILTER_H": "FilterHeight",
}


@pytest.fixture(scope="module")
def schema() -> ModuleType:
    spec = importlib.util.find_spec("tflite_micro")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the tflite-micro package (the reference interpreter) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "tensorflow/lite/micro/python/schema_py_generated.py"
    if not path.is_file():
        pytest.skip(f"this tflite-micro has no generated schema reader at {path}")
    module_spec = importlib.util.spec_from_file_location("hil_tflite_schema", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


class _SlotRecorder:
    """Stands in for a flatbuffers Builder: records the slot a field is written to."""

    def __init__(self) -> None:
        self.slots: list[int] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if not name.startswith("Prepend") or not name.endswith("Slot"):
            raise AttributeError(name)
        return lambda slot, *args: self.slots.append(slot)


def schema_slot(schema: ModuleType, table: str, field: str) -> int:
    adder = getattr(schema, f"{table}Add{field}", None)
    assert adder is not None, f"schema table {table} has no field {field}"
    recorder = _SlotRecorder()
    adder(recorder, 0)
    assert len(recorder.slots) == 1
    return recorder.slots[0]


def camel(snake: str) -> str:
    return FIELD_ALIASES.get(snake) or "".join(part.capitalize() for part in snake.split("_"))


def c_enum_values(source: str) -> dict[str, int]:
    """NAME = value pairs of every `enum { ... }` and `#define NAME N` in C source."""
    values: dict[str, int] = {}
    for body in re.findall(r"enum\s*(?:\w+\s*)?\{([^}]*)\}", source):
        for name, value in re.findall(r"(\w+)\s*=\s*(-?\d+)", re.sub(r"/\*.*?\*/", "", body, flags=re.S)):
            values[name] = int(value)
    return values


def test_operator_codes_and_options_types_match_the_schema(schema):
    values = c_enum_values((ENGINE / "schema.h").read_text())
    ops = {k[len("ENG_OP_"):]: v for k, v in values.items() if k.startswith("ENG_OP_")}
    options = {k[len("ENG_OPT_"):]: v for k, v in values.items() if k.startswith("ENG_OPT_")}
    assert len(ops) > 30 and len(options) > 15
    for name, code in ops.items():
        assert getattr(schema.BuiltinOperator, name) == code, f"ENG_OP_{name}"
    union = {k.lower(): v for k, v in vars(schema.BuiltinOptions).items() if k.endswith("Options")}
    for name, code in options.items():
        key = name.replace("_", "").lower() + "options"
        assert union.get(key) == code, f"ENG_OPT_{name} = {code}, schema BuiltinOptions: {union.get(key)}"


def test_loader_field_slots_match_the_schema(schema):
    values = c_enum_values((ENGINE / "schema.h").read_text())
    slots = {k: v for k, v in values.items() if k.startswith("ENG_SLOT_")}
    assert len(slots) >= 25
    for name, slot in slots.items():
        table_key, field = next((t, name[len(f"ENG_SLOT_{t}_"):]) for t in SLOT_TABLES if name.startswith(f"ENG_SLOT_{t}_"))
        assert schema_slot(schema, SLOT_TABLES[table_key], camel(field)) == slot, name


def test_tensor_types_match_the_schema(schema):
    values = c_enum_values((ENGINE / "engine.h").read_text())
    dtypes = {k[len("ENG_"):]: v for k, v in values.items() if k.startswith("ENG_") and not k.startswith("ENG_E_")
              and k != "ENG_OK"}
    assert {"FLOAT32", "INT8", "RESOURCE"} <= set(dtypes)
    for name, value in dtypes.items():
        assert getattr(schema.TensorType, name) == value, f"ENG_{name}"
    # the names errors.c prints are indexed by the type's value
    table = re.search(r"eng_dtype_name\(int dtype\)\s*\{(.*?)\};", (ENGINE / "errors.c").read_text(), re.S)
    assert table is not None, "errors.c: eng_dtype_name's table not found"
    names = re.findall(r'"([a-z0-9_]+)"', table.group(1))
    for value, name in enumerate(names):
        assert getattr(schema.TensorType, name.upper()) == value, name


def test_kernel_option_slots_match_the_schema(schema):
    checked = 0
    for path in sorted((ENGINE / "kernels").glob("*.c")):
        values = c_enum_values(path.read_text())
        prefixes = KERNEL_SLOT_ENUMS.get(path.name, {})
        for name, slot in values.items():
            prefix = next((p for p in sorted(prefixes, key=len, reverse=True) if name.startswith(p + "_")), None)
            if prefix is None:
                assert (path.name, name.split("_")[0]) in NOT_SLOTS, (
                    f"{path.name}: enum {name} is not checked against the schema: add its options table to "
                    "KERNEL_SLOT_ENUMS in this test (or to NOT_SLOTS if it is no field slot)")
                continue
            for table in prefixes[prefix]:
                assert schema_slot(schema, table, camel(name[len(prefix) + 1:])) == slot, f"{path.name}: {name} ({table})"
                checked += 1
    assert checked >= 30
