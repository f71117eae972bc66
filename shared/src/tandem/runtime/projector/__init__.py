"""The projector runtime: every declared read model of the loaded apps, fed from Kafka (see
docs/projector.md). ``python -m projector`` runs :func:`tandem.runtime.projector.__main__.main`."""
