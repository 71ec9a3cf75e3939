"""A private mosquitto broker on 127.0.0.1, restartable on the same port."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from tests.rig.certs import ServerCertificate
from tests.rig.net import free_port, wait_port
from tests.rig.process import stop_process

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class Mosquitto:
    """`users`: name -> password (anonymous clients are then refused); `tls`: serve TLS
    with this certificate instead of plain TCP."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        users: dict[str, str] | None = None,
        tls: ServerCertificate | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self.users = users
        self.tls = tls
        self.config_path = workdir / "mosquitto.conf"
        self.log_path = workdir / "mosquitto.log"
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        access = "allow_anonymous true\n"
        if self.users is not None:
            passwords = self.workdir / "passwords"
            passwords.write_text("")
            passwords.chmod(0o600)
            for user, password in self.users.items():  # -b: any character in a password
                subprocess.run(
                    ["mosquitto_passwd", "-b", str(passwords), user, password],
                    check=True,
                    timeout=30,
                )
            access = f"allow_anonymous false\npassword_file {passwords}\n"
        if self.tls is not None:
            access += f"cafile {self.tls.ca}\ncertfile {self.tls.cert}\nkeyfile {self.tls.key}\n"
        self.config_path.write_text(
            f"listener {self.port} {self.host}\n" + access + "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # As root it would switch to user mosquitto, which clears the parent-death
            # signal set by _die_with_parent().
             + ("user root\n" if os.geteuid() == 0 else "")
        )

    async def start(self) -> None:
        """Start (or restart) and return once the port accepts connections."""
        if self.running:
            raise RuntimeError("mosquitto is already running")
        self._write_config()
        with self.log_path.open("ab") as log:
            # The log is the child's own file: no pipe to drain, readable after a failure.
            self._proc = await asyncio.create_subprocess_exec(
                *_die_with_parent(),
                "mosquitto",
                "-c",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        waiter = asyncio.create_task(wait_port(self.port, self.host, READY_TIMEOUT_S))
        exited = asyncio.create_task(self._proc.wait())
        done, _ = await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if waiter not in done or waiter.exception() is not None:
            waiter.cancel()
            await self.stop()
            raise RuntimeError(f"mosquitto did not start:\n{self.log_path.read_text()}")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        await stop_process(proc, STOP_TIMEOUT_S)


def _die_with_parent() -> list[str]:
    """A killed test run must not leave brokers behind (the rtsp server watches stdin)."""
    return ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
