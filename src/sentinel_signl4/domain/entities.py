"""Entities of an incident, summarised for a phone: grouped by kind, de-duplicated, one useful value each. Pure.

Entities arrive in two shapes:

* the ARM shape of ``POST …/incidents/{id}/entities`` — ``{"kind": "Account", "properties": {"accountName": …}}``
  with the spec's camelCase property names (shared/specs: ``AccountEntityProperties`` …);
* the Log Analytics shape, a JSON array string in ``SecurityAlert.Entities`` — ``{"$id": "2", "Type": "account",
  "Name": …, "UPNSuffix": …}`` (reference microsoft-apis.md §2.5). :func:`entities_from_security_alert` converts
  it to the ARM shape, so a failed ``/entities`` call can fall back on the rows Log Analytics returned.

For each kind, :func:`entity_value` picks the attribute a responder acts on: a UPN rather than an object id, a
FQDN rather than an agent id, the command line of a process. Grouping keeps a fixed order of kinds (accounts and
hosts first: they are what a responder isolates or disables) and the first-seen order of values inside a kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ENTITY_KINDS",
    "EntityGroup",
    "EntityKindInfo",
    "entities_from_security_alert",
    "entity_value",
    "group_entities",
]


@dataclass(frozen=True, slots=True)
class EntityKindInfo:
    """How one entity kind is shown: its tile name and the nouns of "… and 1 more host" / "… and 12 more hosts"."""

    kind: str
    label: str
    singular: str
    plural: str

    def noun(self, count: int) -> str:
        return self.singular if count == 1 else self.plural


#: Display order and names. Kinds that are not evidence a responder acts on (SecurityAlert, Bookmark) are absent.
ENTITY_KINDS: tuple[EntityKindInfo, ...] = (
    EntityKindInfo("Account", "Accounts", "account", "accounts"),
    EntityKindInfo("Host", "Hosts", "host", "hosts"),
    EntityKindInfo("Ip", "IPs", "IP", "IPs"),
    EntityKindInfo("Url", "URLs", "URL", "URLs"),
    EntityKindInfo("DnsResolution", "Domains", "domain", "domains"),
    EntityKindInfo("Mailbox", "Mailboxes", "mailbox", "mailboxes"),
    EntityKindInfo("MailMessage", "Mail messages", "mail message", "mail messages"),
    EntityKindInfo("SubmissionMail", "Submitted mails", "submitted mail", "submitted mails"),
    EntityKindInfo("MailCluster", "Mail clusters", "mail cluster", "mail clusters"),
    EntityKindInfo("File", "Files", "file", "files"),
    EntityKindInfo("FileHash", "File hashes", "file hash", "file hashes"),
    EntityKindInfo("Process", "Processes", "process", "processes"),
    EntityKindInfo("Malware", "Malware", "malware", "malware"),
    EntityKindInfo("CloudApplication", "Cloud apps", "cloud app", "cloud apps"),
    EntityKindInfo("AzureResource", "Azure resources", "Azure resource", "Azure resources"),
    EntityKindInfo("RegistryKey", "Registry keys", "registry key", "registry keys"),
    EntityKindInfo("RegistryValue", "Registry values", "registry value", "registry values"),
    EntityKindInfo("SecurityGroup", "Security groups", "security group", "security groups"),
    EntityKindInfo("IoTDevice", "IoT devices", "IoT device", "IoT devices"),
    EntityKindInfo("Nic", "Network adapters", "network adapter", "network adapters"),
)

_KIND_INFO = {info.kind.casefold(): info for info in ENTITY_KINDS}
_NOT_EVIDENCE = frozenset({"securityalert", "bookmark", "huntingbookmark"})


@dataclass(frozen=True, slots=True)
class EntityGroup:
    """The distinct values of one entity kind, in first-seen order."""

    info: EntityKindInfo
    values: tuple[str, ...]

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def label(self) -> str:
        return self.info.label


def _text(props: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = props.get(key)
        if value is not None and not isinstance(value, dict | list) and str(value).strip():
            return str(value).strip()
    return ""


def _joined(first: str, separator: str, second: str) -> str:
    if first and second:
        return f"{first}{separator}{second}"
    return first or second


def _account(p: Mapping[str, Any]) -> str:
    name = _text(p, "accountName")
    if name and "@" not in name and _text(p, "upnSuffix"):
        return f"{name}@{_text(p, 'upnSuffix')}"
    if name and _text(p, "ntDomain"):
        return f"{_text(p, 'ntDomain')}\\{name}"
    return name or _text(p, "displayName", "aadUserId", "sid", "objectGuid")


def _host(p: Mapping[str, Any]) -> str:
    host = _text(p, "hostName")
    if host and "." not in host and _text(p, "dnsDomain"):
        return f"{host}.{_text(p, 'dnsDomain')}"
    return host or _text(p, "netBiosName") or _last_segment(_text(p, "azureID")) or _text(p, "omsAgentID")


def _file(p: Mapping[str, Any]) -> str:
    directory, name = _text(p, "directory"), _text(p, "fileName")
    separator = "/" if "/" in directory and "\\" not in directory else "\\"
    return _joined(directory.rstrip("/\\"), separator, name) if name else directory


def _mail_message(p: Mapping[str, Any]) -> str:
    subject, sender = _text(p, "subject"), _text(p, "p1Sender", "p2Sender")
    if subject and sender:
        return f"{subject} (from {sender})"
    return subject or sender or _text(p, "networkMessageId", "internetMessageId")


def _azure_resource(p: Mapping[str, Any]) -> str:
    # "/subscriptions/…/providers/Microsoft.Compute/virtualMachines/web-01" → "virtualMachines/web-01": the name
    # and what it is; the full id does not fit a phone and says nothing the portal link does not.
    resource_id = _text(p, "resourceId")
    parts = [part for part in resource_id.split("/") if part]
    return "/".join(parts[-2:]) if len(parts) >= 2 else resource_id


def _last_segment(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1] if value else ""


def _pick(kind: str, p: Mapping[str, Any]) -> str:
    if kind == "account":
        return _account(p)
    if kind == "host":
        return _host(p)
    if kind == "file":
        return _file(p)
    if kind == "mailmessage":
        return _mail_message(p)
    if kind == "azureresource":
        return _azure_resource(p)
    if kind == "filehash":
        return _joined(_text(p, "algorithm"), " ", _text(p, "hashValue"))
    if kind == "process":
        pid = _text(p, "processId")
        return _text(p, "commandLine") or (f"PID {pid}" if pid else "")
    if kind == "registrykey":
        return _joined(_text(p, "hive"), "\\", _text(p, "key"))
    simple: dict[str, tuple[str, ...]] = {
        "ip": ("address",),
        "url": ("url",),
        "dnsresolution": ("domainName",),
        "mailbox": ("mailboxPrimaryAddress", "upn", "displayName"),
        "submissionmail": ("subject", "sender", "submissionId"),
        "mailcluster": ("query", "clusterSourceIdentifier"),
        "malware": ("malwareName", "category"),
        "cloudapplication": ("appName", "instanceName", "appId"),
        "registryvalue": ("valueName",),
        "securitygroup": ("distinguishedName", "sid", "objectGuid"),
        "iotdevice": ("deviceName", "deviceId", "macAddress"),
        "nic": ("macAddress", "ipAddress"),
    }
    return _text(p, *simple.get(kind, ()))


def entity_value(kind: str, properties: Mapping[str, Any]) -> str:
    """The most useful single value of an entity (``""`` if it has none); ``friendlyName`` is the fallback."""
    return _pick(kind.casefold(), properties) or _text(properties, "friendlyName")


def group_entities(entities: Iterable[Mapping[str, Any]], *, hidden_kinds: Iterable[str] = ()) -> list[EntityGroup]:
    """Group ARM-shaped entities by kind in :data:`ENTITY_KINDS` order; values de-duplicated ignoring case.

    Unknown kinds are grouped after the known ones under their own name, so a new kind still reaches the phone.
    ``hidden_kinds`` (case-insensitive) are left out entirely: a team may decide IPs never go to phones.
    """
    hidden = {kind.casefold() for kind in hidden_kinds}
    collected: dict[str, dict[str, str]] = {}
    unknown: dict[str, EntityKindInfo] = {}
    for entity in entities:
        kind = str(entity.get("kind") or "").strip()
        folded = kind.casefold()
        if not kind or folded in hidden or folded in _NOT_EVIDENCE:
            continue
        props = entity.get("properties")
        value = entity_value(kind, props if isinstance(props, Mapping) else {})
        if not value:
            continue
        if folded not in _KIND_INFO and folded not in unknown:
            unknown[folded] = EntityKindInfo(kind, kind, kind, kind)
        collected.setdefault(folded, {}).setdefault(value.casefold(), value)
    order = [*ENTITY_KINDS, *unknown.values()]
    return [
        EntityGroup(info, tuple(collected[info.kind.casefold()].values()))
        for info in order if info.kind.casefold() in collected
    ]


# Log Analytics spells kinds in lower case, some with hyphens (reference §2.5 and the SecurityAlert rows of
# Defender products); property names are PascalCase and partly differ from the ARM ones.
_LA_KINDS = {
    "account": "Account", "host": "Host", "ip": "Ip", "url": "Url", "dns": "DnsResolution",
    "mailbox": "Mailbox", "mailmessage": "MailMessage", "mailcluster": "MailCluster",
    "submissionmail": "SubmissionMail", "file": "File", "filehash": "FileHash", "process": "Process",
    "malware": "Malware", "cloud-application": "CloudApplication", "cloudapplication": "CloudApplication",
    "azure-resource": "AzureResource", "azureresource": "AzureResource", "registry-key": "RegistryKey",
    "registrykey": "RegistryKey", "registry-value": "RegistryValue", "registryvalue": "RegistryValue",
    "security-group": "SecurityGroup", "securitygroup": "SecurityGroup", "iotdevice": "IoTDevice", "nic": "Nic",
}
_LA_RENAMES = {
    "Account": {"Name": "accountName", "UPNSuffix": "upnSuffix", "NTDomain": "ntDomain"},
    "File": {"Name": "fileName"},
    "FileHash": {"Value": "hashValue"},
    "Malware": {"Name": "malwareName"},
    "CloudApplication": {"Name": "appName"},
    "Mailbox": {"Upn": "upn"},
    "Host": {"AzureID": "azureID", "OMSAgentID": "omsAgentID"},
}


def entities_from_security_alert(entities_json: str) -> list[dict[str, Any]]:
    """ARM-shaped entities from a ``SecurityAlert.Entities`` cell (a JSON array string; ``""`` or junk → ``[]``).

    ``{"$ref": …}`` items (back-references to an entity listed earlier) and nested objects are skipped.
    """
    try:
        items = json.loads(entities_json) if entities_json and entities_json.strip() else []
    except ValueError:
        return []
    if not isinstance(items, list):
        return []
    result: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or "$ref" in item:
            continue
        raw_type = str(item.get("Type") or "")
        kind = _LA_KINDS.get(raw_type.casefold(), raw_type)
        if not kind:
            continue
        renames = _LA_RENAMES.get(kind, {})
        properties: dict[str, Any] = {}
        for key, value in item.items():
            if key.startswith("$") or key == "Type" or isinstance(value, dict | list):
                continue
            properties[renames.get(key, key[:1].lower() + key[1:])] = value
        result.append({"kind": kind, "properties": properties})
    return result
