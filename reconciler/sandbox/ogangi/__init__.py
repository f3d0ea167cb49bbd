"""The ogangi simulator: the sandbox's stand-in for the real service."""
