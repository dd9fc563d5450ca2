"""Signed batches: our headers verify with the standardwebhooks package's own verifier."""

from __future__ import annotations

import base64
import os
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from datafy.config import Settings
from datafy.errors import ConfigurationError
from datafy.signing import Signer
from tests.support.signing import new_secret

BODY = '{"user":"5511999","messages":["oi","preço 💸"],"batch_id":"b"}'.encode()


def test_headers_verify_with_the_reference_verifier() -> None:
    secret = new_secret()
    headers = Signer((secret,)).headers("0" * 32, BODY)
    assert headers["webhook-id"] == "0" * 32
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 2
    assert Webhook(secret).verify(BODY, headers)["messages"] == ["oi", "preço 💸"]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"oi", b"ok"), headers)


def test_rotation_signs_with_every_secret() -> None:
    old, new = new_secret(), new_secret()
    headers = Signer((old, new)).headers("1" * 32, BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, headers) and Webhook(new).verify(BODY, headers)


def test_a_stale_timestamp_is_rejected_by_receivers() -> None:
    secret = new_secret()
    headers = Signer((secret,)).headers("2" * 32, BODY, now=time.time() - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


@pytest.mark.parametrize("value", ["whsec_", "whsec_not*base64", "whsec_" + base64.b64encode(b"short").decode()])
def test_bad_secrets_stop_start_up_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRET: secret 2") as error:
        Settings.from_env({"WEBHOOK_SECRET": f"{new_secret()} {value}"})
    assert value.removeprefix("whsec_") not in str(error.value) or value == "whsec_"


def test_secrets_without_the_prefix_are_accepted() -> None:
    raw = base64.b64encode(os.urandom(24)).decode()
    assert Settings.from_env({"WEBHOOK_SECRET": raw}).webhook_secrets == (raw,)
