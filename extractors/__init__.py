"""Extraction stages, one module per stage, plain functions.

read_* (one reader per format) -> segment (cells -> label/value tokens) -> mapping (spaCy +
rapidfuzz labels -> form rows) -> grid (row observations -> candidate values, digit splits) ->
validation (relations, pinning) -> confidence (review routing). ``pipeline.extract_bytes`` runs
them all; the CLI and the Celery tasks call it.
"""
