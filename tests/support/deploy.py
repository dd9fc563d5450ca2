"""The deploy files as the tests read them: the Dockerfiles' commands and healthchecks (no Docker engine needed),
and the values gunicorn.conf.py computes."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
from pathlib import Path

from devtools.redis_server import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERFILE_MONITOR = PROJECT_ROOT / "Dockerfile.monitor"
DOCKERFILE_REDIS = PROJECT_ROOT / "Dockerfile.redis"
COMPOSE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
GUNICORN_CONF = PROJECT_ROOT / "gunicorn.conf.py"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) for each instruction of a Dockerfile, line continuations joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [(kw.upper(), rest.strip()) for kw, _, rest in (ln.partition(" ") for ln in lines if ln and ln[0] != "#")]


def exec_form(arguments: str) -> list[str]:
    """A JSON exec-form command (`["prog", "arg"]`); shell form is refused, it would not get signals as PID 1."""
    argv = json.loads(arguments)
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), arguments
    return argv


def final_cmd(dockerfile: Path) -> list[str]:
    """The command the image runs: its last CMD."""
    cmds = [rest for kw, rest in instructions(dockerfile) if kw == "CMD"]
    assert cmds, f"{dockerfile.name} has no CMD"
    return exec_form(cmds[-1])


def healthcheck_cmd(dockerfile: Path) -> list[str]:
    """The command of the image's last HEALTHCHECK."""
    checks = [rest for kw, rest in instructions(dockerfile) if kw == "HEALTHCHECK"]
    assert checks, f"{dockerfile.name} has no HEALTHCHECK"
    match = re.search(r"(?:^|\s)CMD\s+(\[.*\])\s*$", checks[-1])
    assert match, checks[-1]
    return exec_form(match.group(1))


def gunicorn_settings() -> dict[str, object]:
    """The values gunicorn.conf.py computes from the current environment (with ingest open: its refusal to start
    without API_KEY is tested with a real gunicorn in e2e/test_servers.py)."""
    saved = dict(os.environ)  # reading the file also points PROMETHEUS_MULTIPROC_DIR at a new directory
    os.environ["INGEST_AUTH"] = "off"
    try:
        values = runpy.run_path(str(GUNICORN_CONF))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if values["_metrics_path_made"]:
        shutil.rmtree(values["_metrics_path"], ignore_errors=True)
    return values
