"""End-to-end harness for Tandem: real servers, real service processes, faults and a report.

Where to look:

- :mod:`tandem_e2e.config` — the profile (``quick``/``full``), seed, port block and paths;
- :mod:`tandem_e2e.servers` — Kafka, MongoDB-wire and Redis through ``deploy/local/stack.py``;
- :mod:`tandem_e2e.services` — the service processes (start, ready, stop, SIGKILL, restart);
- :mod:`tandem_e2e.system` — both together, plus clients, tokens and database access;
- :mod:`tandem_e2e.fold` — the pure fold of the event store that read models must equal;
- :mod:`tandem_e2e.ledger`, :mod:`tandem_e2e.clients`, :mod:`tandem_e2e.load` — commands sent
  and what came back;
- :mod:`tandem_e2e.report` — the reliability table.
"""
