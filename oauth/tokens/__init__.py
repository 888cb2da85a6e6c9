"""Tokens: JOSE (the only importer of a JOSE library), signing keys, claims, the one issuing pipeline, refresh rotation, verification."""
