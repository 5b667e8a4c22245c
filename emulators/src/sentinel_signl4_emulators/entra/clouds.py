"""The national clouds the emulators answer for besides the public one, by the host name a request was sent to.

Each cloud has its own Entra authority and its own resources (token audiences): a token for US Government ARM is
asked of ``login.microsoftonline.us`` for ``https://management.usgovcloudapi.net/.default`` and is accepted by
``management.usgovcloudapi.net`` only. A request that reaches the emulators under any other name (``127.0.0.1``,
``localhost``, the public cloud's hosts) is the public cloud's, as before.

Clients reach the emulators under these names through an HTTPS proxy that tunnels every ``CONNECT`` to them (the
server certificate names these hosts, ``common.ca``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HOSTS", "NATIONAL_CLOUDS", "NationalCloud", "arm_audiences", "cloud_of_authority", "graph_audiences"]

#: Microsoft Graph's application id: an audience Graph accepts in every cloud.
_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


@dataclass(frozen=True, slots=True)
class NationalCloud:
    name: str  # as the connector's config names it ([connectors.azure] cloud)
    authority_host: str
    arm_host: str
    graph_host: str
    log_analytics_host: str
    keyvault_suffix: str
    #: The openid-configuration's ``cloud_instance_name``.
    instance_name: str
    #: Where the device-code sign-in sends the user.
    device_login_uri: str

    @property
    def arm_audiences(self) -> tuple[str, str]:
        return f"https://{self.arm_host}", f"https://{self.arm_host.replace('management.', 'management.core.', 1)}"

    @property
    def resources(self) -> frozenset[str]:
        """The resources its authority issues tokens for (normalised: no trailing slash, lower case)."""
        return frozenset({*self.arm_audiences, f"https://{self.graph_host}", f"https://{self.log_analytics_host}",
                          f"https://{self.keyvault_suffix}"})


NATIONAL_CLOUDS = (
    NationalCloud("AzureUSGovernment", "login.microsoftonline.us", "management.usgovcloudapi.net",
                  "graph.microsoft.us", "api.loganalytics.us", "vault.usgovcloudapi.net", "microsoftonline.us",
                  "https://microsoft.com/deviceloginus"),
    NationalCloud("AzureChina", "login.chinacloudapi.cn", "management.chinacloudapi.cn",
                  "microsoftgraph.chinacloudapi.cn", "api.loganalytics.azure.cn", "vault.azure.cn",
                  "partner.microsoftonline.cn", "https://microsoft.com/deviceloginchina"),
)

#: Every host name of the national clouds (the server certificate covers them).
HOSTS = tuple(h for c in NATIONAL_CLOUDS for h in (c.authority_host, c.arm_host, c.graph_host))


def _host(netloc: str) -> str:
    return netloc.rsplit("@", 1)[-1].split(":", 1)[0].lower()


def cloud_of_authority(netloc: str) -> NationalCloud | None:
    """The national cloud whose authority ``netloc`` (``host[:port]``) is; None for the public cloud."""
    host = _host(netloc)
    return next((c for c in NATIONAL_CLOUDS if c.authority_host == host), None)


def arm_audiences(netloc: str, public: tuple[str, ...]) -> tuple[str, ...]:
    """The audiences ARM accepts when addressed at ``netloc``: its national cloud's, else ``public``."""
    host = _host(netloc)
    for cloud in NATIONAL_CLOUDS:
        if cloud.arm_host == host:
            return cloud.arm_audiences
    return public


def graph_audiences(netloc: str, public: tuple[str, ...]) -> tuple[str, ...]:
    """The audiences Microsoft Graph accepts when addressed at ``netloc``: its national cloud's, else ``public``."""
    host = _host(netloc)
    for cloud in NATIONAL_CLOUDS:
        if cloud.graph_host == host:
            return f"https://{cloud.graph_host}", _GRAPH_APP_ID
    return public
