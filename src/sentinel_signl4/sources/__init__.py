"""Incident sources behind the engine's ``IncidentSource`` port."""
