"""The iot_campaigns simulator: the sandbox's stand-in for the real service."""
