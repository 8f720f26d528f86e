"""Boards in a shared lab, through labgrid: a coordinator knows the lab's
places (a board with its serial port, probe and power switch, exported by
the lab host it hangs off); hil acquires a place, uses its resources and
releases it.

How hil talks to labgrid (labgrid 26, gRPC coordinator):
- one `labgrid.remote.client.ClientSession` per hil process, in a thread of
  its own running an asyncio loop. The session mirrors every place and
  resource the coordinator publishes, so reading who holds a place costs
  nothing; acquiring and releasing are the coordinator's own
  AcquirePlace/ReleasePlace calls (atomic in the coordinator: of two clients
  asking at once, one gets the place and the other "already acquired").
- the link is the place's `NetworkSerialPort` (RFC 2217 or raw TCP, as the
  exporter's ser2net serves it), opened by hil's own pyserial link;
- power and reset go through labgrid's power drivers (NetworkPowerDriver for
  a `NetworkPowerPort`, USBPowerDriver for a hub port, YKUSH, ...), built
  from the place's resources as labgrid's own client builds them;
- flashing is hil's flashers (platform file), run where hil runs, with the
  probe id from the place's `probe` tag.

A place hil did not acquire itself, in this process, is never flashed,
reset or powered: a place held by anyone else (another user, or another
hil of the same user) is waited for, with a progress line naming who holds
it, until `wait_s` is over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import InfraError, UsageError

log = logging.getLogger(__name__)

DEFAULT_PORT = 20408
DEFAULT_WAIT_S = 600.0

#: exported power resources and the labgrid driver that switches each
POWER_DRIVERS = {
    "NetworkPowerPort": "NetworkPowerDriver",        # a PDU or relay on the network (model = its protocol)
    "NetworkUSBPowerPort": "USBPowerDriver",         # a hub port switched with uhubctl on the lab host
    "NetworkYKUSHPowerPort": "YKUSHPowerDriver",     # a YKUSH switchable USB hub
    "NetworkSiSPMPowerPort": "SiSPMPowerDriver",     # a Gembird SiS-PM socket
    "TasmotaPowerPort": "TasmotaPowerDriver",        # a Tasmota plug over MQTT
    "PDUDaemonPort": "PDUDaemonDriver",              # a PDU through pdudaemon
}
SERIAL_RESOURCES = ("NetworkSerialPort",)
PROBE_RESOURCES = ("NetworkUSBDebugger", "NetworkUSBFlashableDevice")


def _install_hint() -> str:
    return "install labgrid (pip install 'hil[labgrid]', or pip install labgrid)"


# -- what the user asks for -------------------------------------------------------------------------

def parse_tags(items: list[str] | tuple[str, ...], where: str = "--place-tag") -> dict[str, str]:
    """KEY=VALUE words (labgrid's tag syntax) as a dict."""
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not re.fullmatch(r"[a-z][a-z0-9_]+", key) or not value:
            raise UsageError(f"{where} {item!r} is not KEY=VALUE with a lower-case key of 2 or more letters",
                             hint=f"e.g. {where} board=nucleo-l4r5zi (`hil boards` lists the places' tags)")
        tags[key] = value
    return tags


@dataclass(frozen=True)
class PlaceWanted:
    """A place by name, or any place whose tags include these."""

    name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()

    def matches(self, place: "PlaceInfo") -> bool:
        if self.name is not None:
            return place.name == self.name or self.name in place.aliases
        return all(place.tags.get(k) == v for k, v in self.tags)

    def describe(self) -> str:
        if self.name is not None:
            return f"place {self.name}"
        return "a place with " + ", ".join(f"{k}={v}" for k, v in self.tags)


def coordinator_address(root: Path | None = None, explicit: str | None = None) -> tuple[str, str]:
    """The coordinator's HOST:PORT and where it came from: `explicit`, then
    hil.toml's [labgrid] coordinator (in `root`, default the current
    directory), then LG_COORDINATOR (labgrid's own variable)."""
    if explicit:
        return _with_port(explicit), "the command line"
    from_file = labgrid_settings(root).get("coordinator")
    if from_file:
        return _with_port(from_file), "hil.toml [labgrid] coordinator"
    env = os.environ.get("LG_COORDINATOR")
    if env:
        return _with_port(env), "LG_COORDINATOR"
    raise UsageError("no labgrid coordinator is configured",
                     hint='set coordinator = "host:20408" in the labgrid table of hil.toml, or the '
                          "LG_COORDINATOR environment variable")


def labgrid_settings(root: Path | None = None) -> dict:
    """hil.toml's [labgrid] table, read on its own (for `hil run` and `hil
    boards`, which do not need the rest of the project file)."""
    path = Path(root or Path.cwd()) / "hil.toml"
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}  # `hil test` reports a damaged hil.toml; here it just has no [labgrid]
    table = data.get("labgrid", {})
    if not isinstance(table, dict):
        return {}
    coordinator, wait_s = table.get("coordinator"), table.get("wait_s")
    if coordinator is not None and not (isinstance(coordinator, str) and coordinator.strip()):
        raise UsageError(f"{path}: `labgrid.coordinator` must be a non-empty string (got {coordinator!r})",
                         hint='coordinator = "labhost:20408"')
    if wait_s is not None and not (isinstance(wait_s, (int, float)) and not isinstance(wait_s, bool) and wait_s >= 0):
        raise UsageError(f"{path}: `labgrid.wait_s` must be a number of seconds, 0 or more (got {wait_s!r})",
                         hint="wait_s = 600")
    return table


