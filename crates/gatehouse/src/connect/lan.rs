//! What a client on another machine of the LAN (typically Codex on a Windows laptop)
//! needs besides its own configuration: the gateway reachable through the firewall,
//! and its name resolving to the right address.

use super::Target;

/// The host and port of the target URL, for the commands below.
fn host_port(t: &Target) -> (String, String) {
    let rest = t.url.split("://").nth(1).unwrap_or(&t.url);
    let authority = rest.split('/').next().unwrap_or(rest);
    let https = t.url.starts_with("https://");
    match authority.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h.to_string(), p.to_string())
        }
        _ => (
            authority.to_string(),
            if https { "443" } else { "80" }.to_string(),
        ),
    }
}

pub fn notes(t: &Target) -> String {
    let (host, port) = host_port(t);
    let url = &t.url;
    format!(
        "\
## From another machine of the LAN (e.g. a Windows laptop)

On the Gatehouse host:
- Gatehouse listens on 0.0.0.0 only with a master key (or virtual keys) configured;
  without one it serves loopback only and a LAN client cannot reach it.
- Open the port in the host's firewall:
    ufw:       sudo ufw allow {port}/tcp
    firewalld: sudo firewall-cmd --add-port={port}/tcp --permanent && sudo firewall-cmd --reload

On the client machine (Windows: PowerShell):
- The name must resolve to the Gatehouse host:
    Resolve-DnsName {host}          (Linux/macOS: getent hosts {host} / dscacheutil -q host -a name {host})
  If it does not (a router that does not serve .lan names, a VPN with its own DNS), add a
  line `<gatehouse-ip> {host}` to C:\\Windows\\System32\\drivers\\etc\\hosts (as
  Administrator; /etc/hosts elsewhere) or use the IP address in --url.
- The port must be reachable:
    Test-NetConnection {host} -Port {port}
    curl.exe -s {url}/health/liveliness
  The second prints {{\"status\":\"healthy\"}}-style JSON; a timeout means a firewall on
  the way, a refusal means Gatehouse is not listening on that interface.
- A corporate proxy in HTTPS_PROXY/HTTP_PROXY would receive LAN traffic too: add the
  name to NO_PROXY (setx NO_PROXY {host}).
- Windows' own firewall only filters inbound traffic by default; nothing to open there.

"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target {
            url: url.into(),
            key_env: "K".into(),
            servers: vec![],
            model: "m".into(),
        }
    }

    #[test]
    fn host_and_port() {
        assert_eq!(
            host_port(&target("http://gw.lan:4000")),
            ("gw.lan".into(), "4000".into())
        );
        assert_eq!(
            host_port(&target("https://gw.example.com")),
            ("gw.example.com".into(), "443".into())
        );
        assert_eq!(
            host_port(&target("http://10.0.0.5")),
            ("10.0.0.5".into(), "80".into())
        );
    }
}
