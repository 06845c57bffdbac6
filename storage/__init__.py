"""Persistence: MongoDB access through PyMongo's native async client, and the embedded server."""
