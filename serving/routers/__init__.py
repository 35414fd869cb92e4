"""One router per domain; `serving.app` mounts them all."""
