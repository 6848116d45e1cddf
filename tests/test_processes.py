"""gwlib.processes: ports, atomic writes, supervision and the no-orphans guarantees."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from gwlib.processes import (
    FileProbe,
    HttpProbe,
    ProcessError,
    Supervisor,
    TcpProbe,
    atomic_write,
    free_port,
    reserve_ports,
)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SLEEPER = [PY, "-c", "import time; time.sleep(60)"]


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (an unreaped zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
        return not out.stdout.strip() or out.stdout.strip().startswith("Z")


def wait_gone(pids, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < deadline:
        left = [p for p in left if not pid_gone(p)]
        if left:
            time.sleep(0.02)
    return left


def kill_quietly(pids) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# ------------------------------------------------------------------------------ ports

def test_reserve_ports_are_distinct_and_bindable():
    ports = reserve_ports(40)
    assert len(set(ports)) == 40
    socks = []
    try:
        for p in ports:
            s = socket.socket()
            s.bind(("127.0.0.1", p))
            socks.append(s)
    finally:
        for s in socks:
            s.close()
    # never handed out twice in a row
    assert not set(ports) & set(reserve_ports(40))


@pytest.mark.parametrize("kind", ["tcp", "udp", "both"])
def test_free_port_kinds(kind):
    port = free_port(kind)
    kinds = ["tcp", "udp"] if kind == "both" else [kind]
    for k in kinds:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if k == "udp" else socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        finally:
            s.close()
    with pytest.raises(ValueError):
        free_port("sctp")


# ------------------------------------------------------------------------------ files

def test_atomic_write_never_exposes_a_partial_file(tmp_path):
    path = tmp_path / "dynamic.yaml"
    old = b"A" * 300_000
    new = b"B" * 700_000
    atomic_write(path, old)
    os.chmod(path, 0o640)
    stop = threading.Event()
    seen: set[bytes] = set()
    bad: list[int] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # must never happen: os.replace is atomic
                bad.append(-1)
                continue
            reads[0] += 1
            if data not in (old, new):
                bad.append(len(data))
            else:
                seen.add(data[:1])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(60):
            atomic_write(path, new if i % 2 == 0 else old.decode(), fsync=i % 10 == 0)
    finally:
        stop.set()
        t.join()
    assert not bad, f"reader saw partial/missing files: {bad[:5]}"
    assert reads[0] > 10 and seen == {b"A", b"B"}
    assert path.read_bytes() == old
    assert (path.stat().st_mode & 0o777) == 0o640  # permissions kept
    assert [p.name for p in tmp_path.iterdir()] == ["dynamic.yaml"]  # no temp files left


# --------------------------------------------------------------------------- supervisor

def test_children_are_gone_after_close(tmp_path):
    sup = Supervisor("t")
    # a child with a grandchild in its process group: close() must take the whole tree
    p = sup.start("tree", ["sh", "-c", "sleep 60 & echo $!; wait"],
                  ready=lambda: bool(Path(sup.log_dir, "tree.log").read_text().strip()))
    q = sup.start("sleeper", SLEEPER)
    grandchild = int(p.tail_log(1))
    pids = [p.pid, q.pid, grandchild]
    log_dir = sup.log_dir
    assert p.alive and q.alive and not pid_gone(grandchild)
    sup.close()
    assert wait_gone(pids, 2.0) == []
    assert not p.alive and p.returncode == -signal.SIGTERM
    assert not log_dir.exists()  # the per-lab temp folder is removed


def test_stop_escalates_to_sigkill():
    with Supervisor("t") as sup:
        code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('x', flush=True); time.sleep(60)"
        p = sup.start("stubborn", [PY, "-c", code],
                      ready=lambda: "x" in Path(sup.log_dir, "stubborn.log").read_text())
        t = time.monotonic()
        assert p.stop(grace=0.3) == -signal.SIGKILL
        assert time.monotonic() - t < 2.0


def test_readiness_timeout_gives_a_clear_error_with_the_log_tail():
    port = free_port()
    with Supervisor("t") as sup:
        code = "import time; print('starting up slowly'); print('config loaded', flush=True); time.sleep(60)"
        with pytest.raises(ProcessError) as ei:
            sup.start("envoy", [PY, "-c", code], ready=TcpProbe(port), ready_timeout=0.5)
        msg = str(ei.value)
        assert msg.startswith("envoy was not ready after 0.5s (probe: tcp connect 127.0.0.1:")
        assert msg.endswith("starting up slowly\nconfig loaded")
        assert ei.value.log_tail.endswith("config loaded")
        p = sup.get("envoy")
        assert p is not None and not p.alive  # nothing half-started is left running


def test_exit_before_ready_reports_code_and_log():
    with Supervisor("t") as sup:
        code = "import sys; print('error: bad config at line 3', file=sys.stderr); sys.exit(1)"
        with pytest.raises(ProcessError) as ei:
            sup.start("envoy", [PY, "-c", code], ready=TcpProbe(free_port()))
        assert str(ei.value) == "envoy exited with code 1 before it was ready:\nerror: bad config at line 3"
        assert ei.value.returncode == 1
        with pytest.raises(ProcessError, match="could not be started"):
            sup.start("nope", ["/nonexistent/binary"])


def test_crash_after_start_is_reported_by_check():
    with Supervisor("t") as sup:
        p = sup.start("traefik", [PY, "-c", "import time,sys; time.sleep(0.2); print('panic: boom'); sys.exit(2)"])
        p.check()
        p.wait(5)
        with pytest.raises(ProcessError, match=r"^traefik exited with code 2:\npanic: boom$"):
            sup.check()
        assert p.tail_log(5) == "panic: boom"


def test_restart_on_failure(tmp_path):
    marker = tmp_path / "ran-once"
    port_file = tmp_path / "port"
    # first run: crash; second run: serve HTTP
    code = textwrap.dedent(f"""
        import http.server, os, sys
        marker = {str(marker)!r}
        if not os.path.exists(marker):
            open(marker, 'w').close(); print('crashing', flush=True); sys.exit(3)
        srv = http.server.HTTPServer(('127.0.0.1', int(open({str(port_file)!r}).read())), http.server.BaseHTTPRequestHandler)
        srv.serve_forever()
    """)
    port = free_port()
    port_file.write_text(str(port))
    restarted = threading.Event()
    with Supervisor("t") as sup:
        # readiness: the first run exits before it is ready -> start raises; use wait=False
        p = sup.start("srv", [PY, "-c", code], ready=HttpProbe(port, ok=lambda status: status == 501), restart="on-failure", wait=False)
        p.on_restart(lambda proc: restarted.set())
        assert restarted.wait(10), p.tail_log()
        assert p.alive and p.restarts == 1
        assert "restart 1 of srv" in p.tail_log()
        pid = p.pid
    assert wait_gone([pid]) == []


def test_fork_from_a_short_lived_thread_does_not_kill_the_child():
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits: gwlib forks from its own
    # long-lived thread, so a child started from a worker thread outlives that thread.
    with Supervisor("t") as sup:
        box = []
        t = threading.Thread(target=lambda: box.append(sup.start("s", SLEEPER)))
        t.start()
        t.join()
        time.sleep(0.3)
        assert box[0].alive


def test_probes(tmp_path):
    f = tmp_path / "ready.json"
    probe = FileProbe(f)
    assert not probe()
    atomic_write(f, "{}")
    assert probe()
    assert not TcpProbe(free_port())()
    assert "tcp connect 127.0.0.1" in repr(TcpProbe(1))


# ----------------------------------------------------------------- parent death / exit

PARENT = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from gwlib.processes import Supervisor, _WATCHDOG_SINGLETON
    mode = sys.argv[1]
    sup = Supervisor("orphan-test", pdeathsig=mode in ("both", "pdeathsig"),
                     watchdog=mode in ("both", "watchdog"))
    log = lambda: Path(sup.log_dir, "tree.log").read_text()
    p = sup.start("tree", ["sh", "-c", "sleep 60 & echo $!; wait"], ready=lambda: log().strip() != "")
    print(json.dumps({"child": p.pid, "grandchild": int(log()), "watchdog": _WATCHDOG_SINGLETON.pid,
                      "log_dir": str(sup.log_dir)}), flush=True)
    if sys.argv[2] == "exit":
        sys.exit(0)          # normal exit without close(): atexit must stop the tree
    time.sleep(60)
""")


