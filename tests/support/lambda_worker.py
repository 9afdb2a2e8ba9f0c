"""A Lambda container stand-in: imports the real handler and serves invocations from stdin.

Each input line is an API Gateway event (JSON); each output line is
``{"response": <handler result>, "startups": <database start-ups so far>}``. The process lives
across invocations, as a warm Lambda container does.
"""

from __future__ import annotations

import json
import sys
from typing import Any


class FakeLambdaContext:
    function_name = "cdlm-test-http"
    memory_limit_in_mb = 1024
    aws_request_id = "test-invocation"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def main() -> None:
    import cdlm.app as app_module

    startups = 0
    original = app_module.init_orm

    async def counting_init_orm(*args: Any, **kwargs: Any) -> Any:
        nonlocal startups
        startups += 1
        return await original(*args, **kwargs)

    app_module.init_orm = counting_init_orm  # type: ignore[assignment]

    from cdlm.lambda_handler import handler

    for line in sys.stdin:
        event = json.loads(line)
        response = handler(event, FakeLambdaContext())
        sys.stdout.write(json.dumps({"response": response, "startups": startups}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
