"""The iot_campaigns backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth."""
