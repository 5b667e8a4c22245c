"""Azure Key Vault: secret versions behind the data plane's bearer challenge (GET/PUT secrets)."""
