"""Unit tests of ``src/distillery``, one module per library module (a package so that test
file names may repeat those under ``tests/stages/``)."""
