"""Generated wire descriptors. Never edit by hand: run `make protos`."""
