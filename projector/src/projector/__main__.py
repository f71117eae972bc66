"""Kept so ``python -m projector`` works for Dockerfiles, compose, k8s, the e2e suite and bench."""

from tandem.runtime.projector.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
