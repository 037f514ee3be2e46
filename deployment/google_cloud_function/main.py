"""Google Cloud Function (2nd gen) entry point `predict`: the prediction service as one HTTP function.

Assembled by executables/cloud_setup.sh google_cloud_function. functions-framework hands every
request (any path: /health, /model, /predict) to `predict`, which passes it on to the ASGI app
every target serves (deployment/app.py): no prediction code of its own. Locally:
    python -m functions_framework --target predict --port 8080
"""

from functools import lru_cache
from typing import Any

import functions_framework.aio
from starlette.requests import Request

from deployment.run_deployed import create_deployed_app


@lru_cache(maxsize=1)
def service() -> Any:
    """The app, built once per instance on its first request (bundle verified, log opened)."""
    return create_deployed_app()


@functions_framework.aio.http
async def predict(request: Request) -> Any:
    """Answer with the service itself: an ASGI app is a valid response, and it reads the request."""
    return service()
