"""Scoring, latency, execution providers, training curves, plots and the report (stages
``benchmark`` and ``report``)."""