def _with_port(address: str) -> str:
    address = address.strip()
    return address if re.search(r":\d+$", address) else f"{address}:{DEFAULT_PORT}"


# -- the coordinator ------------------------------------------------------------------------------

@dataclass
class ResourceInfo:
    exporter: str
    group: str
    cls: str
    name: str
    params: dict
    avail: bool


@dataclass
class PlaceInfo:
    """A place as the coordinator publishes it, with the resources it matches."""

    name: str
    tags: dict
    aliases: list
    comment: str
    acquired: str | None          # "host/user" of the holder, or None
    changed: float
    reservation: str | None
    resources: list[ResourceInfo] = field(default_factory=list)

    def find(self, classes) -> ResourceInfo | None:
        for r in self.resources:
            if r.cls in classes:
                return r
        return None

    @property
    def serial_url(self) -> str | None:
        r = self.find(SERIAL_RESOURCES)
        if r is None:
            return None
        scheme = "socket" if r.params.get("protocol") == "raw" else "rfc2217"
        return f"{scheme}://{r.params.get('host')}:{r.params.get('port')}"

    @property
    def probe(self) -> str | None:
        """The debug probe's serial number: the `probe` tag, else an exported
        USB debugger's serial (ID_SERIAL_SHORT)."""
        if self.tags.get("probe"):
            return self.tags["probe"]
        r = self.find(PROBE_RESOURCES)
        if r is not None:
            return ((r.params.get("extra") or {}).get("serial")
                    or (r.params.get("match") or {}).get("ID_SERIAL_SHORT"))
        return None

    def capabilities(self) -> list[str]:
        caps = []
        if self.serial_url:
            caps.append(f"serial {self.serial_url}")
        power = self.find(POWER_DRIVERS)
        if power is not None:
            caps.append(f"power ({power.cls}{', ' + power.params['model'] if power.params.get('model') else ''})")
        if self.probe:
            caps.append(f"probe {self.probe}")
        missing = [r for r in self.resources if not r.avail]
        if missing:
            caps.append("unavailable: " + ", ".join(r.cls for r in missing))
        return caps

    def as_dict(self) -> dict:
        return {"name": self.name, "tags": self.tags, "aliases": self.aliases, "comment": self.comment,
                "acquired_by": self.acquired, "reservation": self.reservation,
                "serial": self.serial_url, "probe": self.probe, "capabilities": self.capabilities(),
                "resources": [{"path": f"{r.exporter}/{r.group}/{r.cls}/{r.name}", "class": r.cls,
                               "available": r.avail,
                               "params": {k: v for k, v in r.params.items() if k != "extra"}}
                              for r in self.resources]}


_sessions: dict[str, "Coordinator"] = {}
_sessions_lock = threading.Lock()


def connect(address: str) -> "Coordinator":
    """The process's session with the coordinator at `address` (shared: gRPC
    puts every channel of a process to one address on one connection, and
    the coordinator takes one client stream per connection); `close()` it
    when done."""
    with _sessions_lock:
        session = _sessions.get(address)
        if session is None or not session.alive:
            session = _sessions[address] = Coordinator(address)
        session.users += 1
        return session


