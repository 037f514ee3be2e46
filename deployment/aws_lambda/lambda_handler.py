"""AWS Lambda entry point `lambda_handler.handler` (the container image's CMD).

Assembled by executables/cloud_setup.sh aws_lambda. Mangum turns API Gateway REST (v1) and HTTP
API (v2) events, and function URL events, into requests for the ASGI app every target serves
(deployment/app.py): no prediction code of its own.
"""

from functools import lru_cache
from typing import Any

from deployment.run_deployed import lambda_handler


@lru_cache(maxsize=1)
def _handler() -> Any:
    """Built once per execution environment, on its first event (bundle verified, log opened)."""
    return lambda_handler()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API Gateway event in, one API Gateway response out."""
    result: dict[str, Any] = _handler()(event, context)
    return result
