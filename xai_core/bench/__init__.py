"""The performance suite behind ``python -m xai_core bench`` (``suite.main``): models, methods
against their peers, temporal methods against the slow way, and video I/O, timed side by side;
the report is BENCHMARKS.md (``report``)."""
