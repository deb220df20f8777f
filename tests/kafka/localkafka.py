"""Drive scripts/local-kafka from tests: a cluster of our own on free ports in a tmp dir.

The shared broker (KAFKA_BOOTSTRAP_SERVERS, usually 9092) is never touched:
every LocalKafka has its own LOCAL_KAFKA_DIR and its own block of ports, and
reuses the repo's downloaded jars through KAFKA_HOME.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "local-kafka"
T = TypeVar("T")


def ports_free(ports: list[int]) -> bool:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_block(n: int) -> tuple[int, int]:
    """(client base, controller base), each starting n consecutive free ports.

    Below Linux's ephemeral range (32768-60999): a node killed and restarted
    must get its port back, and an outgoing connection may take a free port
    of that range as its local port meanwhile ("Address already in use").
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32768 - 2 * n, 2 * n)
        ctrl = base + n
        if ports_free(list(range(base, base + 2 * n))):
            return base, ctrl
    raise RuntimeError(f"no block of {2 * n} free ports")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """Poll `probe` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def ensure_jars() -> Path:
    lib = ROOT / ".local-kafka" / "lib"
    if not (lib / ".kafka-version").is_file():
        subprocess.run([str(SCRIPT), "fetch"], check=True, timeout=600)
    return lib


class LocalKafka:
    """scripts/local-kafka with its own state dir, ports and node count."""

    def __init__(self, state: Path, nodes: int = 1, **env: str) -> None:
        home = state.parent / f"{state.name}-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "libs").symlink_to(ensure_jars())
        self.nodes = nodes
        self.port, self.controller_port = free_port_block(nodes)
        self.ports = [self.port + i for i in range(nodes)]
        self.bootstrap = ",".join(f"localhost:{p}" for p in self.ports)
        self.env = dict(
            os.environ,
            LOCAL_KAFKA_DIR=str(state),
            KAFKA_NODES=str(nodes),
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(self.controller_port),
            KAFKA_HOME=str(home),
            PYTHON=sys.executable,
            **env,
        )

    def run(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(SCRIPT), *args], check=False, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert result.returncode == 0, (
                f"local-kafka {' '.join(args)} -> {result.returncode}: {result.stdout}{result.stderr}"
            )
        return result

    def status(self) -> tuple[int, list[str]]:
        result = self.run("status", check=False, timeout=30)
        return result.returncode, result.stdout.splitlines()
