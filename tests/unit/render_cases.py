"""Realistic incidents and enrichments for the rendering tests (deterministic: fixed times, fixed ids)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sentinel_signl4.domain import Incident, IncidentStatus, Severity
from sentinel_signl4.domain.render import Enrichment

__all__ = ["CREATED", "alert", "entity", "incident", "many_entities", "oversize", "unicode_incident"]

CREATED = datetime(2026, 5, 4, 3, 12, 45, tzinfo=UTC)
WORKSPACE = ("/subscriptions/d0cfe6b2-9ac0-4464-9919-dccaee2e48c0/resourceGroups/rg-soc/providers/"
             "Microsoft.OperationalInsights/workspaces/law-sentinel-prod")


def incident(number: int = 4711, **kwargs: Any) -> Incident:
    name = kwargs.pop("name", f"73e01a99-5cd7-4139-a149-{number:012d}")
    resource_id = f"{WORKSPACE}/providers/Microsoft.SecurityInsights/incidents/{name}"
    base: dict[str, Any] = {
        "resource_id": resource_id, "name": name, "number": number,
        "title": "Multi-stage attack involving credential theft on FIN-WS-042",
        "severity": Severity.HIGH, "status": IncidentStatus.NEW, "created": CREATED, "last_modified": CREATED,
        "description": "A sign-in from a Tor exit node was followed by credential dumping on FIN-WS-042.",
        "url": f"https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{resource_id}",
        "provider_name": "Azure Sentinel",
        "product_names": ("Azure Sentinel", "Microsoft Defender Advanced Threat Protection"),
        "tactics": ("InitialAccess", "CredentialAccess"), "alerts_count": 3,
    }
    base.update(kwargs)
    return Incident(**base)


def alert(name: str, severity: str = "High", product: str = "Microsoft Defender Advanced Threat Protection",
          minutes: int = 0, tactics: tuple[str, ...] = ("CredentialAccess",), n: int = 0) -> dict[str, Any]:
    when = (CREATED - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
    alert_id = f"baa8a239-6fde-4ab7-a093-{n:012d}"
    return {"id": f"{WORKSPACE}/providers/Microsoft.SecurityInsights/Entities/{alert_id}", "name": alert_id,
            "type": "Microsoft.SecurityInsights/Entities", "kind": "SecurityAlert",
            "properties": {"systemAlertId": alert_id, "alertDisplayName": name, "friendlyName": name,
                           "severity": severity, "productName": product, "tactics": list(tactics),
                           "timeGenerated": when, "status": "New", "vendorName": "Microsoft"}}


def entity(kind: str, **properties: Any) -> dict[str, Any]:
    """An entity in the ``POST …/entities`` shape (IncidentEntitiesResponse.entities items)."""
    entity_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{sorted(properties.items())}"))
    return {"id": f"{WORKSPACE}/providers/Microsoft.SecurityInsights/Entities/{entity_id}", "name": entity_id,
            "type": "Microsoft.SecurityInsights/Entities", "kind": kind, "properties": properties}


def row(n: int, name: str, severity: str = "High", entity_name: str = "FIN-WS-042",
        product: str = "Microsoft Defender Advanced Threat Protection") -> dict[str, Any]:
    return {"SystemAlertId": f"baa8a239-6fde-4ab7-a093-{n:012d}",
            "TimeGenerated": CREATED - timedelta(minutes=n), "AlertName": name, "AlertSeverity": severity,
            "ProductName": product, "CompromisedEntity": entity_name, "Techniques": '["T1003"]'}


def many_entities() -> tuple[Incident, Enrichment]:
    entities = [entity("Host", hostName=f"FIN-WS-{n:03d}", dnsDomain="contoso.com") for n in range(40)]
    entities += [entity("Account", accountName=f"user{n}", upnSuffix="contoso.com") for n in range(12)]
    entities += [entity("Account", accountName="USER1", upnSuffix="CONTOSO.COM")]  # a duplicate, other case
    entities += [entity("Ip", address=f"185.220.101.{n}") for n in range(8)]
    entities += [entity("Url", url="https://contoso-payroll.example/login?session=" + "a" * 30),
                 entity("File", directory="C:\\Users\\j.doe\\Downloads", fileName="invoice_0423.exe"),
                 entity("FileHash", algorithm="SHA256", hashValue="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c"),
                 entity("Process", commandLine="powershell.exe -NoProfile -EncodedCommand " + "SQBFAFgA" * 20),
                 entity("Mailbox", mailboxPrimaryAddress="finance@contoso.com"),
                 entity("SecurityAlert", friendlyName="not evidence")]
    alerts = [alert("Suspicious sign-in from a Tor exit node", "Medium", "Azure Active Directory Identity Protection",
                    minutes=9, tactics=("InitialAccess",), n=1)]
    alerts += [alert("Credential dumping with Mimikatz", n=2 + k, minutes=5) for k in range(3)]
    alerts += [alert("Port scan from FIN-WS-042", "Low", "Azure Sentinel", minutes=3, tactics=("Discovery",), n=9)]
    # Newest first, as the default query orders them.
    rows = [row(1, "Suspicious sign-in from a Tor exit node", "Medium", "user1@contoso.com",
                "Azure Active Directory Identity Protection"),
            row(2, "Credential dumping with Mimikatz"), row(3, "Credential dumping with Mimikatz"),
            row(4, "Credential dumping with Mimikatz"), row(9, "Port scan from FIN-WS-042", "Low",
                                                        product="Azure Sentinel")]
    return incident(), Enrichment(tuple(alerts), tuple(entities), tuple(rows))


def unicode_incident() -> tuple[Incident, Enrichment]:
    inc = incident(
        4712, title="不審なサインイン — تسجيل دخول مريب 🚨 on Ŝërvër‑01\n(second line)",
        description="Benutzer „Jürgen Groß“ meldete: 🔐 Passwort geändert.\r\n\r\n\r\n"
                    "Zweite Zeile\x07 mit Steuerzeichen.",
        product_names=("Microsoft Defender for Cloud Apps",), tactics=("Exfiltration",),
    )
    entities = (entity("Account", accountName="jürgen.groß", upnSuffix="contoso.de"),
                entity("Account", accountName="محمد", upnSuffix="contoso.ae"),
                entity("Host", hostName="Ŝërvër-01"),
                entity("File", directory="C:\\Users\\Public", fileName="rechnung\u202efdp.exe"),
                entity("Url", url="https://例え.テスト/パス"),
                entity("CloudApplication", appName="👩\u200d💻 Dev Portal"))
    return inc, Enrichment(alerts=(alert("大量ダウンロード", "Medium", "Microsoft Cloud App Security", n=1),),
                           entities=entities)


def oversize() -> tuple[Incident, Enrichment]:
    inc = incident(4713, title="Ransomware " * 40, description=("Files were encrypted. " * 3000).strip(),
                   product_names=tuple(f"Vendor product {n}" for n in range(60)),
                   tactics=("Impact", "DefenseEvasion", "Execution", "Persistence", "LateralMovement"))
    kinds = ["Host", "Account", "Ip", "Url", "File", "Process"]
    entities = []
    for n in range(600):
        kind = kinds[n % len(kinds)]
        props = {"Host": {"hostName": f"srv-{n:04d}-" + "x" * 60}, "Account": {"accountName": f"svc{n}",
                 "upnSuffix": "contoso.com"}, "Ip": {"address": f"10.{n // 256}.{n % 256}.1"},
                 "Url": {"url": f"https://c2-{n}.example/" + "p" * 200}, "File": {"fileName": f"{n}.lockbit"},
                 "Process": {"commandLine": "vssadmin delete shadows /all /quiet " + "z" * 300}}[kind]
        entities.append(entity(kind, **props))
    alerts = [alert(f"Ransomware behaviour {n % 40}", n=n, minutes=n % 60) for n in range(200)]
    rows = [row(n, f"Ransomware behaviour {n}" + " (detail)" * 30) for n in range(100)]
    return inc, Enrichment(tuple(alerts), tuple(entities), tuple(rows))
