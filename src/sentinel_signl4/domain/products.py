"""Short, readable names for the products that raise alerts ("Microsoft Defender for Endpoint" → "Defender for
Endpoint"). Pure.

Sentinel reports a product under whatever name its provider used when the alert was raised, and those names
changed with every rebranding (Azure Security Center → Defender for Cloud, Azure ATP → Defender for Identity,
Azure Active Directory Identity Protection → Entra ID Protection). A responder reading a phone wants one short,
current name per product. :data:`DEFAULT_PRODUCT_NAMES` covers the names seen in ``alertProductNames``,
``SecurityAlert.ProductName`` and ``ProviderName``; a connector's override table wins over it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["DEFAULT_PRODUCT_NAMES", "friendly_product", "friendly_products"]

#: Provider/product name (case-insensitive) → short name. Old and new brand names map to the current one.
DEFAULT_PRODUCT_NAMES: Mapping[str, str] = {
    "Azure Sentinel": "Sentinel",
    "Microsoft Sentinel": "Sentinel",
    "ASI Scheduled Alerts": "Sentinel analytics",
    "ASI NRT Alerts": "Sentinel analytics",
    "Scheduled Alerts": "Sentinel analytics",
    "Microsoft Defender Advanced Threat Protection": "Defender for Endpoint",
    "Microsoft Defender ATP": "Defender for Endpoint",
    "Microsoft Defender for Endpoint": "Defender for Endpoint",
    "MDATP": "Defender for Endpoint",
    "Azure Security Center": "Defender for Cloud",
    "Azure Security Center for IoT": "Defender for IoT",
    "Microsoft Defender for Cloud": "Defender for Cloud",
    "Azure Defender": "Defender for Cloud",
    "Azure Advanced Threat Protection": "Defender for Identity",
    "Microsoft Defender for Identity": "Defender for Identity",
    "Office 365 Advanced Threat Protection": "Defender for Office 365",
    "Microsoft Defender for Office 365": "Defender for Office 365",
    "Microsoft Cloud App Security": "Defender for Cloud Apps",
    "Microsoft Defender for Cloud Apps": "Defender for Cloud Apps",
    "Azure Active Directory Identity Protection": "Entra ID Protection",
    "Microsoft Entra ID Protection": "Entra ID Protection",
    "Microsoft 365 Defender": "Defender XDR",
    "Microsoft Defender XDR": "Defender XDR",
    "Microsoft XDR": "Defender XDR",
    "Microsoft Defender for IoT": "Defender for IoT",
    "Microsoft Data Loss Prevention": "Purview DLP",
    "Microsoft Purview Data Loss Prevention": "Purview DLP",
    "Microsoft Insider Risk Management": "Purview Insider Risk",
    "Microsoft Threat Intelligence Analytics": "Threat Intelligence",
}

_DEFAULTS_FOLDED = {key.casefold(): value for key, value in DEFAULT_PRODUCT_NAMES.items()}


def friendly_product(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """The short name of ``name``: the override table first, then the defaults, else ``name`` itself (trimmed).

    Matching ignores case and surrounding blanks, because providers are not consistent about either. An override
    to ``""`` hides the product (e.g. "Azure Sentinel" on a Sentinel-only team, where it says nothing).
    """
    key = name.strip().casefold()
    if overrides:
        for original, short in overrides.items():
            if original.strip().casefold() == key:
                return short
    return _DEFAULTS_FOLDED.get(key, name.strip())


def friendly_products(names: Iterable[str], overrides: Mapping[str, str] | None = None) -> list[str]:
    """Short names of ``names`` in first-seen order, empty names dropped, duplicates (after mapping) merged.

    "Azure Security Center" and "Microsoft Defender for Cloud" become one "Defender for Cloud"; products whose
    override is ``""`` are left out.
    """
    seen: dict[str, str] = {}
    for name in names:
        if not name or not name.strip():
            continue
        short = friendly_product(name, overrides)
        if not short:
            continue
        seen.setdefault(short.casefold(), short)
    return list(seen.values())