def _run_parent(mode: str, action: str) -> tuple[subprocess.Popen, dict]:
    parent = subprocess.Popen([PY, "-c", PARENT, mode, action], stdout=subprocess.PIPE,
                              cwd=ROOT, text=True)
    line = parent.stdout.readline()  # type: ignore[union-attr]
    assert line, "the parent process did not start its child"
    return parent, json.loads(line)


@pytest.mark.parametrize("mode", ["both", "watchdog", "pdeathsig"])
def test_no_orphans_when_the_parent_is_killed(mode):
    if mode != "watchdog" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    parent, info = _run_parent(mode, "sleep")
    try:
        parent.kill()  # kill -9: no atexit, no signal handler, no close()
        parent.wait()
        must_go = [info["child"]]
        if mode != "pdeathsig":  # the watchdog kills the whole process group ...
            must_go += [info["grandchild"], info["watchdog"]]
        assert wait_gone(must_go, 5.0) == []
        if mode != "pdeathsig":  # ... and deletes the dead parent's temp log folder
            assert not Path(info["log_dir"]).exists()
    finally:
        if mode == "pdeathsig":
            shutil.rmtree(info["log_dir"], ignore_errors=True)
        # ... PDEATHSIG alone reaches only the direct child: the grandchild survives it
        kill_quietly([info["child"], info["grandchild"]])


