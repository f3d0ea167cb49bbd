"""Notifications: events derived from each pass (``events``), kept in the store's outbox (``enqueue``) and
POSTed to the declared destinations, signed, retried, at most once per event id (``deliver``)."""
