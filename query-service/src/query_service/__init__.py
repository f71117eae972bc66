"""The query service: ``python -m query_service`` runs :mod:`tandem.runtime.query`."""
