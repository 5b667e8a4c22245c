"""Microsoft Sentinel incidents, comments, alerts and entities over Azure Resource Manager."""
