"""SIGNL4: the inbound webhook, the REST API (alerts, events, annotations) and outbound webhooks."""
