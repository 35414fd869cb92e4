"""Settings of the serving API, read from `SERVING_*` variables (and `.env`).

They sit beside the platform's `appconfig.Settings` (which says where ClickHouse, Feast, Redis
and the feed store are, and who counts as a celebrity) and only hold what the API itself decides:
who may call it, how long answers are cached, how many candidates a feed ranks.
"""

import secrets
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SERVING_", env_file=".env", extra="ignore", populate_by_name=True
    )

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    access_log: bool = True  # uvicorn's per-request log line (benchmarks turn it off)
    workers: int = Field(1, ge=1, le=64)  # uvicorn worker processes (`--workers N`)
    # OpenTelemetry spans per request and per feed/rank stage: off, console or otlp
    tracing: str = Field("off", pattern="^(off|console|otlp)$")
    # signs page cursors; every worker must share it (empty: `python -m serving` makes one)
    cursor_secret: SecretStr = SecretStr("")
    # bearer tokens for service-to-service calls, comma-separated; empty on the embedded profile
    # generates one at start-up (printed by `python -m serving`)
    # an entry is `token` (every read scope) or `token:feed+rank` (see serving.auth)
    tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # tokens for /admin/* only (scope `admin`), never accepted elsewhere; embedded makes one up
    admin_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    generated_token: bool = False

    cache_ttl_seconds: float = Field(300.0, gt=0)  # a ranked feed is reused this long
    cursor_ttl_seconds: float = Field(1800.0, gt=0)  # pages of a snapshot stay readable this long
    max_cached_users: int = Field(50_000, ge=1)

    feed_default_limit: int = Field(20, ge=1)
    feed_max_limit: int = Field(100, ge=1)
    feed_snapshot_size: int = Field(300, ge=1)  # ranked posts kept per snapshot (all its pages)
    # share of feed slots filled with random eligible candidates (serving.exploration), flagged
    # `explored` on the item and its impression; 0 turns exploration off
    feed_explore_share: float = Field(0.0, ge=0.0, le=0.5)

    feed_candidates: int = Field(1_000, ge=1)  # ranked per feed, at most (after the filters)
    pushed_candidates: int = Field(800, ge=0)  # from the precomputed feed
    pulled_per_celebrity: int = Field(20, ge=0)  # recent posts of each followed celebrity
    pulled_candidates: int = Field(200, ge=0)
    explore_candidates: int = Field(20, ge=0)
    # the feed's freshness floor is appconfig's FEED_WINDOW_HOURS (one rule: how old a post in a
    # home feed may be), which the precompute and the pull read too
    max_consecutive_per_author: int = Field(2, ge=1)

    feed_store_prefix: str = "feeds:"  # the key prefix the feed precompute writes under
    feed_store_retry_seconds: float = Field(5.0, ge=0)  # after a failure, fall back this long
    story_hours: float = Field(24.0, gt=0)
    # how far back GET /notifications lists (not dbt's notification_digest_window_hours, which
    # groups events into one digest)
    notifications_lookback_hours: float = Field(72.0, gt=0)
    suggestions_default_limit: int = Field(10, ge=1)
    max_list_limit: int = Field(100, ge=1)

    ranker_model_name: str = "feed-ranker"
    ranker_alias: str = "champion"
    model_reload_seconds: float = Field(30.0, gt=0)
    # follow visibility changes (Kafka, else the landing zone) between snapshot reloads
    follow_changes: bool = True
    change_topics: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["events.relationships", "events.users", "events.posts"]
    )
    snapshot_refresh_seconds: float = Field(600.0, ge=0)  # 0: only on POST /admin/reload
    # "data": now = the data's newest event + time since load (generated/replayed data);
    # "wall": the wall clock (live traffic)
    clock: str = Field("data", pattern="^(data|wall)$")

    @field_validator("tokens", "admin_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @field_validator("change_topics", mode="before")
    @classmethod
    def _split_topics(cls, value: object) -> object:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    @model_validator(mode="after")
    def _limits(self) -> "ServingSettings":
        if self.feed_default_limit > self.feed_max_limit:
            raise ValueError("SERVING_FEED_DEFAULT_LIMIT exceeds SERVING_FEED_MAX_LIMIT")
        return self

    def with_tokens_for(self, profile: str) -> "ServingSettings":
        """Outside the embedded profile tokens must be given; embedded, they are made up (a
        service token and an admin token). Without admin tokens /admin/* answers 403."""
        if self.tokens:
            return self
        if profile != "embedded":
            raise ValueError("profile 'services' needs SERVING_TOKENS (comma-separated)")
        token = SecretStr(secrets.token_urlsafe(24))
        admin = self.admin_tokens or [SecretStr(secrets.token_urlsafe(24))]
        return self.model_copy(
            update={"tokens": [token], "admin_tokens": admin, "generated_token": True}
        )

    def token_scopes(self) -> dict[str, frozenset[str]]:
        """token -> scopes (raises serving.auth.TokenError on a bad entry)."""
        from serving.auth import token_table

        return token_table(
            (t.get_secret_value() for t in self.tokens),
            (t.get_secret_value() for t in self.admin_tokens),
        )
