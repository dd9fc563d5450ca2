"""`./dev images`: build the three Dockerfiles, run them as a stack, and check what a deployment relies on.

    ./dev images [--engine docker|podman] [--build-only]

It uses docker when its engine answers, else podman (apt-installed when missing, as root on Debian). Base images
that cannot be pulled get Debian stand-ins (devtools/image_standins.py), cached under .run/images/. The stack runs
on the host's network, on free ports, with a webhook receiver of our own on 127.0.0.1; one line per check:
each image's HEALTHCHECK, the user its processes run as, what /app holds, a burst delivered in order, a pending
chat kept across a Redis restart, and a clean `stop` within the grace period. Exits 1 at the first failed check
and always removes the containers it started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devtools.container_engine import Engine, EngineError, find_engine
from devtools.image_standins import STANDIN_LABEL, STANDINS, provide
from devtools.stack_checks import CheckError, Receiver, run_checks

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".run" / "images"
DEFAULT_REDIS_PORT = 6379  # the only port the Redis image's HEALTHCHECK (a plain `redis-cli ping`) knows


@dataclass(frozen=True)
class Image:
    """One of the project's images: the service it runs, its Dockerfile and the tag we build."""

    service: str
    dockerfile: str

    @property
    def tag(self) -> str:
        """The local tag of the built image."""
        return f"datafy-{self.service}:local"


IMAGES = (Image("redis", "Dockerfile.redis"), Image("api", "Dockerfile"), Image("monitor", "Dockerfile.monitor"))


@dataclass
class Stack:
    """The running containers of one `./dev images`: their names, ports, keys and environment."""

    engine: Engine
    webhook_url: str
    prefix: str = field(default_factory=lambda: f"datafy-images-{os.getpid()}")
    api_port: int = field(default_factory=lambda: free_port())
    metrics_port: int = field(default_factory=lambda: free_port())
    redis_port: int = field(
        default_factory=lambda: DEFAULT_REDIS_PORT if port_is_free(DEFAULT_REDIS_PORT) else free_port()
    )
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redis_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    session: requests.Session = field(default_factory=requests.Session)

    def name(self, service: str) -> str:
        """The container name of `service`."""
        return f"{self.prefix}-{service}"

    def url(self, path: str) -> str:
        """The API's URL for `path`."""
        return f"http://127.0.0.1:{self.api_port}{path}"

    def env(self, service: str) -> dict[str, str]:
        """The settings of `service` (.env.example, docker-compose.yml), for the host's network."""
        redis = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.redis_port), "REDIS_PASSWORD": self.redis_password}
        if service == "redis":
            return {"REDIS_PASSWORD": self.redis_password}
        if service == "api":
            keys = {"API_KEY": self.api_key, "ADMIN_API_KEY": self.admin_key}
            return {**redis, **keys, "HOST": "127.0.0.1", "PORT": str(self.api_port)}
        return {**redis, "WEBHOOK_URL": self.webhook_url, "HOST": "127.0.0.1", "METRICS_PORT": str(self.metrics_port)}

    def start(self, image: Image) -> None:
        """Start the container of `image` (Redis moved off 6379 when that port is taken here)."""
        extra, command = (
            redis_port_overrides(self.engine, image.tag, self.redis_port) if image.service == "redis" else ([], [])
        )
        self.engine.start(self.name(image.service), image.tag, self.env(image.service), extra, command)

    def remove(self) -> None:
        """Remove every container of this stack, running or not."""
        for image in IMAGES:
            self.engine.remove(self.name(image.service))


def say(line: str) -> None:
    """One line of progress."""
    print(f"images: {line}", flush=True)


