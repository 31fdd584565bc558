"""Wire-level helpers shared by the client and the local engine (no framework or server imports)."""
