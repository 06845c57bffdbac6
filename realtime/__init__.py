"""The real-time engine: channels, brokers (memory, Redis), presence, history and delivery."""
