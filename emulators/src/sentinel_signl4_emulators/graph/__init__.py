"""Microsoft Graph: security incidents and alerts, users, applications and service principals."""