class Coordinator:
    """A session with a labgrid coordinator, usable from any thread (made by `connect`)."""

    def __init__(self, address: str, connect_timeout: float = 10.0) -> None:
        self.users = 0
        # hil forks (the reference, flashers) while the session's thread is in gRPC: no fork handlers, no
        # notes about skipping them on stderr
        os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        try:
            from labgrid.remote.client import ClientSession
            from labgrid.remote.generated import labgrid_coordinator_pb2 as pb
        except ImportError as exc:
            raise InfraError(f"labgrid is not installed ({exc})", hint=_install_hint()) from exc
        self.address = address
        self._pb = pb
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hil-labgrid", daemon=True)
        self._thread.start()
        self.session = None

        async def connect():
            session = ClientSession(address, self._loop)
            await session.start()
            return session

        try:
            self.session = self._call(connect(), connect_timeout)
        except Exception as exc:
            self._shutdown()
            raise InfraError(f"cannot reach the labgrid coordinator at {address}: {_reason(exc)}",
                             hint="is labgrid-coordinator running there (and the port open)? check the address "
                                  "(coordinator in the labgrid table of hil.toml, or LG_COORDINATOR)") from exc
        self.identity = f"{self.session.gethostname()}/{self.session.getuser()}"

    def _live(self):
        """The client session, which close() ends: a closed Coordinator is not asked again."""
        if self.session is None:
            raise InfraError(f"the session with the labgrid coordinator at {self.address} is closed",
                             hint="this is a bug in hil: a lease was used after its coordinator was closed")
        return self.session

    def _call(self, coro, timeout: float = 15.0):
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:  # a coordinator that hangs is the lab's problem (exit 3), not a crash in hil
            future.cancel()
            raise InfraError(f"the labgrid coordinator at {self.address} did not answer within {timeout:g} s",
                             hint="check it (`labgrid-client -x ADDRESS places`); `labgrid-client who` shows "
                                  "whether a place was acquired meanwhile") from None

    @property
    def alive(self) -> bool:
        return self.session is not None and not self.session.stopping.is_set()

    def answers(self, timeout: float = 3.0) -> bool:
        """Whether the coordinator answers a request now: its client stream
        does not always end at once when the coordinator dies (seen with a
        SIGKILLed coordinator while hil forked a flasher), a request does."""
        if not self.alive:
            return False
        session = self._live()

        async def ping():
            await session.stub.GetPlaces(self._pb.GetPlacesRequest(), timeout=timeout)

        try:
            self._call(ping(), timeout + 2)
        except Exception:
            return False
        return True

    def places(self) -> dict[str, PlaceInfo]:
        """Every place, as the session last heard from the coordinator."""
        session = self.session
        if session is None:
            return {}

        async def snapshot():  # read in the loop's thread, between updates
            found = {}
            for name, place in session.places.items():
                info = PlaceInfo(name, dict(place.tags), list(place.aliases), place.comment or "",
                                 place.acquired, place.changed, place.reservation)
                for exporter, groups in session.resources.items():
                    for group_name, group in groups.items():
                        for rname, entry in group.items():
                            if not entry.data or "cls" not in entry.data:
                                continue
                            if place.getmatch((exporter, group_name, entry.cls, rname)) is None:
                                continue
                            info.resources.append(ResourceInfo(exporter, group_name, entry.cls, rname,
                                                               dict(entry.params), bool(entry.avail)))
                found[name] = info
            return found

        return self._call(snapshot())

    def acquire(self, name: str) -> str | None:
        """Acquire a place; None when done, else the coordinator's reason."""
        import grpc

        session = self._live()

        async def acquire():
            await session.stub.AcquirePlace(self._pb.AcquirePlaceRequest(placename=name))
            await session.sync_with_coordinator()

        try:
            self._call(acquire())
        except grpc.aio.AioRpcError as exc:
            try:  # refused: someone holds it; the session's view then names who (waiting lines say it)
                self._call(session.sync_with_coordinator(), 5)
            except Exception:
                pass
            return exc.details()
        return None

    def release(self, name: str) -> None:
        session = self._live()

        async def release():
            await session.stub.ReleasePlace(self._pb.ReleasePlaceRequest(placename=name))
            await session.sync_with_coordinator()

        self._call(release())

    def close(self) -> None:
        with _sessions_lock:
            self.users -= 1
            if self.users > 0:
                return
            if _sessions.get(self.address) is self:
                del _sessions[self.address]
        self._shutdown()

    def _shutdown(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None

            async def stop():
                await session.stop()
                await session.close()

            try:
                self._call(stop(), 5)
            except Exception:
                pass  # the coordinator is gone: nothing to close politely
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()


def _reason(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        return details()
    return str(exc) or type(exc).__name__


# -- holding a place ---------------------------------------------------------------------------

#: places this process holds, by name (a place acquired by "us" in the
#: coordinator but not in this set belongs to another hil of the same user)
_held: dict[str, "Lease"] = {}
_held_lock = threading.Lock()


class Lease:
    """A place this process acquired: its link, its probe, its power port."""

    def __init__(self, coordinator: Coordinator, place: PlaceInfo, waited_s: float, acquire_s: float) -> None:
        self.coordinator = coordinator
        self.place = place
        self.waited_s = waited_s
        self.acquire_s = acquire_s
        self.released = False
        self.release_error: str | None = None
        self.taken_away = False   # lost() saw the place no longer held by this hil: not ours to release
        self.power_actions: list[dict] = []
        self._power = None

    @property
    def name(self) -> str:
        return self.place.name

    def board_spec(self):
        from .board import BoardSpec

        url = self.place.serial_url
        if url is None:  # acquire() hands out no lease on a place without one
            raise InfraError(f"place {self.name} has no serial port", hint="`labgrid-client -p "
                             f"{self.name} show` lists what it matches")
        probe = self.place.probe
        return BoardSpec(url, probe, f"place {self.name}'s probe" if probe else None, None,
                         power=self.power_cycle if self.place.find(POWER_DRIVERS) else None,
                         place=self.describe)

    def describe(self) -> dict:
        return {"name": self.name, "coordinator": self.coordinator.address, "acquired_as": self.coordinator.identity,
                "tags": self.place.tags, "serial": self.place.serial_url, "probe": self.place.probe,
                "waited_s": round(self.waited_s, 3), "acquire_s": round(self.acquire_s, 3),
                "power": self.power_actions}

    def lost(self) -> str | None:
        """Why this process no longer holds the place, or None."""
        if self.released:
            return None
        if not self.coordinator.answers():
            return (f"the labgrid coordinator at {self.coordinator.address} went away; place {self.name} was "
                    f"held by {self.coordinator.identity} (this run) when it did, and nothing guards it now "
                    f"(a restarted coordinator forgets acquisitions)")
        now = self.coordinator.places().get(self.name)
        if now is None:
            return f"place {self.name} was deleted from the coordinator during the run"
        if now.acquired != self.coordinator.identity:
            self.taken_away = True
            return f"place {self.name} was taken away during the run (now held by {now.acquired or 'nobody'})"
        return None

    def _driver(self):
        if self._power is None:
            from labgrid import target_factory

            r = self.place.find(POWER_DRIVERS)
            if r is None:
                raise InfraError(f"place {self.name} has no power port ({', '.join(POWER_DRIVERS)})",
                                 hint=f"`labgrid-client -p {self.name} show` lists what it matches")
            params = {k: v for k, v in r.params.items() if k != "extra"}
            config = {"resources": [{r.cls: params}], "drivers": [{POWER_DRIVERS[r.cls]: {}}]}
            target = target_factory.make_target(f"hil-{self.name}", config)
            driver = target.get_driver("PowerProtocol", activate=False)
            if hasattr(driver, "delay"):
                driver.delay = float(self.place.tags.get("power_off_s", "0.5"))
            target.activate(driver)
            self._power = driver
        return self._power

    def power(self, action: str) -> None:
        """on, off or cycle, through the place's power port (only while held)."""
        if self.released or self.name not in _held:
            raise InfraError(f"refusing to switch power of place {self.name}: this hil does not hold it")
        started = time.monotonic()
        try:
            getattr(self._driver(), action)()
        except InfraError:
            raise
        except Exception as exc:
            raise InfraError(f"power {action} of place {self.name} failed: {type(exc).__name__}: {exc}",
                             hint="check the place's power switch (`labgrid-client -p "
                                  f"{self.name} power get`)") from exc
        self.power_actions.append({"action": action, "seconds": round(time.monotonic() - started, 3)})

    def power_cycle(self) -> None:
        self.power("cycle")

    def release(self) -> str | None:
        """Give the place back (once); returns why it could not be, if so."""
        with _held_lock:
            if self.released:
                return self.release_error
            self.released = True
            _held.pop(self.name, None)
        try:
            if not self.coordinator.answers():
                raise InfraError("the coordinator is unreachable")
            now = self.coordinator.places().get(self.name)
            if self.taken_away and now is not None and now.acquired != self.coordinator.identity:
                return None  # kicked out: not ours to release (a release would fail, or free whoever took it)
            self.coordinator.release(self.name)
        except Exception as exc:
            self.release_error = (f"place {self.name} could not be released ({_reason(exc)}); when the "
                                  f"coordinator answers again: labgrid-client -x {self.coordinator.address} "
                                  f"-p {self.name} release")
        return self.release_error


def holders(places: list[PlaceInfo]) -> str:
    return "; ".join(f"{p.name} held by {p.acquired}" + (" (this hil)" if p.name in _held else "")
                     if p.acquired else f"{p.name} reserved" for p in places)


def acquire(coordinator: Coordinator, wanted: PlaceWanted, wait_s: float = DEFAULT_WAIT_S,
            progress: Callable[[str], None] | None = None, exclude: set[str] | frozenset = frozenset(),
            give_up_on_own: bool = False, progress_every_s: float = 10.0,
            cancelled: Callable[[], bool] | None = None) -> Lease | None:
    """Acquire a free place that matches, waiting up to `wait_s` while all
    are held (a progress line names the holders every `progress_every_s`).
    `give_up_on_own`: return None instead of waiting when every match is
    held by this process (a farm worker waiting for its siblings)."""
    progress = progress or (lambda text: None)
    started = time.monotonic()
    last_note = None
    while True:
        if not coordinator.alive:
            raise InfraError(f"the labgrid coordinator at {coordinator.address} went away while hil waited for "
                             f"{wanted.describe()}", hint="restart labgrid-coordinator, then run again")
        places = coordinator.places()
        matching = [p for p in places.values() if wanted.matches(p) and p.name not in exclude]
        if not matching:
            known = ", ".join(f"{p.name} ({' '.join(f'{k}={v}' for k, v in p.tags.items()) or 'no tags'})"
                              for p in places.values()) or "none"
            why = " (the others failed in this run)" if exclude else ""
            raise (UsageError if not exclude else InfraError)(
                f"no place of the coordinator at {coordinator.address} is {wanted.describe()}{why}",
                hint=f"places there: {known}; `hil boards` lists them")
        refused_any = False
        for place in sorted(matching, key=lambda p: p.name):
            if place.acquired or place.reservation:
                continue
            t0 = time.monotonic()
            refused = coordinator.acquire(place.name)
            if refused is not None:
                refused_any = True
                continue  # someone was faster: try the next, then wait
            now = coordinator.places().get(place.name, place)
            lease = Lease(coordinator, now, t0 - started, time.monotonic() - t0)
            with _held_lock:
                _held[place.name] = lease
            if not now.serial_url:
                lease.release()
                raise InfraError(f"place {place.name} has no serial port (NetworkSerialPort): its exporter is "
                                 f"down, or the place matches no serial resource",
                                 hint=f"`labgrid-client -p {place.name} show` lists what it matches; start the "
                                      f"exporter of its lab host")
            return lease
        if refused_any:  # the snapshot above showed a place free that someone took: name them, not "reserved"
            matching = [p for p in coordinator.places().values() if wanted.matches(p) and p.name not in exclude] \
                or matching
        if give_up_on_own and all(p.name in _held for p in matching):
            return None
        waited = time.monotonic() - started
        if cancelled is not None and cancelled():
            return None
        if waited >= wait_s:
            raise InfraError(f"no free {wanted.describe()} within {wait_s:g} s: {holders(matching)}",
                             hint="wait for the holder or ask them to release it (`labgrid-client who`); "
                                  "raise the wait with --place-wait or wait_s in the labgrid table of hil.toml")
        if last_note is None or time.monotonic() - last_note >= progress_every_s:
            last_note = time.monotonic()
            progress(f"waiting for {wanted.describe()}: {holders(matching)} ({waited:.0f} s of {wait_s:g} s)")
        time.sleep(0.2)
