"""The sms_gateway backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth."""
