"""Authentication: signing and verifying JWTs, the verified caller (``Claims``)."""
