"""Streaming notifications: Kafka events -> preferences, privacy, batching -> a push provider."""
