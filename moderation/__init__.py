"""Content checks: comment text (profanity, spam) and media (NSFW score, face count)."""
