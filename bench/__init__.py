"""`make bench`: Tandem measured against the raw limits of the same machine, in the same run.

Entry point ``python -m bench`` (see ``__main__``). The package starts its own servers (through
``deploy/local/stack.py`` on its own ports and data directory) and its own service processes,
so it never touches a ``make run`` or ``make test`` stack on the same machine.
"""
