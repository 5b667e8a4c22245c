"""A realistic demo world for the emulators: one tenant, its apps, a Sentinel workspace full of incidents.

Used by the ``demo`` command, ``POST /_control/seed`` and tests. Ids are stable across runs (a connector config
written once keeps working); secrets and the certificate are fresh each time.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sentinel_signl4_emulators.graph.seed import seed_graph_demo
from sentinel_signl4_emulators.sentinel.model import EntitySeed, Role, SecurityAlertSeed, WorkspaceRef
from sentinel_signl4_emulators.sentinel.vocab import Classification, ClassificationReason, IncidentStatus, Severity

if TYPE_CHECKING:
    from sentinel_signl4_emulators.state import EmulatorState

__all__ = ["DemoUser", "DemoWorld", "make_certificate", "seed_demo"]

_NAMESPACE = uuid.UUID("0f6a4d58-5c1e-4c38-9f43-5e1d2b7a9c10")
SIGNL4_LABEL = "SIGNL4"


def _id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class DemoUser:
    object_id: str
    user_principal_name: str
    display_name: str
    mail: str


@dataclass(frozen=True, slots=True)
class DemoWorld:
    """Everything a connector configuration needs to talk to the seeded emulators."""

    tenant_id: str
    client_id: str
    client_secret: str
    #: PEM private key + certificate of the app's certificate credential (``CertificateCredential``).
    certificate_pem: bytes
    certificate_thumbprint: str
    #: An app with only the Sentinel Reader role (for permission tests).
    reader_client_id: str
    reader_client_secret: str
    subscription_id: str
    resource_group: str
    workspace_name: str
    #: The workspace GUID Log Analytics queries use.
    workspace_id: str
    users: tuple[DemoUser, ...]
    incident_names: tuple[str, ...]
    signl4_subscription_id: str
    signl4_team_id: str
    signl4_team_secret: str
    signl4_api_key: str

    @property
    def workspace(self) -> WorkspaceRef:
        return WorkspaceRef(self.subscription_id, self.resource_group, self.workspace_name)

    def to_json(self) -> dict[str, Any]:
        return {
            "tenantId": self.tenant_id,
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "certificatePem": self.certificate_pem.decode(),
            "certificateThumbprint": self.certificate_thumbprint,
            "readerClientId": self.reader_client_id,
            "readerClientSecret": self.reader_client_secret,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "workspaceName": self.workspace_name,
            "workspaceId": self.workspace_id,
            "workspaceResourceId": self.workspace.resource_id,
            "users": [
                {"objectId": u.object_id, "userPrincipalName": u.user_principal_name,
                 "displayName": u.display_name, "mail": u.mail}
                for u in self.users
            ],
            "incidentNames": list(self.incident_names),
            "signl4": {
                "subscriptionId": self.signl4_subscription_id,
                "teamId": self.signl4_team_id,
                "teamSecret": self.signl4_team_secret,
                "apiKey": self.signl4_api_key,
            },
        }


def make_certificate(common_name: str, now: datetime) -> tuple[bytes, str]:
    """A self-signed RSA certificate as one PEM (private key + certificate) and its SHA-1 thumbprint (hex)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ) + cert.public_bytes(serialization.Encoding.PEM)
    return pem, cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - thumbprints are SHA-1


_USERS = (
    ("Adele Vance", "adele.vance"),
    ("Megan Bowen", "megan.bowen"),
    ("Alex Wilber", "alex.wilber"),
    ("Lee Gu", "lee.gu"),
)
_DOMAIN = "contoso.com"