def test_no_orphans_on_normal_exit_without_close():
    parent, info = _run_parent("both", "exit")
    assert parent.wait(10) == 0
    assert wait_gone([info["child"], info["grandchild"], info["watchdog"]], 5.0) == []
    assert not Path(info["log_dir"]).exists()


def test_no_orphans_when_the_parent_gets_sigterm():
    parent, info = _run_parent("watchdog", "sleep")
    try:
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(10) == -signal.SIGTERM  # the handler cleans up, then dies as asked
        assert wait_gone([info["child"], info["grandchild"]], 5.0) == []
        assert not Path(info["log_dir"]).exists()
    finally:
        kill_quietly([info["child"], info["grandchild"]])


@pytest.mark.parametrize("how", ["restart", "shutdown"])
def test_no_orphans_after_a_jupyter_kernel_restart_or_shutdown(how):
    """A notebook's children die with its kernel: restart (the kernel is killed) and a
    normal shutdown (atexit)."""
    manager = pytest.importorskip("jupyter_client.manager")
    pytest.importorskip("ipykernel")
    km, kc = manager.start_new_kernel(kernel_name="python3", cwd=str(ROOT))
    out: list[str] = []
    try:
        code = textwrap.dedent("""
            import json, sys
            from gwlib.processes import Supervisor
            sup = Supervisor("kernel-test")
            p = sup.start("child", ["sh", "-c", "sleep 60 & echo $!; wait"],
                          ready=lambda: sup.log_dir.joinpath("child.log").read_text().strip() != "")
            print(json.dumps({"child": p.pid, "grandchild": int(p.tail_log(1)), "log_dir": str(sup.log_dir)}))
        """)
        kc.execute_interactive(code, timeout=30, output_hook=lambda m: out.append(
            m["content"].get("text", "") if m["msg_type"] == "stream" else ""))
        info = json.loads("".join(out))
        if how == "restart":
            km.restart_kernel(now=True)  # the kernel process is killed and a new one started
        else:
            km.shutdown_kernel(now=False)  # shutdown_request: the kernel exits normally
        assert wait_gone([info["child"], info["grandchild"]], 5.0) == []
        deadline = time.monotonic() + 5
        while Path(info["log_dir"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not Path(info["log_dir"]).exists()
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)
