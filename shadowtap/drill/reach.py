"""Can the drill reach its target? Name, connection, TLS, then one signed request to a
health path (shadowtap.doctor.probe), each a preflight finding that says what failed::

    findings = reachability(settings, "https://dr.example.net", health="/healthz")
    show(findings, console)                       # shadowtap.preflight
"""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

from shadowtap.config import Settings
from shadowtap.doctor import probe
from shadowtap.preflight import Finding, Status


def reachability(
    settings: Settings, target: str, *, health: str = "/", timeout_s: float = 5.0
) -> list[Finding]:
    """DNS, TCP, TLS (https only) and the health request; later steps are skipped once one
    fails (the finding says which)."""
    url = urlsplit(target)
    host = url.hostname or ""
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    fix = "check the target URL, and that this host can reach it (DNS, firewall, proxy)"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = sorted({str(info[4][0]) for info in infos})
    except OSError as exc:
        return [Finding("target-dns", Status.FAIL, f"{host} does not resolve: {exc}", fix)]
    found = [Finding("target-dns", Status.PASS, f"{host} is {', '.join(addresses[:4])}")]
    try:
        conn = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        found.append(
            Finding("target-tcp", Status.FAIL, f"{host}:{port} refused a connection: {exc}", fix)
        )
        return found
    with conn:
        found.append(Finding("target-tcp", Status.PASS, f"{host}:{port} accepts connections"))
        if tls:
            try:
                context = ssl.create_default_context()
                if settings.replayer.ca_file:
                    context.load_verify_locations(settings.replayer.ca_file)
                if not settings.replayer.verify_tls:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(conn, server_hostname=host) as secured:
                    version = secured.version()
            except (OSError, ssl.SSLError) as exc:
                found.append(
                    Finding(
                        "target-tls",
                        Status.FAIL,
                        f"TLS with {host}:{port} failed: {exc}",
                        "trust the target's CA (replayer.ca_file), or fix its certificate",
                    )
                )
                return found
            found.append(Finding("target-tls", Status.PASS, f"{host}:{port} speaks {version}"))
    answered, _guard, _headers = probe(settings, target, timeout_s, path=health)
    return [*found, answered]
