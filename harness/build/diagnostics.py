"""Read a build log for what a person needs first: the first error, with
its file and line, and the linker's memory-region table.

Understands GCC/Clang diagnostics (`file:line:col: error: ...`, `fatal
error`), GNU ld (`file:line: undefined reference to ...`, region
overflows, `cannot find -lx`), CMake (`CMake Error at file:line`), Ninja
and Make failures, and Kconfig errors of a Zephyr build.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_COMPILER = re.compile(
    r"^(?P<file>[^\s:][^:\n]*?):(?P<line>\d+):(?:(?P<col>\d+):)?\s*"
    r"(?:(?:fatal )?error:\s*(?P<msg>.*)|(?P<ld>(?:undefined reference to|multiple definition of).*))$")
# ld without debug information: "main.cc:(.text.main+0x21): undefined reference to `x'"
_LD_SECTION = re.compile(r"^(?P<file>[^\s:][^:\n]*?):\([^)]*\):\s*(?P<msg>(?:undefined reference to|multiple definition "
                         r"of).*)$")
_LD_PREFIX = re.compile(r"^\S*?\b(?:ld(?:\.bfd|\.gold|\.lld)?|collect2)(?:\.exe)?:\s+")
_LINKER_PROBLEM = re.compile(r"\b(?:cannot find|overflowed|undefined|error|will not fit|multiple definition|"
                             r"not defined)\b")
# GNU as on the compiler's temporary file: "/tmp/ccAb12.s:873: Error: instruction not allowed in IT block"
_ASSEMBLER = re.compile(r"^(?P<file>[^\s:]+\.s):(?P<line>\d+): Error: (?P<msg>.*)$")
# which source a failed step compiled: Ninja's command line ("-c src.cc"), or Make's "Building CXX object"
_COMPILED_SOURCE = re.compile(r"\s-c\s+(?P<src>\S+\.(?:c|cc|cpp|cxx|C|S|s))(?:\s|$)")
_MAKE_OBJECT = re.compile(r"Building (?:C|CXX|ASM) object (?:\S*?\.dir/)?(?P<src>\S+?)\.(?:o|obj)$")
_CMAKE = re.compile(r"^CMake Error(?: at (?P<file>[^:\n]+):(?P<line>\d+) \((?P<cmd>[^)]*)\))?:\s*(?P<msg>.*)$")
_KCONFIG = re.compile(r"^(?:error|warning): (?P<msg>.*(?:Kconfig|CONFIG_).*)$")
_MEMORY_ROW = re.compile(r"^\s*(?P<region>[A-Za-z_][\w.]*):\s+(?P<used>\d+(?:\.\d+)?)\s*(?P<uu>[KMG]?B)\s+"
                         r"(?P<size>\d+(?:\.\d+)?)\s*(?P<su>[KMG]?B)\s+(?P<pct>[\d.]+)%")
_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}


@dataclass(frozen=True)
class Diagnostic:
    """The first error of a build."""
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    source_line: str | None = None  # the compiler's quote of the offending line
    more: int = 0                   # further errors after this one

    def location(self) -> str:
        if not self.file:
            return ""
        loc = f"{self.file}:{self.line}" if self.line else self.file
        return f"{loc}:{self.column}" if self.column else loc

    def summary(self) -> str:
        text = f"{self.location()}: {self.message}" if self.file else self.message
        if self.more:
            text += f" (and {self.more} more error{'s' if self.more > 1 else ''})"
        return text

    def as_dict(self) -> dict:
        return {"message": self.message, "file": self.file, "line": self.line, "column": self.column,
                "source_line": self.source_line, "more": self.more}


def _relative(path: str, roots: list[Path]) -> str:
    p = Path(path)
    for root in roots:
        try:
            return str(p.resolve().relative_to(root.resolve()))
        except (ValueError, OSError):
            continue
    return path


def first_error(log: str, roots: list[Path] | None = None) -> Diagnostic:
    """The first error in `log`; file paths relative to the first of `roots`
    that contains them."""
    roots = roots or []
    lines = log.splitlines()
    found: Diagnostic | None = None
    count = 0
    for i, line in enumerate(lines):
        text = line.strip()
        ld = _LD_PREFIX.match(text)
        if ld:
            text = text[ld.end():]
            if "in function" in text and text.endswith("':"):
                continue  # context for the next line's error
        m = _LD_SECTION.match(text)
        if m and found is None:
            found = Diagnostic(m["msg"].strip(), _relative(m["file"], roots))
            count += 1
            continue
        m = _ASSEMBLER.match(text)
        if m:
            count += 1
            if found is None:
                found = _assembler_error(m, lines[:i], roots)
            continue
        m = _COMPILER.match(text)
        if m:
            count += 1
            if found is None:
                msg = (m["msg"] if m["msg"] is not None else m["ld"]).strip()
                quote = None
                if i + 1 < len(lines) and "|" in lines[i + 1]:  # GCC: "   12 |     foo();"
                    quote = lines[i + 1].split("|", 1)[1].strip() or None
                found = Diagnostic(msg, _relative(m["file"], roots), int(m["line"]),
                                   int(m["col"]) if m["col"] else None, quote)
            continue
        if found is not None:
            continue
        m = _CMAKE.match(line.strip())
        if m:
            # CMake's message is on the following indented lines
            parts = [m["msg"]] if m["msg"] else []
            for follow in lines[i + 1:i + 8]:
                if follow.strip() and not follow.startswith(" "):
                    break
                if follow.strip():
                    parts.append(follow.strip())
            msg = " ".join(parts).strip() or "CMake configuration failed"
            if m["file"]:
                return Diagnostic(msg, _relative(m["file"], roots), int(m["line"]))
            return Diagnostic(msg)
        if ld and _LINKER_PROBLEM.search(text) and "returned 1 exit status" not in text:
            return Diagnostic(f"linker: {text.removeprefix('error: ')}")
        m = _KCONFIG.match(line.strip())
        if m:
            return Diagnostic(f"Kconfig: {m['msg'].strip()}")
    if found is not None:
        return Diagnostic(found.message, found.file, found.line, found.column, found.source_line, count - 1)
    for line in lines:
        if re.search(r"\berror\b", line, re.IGNORECASE) and not line.lstrip().startswith("-- "):
            return Diagnostic(line.strip())
    tail = [ln.strip() for ln in lines if ln.strip()][-3:]
    return Diagnostic(" / ".join(tail) or "no output")


def _assembler_error(m: re.Match, before: list[str], roots: list[Path]) -> Diagnostic:
    """An assembler error names the compiler's temporary .s file, which is
    gone: name the source being compiled instead (the nearest compile
    command or Make's "Building ... object" line above it)."""
    temporary = f"{m['file']} line {m['line']}"
    for line in reversed(before):
        found = _COMPILED_SOURCE.search(line) or _MAKE_OBJECT.search(line.strip())
        if found:
            return Diagnostic(f"assembler: {m['msg'].strip()} (the compiler's output for this file; "
                              f"{temporary})", _relative(found["src"], roots))
    return Diagnostic(f"assembler: {m['msg'].strip()} ({temporary}; the compiled source is not in the log)")


def memory_usage(log: str) -> dict[str, dict[str, int]]:
    """The linker's `--print-memory-usage` table (the last one in the log):
    {region: {"used": bytes, "size": bytes}}."""
    tables: list[dict] = []
    current: dict | None = None
    for line in log.splitlines():
        if line.strip().startswith("Memory region") and "Used Size" in line:
            current = {}
            tables.append(current)
            continue
        if current is None:
            continue
        m = _MEMORY_ROW.match(line)
        if m:
            current[m["region"]] = {"used": int(float(m["used"]) * _UNITS[m["uu"]]),
                                    "size": int(float(m["size"]) * _UNITS[m["su"]])}
        elif line.strip():
            current = None
    for table in reversed(tables):
        if table:
            return table
    return {}
