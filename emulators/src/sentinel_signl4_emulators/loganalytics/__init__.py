"""Azure Monitor Log Analytics query API over the Sentinel tables (a KQL subset)."""
