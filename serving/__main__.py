"""`python -m serving`: the API on uvicorn, from the settings, with a token and example calls."""

import argparse
import logging
import os
import secrets

import uvicorn

from appconfig import get_settings
from serving.app import create_app
from serving.settings import ServingSettings


def main() -> None:
    parser = argparse.ArgumentParser(description="the serving API on uvicorn")
    parser.add_argument("--workers", type=int, help="worker processes (SERVING_WORKERS, 1)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)  # the change follower's client
    settings = get_settings()
    serving = ServingSettings().with_tokens_for(settings.profile)
    workers = args.workers or serving.workers
    token = serving.tokens[0].get_secret_value()
    base = f"http://{serving.host}:{serving.port}"
    shown = token if serving.generated_token else "<a token from SERVING_TOKENS>"
    print(f"serving on {base} (docs: {base}/docs)")
    if serving.generated_token:
        print(f"generated bearer token (set SERVING_TOKENS to choose your own): {token}")
        admin = serving.admin_tokens[0].get_secret_value()
        print(f"generated admin token, for /admin/* only (SERVING_ADMIN_TOKENS): {admin}")
    print("example calls:")
    auth = f'-H "Authorization: Bearer {shown}"'
    for path in (
        "/v1/users/<user_id>/feed?limit=10&explain=true",
        "/v1/users/<user_id>/suggestions",
        "/v1/users/<user_id>/explore",
        "/v1/users/<user_id>/suggested-hashtags",
        "/v1/users/<user_id>/suggested-locations",
        "/v1/users/<user_id>/stories",
        "/v1/users/<user_id>/notifications",
        "/v1/trending/hashtags",
        "/v1/search?q=golden%20hour&viewer_id=<user_id>",
        "/v1/search/autocomplete?q=a&viewer_id=<user_id>",
    ):
        print(f"  curl {auth} '{base}{path}'")
    print(
        f"  curl {auth} -H 'Content-Type: application/json' -d "
        f'\'{{"user_id": <user_id>, "post_ids": [<post_id>, ...], "explain": true}}\' {base}/v1/rank'
    )
    if workers > 1:
        # each worker is a fresh process reading these settings: they must share the token
        # and the cursor key, or a cursor from one worker would be refused by another
        os.environ["SERVING_TOKENS"] = ",".join(t.get_secret_value() for t in serving.tokens)
        if not serving.cursor_secret.get_secret_value():
            os.environ["SERVING_CURSOR_SECRET"] = secrets.token_urlsafe(32)
        uvicorn.run(
            "serving.app:app_from_environment",
            factory=True,
            workers=workers,
            host=serving.host,
            port=serving.port,
            log_level="info",
            access_log=serving.access_log,
        )
        return
    uvicorn.run(
        create_app(settings, serving),
        host=serving.host,
        port=serving.port,
        log_level="info",
        access_log=serving.access_log,
    )


if __name__ == "__main__":
    main()
