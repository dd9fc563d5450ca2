"""Stand-ins for the base images when no registry answers: Debian bookworm root filesystems made by debootstrap.

Each stand-in is tagged with the name the Dockerfiles use (docker.io/library/python:3.11-slim,
docker.io/library/redis:7-alpine), so the Dockerfiles build unchanged, and carries the label STANDIN_LABEL
(the hash of its recipe). It gives what the Dockerfiles rely on:

- python:3.11-slim: python and python3 (3.11), pip installing system-wide (no EXTERNALLY-MANAGED), the machine's
  CA bundle and pip's index settings (so `pip install` in a build reaches the same index as pip on this machine);
- redis:7-alpine: redis-server and redis-cli on PATH, sh, a `redis` user owning /data, WORKDIR /data.

The root filesystems are kept as tar files under the cache directory (.run/images/), with the downloaded .debs,
so a second run imports a tar (seconds) instead of running debootstrap (a minute or two).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devtools.container_engine import Engine, EngineError

STANDIN_LABEL = "dev.datafy.standin"
RECIPE_VERSION = "1"  # bump when a customisation below changes, so cached tars are rebuilt
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"  # Debian's bundle, which Debian's pip and Python use
TRIMMED = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale")


@dataclass(frozen=True)
class StandIn:
    """One base image the Dockerfiles name, and how to make a Debian stand-in for it."""

    image: str  # as the Dockerfiles write it
    reference: str  # fully qualified, as the engines store it
    packages: tuple[str, ...]
    changes: tuple[str, ...]  # image config for the import (Dockerfile instructions)
    customise: Callable[[Path], None]
    summary: str

    def slug(self) -> str:
        """A file-name form of the image name (python-3.11-slim)."""
        return re.sub(r"[^A-Za-z0-9.]+", "-", self.image)


def customise_python(root: Path) -> None:
    """pip as in python:3.11-slim (system-wide installs), with this machine's CA bundle and index settings."""
    (root / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
    bundle = host_ca_bundle()
    if bundle:
        shutil.copyfile(bundle, root / CA_BUNDLE)
    (root / "etc/pip.conf").write_text(pip_conf())


def customise_redis(root: Path) -> None:
    """What redis:7-alpine has and Dockerfile.redis relies on: /data owned by the redis user, its config folder."""
    uid, gid = passwd_ids(root, "redis")
    for folder in ("data", "usr/local/etc/redis"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    os.chown(root / "data", uid, gid)


STANDINS = (
    StandIn(
        image="python:3.11-slim",
        reference="docker.io/library/python:3.11-slim",
        packages=("python3", "python3-pip", "python-is-python3", "ca-certificates"),
        changes=(f"ENV PATH={PATH}", "ENV LANG=C.UTF-8", 'CMD ["python3"]'),
        customise=customise_python,
        summary="Debian bookworm with python3.11 and pip",
    ),
    StandIn(
        image="redis:7-alpine",
        reference="docker.io/library/redis:7-alpine",
        packages=("redis-server",),
        changes=(f"ENV PATH={PATH}", "WORKDIR /data", "EXPOSE 6379", 'CMD ["redis-server"]'),
        customise=customise_redis,
        summary="Debian bookworm with redis-server 7.0",
    ),
)


def host_ca_bundle() -> Path | None:
    """The CA bundle pip uses on this machine (pip's `cert`, PIP_CERT, SSL_CERT_FILE, or Debian's), if any."""
    candidates = [pip_settings().get("cert"), os.environ.get("PIP_CERT"), os.environ.get("REQUESTS_CA_BUNDLE")]
    candidates += [os.environ.get("SSL_CERT_FILE"), "/" + CA_BUNDLE]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def pip_settings() -> dict[str, str]:
    """pip's effective settings on this machine (`pip config list`, the environment's PIP_* included)."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False)
    settings: dict[str, str] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        settings[key.rpartition(".")[2]] = value.strip().strip("'\"")
    if "default-timeout" in settings:
        settings.setdefault("timeout", settings["default-timeout"])
    return settings


def pip_conf() -> str:
    """/etc/pip.conf for the stand-in: this machine's index and trust settings, without local (file://) ones."""
    settings = pip_settings()
    lines = ["[global]", f"cert = /{CA_BUNDLE}"]
    for key in ("index-url", "extra-index-url", "trusted-host", "timeout"):
        values = [v for v in settings.get(key, "").split() if not v.startswith("file:") and not v.startswith("/")]
        if values:
            lines.append(f"{key} = {' '.join(values)}")
    return "\n".join(lines) + "\n"


def passwd_ids(root: Path, user: str) -> tuple[int, int]:
    """The uid and gid of `user` in the root filesystem's /etc/passwd."""
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise EngineError(f"no user {user!r} in the stand-in's /etc/passwd")


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses for bookworm (deb822 or one-line sources), else deb.debian.org."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file() or path.suffix not in (".list", ".sources"):
            continue
        text = path.read_text(errors="replace")
        for stanza in text.split("\n\n"):  # deb822: URIs and Suites in one stanza
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.MULTILINE)
            suites = re.search(r"^Suites:(.*)$", stanza, re.MULTILINE)
            if uris and suites and SUITE in suites.group(1).split() and "security" not in uris.group(1):
                return uris.group(1)
        match = re.search(rf"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+{SUITE}\s", text, re.MULTILINE)
        if match:
            return match.group(1)
    return DEFAULT_MIRROR


def recipe_key(standin: StandIn, mirror: str) -> str:
    """A short hash of everything that goes into the stand-in, so a changed recipe is rebuilt, not reused."""
    parts = [RECIPE_VERSION, SUITE, mirror, *standin.packages, *standin.changes]
    if standin.customise is customise_python:
        bundle = host_ca_bundle()
        parts += [pip_conf(), hashlib.sha256(bundle.read_bytes()).hexdigest() if bundle else ""]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def provide(engine: Engine, standin: StandIn, cache: Path) -> str:
    """Make sure the engine holds a current stand-in for `standin.image`; what was done, in a few words."""
    mirror = debian_mirror()
    key = recipe_key(standin, mirror)
    config = engine.image_config(standin.reference)
    if config and (config.get("Labels") or {}).get(STANDIN_LABEL) == key:
        return "stand-in already here"
    tar = cache / f"{standin.slug()}-{key}.tar"
    started = time.monotonic()
    made = not tar.exists()
    if made:
        bootstrap(standin, mirror, cache, tar)
    changes = [*standin.changes, f"LABEL {STANDIN_LABEL}={key}"]
    engine.import_rootfs(tar, standin.reference, changes)
    how = f"debootstrap {SUITE} from {mirror}, " if made else f"imported {tar.name}, "
    return f"{how}{time.monotonic() - started:.0f}s"


def bootstrap(standin: StandIn, mirror: str, cache: Path, tar: Path) -> None:
    """debootstrap the stand-in's root filesystem, customise and trim it, and pack it into `tar`."""
    if os.geteuid() != 0:
        raise EngineError(f"debootstrap needs root to make a stand-in for {standin.image}: run `sudo ./dev images`")
    root = cache / f"rootfs-{standin.slug()}"
    remove_tree(root)
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    log = cache / f"debootstrap-{standin.slug()}.log"
    command = ["debootstrap", "--variant=minbase", f"--cache-dir={debs}", f"--include={','.join(standin.packages)}"]
    with log.open("w") as out:
        done = subprocess.run([*command, SUITE, str(root), mirror], stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise EngineError(f"debootstrap for {standin.image} failed (exit {done.returncode}); see {log}")
    standin.customise(root)
    for folder in TRIMMED:
        for entry in (root / folder).glob("*"):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    for stale in cache.glob(f"{standin.slug()}-*.tar"):  # older recipes
        stale.unlink()
    partial = tar.with_suffix(".partial")
    subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."], check=True)
    partial.rename(tar)
    remove_tree(root)


def remove_tree(path: Path) -> None:
    """Delete a root filesystem; first unmount what an interrupted debootstrap left mounted in it (/proc, /sys)."""
    if not path.exists():
        return
    inside = str(path.resolve()) + "/"
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(inside)), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    if any(line.split()[1].startswith(inside) for line in Path("/proc/mounts").read_text().splitlines()):
        raise EngineError(f"{path} still has file systems mounted in it; unmount them, then delete it")
    shutil.rmtree(path)
