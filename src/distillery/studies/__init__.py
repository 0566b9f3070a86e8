"""The opt-in comparison studies (``dvc repro studies/dvc.yaml``): HPO samplers on a tabular
benchmark (:mod:`.tabular`) and the calibration of NAS proxies against a reference training
budget (:mod:`.calibration`)."""
