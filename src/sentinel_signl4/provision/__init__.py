"""Provisioning: the connector's least-privilege custom role, derived from its code and configuration, and the
scripts that create its identity (``sentinel-signl4 provision``)."""
