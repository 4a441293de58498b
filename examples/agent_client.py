#!/usr/bin/env python3
"""Talk to the Powerhub API through the local phconnect agent, with the standard library only.

The agent holds the token login, the pinned CA and addresses and the client credentials; this
program needs none of them, only the agent's Unix socket (and to be in agent_allow_users).

    python3 agent_client.py [--socket /run/phconnect/agent.sock] [PATH]

Exit status: 0 on a 2xx answer, 1 on any other status; an agent's own failure (header
Phc-Error) is printed with its class.
"""
import argparse
import http.client
import json
import socket
import sys


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX: the host name only fills the Host header (the agent ignores
    it and always talks to the configured Powerhub URL)."""

    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", default="/run/phconnect/agent.sock")
    ap.add_argument("--count", type=int, default=1, help="requests on one kept-alive connection")
    ap.add_argument("path", nargs="?", default="/v2/asset/sites")
    args = ap.parse_args()

    conn = UnixHTTPConnection(args.socket)
    status = 0
    for _ in range(args.count):
        conn.request("GET", args.path, headers={"Accept": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        status = resp.status
        phc_error = resp.getheader("Phc-Error")
        if phc_error:
            msg = json.loads(body).get("message", "")
            print(f"agent error ({phc_error}): {msg}", file=sys.stderr)
            return 1
    conn.close()
    try:
        data = json.loads(body)
        if isinstance(data, dict) and "data" in data:
            for site in data["data"]:
                print(f'{site.get("site_id")}\t{site.get("name")}')
        else:
            print(json.dumps(data, indent=2))
    except ValueError:
        sys.stdout.write(body.decode(errors="replace"))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
