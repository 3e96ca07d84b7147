"""Shared library of the pipeline step scripts.

Ships next to the scripts (the processing step uploads the whole ``pipeline_steps/``
directory; the serving model artifact carries it under ``code/``). Scripts put their own
directory on ``sys.path`` and import this package by its plain name.
"""
