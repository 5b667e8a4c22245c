"""Microsoft Entra ID: tenants, app registrations, client-credential tokens and their validation."""
