"""The cached feed's baseline: a FastAPI app that answers one fixed JSON body of a given size
(`TRIVIAL_JSON_BYTES`), so the framework + HTTP cost of an answer that size is measured in the
same run as the feed (`bench.serving_load`).

    TRIVIAL_JSON_BYTES=5000 uvicorn bench.trivial_json:app --port 8001
"""

import os

import orjson
from fastapi import FastAPI, Response

SIZE = int(os.environ.get("TRIVIAL_JSON_BYTES", "5000"))
BODY = orjson.dumps({"items": "x" * max(SIZE - 12, 0)})
app = FastAPI()


@app.get("/v1/users/{user_id}/feed")
async def feed(user_id: int) -> Response:
    return Response(BODY, media_type="application/json")


@app.get("/readyz")
async def readyz() -> dict:
    return {"ready": True}
