#!/usr/bin/env bash
# Rate limiting and overload: a 429 or 503 with Retry-After is retried after the wait the
# server asked for, a bounded number of times within a bounded time, and only for idempotent
# requests. A POST is never repeated (it could, say, issue a second asset token): it ends
# with exit 1 and the server's status. Attempts are counted in the servers' own logs.
. "$(dirname "$0")/lib.sh"

make_token ec:P-256

# SLACK covers starting phc and opening the token on a loaded machine; the attempt counts in
# the servers' logs are what prove a retry happened or not.
SLACK=4000
T0=0
t_start() { T0=$(date +%s%N); }
elapsed_ms() { echo $((($(date +%s%N) - T0) / 1000000)); }
between() { # between DESCRIPTION MIN_MS MAX_MS: the last command's duration
    local ms
    ms=$(elapsed_ms)
    check "$1 took ${ms} ms (wanted ${2}..${3} ms)" test "$ms" -ge "$2" -a "$ms" -le "$3"
}

# seen LOG METHOD STATUS: requests the mock logged for /v2/asset/sites with that status
seen() { grep -cE " $2 /v2/asset/sites $3 " "$TMP/$1.log" 2>/dev/null; }

# mock429 NAME FAULT: a fresh mock (its 429 fault fires once per process) and its config
mock429() {
    start_mock "$1" --fault "$2"
    write_config "$TMP/$1.cnf" "$MOCK_PORT" "connect_timeout = 2" "timeout = 5"
}

# --- GET after one 429 with Retry-After: 1 --------------------------------------------------
mock429 get429 status429=1
t_start
expect 0 "" "GET answered 429 once is retried and succeeds" -- "$PHC_BIN" --config "$TMP/get429.cnf" -v request /v2/asset/sites
between "GET retry honoured Retry-After: 1" 1000 $((1000 + SLACK))
check "GET: the mock saw the 429 and then a 200" test "$(seen get429 GET 429)" -eq 1 -a "$(seen get429 GET 200)" -eq 1
check "GET: the body is the one from the retry" grep -q STE-0001 "$TMP/out"
check "GET: -v tells the operator about the retry" grep -q "retrying in 1 s" "$TMP/err"

# --- GET that is always refused: retries are bounded in number and time --------------------
mock429 always status429always=1
t_start
expect 1 "HTTP 429" "GET answered 429 every time ends with exit 1" -- "$PHC_BIN" --config "$TMP/always.cnf" request /v2/asset/sites
between "persistent 429 gives up within the timeout (5 s)" 1000 $((5000 + SLACK))
n=$(seen always GET 429)
check "persistent 429: retried, but a bounded number of times ($n attempts)" test "$n" -ge 2 -a "$n" -le 5
check "persistent 429: each retry logged as a warning" test "$(grep -c '^phc: \[warning\].*retrying' "$TMP/err")" -eq $((n - 1))
check "persistent 429: one failure line on stderr" test "$(grep -vc '^phc: \[' "$TMP/err")" -eq 1

# --- a Retry-After longer than the request may take: no retry, no hour-long wait ------------
mock429 long status429=3600
t_start
expect 1 "HTTP 429" "Retry-After: 3600 beyond the timeout is not waited for" -- "$PHC_BIN" --config "$TMP/long.cnf" request /v2/asset/sites
between "Retry-After: 3600 returns at once" 0 $SLACK
check "Retry-After: 3600: one attempt only" test "$(seen long GET 429)" -eq 1

# --- POST and PATCH are not idempotent: never repeated ------------------------------------
mock429 post429 status429=1
t_start
expect 1 "HTTP 429" "POST answered 429 is not retried: exit 1" -- "$PHC_BIN" --config "$TMP/post429.cnf" request -X POST -d '{}' /v2/asset/sites
between "POST 429 returns at once" 0 $SLACK
check "POST: exactly one attempt reached the server" test "$(seen post429 POST 429)" -eq 1 -a "$(seen post429 POST '[0-9]+')" -eq 1
check "POST: the 429 body is still written" grep -q "rate limit" "$TMP/out"

mock429 patch429 status429=1
expect 1 "HTTP 429" "PATCH answered 429 is not retried" -- "$PHC_BIN" --config "$TMP/patch429.cnf" request -X PATCH -d '{}' /v2/asset/sites
check "PATCH: exactly one attempt" test "$(seen patch429 PATCH '[0-9]+')" -eq 1

# --- a plain server error is not a rate limit: not retried ---------------------------------
mock429 err500 status500
expect 1 "HTTP 500" "GET answered 500 is not retried" -- "$PHC_BIN" --config "$TMP/err500.cnf" request /v2/asset/sites
check "500: exactly one attempt" test "$(seen err500 GET 500)" -eq 1

# --- 503 with Retry-After: a TLS server (OpenSSL, through Python) that is overloaded once ---
python3 - "$PHC_PKI/server.pem" "$PHC_PKI/server.key" "$TMP/busy.port" "$TMP/busy.log" <<'EOF' &
import os, socket, ssl, sys
cert, key, portfile, logfile = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(portfile + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
served = {}

def answer(method):
    # The first request of each method gets 503 (Retry-After: 1), later ones 200.
    n = served.get(method, 0)
    served[method] = n + 1
    if n == 0:
        return 503, b"Retry-After: 1\r\n", b'{"error":"busy"}'
    return 200, b"", b'{"ok":true}'

while True:
    c, _ = s.accept()
    try:
        t = ctx.wrap_socket(c, server_side=True)
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                d = t.recv(4096)
                if not d:
                    raise EOFError
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            method, path = lines[0].split(b" ")[:2]
            clen = 0
            for l in lines[1:]:
                k, _, v = l.partition(b":")
                if k.strip().lower() == b"content-length":
                    clen = int(v)
            while len(buf) < clen:
                buf += t.recv(4096)
            buf = buf[clen:]
            status, extra, body = answer(method)
            with open(logfile, "a") as f:
                f.write("%s %s %d\n" % (method.decode(), path.decode(), status))
            t.sendall(b"HTTP/1.1 %d X\r\n%sContent-Length: %d\r\n\r\n%s" % (status, extra, len(body), body))
    except (OSError, ssl.SSLError, EOFError, ValueError):
        pass
    c.close()
EOF
T_PIDS+=($!)
wait_port_file "$TMP/busy.port" "${T_PIDS[-1]}"
write_config "$TMP/busy.cnf" "$(cat "$TMP/busy.port")" "connect_timeout = 2" "timeout = 5"
busy() { grep -cE "^$1 /v2/asset/sites $2\$" "$TMP/busy.log" 2>/dev/null; }

t_start
expect 0 "" "GET answered 503 + Retry-After is retried and succeeds" -- "$PHC_BIN" --config "$TMP/busy.cnf" request /v2/asset/sites
between "GET 503 retry honoured Retry-After: 1" 1000 $((1000 + SLACK))
check "503 GET: one 503, then one 200" test "$(busy GET 503)" -eq 1 -a "$(busy GET 200)" -eq 1
expect 1 "HTTP 503" "POST answered 503 is not retried: exit 1" -- "$PHC_BIN" --config "$TMP/busy.cnf" request -X POST -d '{}' /v2/asset/sites
check "503 POST: exactly one attempt" test "$(busy POST 503)" -eq 1 -a "$(busy POST 200)" -eq 0

finish
