"""Azure RBAC (Microsoft.Authorization): role definitions and role assignments on ARM scopes."""
