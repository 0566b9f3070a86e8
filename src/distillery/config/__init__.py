"""Typed, validated views of ``params.yaml``: one module per section, so a stage's code deps
name only the sections it reads (``from distillery.config.hpo import HpoParams``), and
:mod:`~distillery.config.base` loads and validates them (:func:`load_section`).

This package imports nothing itself: importing one section never loads another.
"""
