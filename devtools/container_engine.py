"""The container CLI `./dev images` drives: podman or docker, whichever can run containers on this machine.

A docker CLI whose engine does not answer (`docker info` fails) does not count, nor does podman's docker
emulation (it is podman). Podman is configured by a containers.conf of our own (CONTAINERS_CONF), never /etc:
runc with cgroupfs and no default ulimits, so it works without systemd, as on a CI runner or inside a VM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Without systemd podman cannot use its cgroup manager nor journald; raising the nofile limit to the default
# ulimits fails in an unprivileged sandbox, so none is set.
PODMAN_CONF = """\
# Written by devtools/container_engine.py for `./dev images`; CONTAINERS_CONF points here.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class EngineError(Exception):
    """A container command failed; the message is one line, for the terminal."""


@dataclass(frozen=True)
class Engine:
    """One container CLI: its name (podman or docker), its version and the environment it needs."""

    name: str
    version: str
    env: dict[str, str]

    def call(
        self, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI with `args`; never raises for a non-zero exit (the caller reads returncode)."""
        return subprocess.run(
            [self.name, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def must(self, *args: str, timeout: float | None = None, env: dict[str, str] | None = None) -> str:
        """Run the CLI with `args` and return its stdout; EngineError with its last stderr line when it fails."""
        done = self.call(*args, timeout=timeout, env=env)
        if done.returncode != 0:
            raise EngineError(f"{self.name} {args[0]} failed: {last_line(done.stderr or done.stdout)}")
        return done.stdout

    def build(self, dockerfile: Path, tag: str, context: Path, log: Path) -> bool:
        """Build `dockerfile` as `tag` from `context`, output to `log`; True when it succeeded."""
        if self.name == "podman":
            # chroot isolation needs no nested namespaces; docker format keeps HEALTHCHECK (OCI has none).
            flags = ["--isolation=chroot", "--pull=never", "--network", "host", "--format", "docker"]
        else:
            flags = []
        with log.open("w") as out:
            command = [self.name, "build", *flags, "-f", str(dockerfile), "-t", tag, str(context)]
            return (
                subprocess.run(command, env=self.env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode == 0
            )

    def image_config(self, reference: str) -> dict[str, Any] | None:
        """The image's config (Cmd, Labels, Healthcheck, ...), or None when there is no such image here."""
        done = self.call("image", "inspect", reference)  # a JSON list, on both engines
        if done.returncode != 0:
            return None
        image = json.loads(done.stdout)[0]
        config = image.get("Config") or {}
        if image.get("Healthcheck"):  # podman keeps it beside the OCI config, which has no such field
            config.setdefault("Healthcheck", image["Healthcheck"])
        return config

    def pull(self, reference: str) -> str | None:
        """Pull `reference`; None when it worked, else why not (one line)."""
        done = self.call("pull", reference, timeout=600)
        if done.returncode == 0:
            return None
        # podman: 'initializing source docker://X: pinging container registry R: Get "https://R/v2/": dial tcp: ...'
        return re.sub(r'initializing source \S+: |Get "[^"]*": ', "", last_line(done.stderr))

    def import_rootfs(self, tar: Path, reference: str, changes: list[str]) -> None:
        """Make image `reference` of the root filesystem in `tar`, with Dockerfile `changes` (ENV, CMD, LABEL...)."""
        flags = [flag for change in changes for flag in ("--change", change)]
        self.must("import", *flags, str(tar), reference, timeout=600)

    def start(
        self,
        name: str,
        image: str,
        env: dict[str, str],
        extra: list[str] | None = None,
        command: list[str] | None = None,
    ) -> None:
        """Start container `name` of `image` on the host's network with `env` (values never on a command line)."""
        names = [flag for variable in env for flag in ("-e", variable)]
        self.must(
            "run", "-d", "--name", name, "--network", "host", *names, *(extra or []), image, *(command or []), env=env
        )

    def health(self, name: str) -> tuple[bool, str]:
        """Whether the container's HEALTHCHECK passes now, and what it said.

        Podman runs it on demand (it schedules it with systemd timers, absent here); docker's engine runs it on
        its own schedule, so we read the last status it recorded.
        """
        if self.name == "podman":
            done = self.call("healthcheck", "run", name, timeout=60)
            return done.returncode == 0, last_line(done.stdout + done.stderr)
        state = json.loads(self.must("inspect", "--format", "{{json .State.Health}}", name) or "null") or {}
        log = state.get("Log") or [{}]
        return state.get("Status") == "healthy", last_line(log[-1].get("Output", "") or state.get("Status", "none"))

    def running(self, name: str) -> bool:
        """Whether the container is running (not exited, not restarting)."""
        return self.call("inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"

    def exit_code(self, name: str) -> int:
        """The exit code of the container's last run."""
        return int(self.must("inspect", "--format", "{{.State.ExitCode}}", name).strip())

    def stop(self, name: str, grace: int) -> None:
        """SIGTERM (the image's STOPSIGNAL), then SIGKILL after `grace` seconds."""
        self.must("stop", "-t", str(grace), name, timeout=grace + 60)

    def restart(self, name: str, grace: int) -> None:
        """Stop (as `stop`) and start the same container again, its volumes kept."""
        self.stop(name, grace)
        self.must("start", name, timeout=60)

    def exec(self, name: str, *command: str) -> str:
        """Run `command` in the running container (as its USER); its stdout, whatever it exits with."""
        return self.call("exec", name, *command, timeout=60).stdout

    def logs(self, name: str, lines: int = 15) -> str:
        """The container's last `lines` lines of output."""
        done = self.call("logs", "--tail", str(lines), name, timeout=60)
        return (done.stdout + done.stderr).rstrip()

    def remove(self, name: str) -> None:
        """Remove the container and its anonymous volumes, running or not; quiet when it is already gone."""
        self.call("rm", "-f", "-v", name, timeout=120)


def last_line(text: str) -> str:
    """The last non-empty line of `text`, without podman's 'Error: ' prefix (for one-line reports)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("Error: ") if lines else ""


def find_engine(state_dir: Path, wanted: str | None = None) -> Engine | None:
    """docker when its engine answers, else podman when it works here, else None; `wanted` picks one of them."""
    for name in (wanted,) if wanted else ("docker", "podman"):
        engine = _docker() if name == "docker" else _podman(state_dir)
        if engine:
            return engine
    return None


def _docker() -> Engine | None:
    if not shutil.which("docker"):
        return None
    env = dict(os.environ)
    done = subprocess.run(
        ["docker", "info", "--format", "{{json .}}"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or "podman" in done.stdout.lower():  # no engine, or podman-docker's emulation
        return None
    version = json.loads(done.stdout).get("ServerVersion", "?")
    return Engine("docker", version, env)


def _podman(state_dir: Path) -> Engine | None:
    if not shutil.which("podman"):
        return None
    state_dir.mkdir(parents=True, exist_ok=True)
    conf = state_dir / "containers.conf"
    conf.write_text(PODMAN_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    done = subprocess.run(
        ["podman", "info", "--format", "{{.Version.Version}}"], env=env, capture_output=True, text=True, check=False
    )
    return Engine("podman", done.stdout.strip(), env) if done.returncode == 0 else None
