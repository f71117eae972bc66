"""``python -m query_service``: serve the apps in TANDEM_APPS with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import uvicorn

from tandem.runtime.query.bootstrap import QueryServiceSettings, configure, create_app


def main() -> None:
    settings = QueryServiceSettings()
    configure(settings)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=settings.ws_per_message_deflate,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


if __name__ == "__main__":
    main()
