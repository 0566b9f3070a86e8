"""Files, logging, the command-line entry, devices, the one registry and the stages' code deps."""
