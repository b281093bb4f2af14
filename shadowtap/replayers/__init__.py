"""Replay: deliver mirrored traffic to staging, shadow and DR targets."""
