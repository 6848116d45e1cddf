"""Process supervision for everything gwlib starts (Envoy, Traefik, the echo backends).

Contract
--------
* :func:`free_port` / :func:`reserve_ports` hand out ports on 127.0.0.1 that are free
  right now, never the same one twice within a minute in this process, and chosen below
  the kernel's ephemeral range where possible (so a busy load generator's client sockets
  cannot take them between "free" and "bound").
* :func:`atomic_write` writes a temp file in the same folder, fsyncs it and ``os.replace``s
  it onto the path: a reader (Envoy's inotify watch, Traefik's fsnotify) sees the old file
  or the new one, never a partial one.
* :class:`Supervisor` starts :class:`ManagedProcess` es with logs captured in a per-lab temp
  folder, waits for readiness (:class:`TcpProbe`, :class:`HttpProbe`, :class:`FileProbe`
  or any callable) with a deadline, stops them (SIGTERM to the process group, SIGKILL
  after a grace period), reports failures with the log tail
  (``"envoy exited with code 1: <last log lines>"``) and optionally restarts a crashed
  process.

No orphans, ever
----------------
Each child is started in its own session (so its process group holds its whole tree) and
is stopped by every one of these, whichever comes first:

1. ``Supervisor.close()`` / ``ManagedProcess.stop()`` (and ``with Supervisor() as s:``).
2. Interpreter exit: an ``atexit`` hook closes every open Supervisor; SIGTERM and SIGHUP
   get a handler that does the same, but only when the main thread installs it and the
   signal still has its default disposition (never overriding Jupyter's or the user's).
3. Abrupt death of the parent (``kill -9``, a Jupyter kernel restart, an OOM kill):

   * Linux: the child is started with ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. The kernel
     sends that signal when the *thread* that forked the child exits, so every fork is
     done by one long-lived spawner thread of this module (never by a caller's thread,
     nor by the thread that restarts a crashed process). The child also checks, after
     the prctl, that its parent is still the one that forked it (closing the race where
     the parent died during the fork).
   * Everywhere (macOS too, and for grandchildren that PDEATHSIG does not reach): a
     watchdog helper process (``python -S -c <_WATCHDOG>``, its own session, ~10 MB)
     reads the read end of a pipe whose write end only this process holds. The parent
     sends it ``+PGID`` / ``-PGID`` lines as process groups come and go; when the pipe
     reaches EOF - which the kernel guarantees when the parent dies, however it dies - the
     watchdog sends SIGTERM, then SIGKILL, to every group still registered, deletes the
     dead parent's temp log folders, and exits (a normal stop sends ``quit`` first).
     When no group is registered the pipe is closed and the watchdog exits, so an idle
     gwlib leaves no helper behind. After ``os.fork()`` (multiprocessing) the child closes
     its inherited copy of the write end, so it cannot keep the watchdog from seeing EOF.

Both are tested in ``tests/test_processes.py`` (a parent process started in a subprocess is
``kill -9``ed, with each mechanism alone and both together).

Everything gwlib starts binds 127.0.0.1 only; this module never binds anything else.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = [
    "FileProbe",
    "HttpProbe",
    "ManagedProcess",
    "ProcessError",
    "Supervisor",
    "TcpProbe",
    "atomic_write",
    "free_port",
    "reserve_ports",
]

LOCALHOST = "127.0.0.1"
IS_LINUX = sys.platform.startswith("linux")
IS_POSIX = os.name == "posix"


class ProcessError(RuntimeError):
    """A supervised process failed to start, became unready or exited. The message names
    the process and ends with the last lines of its log."""

    def __init__(self, message: str, *, name: str = "", returncode: int | None = None,
                 log_tail: str = ""):
        super().__init__(message)
        self.name = name
        self.returncode = returncode
        self.log_tail = log_tail


# --------------------------------------------------------------------------- ports

_PORT_LOCK = threading.Lock()
_RECENT: dict[tuple[str, int], float] = {}  # (kind, port) -> time handed out
_RECENT_TTL = 60.0


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return (49152, 65535)  # IANA range: macOS, BSDs and Windows use it


def _try_bind(port: int, kinds: Sequence[str]) -> list[socket.socket] | None:
    socks: list[socket.socket] = []
    try:
        for kind in kinds:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
            socks.append(s)
            s.bind((LOCALHOST, port))
        return socks
    except OSError:
        for s in socks:
            s.close()
        return None


def reserve_ports(n: int, kind: str = "tcp") -> list[int]:
    """``n`` distinct ports on 127.0.0.1 that are free right now.

    ``kind`` is ``"tcp"``, ``"udp"`` or ``"both"`` (free for TCP and UDP, e.g. a Gateway
    listener pair). All ``n`` sockets are held bound at once while choosing, so the ports
    are distinct; a port handed out by this process in the last minute is never handed
    out again. Ports come from below the ephemeral range when there is room (client
    sockets of a busy load test use the ephemeral range), else from the kernel.
    """
    if kind not in ("tcp", "udp", "both"):
        raise ValueError(f"kind must be 'tcp', 'udp' or 'both', not {kind!r}")
    kinds = ("tcp", "udp") if kind == "both" else (kind,)
    lo, _hi = _ephemeral_range()
    low, high = 20000, lo - 1
    use_range = high - low >= 2000
    held: list[socket.socket] = []
    ports: list[int] = []
    rng = random.Random()
    with _PORT_LOCK:
        now = time.monotonic()
        for key in [k for k, t in _RECENT.items() if now - t > _RECENT_TTL]:
            del _RECENT[key]
        try:
            attempts = 0
            while len(ports) < n:
                attempts += 1
                if attempts > 200 * n + 1000:
                    raise OSError(errno.EADDRINUSE, "no free port found on 127.0.0.1")
                port = rng.randint(low, high) if use_range and attempts < 100 * n else 0
                if port and (port in ports or any((k, port) in _RECENT for k in kinds)):
                    continue
                socks = _try_bind(port, kinds)
                if socks is None:
                    continue
                port = socks[0].getsockname()[1]
                if port in ports or any((k, port) in _RECENT for k in kinds):
                    for s in socks:
                        s.close()
                    continue
                if len(kinds) == 2 and socks[1].getsockname()[1] != port:
                    for s in socks:
                        s.close()
                    continue
                held.extend(socks)
                ports.append(port)
            for p in ports:
                for k in kinds:
                    _RECENT[(k, p)] = now
        finally:
            for s in held:
                s.close()
    return ports


def free_port(kind: str = "tcp") -> int:
    """One free port on 127.0.0.1 (``kind``: ``"tcp"``, ``"udp"`` or ``"both"``); see
    :func:`reserve_ports` for the guarantees."""
    return reserve_ports(1, kind)[0]


# --------------------------------------------------------------------------- files

def atomic_write(path: str | os.PathLike, data: str | bytes, *, mode: int | None = None,
                 fsync: bool = True) -> Path:
    """Replace ``path`` with ``data`` atomically.

    The data goes to a temp file in the same folder (same file system, so the rename is
    atomic), is flushed and fsynced, gets the old file's permission bits (or ``mode``, or
    0o644), and is moved onto ``path`` with ``os.replace``. Readers see the old content
    or the new one, never a mix; watchers (inotify/fsnotify) see one move event.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        if mode is None:
            try:
                mode = path.stat().st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync and IS_POSIX:
        with contextlib.suppress(OSError):
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    return path


