"""Routes to and from YAML (datafy/routes/files.py) through `python -m datafy routes import|export` (real Redis)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import yaml

from datafy.__main__ import main
from datafy.routes.route import key_hash
from datafy.store import Store

KEY_A, KEY_A2, ADMIN_A, KEY_B = "key-of-loja-a-0001", "key-of-loja-a-0002", "admin-of-loja-a-0003", "key-of-loja-b-0004"
SECRET = "whsec_" + "A" * 40
Run = Callable[..., tuple[int, str, str]]

LOJAS = """
routes:
  - name: loja-a
    webhook_url: http://127.0.0.1:9/a
    api_keys: ["${KEY_A}"]
    admin_keys: "${ADMIN_A}"
    webhook_secret: ${SECRET_A}
    defaults: {ttl: 5, flush_keywords: [pronto]}
    limits: {max_pending_chats: 10}
    match: {evolution_instance: [loja]}
  - name: loja-b
    webhook_url: http://127.0.0.1:9/b
    api_keys: ${KEYS_B}
"""


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """The command configures logging as a process does; the next test gets pytest's handlers back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def run(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture) -> Run:
    """`python -m datafy ...` in this process, with the test's environment; returns (status, stdout, stderr)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name, value in {"KEY_A": KEY_A, "ADMIN_A": ADMIN_A, "SECRET_A": SECRET, "KEYS_B": KEY_B}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    def command(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return command


def views(store: Store) -> dict[str, dict]:
    _, routes = store.routes.load()
    return {name: route.public() for name, route in routes.items() if not route.deleted_ms}


def test_import_creates_new_routes_then_updates_them(run: Run, store: Store, tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(LOJAS)
    assert run("routes", "import", "routes.yaml") == (0, "created loja-a\ncreated loja-b\n", "")
    shown = views(store)
    assert shown["loja-a"]["defaults"] == {"ttl": 5.0, "flush_keywords": ["pronto"]}
    assert shown["loja-a"]["match"] == {"evolution_instance": ["loja"]}
    (tmp_path / "routes.yaml").write_text(LOJAS.replace("9/b", "9/b2"))
    assert run("routes", "import", "routes.yaml") == (0, "updated loja-a\nupdated loja-b\n", "")
    assert views(store)["loja-b"]["webhook_url"] == "http://127.0.0.1:9/b2"


def test_keys_and_secrets_come_from_the_environment_variables_the_file_names(
    run: Run, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYS_B", f"{KEY_B}, key-of-loja-b-0005 key-of-loja-b-0006")
    monkeypatch.setenv("HOOK_HOST", "127.0.0.1:9")
    (tmp_path / "routes.yaml").write_text(LOJAS.replace("http://127.0.0.1:9/b", "http://${HOOK_HOST}/b"))
    assert run("routes", "import", "routes.yaml")[0] == 0
    a, b = store.routes.get("loja-a"), store.routes.get("loja-b")
    assert a is not None and b is not None
    assert [k.hash for k in a.api_keys] == [key_hash(KEY_A)] and [k.hash for k in a.admin_keys] == [key_hash(ADMIN_A)]
    assert a.webhook_secrets == (SECRET,)
    assert [k.last4 for k in b.api_keys] == ["0004", "0005", "0006"]  # one string, split on commas and spaces
    assert b.webhook_url == "http://127.0.0.1:9/b"


def test_an_unset_variable_is_one_line_naming_it_and_nothing_is_written(
    run: Run, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYS_B")
    (tmp_path / "routes.yaml").write_text(LOJAS)
    status, out, err = run("routes", "import", "routes.yaml")
    assert (status, out) == (2, "")
    assert err == "routes.yaml: route 'loja-b': environment variable KEYS_B is not set (api_keys)\n"
    assert views(store) == {}


def test_one_invalid_route_writes_none_of_the_file(run: Run, store: Store, tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(LOJAS + "    defaults: {ttl: -1}\n")
    status, out, err = run("routes", "import", "routes.yaml")
    assert (status, out) == (2, "")
    assert err.startswith("routes.yaml: route 'loja-b': ") and err.endswith(" (defaults.ttl)\n")
    assert err.count("\n") == 1
    assert views(store) == {}


def test_a_file_that_is_not_a_list_of_routes_is_refused(run: Run, store: Store, tmp_path: Path) -> None:
    cases = {"list.yaml": "- name: loja-a\n", "broken.yaml": "routes: [\n", "item.yaml": "routes: [loja-a]\n"}
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        status, out, err = run("routes", "import", name)
        assert (status, out) == (2, "") and err.startswith(f"{name}: ") and err.count("\n") == 1, err
    status, _, err = run("routes", "import", "missing.yaml")
    assert status == 2 and err.startswith("missing.yaml: cannot read")
    assert views(store) == {}


def test_a_key_held_by_another_route_or_by_the_environment_is_refused(
    run: Run, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "routes.yaml").write_text(LOJAS)
    run("routes", "import", "routes.yaml")
    (tmp_path / "c.yaml").write_text("routes:\n  - {name: loja-c, webhook_url: 'http://x', api_keys: '${KEY_A}'}\n")
    status, out, err = run("routes", "import", "c.yaml")
    assert (status, out) == (2, "")
    assert err == "c.yaml: route 'loja-c': one of the keys belongs to another route (api_keys)\n"
    monkeypatch.setenv("API_KEY", "environment-key-0007")
    (tmp_path / "d.yaml").write_text("routes:\n  - {name: loja-d, webhook_url: 'http://x', api_keys: '${API_KEY}'}\n")
    status, _, err = run("routes", "import", "d.yaml")
    assert status == 2 and "environment key" in err and err.endswith("(api_keys)\n")
    assert set(views(store)) == {"loja-a", "loja-b"}


def test_two_routes_of_one_file_may_not_share_a_name_or_a_key(run: Run, store: Store, tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(LOJAS + LOJAS.replace("routes:\n", "").replace("loja-a", "loja-c"))
    status, _, err = run("routes", "import", "routes.yaml")
    assert (status, err) == (2, "routes.yaml: route 'loja-c': a key is also one of route 'loja-a' (api_keys)\n")
    assert views(store) == {}


def test_an_export_imported_elsewhere_with_its_variables_set_gives_the_same_routes(
    run: Run, store: Store, redis_client: redis.Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYS_B", f"{KEY_B} key-of-loja-b-0005")
    (tmp_path / "routes.yaml").write_text(LOJAS.replace('["${KEY_A}"]', f'["${{KEY_A}}", "{KEY_A2}"]'))
    run("routes", "import", "routes.yaml")
    before = views(store)
    assert run("routes", "export", "exported.yaml") == (0, "", "")
    text = (tmp_path / "exported.yaml").read_text()
    for secret in (KEY_A, KEY_A2, ADMIN_A, KEY_B, SECRET):
        assert secret not in text
    header = [line for line in text.splitlines() if line.startswith("#")]
    for variable in ("ROUTE_LOJA_A_API_KEYS", "ROUTE_LOJA_A_ADMIN_KEYS", "ROUTE_LOJA_A_WEBHOOK_SECRET",
                     "ROUTE_LOJA_B_API_KEYS"):  # fmt: skip
        assert any(variable in line for line in header), variable
    assert not any("ROUTE_LOJA_B_WEBHOOK_SECRET" in line for line in header)  # loja-b has no secret

    redis_client.flushall()  # another deployment
    monkeypatch.setenv("ROUTE_LOJA_A_API_KEYS", f"{KEY_A},{KEY_A2}")
    monkeypatch.setenv("ROUTE_LOJA_A_ADMIN_KEYS", ADMIN_A)
    monkeypatch.setenv("ROUTE_LOJA_A_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ROUTE_LOJA_B_API_KEYS", f"{KEY_B} key-of-loja-b-0005")
    assert run("routes", "import", "exported.yaml") == (0, "created loja-a\ncreated loja-b\n", "")
    assert views(store) == before
    assert store.routes.get("loja-a").api_keys[1].hash == key_hash(KEY_A2)  # type: ignore[union-attr]


def test_export_to_stdout_leaves_out_deleted_routes(run: Run, store: Store, tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(LOJAS)
    run("routes", "import", "routes.yaml")
    store.routes.delete(store.routes.get("loja-a"), now_ms=store.connection.now_ms())  # type: ignore[arg-type]
    status, out, err = run("routes", "export")
    assert (status, err) == (0, "")
    assert [route["name"] for route in yaml.safe_load(out)["routes"]] == ["loja-b"]
    assert "ROUTE_LOJA_A" not in out
