"""Releases: many services and scheduled tasks shipped together from one manifest.

manifest (validate) -> plan (compare with what runs) -> engine (deploy in parallel, roll the
whole release back on any failure) -> state (S3, resumable); the CLI, the Lambda steps of
the state machine and the benchmark all drive the same engine.
"""
