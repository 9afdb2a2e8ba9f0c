"""A process using the embedded PostgreSQL of a data directory, as ``cdlm serve`` does.

``python -m tests.support.embedded_holder PGDATA`` starts the server, prints ``ready`` and waits.
SIGTERM makes it stop the server and exit (as Ctrl+C does to ``cdlm serve``); SIGKILL leaves the
server behind.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType

from cdlm.db.embedded import EmbeddedPostgres


def _exit(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)


def main() -> None:
    signal.signal(signal.SIGTERM, _exit)
    server = EmbeddedPostgres(Path(sys.argv[1]))
    server.start()
    try:
        print("ready", flush=True)
        while True:
            signal.pause()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
