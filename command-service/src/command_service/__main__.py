"""``python -m command_service``: the library's command runtime (:mod:`tandem.runtime.command`)."""

from tandem.runtime.command.__main__ import main

if __name__ == "__main__":
    main()
