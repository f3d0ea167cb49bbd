"""The daemon's read-only dashboard at ``/``: an overview of every campaign and backend, a page per
campaign (rollout waves, the SMS delivery funnel and chart, participant counts) and the history, kept
live over server-sent events. Server-rendered (Jinja2), every asset served by the daemon itself.

``views`` / ``campaign_views`` / ``sync`` are pure (snapshot in, view-model out), ``rendering`` turns them
into HTML, ``live`` samples the running daemon, ``app`` serves it, ``auth`` guards it, ``masking`` keeps
phone numbers off the page.
"""
