"""Flashers: how firmware gets onto a real board, and how the board is reset.

A platform file's `[board]` table names one (`flasher = "pyocd"`); each
knows its tool's command line, the option that selects one probe by its
serial number (so the wrong board is never flashed when several are
attached), and how to reset the target without flashing:

| flasher   | tool                      | probe option          | install |
|-----------|---------------------------|-----------------------|---------|
| `pyocd`   | `pyocd load` / `reset`    | `--uid ID`            | `pip install pyocd` |
| `openocd` | `openocd -c "program .."` | `adapter serial ID`   | `apt-get install openocd` |
| `west`    | `west flash`              | `--dev-id ID`         | `pip install west` + a Zephyr workspace |
| `jlink`   | J-Link Commander          | `-USB ID`             | SEGGER's J-Link Software pack |
| `command` | any command template      | `{probe}`             | yours |
| `none`    | the board is flashed already (the build-id check still runs) | | |

A command template (`flash_command`, `reset_command`) is split like a shell
line and each word is filled in separately, so paths with spaces are safe:
`{elf}`, `{hex}`, `{bin}` (the image; hex and bin are made from the ELF
with objcopy when a template asks for them), `{probe}`, `{port}` and
`{python}` (this interpreter).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InfraError, UsageError
from ..platforms import BoardSettings

log = logging.getLogger(__name__)

PLACEHOLDERS = ("elf", "hex", "bin", "probe", "port", "python")


@dataclass
class FlashRequest:
    """What one flash (or reset) needs: the image, the probe, where to log."""

    elf: Path | None
    probe: str | None
    port: str | None
    workdir: Path
    log_path: Path
    objcopy: str = "arm-none-eabi-objcopy"
    _images: dict = field(default_factory=dict)

    def image(self, kind: str) -> Path:
        """The ELF, or an Intel hex / raw binary made from it (once)."""
        if self.elf is None:
            raise UsageError("this flasher step needs a firmware image, and none was given")
        if kind == "elf":
            return self.elf
        if kind not in self._images:
            tool = shutil.which(self.objcopy)
            if not tool:
                raise InfraError(f"`{self.objcopy}` (to make a .{kind} from the ELF) was not found on PATH",
                                 hint="install it: apt-get install -y gcc-arm-none-eabi (binutils-arm-none-eabi)")
            out = self.workdir / f"{self.elf.stem}.{kind}"
            fmt = "ihex" if kind == "hex" else "binary"
            proc = subprocess.run([tool, "-O", fmt, str(self.elf), str(out)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise InfraError(f"objcopy could not make {out.name} from {self.elf}: {proc.stderr.strip()}")
            self._images[kind] = out
        return self._images[kind]


class Flasher:
    """One flashing tool. Subclasses build command lines; `run` executes them."""

    name = "?"
    tool: str | None = None           # the executable that must be on PATH
    install_hint = ""
    #: True when the tool's own command resets and starts the target after
    #: programming (all the real ones do)
    resets_after_flash = True
    #: True when flashing a specific board needs its probe id (otherwise the
    #: tool might pick whichever probe it finds first)
    needs_probe = True

    def __init__(self, board: BoardSettings, platform_name: str) -> None:
        self.board = board
        self.platform_name = platform_name
        self.timeout = board.flash_timeout
        self.extra_args = list(board.flash_args)
        self.last_command: list[str] = []

    # -- to override -------------------------------------------------------------

    def flash_command(self, req: FlashRequest) -> list[str]:
        raise NotImplementedError

    def reset_command(self, req: FlashRequest) -> list[str] | None:
        """The command that resets (and runs) the target, or None if the tool has none."""
        return None

    # -- shared -------------------------------------------------------------------

    def _setting(self, key: str, example: str) -> str:
        value = getattr(self.board, key)
        if not value:
            raise UsageError(f"platform {self.platform_name}: flasher {self.name!r} needs board.{key}",
                             hint=f"add it to the [board] table, e.g. {key} = {example}")
        return value

    def check_tool(self) -> str:
        exe = self.board.executable(self.name) or self.tool
        if exe and not shutil.which(exe):
            raise InfraError(f"flasher {self.name!r} needs `{exe}`, which was not found on PATH",
                             hint=self.install_hint or f"install {exe}")
        return exe or ""

    def version(self) -> str | None:
        return None

    def flash(self, req: FlashRequest) -> dict:
        return self._run("flash", self.flash_command(req), req)

    def reset(self, req: FlashRequest) -> dict:
        cmd = self.reset_command(req)
        if cmd is None:
            raise UsageError(f"platform {self.platform_name}: flasher {self.name!r} cannot reset the board on its own",
                             hint='choose another reset method: board.reset = "rts", "dtr", "protocol" or "command"')
        return self._run("reset", cmd, req)

    def _run(self, what: str, cmd: list[str], req: FlashRequest) -> dict:
        self.last_command = cmd
        req.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(req.log_path, "ab") as log:
            log.write(f"$ {shlex.join(cmd)}\n".encode())
            log.flush()
            try:
                proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      timeout=self.timeout, cwd=req.workdir)
            except FileNotFoundError as exc:
                raise InfraError(f"flasher {self.name!r}: cannot run {cmd[0]!r}: {exc.strerror}",
                                 hint=self.install_hint or "check the command in the platform file") from exc
            except subprocess.TimeoutExpired as exc:
                raise InfraError(f"{what} with {self.name} did not finish within {self.timeout:g} s",
                                 hint=f"its output is in {req.log_path}; raise board.flash_timeout if the "
                                      f"board is just slow") from exc
        elapsed = time.monotonic() - started
        if proc.returncode != 0:
            tail = _tail(req.log_path)
            raise InfraError(f"{what} with {self.name} failed (exit {proc.returncode}): {tail}",
                             hint=f"full output: {req.log_path}; check that the probe"
                                  f"{' ' + req.probe if req.probe else ''} is connected and the board powered")
        return {"flasher": self.name, "step": what, "command": cmd, "seconds": round(elapsed, 3)}


def _tail(path: Path, lines: int = 4) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "no output"
    wanted = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("$ ")]
    errors = [ln for ln in wanted if "error" in ln.lower() or "fail" in ln.lower()]
    chosen = errors[-2:] if errors else wanted[-lines:]
    return " / ".join(chosen) or "no output"


class PyOcd(Flasher):
    name = "pyocd"
    tool = "pyocd"
    install_hint = "pip install pyocd (and, for a CMSIS-Pack target, `pyocd pack install <part>`)"

    def _base(self, sub: str, req: FlashRequest) -> list[str]:
        cmd = [self.check_tool(), sub, "--target", self._setting("pyocd_target", '"stm32l4r5zitx"')]
        if req.probe:
            cmd += ["--uid", req.probe]
        return cmd

    def flash_command(self, req: FlashRequest) -> list[str]:
        # `pyocd load` (alias `flash`) programs, verifies and resets the target
        return self._base("load", req) + ["--format", "elf", *self.extra_args, str(req.image("elf"))]

    def reset_command(self, req: FlashRequest) -> list[str]:
        return self._base("reset", req)


class OpenOcd(Flasher):
    name = "openocd"
    tool = "openocd"
    install_hint = "apt-get install -y openocd"

    def _base(self, req: FlashRequest) -> list[str]:
        configs = self.board.openocd_config
        if not configs:
            self._setting("openocd_config", '["board/st_nucleo_l4.cfg"]')
        cmd = [self.check_tool()]
        for cfg in configs:
            cmd += ["-f", cfg]
        if req.probe:
            cmd += ["-c", f"adapter serial {req.probe}"]
        # no servers: several boards are flashed in parallel, and the fixed
        # default ports (3333, 4444, 6666) would collide
        cmd += ["-c", "gdb_port disabled", "-c", "tcl_port disabled", "-c", "telnet_port disabled"]
        return cmd

    def flash_command(self, req: FlashRequest) -> list[str]:
        elf = str(req.image("elf")).replace("\\", "/")
        return self._base(req) + [*self.extra_args, "-c", f"program {{{elf}}} verify reset exit"]

    def reset_command(self, req: FlashRequest) -> list[str]:
        return self._base(req) + ["-c", "init", "-c", "reset run", "-c", "shutdown"]


class West(Flasher):
    """Zephyr's `west flash`: the image must come from a Zephyr build
    directory (`<build>/zephyr/zephyr.elf`), whose runners.yaml says how the
    board is flashed; board.west_runner picks one (pyocd, openocd, jlink, ...)."""

    name = "west"
    tool = "west"
    install_hint = "pip install west, inside a Zephyr workspace (west init; west update)"

    def _build_dir(self, req: FlashRequest) -> Path:
        elf = req.image("elf").resolve()
        for parent in elf.parents:
            if (parent / "zephyr" / "runners.yaml").exists() or (parent / "CMakeCache.txt").exists():
                if (parent / "zephyr").is_dir():
                    return parent
        if self.board.west_build_dir:
            return Path(self.board.west_build_dir)
        raise UsageError(f"{elf} is not inside a Zephyr build directory, which `west flash` needs",
                         hint="pass the zephyr.elf of a `west build` (BUILD/zephyr/zephyr.elf), or choose "
                              "another flasher (pyocd, openocd, jlink) for this ELF")

    def flash_command(self, req: FlashRequest) -> list[str]:
        cmd = [self.check_tool(), "flash", "--skip-rebuild", "-d", str(self._build_dir(req))]
        if self.board.west_runner:
            cmd += ["--runner", self.board.west_runner]
        cmd += ["--elf-file", str(req.image("elf"))]
        if req.probe:
            cmd += ["--dev-id", req.probe]
        return cmd + self.extra_args


class JLink(Flasher):
    name = "jlink"
    tool = "JLinkExe"
    install_hint = ("install SEGGER's J-Link Software and Documentation Pack (not in any package registry; "
                    "the .deb from SEGGER) so that JLinkExe is on PATH")

    def _script(self, req: FlashRequest, body: str) -> Path:
        path = req.workdir / f"jlink-{os.getpid()}-{body.split()[0]}.jlink"
        path.write_text(body)
        return path

    def _base(self, req: FlashRequest) -> list[str]:
        cmd = [self.check_tool(), "-NoGui", "1", "-ExitOnError", "1", "-AutoConnect", "1",
               "-Device", self._setting("jlink_device", '"NRF52840_XXAA"'),
               "-If", self.board.jlink_interface, "-Speed", str(self.board.jlink_speed)]
        if req.probe:
            cmd += ["-USB", req.probe]
        return cmd

    def flash_command(self, req: FlashRequest) -> list[str]:
        hexfile = req.image("hex")
        script = self._script(req, f"r\nh\nloadfile \"{hexfile}\"\nr\ng\nqc\n")
        return self._base(req) + [*self.extra_args, "-CommandFile", str(script)]

    def reset_command(self, req: FlashRequest) -> list[str]:
        return self._base(req) + ["-CommandFile", str(self._script(req, "r\ng\nqc\n"))]


class Command(Flasher):
    """Any command, from templates in the platform file:
    `flash_command = "my-flash --serial {probe} {hex}"`, optionally
    `reset_command = "..."`. `resets_after_flash = false` in [board] when
    the command only programs."""

    name = "command"

    def __init__(self, board: BoardSettings, platform_name: str) -> None:
        super().__init__(board, platform_name)
        self.resets_after_flash = board.resets_after_flash
        template = board.flash_command
        if not template.strip():
            raise UsageError(f"platform {platform_name}: flasher \"command\" needs board.flash_command",
                             hint='add e.g. flash_command = "my-flasher --serial {probe} {hex}" '
                                  f"(placeholders: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        self.template = template
        self.reset_template = board.reset_command
        self.needs_probe = "probe" in template_fields(template, platform_name)
        if self.reset_template:
            template_fields(self.reset_template, platform_name)

    def check_tool(self) -> str:
        return ""

    def _fill(self, template: str, req: FlashRequest) -> list[str]:
        used = template_fields(template, self.platform_name)
        if "probe" in used and not req.probe:
            raise UsageError(f"platform {self.platform_name}: the flash command uses {{probe}} but no probe id "
                             f"is known", hint="pass --probe ID (the probe's serial number; `hil boards` lists them)")
        values = {"probe": req.probe or "", "port": req.port or "", "python": sys.executable}
        for kind in ("elf", "hex", "bin"):
            if kind in used:
                values[kind] = str(req.image(kind))
        words = shlex.split(template)
        return [w.format(**values) for w in words]

    def flash_command(self, req: FlashRequest) -> list[str]:
        return self._fill(self.template, req)

    def reset_command(self, req: FlashRequest) -> list[str] | None:
        return self._fill(self.reset_template, req) if self.reset_template else None


class NoFlasher(Flasher):
    """The board already runs the firmware (flashed by hand or by another
    machine); hil only talks to it, and the HELLO build-id check still
    refuses a board running anything else."""

    name = "none"
    needs_probe = False
    resets_after_flash = False

    def check_tool(self) -> str:
        return ""

    def flash(self, req: FlashRequest) -> dict:
        return {"flasher": "none", "step": "flash", "command": [], "seconds": 0.0}


FLASHERS: dict[str, type[Flasher]] = {
    "pyocd": PyOcd, "openocd": OpenOcd, "west": West, "jlink": JLink, "command": Command, "none": NoFlasher,
}


def template_fields(template: str, platform_name: str = "?") -> set[str]:
    """The placeholders a command template uses; unknown ones are an error."""
    used: set[str] = set()
    try:
        for _, name, spec, conv in string.Formatter().parse(template):
            if name is None:
                continue
            if name not in PLACEHOLDERS or spec or conv:
                raise UsageError(f"platform {platform_name}: command template {template!r} uses "
                                 f"{{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}, "
                                 f"which is not a placeholder",
                                 hint=f"use only {', '.join('{' + p + '}' for p in PLACEHOLDERS)} "
                                      f"(write {{{{ and }}}} for literal braces)")
            used.add(name)
    except ValueError as exc:
        raise UsageError(f"platform {platform_name}: command template {template!r} is malformed: {exc}",
                         hint="write {{ and }} for literal braces") from exc
    return used


def make_flasher(board: BoardSettings, platform_name: str, override: str | None = None) -> Flasher:
    name = override or board.flasher
    if not name:
        raise UsageError(f"platform {platform_name}: board.flasher is not set",
                         hint=f"add flasher = one of {', '.join(FLASHERS)} to its [board] table, "
                              f"or pass --flasher")
    cls = FLASHERS.get(name)
    if cls is None:
        raise UsageError(f"platform {platform_name}: flasher {name!r} is not known",
                         hint=f"use one of: {', '.join(FLASHERS)}")
    return cls(board, platform_name)
