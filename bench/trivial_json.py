"""The cached feed's baseline: a FastAPI app that answers one fixed JSON body of a given size,
so the framework + HTTP cost of an answer that size is measured in the same run as the feed
(`bench.serving_load`).

    python -m bench.trivial_json --bytes 5000 --port 8001
"""

import argparse

import orjson
import uvicorn
from fastapi import FastAPI, Response


def build_app(size: int) -> FastAPI:
    """The app: every feed request gets the same `size`-byte JSON body."""
    body = orjson.dumps({"items": "x" * max(size - 12, 0)})
    app = FastAPI()

    @app.get("/v1/users/{user_id}/feed")
    async def feed(user_id: int) -> Response:
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> dict:
        return {"ready": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bytes", type=int, default=5000, help="size of the JSON body")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.bytes),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