def seed_demo(state: EmulatorState, now: datetime, *, certificate: tuple[bytes, str] | None = None) -> DemoWorld:
    """Populate an *empty* ``state`` with the demo world at time ``now``.

    ``certificate`` (PEM key + certificate, SHA-1 thumbprint, as :func:`make_certificate` returns) reuses a
    credential instead of generating a fresh RSA key — tests seed many worlds.
    """
    now = now.astimezone(UTC)
    tenant_id = _id("tenant")
    entra, sentinel = state.entra, state.sentinel
    entra.add_tenant(tenant_id)
    certificate_pem, thumbprint = certificate or make_certificate("sentinel-signl4-demo", now)
    client_secret, reader_secret = secrets.token_urlsafe(30), secrets.token_urlsafe(30)
    app = entra.register_app(
        tenant_id, client_id=_id("app"), display_name="sentinel-signl4", secret=client_secret,
        certificate_pem=certificate_pem,
    )
    reader = entra.register_app(
        tenant_id, client_id=_id("reader-app"), display_name="sentinel-signl4-readonly", secret=reader_secret
    )
    users = tuple(
        DemoUser(_id(f"user:{login}"), f"{login}@{_DOMAIN}", display, f"{login}@{_DOMAIN}")
        for display, login in _USERS
    )
    for user in users:
        entra.add_user(
            tenant_id, object_id=user.object_id, user_principal_name=user.user_principal_name,
            display_name=user.display_name, mail=user.mail,
        )
    ws = sentinel.create_workspace(
        _id("subscription"), "rg-security", "law-sentinel-prod", tenant_id=tenant_id,
        workspace_id=_id("workspace"), first_incident_number=1041,
    )
    sentinel.assign_role(app.client_id, ws.ref, Role.RESPONDER)
    sentinel.assign_role(reader.client_id, ws.ref, Role.READER)
    names = tuple(_seed_incidents(state, ws.ref, tenant_id, users, now))
    seed_graph_demo(state.graph, tenant_id=tenant_id, client_id=app.client_id, reader_client_id=reader.client_id,
                    owner_upn=users[0].user_principal_name, now=now)

    signl4 = state.signl4
    s4_subscription = signl4.create_subscription(_id("signl4-subscription"))
    team_secret = secrets.token_hex(4)
    team = signl4.create_team(s4_subscription.id, "SecOps", team_id=_id("signl4-team"), secret=team_secret)
    for user in users:
        signl4.create_user(s4_subscription.id, user.display_name, user.mail, team_ids=[team.id])
    api_key = signl4.create_api_key(s4_subscription.id)

    return DemoWorld(
        tenant_id=tenant_id,
        client_id=app.client_id,
        client_secret=client_secret,
        certificate_pem=certificate_pem,
        certificate_thumbprint=thumbprint,
        reader_client_id=reader.client_id,
        reader_client_secret=reader_secret,
        subscription_id=ws.ref.subscription_id,
        resource_group=ws.ref.resource_group,
        workspace_name=ws.ref.name,
        workspace_id=ws.workspace_id,
        users=users,
        incident_names=names,
        signl4_subscription_id=s4_subscription.id,
        signl4_team_id=team.id,
        signl4_team_secret=team_secret,
        signl4_api_key=api_key,
    )


@dataclass(frozen=True, slots=True)
class _Spec:
    key: str
    title: str
    severity: Severity
    age: timedelta
    provider: str  # "Azure Sentinel" or "Microsoft 365 Defender"
    product: str
    tactics: tuple[str, ...]
    entities: tuple[tuple[str, dict[str, Any]], ...]
    description: str
    status: IncidentStatus = IncidentStatus.NEW
    labels: tuple[str, ...] = ()
    owner: int | None = None  # index into the demo users
    closed_as: tuple[Classification, ClassificationReason | None] | None = None
    alerts: int = 1


