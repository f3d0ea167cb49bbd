"""The yateota backend: adapter (Reader, Writer, traits), its HTTP client, replies and auth."""
