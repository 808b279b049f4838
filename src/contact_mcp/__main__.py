"""`python -m contact_mcp` and the `contact-mcp` script: the command line, started with the collector off.

Start-up builds ~90k objects that live as long as the process (the SDK, pydantic's schemas, our models). Run while
they are built, the garbage collector walks them again and again: 70–115 ms of each launch on our 2-core machines,
about a tenth of a stdio host's wait for `tools/list`, to find ~1,500 unreachable objects (~0.6 MiB). `serve`
freezes what start-up built and switches the collector back on before the first request
(`serve.freeze_start_up_heap`); the short-lived commands run to their end without it.
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    from contact_mcp.cli import main as run

    run()


if __name__ == "__main__":
    main()
