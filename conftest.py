"""Session-wide pytest hooks (unit tests and nbval notebooks alike)."""
from __future__ import annotations


def pytest_collectstart(collector):
    # HTML renderings of DataFrames change across pandas versions: compare text/plain only.
    if getattr(collector, "fspath", None) and str(collector.fspath).endswith(".ipynb"):
        collector.skip_compare += ("text/html", "application/javascript", "stderr")


def _descendants(root: int) -> list[tuple[int, str]]:
    """Live (non-zombie) descendants of ``root``, from /proc (Linux)."""
    import os
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        rest = stat.rsplit(")", 1)[-1].split()
        if rest[0] == "Z":
            continue
        children.setdefault(int(rest[1]), []).append(int(entry))
        names[int(entry)] = cmd
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append((child, names.get(child, "")))
            todo.append(child)
    return out


def pytest_sessionfinish(session, exitstatus):
    """A test that leaves a process behind is a failing test: after the whole session,
    nothing started by it may still run (Jupyter kernels of nbval are stopped by then)."""
    import os
    import sys
    import time
    if not sys.platform.startswith("linux"):
        return
    deadline = time.monotonic() + 5
    left = _descendants(os.getpid())
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _descendants(os.getpid())
    if left:
        print("\nProcesses left behind by the tests:", file=sys.stderr)
        for pid, cmd in left:
            print(f"  {pid} {cmd[:160]}", file=sys.stderr)
        session.exitstatus = 1
