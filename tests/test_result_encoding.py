"""`RunResult.as_json` (the runner's periodic result writes) is the same
document, byte for byte, as encoding `as_dict()` whole, however the vectors
grow or change between writes. Pure data: no emulator needed."""

from __future__ import annotations

import json
import re

from harness.results.result import MISMATCH, PASSED, RunResult, VectorResult, write_json_copies


def _vector(i: int) -> VectorResult:
    ops = [{"index": k, "op": "CONV_2D", "count": 1000 + k + i} for k in range(3)]
    return VectorResult(i, PASSED if i % 3 else MISMATCH, 0.0, 0, {"value": 5000 + i, "kind": "instructions"},
                        operators=ops, top1=i % 4, label=i % 4, cosine=0.5, l2_rel=float("inf"),
                        mismatch={"output": 0, "text": 'quote " and \\ and é'} if i % 3 == 0 else None)


def _same(result: RunResult) -> None:
    def steady(text: str) -> str:  # duration_s is the one field that moves between two encodings
        return re.sub(r'"duration_s": [0-9.e+-]+', '"duration_s": 0', text)

    assert steady(result.as_json()) == steady(json.dumps(result.as_dict(), indent=2) + "\n")


def test_as_json_matches_as_dict_as_vectors_arrive_and_change():
    result = RunResult(platform={"name": "p"}, model={"path": "m.tflite"}, planned=6)
    _same(result)                        # no vector yet: "vectors": []
    for i in range(4):
        result.vectors.append(_vector(i))
        _same(result)                    # each write adds the new vectors to the ones already encoded
    result.vectors[1] = _vector(7)       # a vector replaced after it was written is encoded again
    _same(result)
    del result.vectors[2:]               # and a shorter list is not padded with old text
    _same(result)
    result.status, result.error = "error", {"message": "disk"}
    _same(result)


def test_write_json_copies_takes_the_encoded_text(tmp_path):
    result = RunResult(platform={"name": "p"}, model={"path": "m"})
    result.vectors.append(_vector(1))
    assert write_json_copies([tmp_path / "a.json"], result.as_json()) is None
    assert json.loads((tmp_path / "a.json").read_text())["vectors"][0]["operators"][2]["count"] == 1003
