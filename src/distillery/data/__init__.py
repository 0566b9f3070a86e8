"""Raw sources, seeded splits and the prepared data on disk (stages ``data`` and ``prepare``)."""