def free_port() -> int:
    """A TCP port nothing listens on now (127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether `port` can be bound on every interface (Redis listens on all of them)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Redis does: TIME_WAIT does not count
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def redis_port_overrides(engine: Engine, tag: str, port: int) -> tuple[list[str], list[str]]:
    """Run flags and command that move the Redis image to `port`: its own CMD plus --port, its own HEALTHCHECK
    with `redis-cli -p`. Nothing when `port` is 6379, so the image then runs exactly as built."""
    if port == DEFAULT_REDIS_PORT:
        return [], []
    config = engine.image_config(tag) or {}
    command, health = config.get("Cmd") or [], config.get("Healthcheck") or {}
    test = health.get("Test") or []
    if command[:2] != ["sh", "-c"] or test[:1] not in (["CMD"], ["CMD-SHELL"]) or "redis-cli" not in test[-1]:
        raise EngineError(f"port {DEFAULT_REDIS_PORT} is taken and {tag}'s CMD or HEALTHCHECK changed shape; free it")
    say(f"port {DEFAULT_REDIS_PORT} is taken here: Redis runs on {port} (its CMD with --port, its check with -p)")
    script = test[-1].replace("redis-cli", f"redis-cli -p {port}")
    timing = [
        f"--health-{name}={health.get(key, 0) // 10**9}s"
        for name, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"))
    ]
    extra = ["--health-cmd", script, *timing, f"--health-retries={health.get('Retries', 3)}"]
    return extra, [*command[:-1], f"{command[-1]} --port {port}"]


def apt_install(packages: list[str], why: str) -> bool:
    """apt-get install `packages` as root on Debian/Ubuntu; False (with the command to run) elsewhere."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        say(f"{why} needs Debian's {' '.join(packages)}: apt-get install {' '.join(packages)}")
        return False
    say(f"installing Debian's {' '.join(packages)} ({why}) ...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
        if subprocess.run(["apt-get", *args], env=env, stdout=subprocess.DEVNULL, check=False).returncode != 0:
            say(f"apt-get {args[0]} failed")
            return False
    return True


def choose_engine(wanted: str | None) -> Engine | None:
    """The engine to use; podman (with runc) is installed when neither docker's engine nor podman works."""
    engine = find_engine(CACHE, wanted)
    if engine or wanted == "docker" or shutil.which("podman"):
        return engine
    return find_engine(CACHE, "podman") if apt_install(["podman", "runc"], "running the images") else None


def prepare_bases(engine: Engine) -> None:
    """Pull each base image, or make a Debian stand-in when no registry answers."""
    for standin in STANDINS:
        config = engine.image_config(standin.reference)
        if config is not None and STANDIN_LABEL not in (config.get("Labels") or {}):
            say(f"base {standin.image}: the copy {engine.name} already has")
            continue
        reason = engine.pull(standin.reference)
        if reason is None:
            say(f"base {standin.image}: pulled")
            continue
        say(f"cannot pull {standin.image} ({reason}); using a stand-in: {standin.summary}")
        if not shutil.which("debootstrap") and not apt_install(["debootstrap"], "a stand-in base image"):
            raise EngineError(f"no {standin.image} and no debootstrap to make a stand-in")
        say(f"base {standin.image}: {provide(engine, standin, CACHE)}")


def build_all(engine: Engine) -> None:
    """Build the three Dockerfiles from the repository's root (.dockerignore applies)."""
    for image in IMAGES:
        started = time.monotonic()
        log = CACHE / f"build-{image.service}.log"
        if not engine.build(ROOT / image.dockerfile, image.tag, ROOT, log):
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise EngineError(f"building {image.dockerfile} failed; the end of {log}:\n{tail}")
        say(f"built {image.tag} from {image.dockerfile} in {time.monotonic() - started:.0f}s")


def run_stack(engine: Engine) -> int:
    """Start the stack, run every check (one line each), and always remove the containers; the exit code."""
    receiver = Receiver()
    stack = Stack(engine, webhook_url=receiver.url)
    try:
        return run_checks(stack, IMAGES, receiver)
    except CheckError as failure:
        print(f"FAIL {failure}", flush=True)
        return 1
    finally:
        stack.remove()
        receiver.close()


def main(argv: list[str] | None = None) -> int:
    """Build, run and check the images; 0 when every check passed."""
    parser = argparse.ArgumentParser(prog="./dev images", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--engine", choices=("docker", "podman"), help="the container CLI (default: docker if its engine runs)"
    )
    parser.add_argument("--build-only", action="store_true", help="build the images, run nothing")
    args = parser.parse_args(argv)
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    engine = choose_engine(args.engine)
    if engine is None:
        say("no container engine here: install podman (apt-get install podman runc) or start docker's engine")
        return 2
    say(f"{engine.name} {engine.version}")
    try:
        prepare_bases(engine)
        build_all(engine)
        code = 0 if args.build_only else run_stack(engine)
    except EngineError as exc:
        say(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    verdict = "FAILED" if code else "built" if args.build_only else "every check passed"
    say(f"{verdict} in {time.monotonic() - started:.0f}s")
    return code


if __name__ == "__main__":
    sys.exit(main())