_SPECS = (
    _Spec(
        "signin-burst", "Multiple failed sign-in attempts followed by a successful sign-in", Severity.HIGH,
        timedelta(minutes=18), "Azure Sentinel", "Azure Sentinel", ("CredentialAccess", "InitialAccess"),
        (("Account", {"accountName": "j.doe", "upnSuffix": _DOMAIN, "friendlyName": "j.doe"}),
         ("Ip", {"address": "185.220.101.34", "friendlyName": "185.220.101.34"})),
        "23 failed sign-ins from a Tor exit node within 4 minutes, then a successful sign-in.", alerts=2,
    ),
    _Spec(
        "malware-wacatac", "Malware detected: Trojan:Win32/Wacatac.B!ml on FIN-WS-042", Severity.MEDIUM,
        timedelta(minutes=6), "Microsoft 365 Defender", "Microsoft Defender for Endpoint", ("Execution",),
        (("Host", {"hostName": "FIN-WS-042", "osFamily": "Windows", "friendlyName": "FIN-WS-042"}),
         ("File", {"fileName": "invoice_0423.exe", "directory": "C:\\Users\\j.doe\\Downloads",
                   "friendlyName": "invoice_0423.exe"})),
        "Defender for Endpoint quarantined a known trojan downloaded from a phishing link.",
    ),
    _Spec(
        "phish-wave", "Phishing email delivered to multiple recipients", Severity.HIGH,
        timedelta(minutes=41), "Microsoft 365 Defender", "Microsoft Defender for Office 365", ("InitialAccess",),
        (("Mailbox", {"mailboxPrimaryAddress": f"finance@{_DOMAIN}", "displayName": "Finance",
                      "friendlyName": "Finance"}),
         ("Url", {"url": "https://contoso-payroll.example/login", "friendlyName": "contoso-payroll.example"})),
        "A credential-phishing campaign reached 14 mailboxes before ZAP removed it.",
        labels=(SIGNL4_LABEL,),
    ),
    _Spec(
        "rare-ops", "Rare subscription-level operations in Azure", Severity.INFORMATIONAL, timedelta(hours=3),
        "Azure Sentinel", "Azure Sentinel", ("Persistence",),
        (("AzureResource", {"resourceId": "/subscriptions/00000000-0000-0000-0000-000000000000",
                            "friendlyName": "Production subscription"}),),
        "Role assignments were created at subscription scope by an account that rarely does so.",
    ),
    _Spec(
        "mass-download", "Mass download by a single user", Severity.MEDIUM, timedelta(hours=5),
        "Azure Sentinel", "Microsoft Defender for Cloud Apps", ("Exfiltration", "Collection"),
        (("Account", {"accountName": "m.smith", "upnSuffix": _DOMAIN, "friendlyName": "m.smith"}),
         ("CloudApplication", {"appName": "Microsoft SharePoint Online", "friendlyName": "SharePoint Online"})),
        "1,204 files downloaded from SharePoint in 9 minutes.",
        status=IncidentStatus.ACTIVE, owner=0, labels=(SIGNL4_LABEL,),
    ),
    _Spec(
        "impossible-travel", "Impossible travel activity", Severity.LOW, timedelta(hours=9),
        "Azure Sentinel", "Azure Active Directory Identity Protection", ("InitialAccess",),
        (("Account", {"accountName": "a.jones", "upnSuffix": _DOMAIN, "friendlyName": "a.jones"}),
         ("Ip", {"address": "203.0.113.77", "friendlyName": "203.0.113.77"})),
        "Sign-ins from Frankfurt and Singapore 12 minutes apart.",
    ),
    _Spec(
        "token-replay", "Anomalous token usage", Severity.HIGH, timedelta(hours=12),
        "Microsoft 365 Defender", "Azure Active Directory Identity Protection", ("CredentialAccess",),
        (("Account", {"accountName": "it.admin", "upnSuffix": _DOMAIN, "friendlyName": "it.admin"}),),
        "A refresh token was replayed from an unfamiliar device.",
        status=IncidentStatus.ACTIVE, owner=1,
    ),
    _Spec(
        "health-check", "Test alert - connector health check", Severity.LOW, timedelta(hours=2),
        "Azure Sentinel", "Azure Sentinel", (),
        (("Host", {"hostName": "SOC-TEST-01", "osFamily": "Linux", "friendlyName": "SOC-TEST-01"}),),
        "Scheduled test detection used to verify the alerting pipeline.",
        status=IncidentStatus.CLOSED, owner=2,
        closed_as=(Classification.BENIGN_POSITIVE, ClassificationReason.SUSPICIOUS_BUT_EXPECTED),
    ),
    _Spec(
        "port-scan", "Port scan detected from internal host 10.20.4.17", Severity.LOW, timedelta(hours=26),
        "Azure Sentinel", "Azure Sentinel", ("Discovery",),
        (("Ip", {"address": "10.20.4.17", "friendlyName": "10.20.4.17"}),),
        "One host probed 1,800 ports on 40 servers.",
    ),
    _Spec(
        "ransomware", "Ransomware activity detected on FILESRV01", Severity.HIGH, timedelta(hours=30),
        "Microsoft 365 Defender", "Microsoft Defender for Endpoint", ("Impact", "DefenseEvasion"),
        (("Host", {"hostName": "FILESRV01", "osFamily": "Windows", "friendlyName": "FILESRV01"}),),
        "Shadow copies were deleted and 3,000 files renamed with a .lockbit extension.",
        status=IncidentStatus.CLOSED, owner=0, labels=(SIGNL4_LABEL,),
        closed_as=(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY), alerts=3,
    ),
    _Spec(
        "portal-bruteforce", "Brute force attack against Azure Portal", Severity.MEDIUM, timedelta(hours=50),
        "Azure Sentinel", "Azure Sentinel", ("CredentialAccess",),
        (("Ip", {"address": "198.51.100.23", "friendlyName": "198.51.100.23"}),),
        "More than 100 failed Azure Portal sign-ins from one address.",
    ),
    _Spec(
        "dns-tunnel", "Possible DNS tunnelling from BUILD-AGENT-7", Severity.MEDIUM, timedelta(hours=1),
        "Azure Sentinel", "Azure Sentinel", ("CommandAndControl", "Exfiltration"),
        (("Host", {"hostName": "BUILD-AGENT-7", "osFamily": "Linux", "friendlyName": "BUILD-AGENT-7"}),
         ("DnsResolution", {"domainName": "x9f3.tunnel.example", "friendlyName": "x9f3.tunnel.example"})),
        "High-entropy subdomains queried at 40 requests per second.",
    ),
)


