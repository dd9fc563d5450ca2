"""The contract oracle (tests): a real reply checked against the OpenAPI document, status, headers and body."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
from requests.structures import CaseInsensitiveDict

from datafy.http.openapi import document

METHODS = ("get", "post", "put", "patch", "delete")
UNROUTED_CODES = {404: "not_found", 405: "method_not_allowed"}


@dataclass
class Contract:
    """The document with lookups from a concrete request to its operation and documented reply."""

    doc: dict[str, Any] = field(default_factory=document)
    _validators: dict[str, jsonschema_rs.Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # As Flask's router: the template with more literal text wins ("/api/chats/{user}/batches/{batch_id}"
        # over "/api/chats/{user}", whose chat id could hold the rest).
        templates = sorted(self.doc["paths"], key=lambda t: (-len(re.sub(r"\{\w+\}", "", t)), t.count("{")))
        self._patterns = [(t, re.compile("^" + re.sub(r"\{(\w+)\}", _param_regex, t) + "$")) for t in templates]

    def template(self, method: str, path: str) -> str | None:
        """The documented path template that serves `method path`, or None."""
        for template, pattern in self._patterns:
            if pattern.match(path) and method.lower() in self.doc["paths"][template]:
                return template
        return None

    def operations(self) -> set[tuple[str, str]]:
        """(METHOD, template) of every documented operation."""
        return {
            (method.upper(), template)
            for template, item in self.doc["paths"].items()
            for method in METHODS
            if method in item
        }

    def check(self, method: str, path: str, status: int, headers: Mapping[str, Any], body: bytes) -> None:
        """Raise AssertionError unless the reply is documented for this request: status, content type, headers,
        body schema. A request no operation serves must get the JSON 404 or 405. Header values may be lists."""
        where = f"{method} {path} -> {status}"
        headers = CaseInsensitiveDict({k: v[0] if isinstance(v, list) else v for k, v in headers.items()})
        if method.upper() == "OPTIONS":  # Flask's automatic answer on every route: the methods it takes
            assert status in (200, 404) and (status == 404 or headers.get("Allow")), where
            return
        template = self.template(method, path)
        if template is None:
            assert status in UNROUTED_CODES, f"{where}: an undocumented request must get 404 or 405"
            self._check_body(where, "Error", _json(where, headers, body))
            code = json.loads(body)["error"]["code"]
            assert code == UNROUTED_CODES[status], f"{where}: code {code}"
            assert status != 405 or headers.get("Allow"), f"{where}: 405 without Allow"
            return
        replies = self.doc["paths"][template][method.lower()]["responses"]
        reply = replies.get(str(status)) or replies.get(f"{str(status)[0]}XX") or replies.get("default")
        assert reply is not None, f"{where}: status not documented for {method} {template} ({sorted(replies)})"
        reply = self._resolve(reply)
        for name, header in reply.get("headers", {}).items():
            header = self._resolve(header)
            value = headers.get(name)
            assert value is not None or not header.get("required"), f"{where}: header {name} missing"
            if value is not None:
                self._validate(where, f"header {name}", header["schema"], value)
        content = reply.get("content", {})
        if not content:  # 304
            assert not body, f"{where}: a body where none is documented"
            return
        mime = headers.get("Content-Type", "").split(";")[0].strip()
        media = content.get(mime) or content.get("*/*")
        assert media is not None, f"{where}: Content-Type {mime!r}, documented {sorted(content)}"
        value = _json(where, headers, body) if mime == "application/json" else body.decode()
        self._validate(where, "body", media["schema"], value)

    def _check_body(self, where: str, schema_name: str, value: Any) -> None:
        self._validate(where, "body", {"$ref": f"#/components/schemas/{schema_name}"}, value)

    def _validate(self, where: str, what: str, schema: dict[str, Any], value: Any) -> None:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = jsonschema_rs.Draft202012Validator({**schema, "components": self.doc["components"]})
        errors = [str(error).splitlines()[0] for error in self._validators[key].iter_errors(value)]
        assert not errors, f"{where}: {what} does not match the document: {errors[:3]}; got {value!r:.500}"

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            _, *parts = node["$ref"].split("/")
            node = self.doc
            for part in parts:
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


def _param_regex(match: re.Match[str]) -> str:
    return ".+" if match.group(1) == "user" else "[^/]+"  # a chat id may hold "/" (the chat converter)


def _json(where: str, headers: Mapping[str, str], body: bytes) -> Any:
    assert headers.get("Content-Type", "").startswith("application/json"), f"{where}: not JSON"
    return json.loads(body)
