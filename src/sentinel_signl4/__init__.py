"""sentinel-signl4: a self-hosted connector between Microsoft Sentinel / Defender XDR and SIGNL4."""

__all__ = ["__version__"]

__version__ = "0.1.0"
