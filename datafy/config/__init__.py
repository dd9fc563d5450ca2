"""Settings: one frozen object built from the environment, shared by the API and the monitor."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from datafy.config.env import EnvReader, parse_duration, parse_switch
from datafy.config.redis import RedisOptions
from datafy.config.values import (
    check_redis_url,
    choice,
    is_http_url,
    jwt_secret,
    parse_format,
    parse_keys,
    parse_level,
    parse_schedule,
    parse_secrets,
    public_url,
    url_from_parts,
    writable_dir,
)
from datafy.errors import ConfigurationError

# Paced for a person waiting on WhatsApp: seconds first, then wider gaps; about a day in all (docs/GUARANTEES.md).
DEFAULT_RETRY_SCHEDULE = "1s,2s,5s,10s,30s,1m,2m,5m,10m,30m,1h,2h,4h,8h,12h"
MAX_SECONDS = 365 * 86400  # the longest ttl, max_wait or dedupe window: a year keeps every deadline a valid date
MAX_MONITOR_PROCESSES = 64
LEASE_MARGIN_SECONDS = 3.0  # DELIVERY_VISIBILITY_TIMEOUT - WEBHOOK_TIMEOUT at least


def normalize_keyword(text: str) -> str:
    """Fold case, accents and surrounding spaces, so 'Pronto ' matches 'pronto'."""
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Settings:
    """Every tunable of redis-datafy; see .env.example for the variables and defaults."""

    redis_url: str = "redis://localhost:6379/0"
    redis_db: int = 0
    redis_prefix: str = "datafy"
    redis: RedisOptions = field(default_factory=RedisOptions)  # Sentinel, TLS, replicated acks, partitions
    webhook_url: str = ""
    default_ttl: float = 15.0
    max_ttl: float = 86400.0
    max_message_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    max_wait: float = 0.0
    max_messages: int = 0
    max_batch_messages: int = 1000
    max_batch_bytes: int = 4 * 1024 * 1024
    flush_keywords: frozenset[str] = field(default_factory=frozenset)
    dedupe_window: float = 600.0
    max_pending_chats: int = 200_000  # chats with an open or undelivered batch; past it new chats get 429 (0: off)
    rate_limit_per_user: int = 120  # messages per user per minute; past it 429 (0: no limit)
    rate_limit_per_key: int = 0  # messages per API key per minute, a 1/REDIS_PARTITIONS share per partition (0: off)
    sequence_ttl: float = 86400.0  # a chat's batch numbering restarts after this long with no batch
    answer_window: float = 600.0  # how long a delivered batch stays readable for the answer guard (0: off)
    await_answer: bool = False  # AWAIT_ANSWER: a chat's next batch waits for the verdict on its last one
    answer_timeout: float = 120.0  # ... at most this long
    human_pause: float = 1800.0  # how long a message from the business's own phone pauses the chat
    public_url: str = ""  # the API's address as the workflow reaches it: batches then carry links
    max_typing_extension: float = 60.0  # typing holds a batch at most this long past its last message (0: no bound)
    webhook_concurrency: int = 32
    monitor_processes: int = 0  # 0: one per CPU the container may use
    api_nice: int = 19  # the API workers' niceness: a monitor on the same cores gets the CPU first (0: as any)
    webhook_timeout: float = 15.0
    webhook_retry_schedule: tuple[float, ...] = tuple(parse_duration(s) for s in DEFAULT_RETRY_SCHEDULE.split(","))
    webhook_secrets: tuple[str, ...] = ()  # Standard Webhooks secrets (whsec_...); none: batches are not signed
    max_batch_age: float = 0.0  # 0: off; else a batch whose first message is older is dead-lettered as expired
    delivery_visibility_timeout: float = 60.0
    dead_letter_max: int = 10000
    flush_poll_interval: float = 0.1
    shutdown_grace: float = 20.0
    api_keys: tuple[str, ...] = ()  # any of them opens the ingest routes (several: rotation)
    admin_api_keys: tuple[str, ...] = ()  # any of them opens the admin routes; never the ingest keys
    ingest_auth: bool = True  # False only by an explicit INGEST_AUTH=off
    log_level: str = "INFO"
    log_format: str = "text"
    # --- Metrics (datafy/metrics.py) ---
    metrics_port: int = 9464  # the monitor's Prometheus endpoint; 0: off
    metrics_host: str = "0.0.0.0"  # HOST: where the monitor's endpoint listens
    metrics_tokens: tuple[str, ...] = ()  # METRICS_TOKEN: Bearer token(s) a scrape must send
    metrics_dir: str = ""  # PROMETHEUS_MULTIPROC_DIR; empty: a temporary directory per run
    # --- Sources: native gateway webhooks (datafy/sources/, routes in datafy/http/sources.py) ---
    evolution_jwt_secret: str = ""  # set: a Bearer HS256 JWT signed with it (Evolution's jwt_key) also opens them
    evolution_from_me: str = "ignore"  # "discard": the business's own message discards the pending batch
    group_messages: str = "ignore"  # "chat": group messages are buffered per group (every gateway)
    whatsapp_verify_token: str = ""  # Meta's hub.verify_token for the GET handshake
    whatsapp_app_secret: str = ""  # Meta's app secret; the WhatsApp route is off (404) until it is set

    def check_api(self) -> None:
        """The API refuses to start open to the world: ingest needs API_KEY unless INGEST_AUTH=off says so."""
        if self.ingest_auth and not self.api_keys:
            raise ConfigurationError(
                "API_KEY is not set: set API_KEY to a long random key that your clients send as X-API-Key, "
                "or set INGEST_AUTH=off if only your own flows on a private network can reach the API"
            )

    @property
    def redis_url_redacted(self) -> str:
        """The Redis URL with any password masked, for logs."""
        parts = urlsplit(self.redis_url)
        if parts.password is None:
            return self.redis_url
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build and validate settings; a bad value raises ConfigurationError naming the variable."""
        env = os.environ if env is None else env
        reader = EnvReader(env)
        redis_db = reader.get("REDIS_DB", int, 0, minimum=0)
        redis = RedisOptions.from_env(env, reader)
        redis_url = env.get("REDIS_URL", "").strip() or url_from_parts(reader, redis_db, redis.wants_tls)
        redis_db = check_redis_url(redis_url, "REDIS_URL" if env.get("REDIS_URL", "").strip() else "REDIS_HOST")
        if redis.wants_tls and not redis_url.startswith("rediss://"):
            raise ConfigurationError("REDIS_TLS_* is set but REDIS_URL is not rediss://: use rediss:// for TLS")
        webhook_url = env.get("WEBHOOK_URL", "").strip()
        if webhook_url and not is_http_url(webhook_url):
            raise ConfigurationError("WEBHOOK_URL must be an http:// or https:// URL with a host (and a valid port)")
        prefix = env.get("REDIS_PREFIX", "datafy").strip()
        if not prefix or any(ch in prefix for ch in "{}: "):
            raise ConfigurationError("REDIS_PREFIX must be non-empty, without spaces, ':' or braces")
        max_batch_bytes = reader.get("MAX_BATCH_BYTES", int, 4 * 1024 * 1024, minimum=1024)
        # GROUP_MESSAGES was EVOLUTION_GROUPS (it governs every gateway); the old name still works.
        old_name_only = env.get("EVOLUTION_GROUPS", "").strip() and not env.get("GROUP_MESSAGES", "").strip()
        groups = "EVOLUTION_GROUPS" if old_name_only else "GROUP_MESSAGES"
        settings = cls(
            redis_url=redis_url,
            redis_db=redis_db,
            redis_prefix=prefix,
            redis=redis,
            webhook_url=webhook_url,
            default_ttl=reader.get("DEFAULT_TTL", float, 15.0, minimum=0.001),
            max_ttl=reader.get("MAX_TTL", float, 86400.0, minimum=0.001, maximum=MAX_SECONDS),
            max_message_bytes=reader.get("MAX_MESSAGE_BYTES", int, min(64 * 1024, max_batch_bytes), minimum=1),
            max_body_bytes=reader.get("MAX_BODY_BYTES", int, 1024 * 1024, minimum=1024),
            max_wait=reader.get("MAX_WAIT", float, 0.0, minimum=0, maximum=MAX_SECONDS),
            max_messages=reader.get("MAX_MESSAGES", int, 0, minimum=0),
            max_batch_messages=reader.get("MAX_BATCH_MESSAGES", int, 1000, minimum=1),
            max_batch_bytes=max_batch_bytes,
            flush_keywords=frozenset(
                normalize_keyword(word) for word in env.get("FLUSH_KEYWORDS", "").split(",") if word.strip()
            ),
            dedupe_window=reader.get("DEDUPE_WINDOW", parse_duration, 600.0, minimum=1, maximum=MAX_SECONDS),
            max_pending_chats=reader.get("MAX_PENDING_CHATS", int, 200_000, minimum=0),
            rate_limit_per_user=reader.get("RATE_LIMIT_PER_USER", int, 120, minimum=0),
            rate_limit_per_key=reader.get("RATE_LIMIT_PER_KEY", int, 0, minimum=0),
            sequence_ttl=reader.get("SEQUENCE_TTL", parse_duration, 86400.0, minimum=60, maximum=MAX_SECONDS),
            answer_window=reader.get("ANSWER_WINDOW", parse_duration, 600.0, minimum=0, maximum=7 * 86400),
            await_answer=reader.get("AWAIT_ANSWER", parse_switch, False),
            answer_timeout=reader.get("ANSWER_TIMEOUT", parse_duration, 120.0, minimum=1, maximum=86400),
            human_pause=reader.get("HUMAN_PAUSE", parse_duration, 1800.0, minimum=1, maximum=7 * 86400),
            public_url=reader.get("PUBLIC_URL", public_url, ""),
            max_typing_extension=reader.get(
                "MAX_TYPING_EXTENSION", parse_duration, 60.0, minimum=0, maximum=MAX_SECONDS
            ),
            webhook_concurrency=reader.get("WEBHOOK_CONCURRENCY", int, 32, minimum=1),
            monitor_processes=reader.get("MONITOR_PROCESSES", int, 0, minimum=0, maximum=MAX_MONITOR_PROCESSES),
            api_nice=reader.get("API_NICE", int, 19, minimum=0, maximum=19),
            webhook_timeout=reader.get("WEBHOOK_TIMEOUT", float, 15.0, minimum=0.1),
            webhook_retry_schedule=reader.get("WEBHOOK_RETRY_SCHEDULE", parse_schedule, cls.webhook_retry_schedule),
            webhook_secrets=parse_secrets(env.get("WEBHOOK_SECRET", "")),
            max_batch_age=reader.get("MAX_BATCH_AGE", parse_duration, 0.0, minimum=0, maximum=MAX_SECONDS),
            delivery_visibility_timeout=reader.get("DELIVERY_VISIBILITY_TIMEOUT", float, 60.0, minimum=1),
            dead_letter_max=reader.get("DEAD_LETTER_MAX", int, 10000, minimum=1),
            flush_poll_interval=reader.get("FLUSH_POLL_INTERVAL", float, 0.1, minimum=0.005, maximum=10),
            shutdown_grace=reader.get("SHUTDOWN_GRACE", float, 20.0, minimum=0),
            api_keys=parse_keys(env.get("API_KEY", "")),
            admin_api_keys=parse_keys(env.get("ADMIN_API_KEY", "")),
            ingest_auth=reader.get("INGEST_AUTH", parse_switch, True),
            log_level=reader.get("LOG_LEVEL", parse_level, "INFO"),
            log_format=reader.get("LOG_FORMAT", parse_format, "text"),
            # --- Metrics ---
            metrics_port=reader.get("METRICS_PORT", int, 9464, minimum=0, maximum=65535),
            metrics_host=env.get("HOST", "").strip() or "0.0.0.0",
            metrics_tokens=parse_keys(env.get("METRICS_TOKEN", "")),
            metrics_dir=reader.get("PROMETHEUS_MULTIPROC_DIR", writable_dir, ""),
            # --- Sources ---
            evolution_jwt_secret=jwt_secret(env.get("EVOLUTION_JWT_SECRET", "").strip()),
            evolution_from_me=reader.get(
                "EVOLUTION_FROM_ME", choice("EVOLUTION_FROM_ME", "ignore", "discard", "pause"), "ignore"
            ),
            group_messages=reader.get(groups, choice(groups, "ignore", "chat"), "ignore"),
            whatsapp_verify_token=env.get("WHATSAPP_VERIFY_TOKEN", "").strip(),
            whatsapp_app_secret=env.get("WHATSAPP_APP_SECRET", "").strip(),
        )
        settings._check_relations()
        return settings

    def _check_relations(self) -> None:
        if self.default_ttl > self.max_ttl:
            raise ConfigurationError(f"DEFAULT_TTL ({self.default_ttl:g}) must not exceed MAX_TTL ({self.max_ttl:g})")
        if set(self.admin_api_keys) & set(self.api_keys):  # the error never repeats a key
            raise ConfigurationError(
                "ADMIN_API_KEY shares a key with API_KEY: every integration holds the ingest key, so the admin "
                "key(s) must differ from all of them"
            )
        if self.max_message_bytes > self.max_batch_bytes:
            raise ConfigurationError(
                f"MAX_MESSAGE_BYTES ({self.max_message_bytes}) must not exceed MAX_BATCH_BYTES "
                f"({self.max_batch_bytes}): one message would fill a batch past its cap"
            )
        if self.delivery_visibility_timeout < self.webhook_timeout + LEASE_MARGIN_SECONDS:
            raise ConfigurationError(
                f"DELIVERY_VISIBILITY_TIMEOUT ({self.delivery_visibility_timeout:g}) must be at least WEBHOOK_TIMEOUT "
                f"({self.webhook_timeout:g}) + {LEASE_MARGIN_SECONDS:g}: a lease must outlive the whole POST (connect "
                f"included) and the moment between the lease and the POST, or one batch could be sent twice at once"
            )
