"""One SMS-gateway campaign with its recipients in ``recipients.csv``, for tests that load it without a
sandbox (the backend's URL is never called)."""

from __future__ import annotations


def csv_campaign(text: str = "hello") -> str:
    return f"""\
apiVersion: reconciler/v1
kind: Backend
metadata: {{name: gw}}
spec: {{type: sms-gateway, url: "http://127.0.0.1:9", auth: {{username: a, password: {{env: GW_PASSWORD}}}}}}
---
apiVersion: reconciler/v1
kind: Campaign
metadata: {{name: notice}}
spec: {{backend: gw, text: "{text}", recipients: {{file: recipients.csv}}}}
"""
