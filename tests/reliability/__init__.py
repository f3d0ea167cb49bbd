"""The reliability and security suite (crash, faults, hostile input, fuzzing, secrets, webhooks, TLS/XML, soak)."""