# --------------------------------------------------------------------------- probes

class TcpProbe:
    """Ready when a TCP connection to ``host:port`` succeeds."""

    def __init__(self, port: int, host: str = LOCALHOST):
        self.host, self.port = host, port

    def __call__(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def __repr__(self) -> str:
        return f"tcp connect {self.host}:{self.port}"


class HttpProbe:
    """Ready when ``GET path`` on ``host:port`` answers a status accepted by ``ok``
    (default: any status below 500)."""

    def __init__(self, port: int, path: str = "/", host: str = LOCALHOST,
                 ok: Callable[[int], bool] | None = None, headers: Mapping[str, str] | None = None):
        self.host, self.port, self.path = host, port, path
        self.ok = ok or (lambda status: status < 500)
        self.headers = dict(headers or {})
        self.last_status: int | None = None

    def __call__(self) -> bool:
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        req = (f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{extra}"
               "Connection: close\r\n\r\n").encode("latin-1")
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                s.settimeout(1.0)
                s.sendall(req)
                buf = b""
                while b"\r\n" not in buf:
                    chunk = s.recv(4096)
                    if not chunk:
                        return False
                    buf += chunk
        except OSError:
            return False
        try:
            self.last_status = int(buf.split(b" ", 2)[1])
        except (IndexError, ValueError):
            return False
        return bool(self.ok(self.last_status))

    def __repr__(self) -> str:
        last = f", last status {self.last_status}" if self.last_status is not None else ""
        return f"http GET {self.host}:{self.port}{self.path}{last}"


class FileProbe:
    """Ready when ``path`` exists and is not empty (write it with :func:`atomic_write`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __call__(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def __repr__(self) -> str:
        return f"file {self.path}"


# --------------------------------------------------------------------------- spawning

class _Spawner:
    """One long-lived thread that performs every fork of this process.

    ``PR_SET_PDEATHSIG`` fires when the thread that forked the child exits; forking from
    this thread (alive until the process ends) means children die with the *process*,
    not with whichever short-lived thread happened to start or restart them.
    """

    def __init__(self) -> None:
        self._q: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], object]) -> object:
        with self._lock:
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._q = queue.Queue()
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="gwlib-spawner", daemon=True)
                self._thread.start()
            q = self._q
        if threading.current_thread() is self._thread:
            return fn()
        done = threading.Event()
        box: list = []
        q.put((fn, box, done))
        done.wait()
        ok, value = box[0]
        if ok:
            return value
        raise value

    def _loop(self) -> None:
        q = self._q
        while True:
            fn, box, done = q.get()
            try:
                box.append((True, fn()))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box.append((False, exc))
            done.set()


_SPAWNER = _Spawner()


_PRCTL = None


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that sets PR_SET_PDEATHSIG=SIGKILL (Linux only), then exits if the
    parent already died during the fork. Everything it calls is resolved before fork."""
    global _PRCTL
    if not IS_LINUX:
        return None
    if _PRCTL is None:
        try:
            _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            return None
    prctl = _PRCTL
    parent = os.getpid()
    getppid, exit_ = os.getppid, os._exit
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(1, sigkill, 0, 0, 0)  # PR_SET_PDEATHSIG
        if getppid() != parent:
            exit_(1)

    return preexec


# The watchdog helper's whole program (run as ``python -S -c``; it imports only the stdlib).
_WATCHDOG = r"""
import os, signal, sys, time
for s in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
    try: signal.signal(s, signal.SIG_IGN)
    except (OSError, ValueError): pass
groups, folders = set(), set()
grace = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
for line in sys.stdin.buffer:
    line = line.strip()
    try:
        if line[:1] == b"+": groups.add(int(line[1:]))
        elif line[:1] == b"-": groups.discard(int(line[1:]))
        elif line[:2] == b"d+": folders.add(os.fsdecode(line[2:]))
        elif line[:2] == b"d-": folders.discard(os.fsdecode(line[2:]))
        elif line == b"quit": sys.exit(0)  # a normal stop: nothing to clean up
    except ValueError:
        pass
# EOF without "quit": the parent died
def signal_all(sig):
    alive = []
    for g in groups:
        try:
            os.killpg(g, sig); alive.append(g)
        except (ProcessLookupError, PermissionError):
            pass
    return alive
def live_groups():
    # zombies (reaped late by init) still count for killpg(g, 0): on Linux look closer
    if not os.path.isdir("/proc/self"):
        return signal_all(0)
    found = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/" + d + "/stat", "rb") as f:
                    rest = f.read().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if rest[0] not in (b"Z", b"X") and int(rest[2]) in groups:
                found.add(int(rest[2]))
    return list(found)
alive = signal_all(signal.SIGTERM)
deadline = time.monotonic() + grace
while alive and time.monotonic() < deadline:
    time.sleep(0.02)
    alive = live_groups()
signal_all(signal.SIGKILL)
import shutil
for d in folders:  # the dead parent's temp log folders
    shutil.rmtree(d, ignore_errors=True)
"""


class _Watchdog:
    """The parent-death watchdog (see the module docstring). One per process, started on
    the first registered group and stopped when none is left."""

    def __init__(self, grace: float = 1.0) -> None:
        self.grace = grace
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._wfd: int | None = None
        self._groups: set[int] = set()
        self._folders: set[str] = set()
        self._pid = os.getpid()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A forked child must not hold the write end: the watchdog would never see EOF.
        if self._wfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._wfd)
        self._wfd, self._proc, self._groups, self._folders = None, None, set(), set()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _start(self) -> None:
        r, w = os.pipe()  # both non-inheritable (PEP 446): no other child gets the write end
        try:
            def spawn() -> subprocess.Popen:
                return subprocess.Popen(
                    [sys.executable, "-S", "-c", _WATCHDOG, str(self.grace)],
                    stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    close_fds=True, start_new_session=True)
            self._proc = _SPAWNER.run(spawn)  # type: ignore[assignment]
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._wfd = w

    def _send(self, line: str) -> None:
        if self._wfd is None:
            return
        try:
            os.write(self._wfd, os.fsencode(line))
        except OSError:  # the watchdog died: start a fresh one holding the current state
            folders = set(self._folders)
            self._stop_locked()
            self._start()
            self._folders = folders
            os.write(self._wfd, ("".join(f"d+{d}\n" for d in folders)
                                 + "".join(f"+{g}\n" for g in self._groups)).encode())

    def add(self, pgid: int, folder: str | None = None) -> None:
        """Guard a process group (and, if given, a temp folder to delete when the
        parent dies; it is forgotten again with :meth:`forget_folder`)."""
        with self._lock:
            if self._wfd is None:
                self._start()
            self._groups.add(pgid)
            if folder is not None and folder not in self._folders:
                self._folders.add(folder)
                self._send(f"d+{folder}\n")
            self._send(f"+{pgid}\n")

    def remove(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
            self._send(f"-{pgid}\n")
            if not self._groups:
                self._stop_locked()

    def forget_folder(self, folder: str) -> None:
        with self._lock:
            if folder in self._folders:
                self._folders.discard(folder)
                self._send(f"d-{folder}\n")

    def _stop_locked(self) -> None:
        if self._wfd is not None:
            with contextlib.suppress(OSError):
                os.write(self._wfd, b"quit\n")
            with contextlib.suppress(OSError):
                os.close(self._wfd)
            self._wfd = None
        self._folders = set()  # a new watchdog is told again on the next add()
        proc, self._proc = self._proc, None
        if proc is not None:  # EOF makes it exit at once; reap it without blocking the caller
            threading.Thread(target=proc.wait, name="gwlib-watchdog-reaper", daemon=True).start()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None


_WATCHDOG_SINGLETON = _Watchdog() if IS_POSIX else None


# --------------------------------------------------------------------------- processes

def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class ManagedProcess:
    """One supervised command. Create it with :meth:`Supervisor.start`."""

    def __init__(self, supervisor: Supervisor, name: str, argv: Sequence[str], *,
                 env: Mapping[str, str] | None, cwd: str | os.PathLike | None,
                 ready: Callable[[], bool] | None, ready_timeout: float,
                 restart: str, max_restarts: int, grace: float, log_path: Path,
                 pdeathsig: bool, watchdog: bool, prepare: Callable[[], None] | None = None):
        if restart not in ("never", "on-failure", "always"):
            raise ValueError("restart must be 'never', 'on-failure' or 'always'")
        self.supervisor = supervisor
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.restart = restart
        self.max_restarts = max_restarts
        self.grace = grace
        self.log_path = log_path
        self.prepare = prepare
        self.restarts = 0
        self._pdeathsig = pdeathsig
        self._watchdog = watchdog
        self._popen: subprocess.Popen | None = None
        self._pgid: int | None = None
        self._stopping = False
        self._lock = threading.RLock()
        self._exited = threading.Event()
        self._on_restart: list[Callable[[ManagedProcess], None]] = []
        self._on_exit: list[Callable[[ManagedProcess], None]] = []
        self.last_error: ProcessError | None = None

    # -- state
    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    @property
    def alive(self) -> bool:
        p = self._popen
        return p is not None and p.poll() is None

    @property
    def returncode(self) -> int | None:
        p = self._popen
        return None if p is None else p.poll()

    def tail_log(self, n: int = 20) -> str:
        """The last ``n`` lines of the process's log (stdout and stderr together)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read()
        except OSError:
            return ""
        lines = data.decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:]) if n > 0 else ""

    def on_restart(self, callback: Callable[[ManagedProcess], None]) -> None:
        """Call ``callback(process)`` after each automatic restart (once it is ready)."""
        self._on_restart.append(callback)

    def on_exit(self, callback: Callable[[ManagedProcess], None]) -> None:
        """Call ``callback(process)`` whenever the process exits on its own (a crash)."""
        self._on_exit.append(callback)

    def _describe_exit(self, code: int | None) -> str:
        if code is None:
            return "is running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def _error(self, what: str, n: int = 20) -> ProcessError:
        tail = self.tail_log(n)
        msg = f"{self.name} {what}"
        msg += f":\n{tail}" if tail.strip() else f" (its log {self.log_path} is empty)"
        return ProcessError(msg, name=self.name, returncode=self.returncode, log_tail=tail)

    def check(self) -> None:
        """Raise :class:`ProcessError` (with the log tail) unless the process is running."""
        code = self.returncode
        if self._popen is None:
            raise ProcessError(f"{self.name} was never started", name=self.name)
        if code is not None:
            raise self._error(self._describe_exit(code))

    # -- lifecycle
    def _spawn(self) -> None:
        if self.prepare is not None:
            self.prepare()
        log = open(self.log_path, "ab", buffering=0)
        try:
            if self.restarts:
                log.write(f"--- gwlib: restart {self.restarts} of {self.name} ---\n".encode())
            env = None
            if self.env is not None:
                env = dict(os.environ)
                env.update(self.env)
            preexec = _pdeathsig_preexec() if self._pdeathsig else None

            def spawn() -> subprocess.Popen:
                return subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env=env, cwd=self.cwd, close_fds=True, start_new_session=IS_POSIX,
                    preexec_fn=preexec)
            try:
                popen = _SPAWNER.run(spawn)
            except OSError as exc:
                raise ProcessError(f"{self.name} could not be started ({self.argv[0]}): {exc}",
                                   name=self.name) from exc
        finally:
            log.close()
        self._popen = popen  # type: ignore[assignment]
        self._pgid = popen.pid if IS_POSIX else None  # type: ignore[union-attr]
        self._exited.clear()
        if self._watchdog and self._pgid is not None and _WATCHDOG_SINGLETON is not None:
            _WATCHDOG_SINGLETON.add(self._pgid, self.supervisor._disposable_dir())
        threading.Thread(target=self._wait_thread, args=(popen,), daemon=True,
                         name=f"gwlib-wait-{self.name}").start()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the readiness probe until it passes. Raises :class:`ProcessError` with the
        log tail if the process exits first or the deadline passes (the process is then
        stopped, so nothing half-started is left running)."""
        if self.ready is None:
            self.check()
            return
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        delay = 0.001
        while True:
            code = self.returncode
            if code is not None:
                err = self._error(f"{self._describe_exit(code)} before it was ready")
                self.last_error = err
                raise err
            try:
                if self.ready():
                    return
            except Exception:  # noqa: BLE001 - a probe that raises means "not yet"
                pass
            if time.monotonic() >= deadline:
                err = self._error(f"was not ready after {timeout:g}s (probe: {self.ready!r})")
                self.last_error = err
                self.stop()
                raise err
            time.sleep(delay)
            delay = min(delay * 2, 0.005)  # a late poll adds to every lab's start time

    def _wait_thread(self, popen: subprocess.Popen) -> None:
        pgid = popen.pid
        if IS_POSIX and hasattr(os, "waitid"):
            # Wait for the exit without reaping: while the leader is an unreaped zombie
            # its pid (= the group id) cannot be reused, so killing the group is safe.
            try:
                os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                pass  # already reaped by a concurrent Popen.wait()
            except InterruptedError:  # pragma: no cover - retried by PEP 475
                pass
            _signal_group(pgid, signal.SIGKILL)  # take any stray grandchildren with it
        code = popen.wait()
        if IS_POSIX and not hasattr(os, "waitid"):  # pragma: no cover
            _signal_group(pgid, signal.SIGKILL)
        if self._watchdog and IS_POSIX and _WATCHDOG_SINGLETON is not None:
            _WATCHDOG_SINGLETON.remove(pgid)
        with self._lock:
            if popen is not self._popen:
                return
            self._exited.set()
            if self._stopping:
                return
        self.last_error = self._error(self._describe_exit(code))
        for cb in list(self._on_exit):
            with contextlib.suppress(Exception):
                cb(self)
        want = self.restart == "always" or (self.restart == "on-failure" and code != 0)
        if not want or self.supervisor.closed:
            return
        while self.restarts < self.max_restarts and not self._stopping and not self.supervisor.closed:
            time.sleep(min(0.1 * 2 ** self.restarts, 2.0))
            with self._lock:
                if self._stopping or self.supervisor.closed:
                    return
                self.restarts += 1
                try:
                    self._spawn()
                except ProcessError as exc:
                    self.last_error = exc
                    continue
            try:
                self.wait_ready()
            except ProcessError as exc:
                self.last_error = exc
                return  # wait_ready stopped it or its wait thread handles the crash
            for cb in list(self._on_restart):
                with contextlib.suppress(Exception):
                    cb(self)
            return

    def _terminate(self) -> None:
        """Send SIGTERM to the whole group (first half of :meth:`stop`)."""
        with self._lock:
            self._stopping = True
            p = self._popen
        if p is None or p.poll() is not None:
            return
        if IS_POSIX:
            _signal_group(p.pid, signal.SIGTERM)
        else:  # pragma: no cover - Windows
            p.terminate()

    def _kill(self) -> None:
        p = self._popen
        if p is None:
            return
        if IS_POSIX:
            _signal_group(p.pid, signal.SIGKILL)
        else:  # pragma: no cover
            with contextlib.suppress(OSError):
                p.kill()

    def stop(self, grace: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds; returns the exit
        code. Never restarts it afterwards. Safe to call twice."""
        grace = self.grace if grace is None else grace
        self._terminate()
        p = self._popen
        if p is None:
            return None
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._kill()
            p.wait()
        self._exited.wait(5.0)
        return p.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the current process to exit; returns its code (None on timeout)."""
        p = self._popen
        if p is None:
            return None
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def __repr__(self) -> str:
        state = "running" if self.alive else self._describe_exit(self.returncode)
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"


_SUPERVISORS: weakref.WeakSet[Supervisor] = weakref.WeakSet()
_HOOKS_INSTALLED = False
_HOOKS_LOCK = threading.Lock()


def _close_all() -> None:
    for sup in list(_SUPERVISORS):
        with contextlib.suppress(Exception):
            sup.close()


def _signal_handler(signum: int, frame: object) -> None:  # pragma: no cover - exercised in subprocess tests
    _close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _install_hooks() -> None:
    global _HOOKS_INSTALLED
    with _HOOKS_LOCK:
        if _HOOKS_INSTALLED:
            return
        _HOOKS_INSTALLED = True
        atexit.register(_close_all)
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _signal_handler)


class Supervisor:
    """Starts and owns processes; ``close()`` (or leaving a ``with`` block, or interpreter
    exit, or the death of this process) stops them all.

    ``log_dir``: where logs go (default: a fresh ``gwlib-<name>-*`` temp folder, deleted
    on close unless ``keep_logs``). ``pdeathsig`` / ``watchdog`` choose the parent-death
    mechanisms (both on by default; tests turn them off one at a time).
    """

    def __init__(self, name: str = "lab", *, log_dir: str | os.PathLike | None = None,
                 keep_logs: bool = False, pdeathsig: bool = True, watchdog: bool = True):
        self.name = name
        self._own_dir = log_dir is None
        self.log_dir = Path(log_dir) if log_dir is not None else Path(
            tempfile.mkdtemp(prefix=f"gwlib-{name}-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.keep_logs = keep_logs
        self.pdeathsig = pdeathsig
        self.watchdog = watchdog and IS_POSIX
        self._procs: dict[str, ManagedProcess] = {}
        self._lock = threading.Lock()
        self.closed = False
        _SUPERVISORS.add(self)
        _install_hooks()

    def start(self, name: str, argv: Sequence[str | os.PathLike], *,
              env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
              ready: Callable[[], bool] | None = None, ready_timeout: float = 10.0,
              restart: str = "never", max_restarts: int = 3, grace: float = 3.0,
              prepare: Callable[[], None] | None = None, wait: bool = True) -> ManagedProcess:
        """Start ``argv`` as ``name`` (made unique: ``envoy``, ``envoy-2``, ...).

        ``env`` is merged over ``os.environ``. ``ready`` is a probe (:class:`TcpProbe`,
        :class:`HttpProbe`, :class:`FileProbe` or any callable returning true when ready);
        with ``wait`` (default) this returns only once it passes, raising
        :class:`ProcessError` with the log tail otherwise. ``restart``: ``"never"``,
        ``"on-failure"`` (non-zero exit or signal) or ``"always"``, at most
        ``max_restarts`` times; see :meth:`ManagedProcess.on_restart`. ``prepare`` is called
        before every spawn, the first and each restart (e.g. to delete a stale ready file).
        """
        if self.closed:
            raise ProcessError(f"supervisor {self.name} is closed")
        with self._lock:
            base, unique, i = name, name, 1
            while unique in self._procs:
                i += 1
                unique = f"{base}-{i}"
            log_path = self.log_dir / f"{unique}.log"
            proc = ManagedProcess(self, unique, [os.fspath(a) for a in argv], env=env, cwd=cwd,
                                  ready=ready, ready_timeout=ready_timeout, restart=restart,
                                  max_restarts=max_restarts, grace=grace, log_path=log_path,
                                  pdeathsig=self.pdeathsig, watchdog=self.watchdog,
                                  prepare=prepare)
            self._procs[unique] = proc
        proc._spawn()
        if wait:
            proc.wait_ready()
        return proc

    def _disposable_dir(self) -> str | None:
        """The log folder if the watchdog should delete it when this process dies."""
        return str(self.log_dir) if self._own_dir and not self.keep_logs else None

    def get(self, name: str) -> ManagedProcess | None:
        return self._procs.get(name)

    @property
    def processes(self) -> list[ManagedProcess]:
        return list(self._procs.values())

    def check(self) -> None:
        """Raise :class:`ProcessError` for the first process that is not running."""
        for p in self.processes:
            p.check()

    def stop(self, name: str, grace: float | None = None) -> int | None:
        proc = self._procs.pop(name, None)
        return proc.stop(grace) if proc is not None else None

    def close(self, grace: float | None = None) -> None:
        """Stop every process (SIGTERM to all at once, SIGKILL after the grace period)."""
        if self.closed:
            return
        self.closed = True
        procs = self.processes
        for p in procs:
            p._terminate()
        start = time.monotonic()
        for p in procs:  # each gets its own grace period, all counted from the same start
            if p._popen is None:
                continue
            deadline = start + (p.grace if grace is None else grace)
            try:
                p._popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p._kill()
                p._popen.wait()
            p._exited.wait(5.0)
        _SUPERVISORS.discard(self)
        if self._own_dir and not self.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            if _WATCHDOG_SINGLETON is not None:
                _WATCHDOG_SINGLETON.forget_folder(str(self.log_dir))

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Supervisor {self.name} {len(self._procs)} processes{' closed' if self.closed else ''}>"

