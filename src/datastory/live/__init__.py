"""Live monitoring, outside the pipeline: `datastory serve` (the reports over HTTP, so an open dashboard reloads
itself after a newer build) and `datastory watch` (re-run `dvc repro` when the source data changes).

Neither is a DVC stage: the stages never import this package.
"""
