"""The real-time engine: channels, brokers (memory, Redis, Redis Cluster), the hub and its fan-out, presence,
outboxes and the RPC registry. It imports no product domain (webinars, notifications)."""
