"""The sms_gateway simulator: the sandbox's stand-in for the real service."""
