"""The environment every test's settings and processes start from (the `env` fixture copies it)."""

from __future__ import annotations

TEST_ENV = {
    "WEBHOOK_URL": "http://127.0.0.1:9/unused",
    "ADMIN_API_KEY": "admin-secret",
    "INGEST_AUTH": "off",  # the ingest key itself is tested in http/test_auth.py and e2e/test_servers.py
    "RATE_LIMIT_PER_USER": "0",  # tests send hundreds per chat; the limit is tested on its own in http/test_ingest.py
    "WEBHOOK_TIMEOUT": "2",
    "DELIVERY_VISIBILITY_TIMEOUT": "5",
    "WEBHOOK_RETRY_SCHEDULE": "0.2s,0.2s,0.2s",
    "FLUSH_POLL_INTERVAL": "0.05",
    "METRICS_PORT": "0",  # tests run many monitors at once; the metrics tests give theirs a free port
}
