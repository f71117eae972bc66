"""Tandem's distributed runtime: the command-service, the projector and the query-service,
written once for any :class:`~tandem.app.App`.

``tandem.runtime.contract`` holds what crosses process boundaries (CloudEvents headers,
change notices, the rebuild pointer); each service's package (``command``, ``projector``,
``query``) holds its composition root and mechanism. Importing ``tandem`` loads none of this.
"""
