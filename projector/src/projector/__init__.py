"""``python -m projector``: the library's projector (:mod:`tandem.runtime.projector`)."""