def _seed_incidents(
    state: EmulatorState, ws: WorkspaceRef, tenant_id: str, users: tuple[DemoUser, ...], now: datetime
) -> list[str]:
    names = []
    defender_id = 28_270
    for spec in sorted(_SPECS, key=lambda s: s.age, reverse=True):  # oldest first: numbers grow with time
        created = now - spec.age
        entities = [EntitySeed(kind, props, entity_id=_id(f"entity:{spec.key}:{i}"))
                    for i, (kind, props) in enumerate(spec.entities)]
        alerts = [
            SecurityAlertSeed(
                display_name=spec.title if n == 0 else f"{spec.title} ({n + 1})",
                severity=spec.severity,
                product_name=spec.product,
                time_generated=created - timedelta(minutes=3 * (spec.alerts - n)),
                system_alert_id=_id(f"alert:{spec.key}:{n}"),
                tactics=spec.tactics,
                description=spec.description,
                compromised_entity=str(spec.entities[0][1].get("friendlyName", "")),
                product_component_name="Scheduled Alerts" if spec.provider == "Azure Sentinel" else "",
                entity_ids=tuple(e.entity_id for e in entities),
            )
            for n in range(spec.alerts)
        ]
        defender = spec.provider == "Microsoft 365 Defender"
        if defender:
            defender_id += 3
        rule_ids = () if defender else (
            f"{ws.resource_id}/providers/Microsoft.SecurityInsights/alertRules/{_id(f'rule:{spec.key}')}",
        )
        classification, reason = spec.closed_as if spec.closed_as else (None, None)
        incident = state.sentinel.create_incident(
            ws,
            name=_id(f"incident:{spec.key}"),
            title=spec.title,
            severity=spec.severity,
            status=spec.status,
            created=created,
            description=spec.description,
            labels=spec.labels,
            owner=users[spec.owner].object_id if spec.owner is not None else None,
            classification=classification,
            classification_reason=reason,
            classification_comment="Closed by the SOC during triage." if spec.closed_as else None,
            provider_name=spec.provider,
            provider_incident_id=str(defender_id) if defender else None,
            provider_incident_url=(
                f"https://security.microsoft.com/incidents/{defender_id}?tid={tenant_id}" if defender else None
            ),
            alerts=alerts,
            entities=entities,
            related_analytic_rule_ids=rule_ids,
        )
        names.append(incident["name"])
    return names
