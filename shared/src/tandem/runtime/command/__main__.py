"""The command runtime's process: serve every app's command routes with uvicorn (uvloop, httptools)."""

from __future__ import annotations

import uvicorn

from tandem.observability import configure_logging
from tandem.runtime.command.bootstrap import SERVICE_NAME, create_app
from tandem.runtime.command.settings import CommandServiceSettings


def main() -> None:
    settings = CommandServiceSettings()
    configure_logging(SERVICE_NAME, settings.log_level, settings.resolved_log_format)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
