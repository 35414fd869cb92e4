"""The serving API: `create_app(settings)` -> FastAPI, with everything loaded in `lifespan`.

    uv run python -m serving            # uvicorn on SERVING_HOST:SERVING_PORT, prints a token

Routers per domain (feed, rank, features, recommendations, stories, notifications, discovery,
health); OpenAPI docs at /docs. Every endpoint but health, metrics and docs needs a bearer token.
"""

import gc
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from threadpoolctl import threadpool_limits

from appconfig import Settings, get_settings
from serving import errors, tracing
from serving.metrics import LatencyMiddleware
from serving.model_loading import ModelHolder
from serving.routers import (
    discovery,
    experiments,
    features,
    feed,
    health,
    notifications,
    rank,
    recommendations,
    search,
    stories,
)
from serving.settings import ServingSettings
from serving.state import ServingState


def create_app(
    settings: Settings | None = None,
    serving: ServingSettings | None = None,
    *,
    models: ModelHolder | None = None,
    background: bool = True,
    arm_models: Mapping[str, ModelHolder] | None = None,
) -> FastAPI:
    """The app; `models` and `arm_models` (experiment arms' models by reference) replace the
    registry-backed holders (tests), `background=False` turns off the reload loops (tests call
    refresh themselves)."""
    state = ServingState.create(
        settings or get_settings(), serving or ServingSettings(), models, arm_models
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # numpy's BLAS threads fight the server's own threads and the other workers for the
        # cores: on the shared 2-core machine a 1,000-row product took 35 ms with 2, 1.7 with 1
        threadpool_limits(1, user_api="blas")
        await run_in_threadpool(state.load)
        # the loaded snapshot, models and TensorFlow are long-lived: out of the collector's way,
        # a full collection scanning them paused requests ~450 ms (the uncached feed's p99)
        gc.freeze()
        if background:
            state.start_background()
        yield
        await state.stop()

    app = FastAPI(
        title="photo-platform serving",
        version="1",
        description="Home feed, ranking, features, recommendations, stories, notifications, "
        "trending and search for the photo app. Send `Authorization: Bearer <token>`.",
        lifespan=lifespan,
    )
    app.state.serving = state
    app.add_middleware(LatencyMiddleware)
    errors.install(app)
    tracing.install(app, state.serving.tracing)
    for module in (
        health,
        experiments,
        feed,
        rank,
        features,
        recommendations,
        stories,
        notifications,
        discovery,
        search,
    ):
        app.include_router(module.router)
    return app


def app_from_environment() -> FastAPI:
    """The app from the environment's settings: what each `--workers N` process runs."""
    return create_app()
