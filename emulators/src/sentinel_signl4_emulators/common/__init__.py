"""Shared by every emulated service: the local CA, fault injection, token buckets, OData and KQL evaluation."""
