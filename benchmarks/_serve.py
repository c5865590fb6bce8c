"""``hfbridge serve`` for the server benchmark, in a child process of its own.

Started the way the tests start it (``EmbeddedServer``), with the models loaded before it says
READY, so no measured request waits for a load. It runs in its own process so that the load
generator's event loop does not share the server's GIL; it stops when its stdin closes.

    python benchmarks/_serve.py MODEL_ID [MODEL_ID ...]   # prints "READY http://127.0.0.1:PORT"
"""

from __future__ import annotations

import sys


def main(model_ids: list[str]) -> None:
    from hfbridge.server.app import ServerSettings
    from hfbridge.server.runner import EmbeddedServer

    with EmbeddedServer(ServerSettings()) as server:
        server.wait_until_loaded(model_ids)
        print(f"READY {server.url}", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main(sys.argv[1:])
