"""``python -m query_service``: the library's query runtime, serving the apps in TANDEM_APPS."""

from tandem.runtime.query.__main__ import main

if __name__ == "__main__":
    main()
