#!/usr/bin/env bash
# Server and network faults: each ends within the configured timeouts, with the contract's
# exit class and one line naming the cause - refused (7), reset mid-handshake (7), cut or reset
# mid-body (7), a server that stalls (7), a connect that hangs (7), an oversized body or
# header block (6) - and a pinned address that is down falls over to the next one.
. "$(dirname "$0")/lib.sh"

make_token ec:P-256
start_mock ok
OK_PORT=$MOCK_PORT

# timed MAX_SECONDS DESCRIPTION: asserts the last expect took at most MAX_SECONDS.
T0=0
t_start() { T0=$(date +%s%N); }
timed() {
    local max=$1 what=$2 ms=$((($(date +%s%N) - T0) / 1000000))
    check "$what took ${ms} ms (bound ${max} s)" test "$ms" -le $((max * 1000))
}

# Two kinds of configuration. fault_config: small timeouts, for faults that only a timeout
# ends (the run must end by them, not by the test's patience). prompt_config: long ones, for
# faults that must end at once (ending within SLACK shows nothing waited for a timeout).
# SLACK covers starting phc and opening the token on a loaded machine.
SLACK=4
fault_config() { # fault_config FILE PORT [extra lines...]
    local file=$1 port=$2
    shift 2
    write_config "$file" "$port" "connect_timeout = 1" "timeout = 2" "$@"
}
prompt_config() { # prompt_config FILE PORT [extra lines...]
    local file=$1 port=$2
    shift 2
    write_config "$file" "$port" "connect_timeout = 10" "timeout = 20" "$@"
}

# requests_seen LOGNAME: requests the mock logged for /v2/asset/sites
requests_seen() { grep -c " /v2/asset/sites " "$TMP/$1.log" 2>/dev/null; }

# --- connection refused: a port nothing listens on (a mock started and stopped) ------------
start_mock gone
GONE_PORT=$MOCK_PORT
kill "${T_PIDS[-1]}" && wait "${T_PIDS[-1]}" 2>/dev/null
prompt_config "$TMP/refused.cnf" "$GONE_PORT"
t_start
expect 7 "cannot connect" "connection refused is a network error" -- "$PHC_BIN" --config "$TMP/refused.cnf" request /v2/asset/sites
timed $SLACK "refused fails at once, not after connect_timeout = 10"
check "refused: the message names the server and port" grep -q "api.powerhub.test.*$GONE_PORT" "$TMP/err"
check "refused: the message names the address tried" grep -q "127\.0\.0\.1" "$TMP/err"
check "refused: one line on stderr" test "$(wc -l <"$TMP/err")" -eq 1

# --- reset in the middle of the TLS handshake ---------------------------------------------
start_mock reset --fault reset-handshake
prompt_config "$TMP/reset.cnf" "$MOCK_PORT"
t_start
expect 7 "api.powerhub.test" "reset mid-handshake is a network error" -- "$PHC_BIN" --config "$TMP/reset.cnf" request /v2/asset/sites
timed $SLACK "reset mid-handshake ends at once, not after timeout = 20"
check "reset mid-handshake: not reported as a trust or HSM problem" bash -c "! grep -qiE 'certificate|token' '$TMP/err'"

# --- reset in the middle of the body (no close_notify, half the bytes) ---------------------
start_mock cut --fault close
prompt_config "$TMP/cut.cnf" "$MOCK_PORT"
t_start
expect 7 "api.powerhub.test" "connection cut mid-body is a network error" -- "$PHC_BIN" --config "$TMP/cut.cnf" request /v2/asset/sites
timed $SLACK "cut mid-body ends at once, not after timeout = 20"
check "cut mid-body: no partial body on stdout" test ! -s "$TMP/out"
check "cut mid-body: the mock did send a partial response" test "$(requests_seen cut)" -ge 1

# --- a server that accepts, reads the request and never answers (slowloris) ---------------
start_mock stall --fault stall
fault_config "$TMP/stall.cnf" "$MOCK_PORT"
t_start
expect 7 "timed out" "stalled server: timeout is a network error" -- "$PHC_BIN" --config "$TMP/stall.cnf" request /v2/asset/sites
timed $((2 + SLACK)) "stall bounded by timeout = 2"

# A slow answer inside the timeout still succeeds; one beyond it does not.
start_mock slow --fault delay=700
fault_config "$TMP/slow.cnf" "$MOCK_PORT" && set_key "$TMP/slow.cnf" timeout 4
expect 0 "" "answer after 0.7 s within timeout = 4 succeeds" -- "$PHC_BIN" --config "$TMP/slow.cnf" request /v2/asset/sites
start_mock slower --fault delay=5000
fault_config "$TMP/slower.cnf" "$MOCK_PORT"
t_start
expect 7 "timed out" "answer after 5 s with timeout = 2 is a network error" -- "$PHC_BIN" --config "$TMP/slower.cnf" request /v2/asset/sites
timed $((2 + SLACK)) "slow answer bounded by timeout = 2"

# --- a connect that never completes: a listener whose accept queue is full drops SYNs -----
python3 - "$TMP/full.port" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(0)
port = s.getsockname()[1]
fillers = []
for _ in range(4):  # fill the accept queue; nothing is ever accepted
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", port))
    fillers.append(c)
time.sleep(0.3)
open(sys.argv[1] + ".tmp", "w").write(str(port))
__import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)
EOF
T_PIDS+=($!)
wait_port_file "$TMP/full.port" "${T_PIDS[-1]}"
fault_config "$TMP/hang.cnf" "$(cat "$TMP/full.port")"
t_start
expect 7 "api.powerhub.test" "connect that hangs: connect_timeout is a network error" -- "$PHC_BIN" --config "$TMP/hang.cnf" request /v2/asset/sites
timed $((1 + SLACK)) "hanging connect bounded by connect_timeout = 1"

# --- oversized body: refused by max_response_bytes, at any size the server claims ----------
start_mock big --fault oversize=200000
prompt_config "$TMP/big.cnf" "$MOCK_PORT" "max_response_bytes = 65536"
expect 6 "larger than max_response_bytes" "body over max_response_bytes is a policy error" -- "$PHC_BIN" --config "$TMP/big.cnf" request /v2/asset/sites
check "oversized body: nothing written" test ! -s "$TMP/out"
start_mock huge --fault oversize=100000000000
prompt_config "$TMP/huge.cnf" "$MOCK_PORT"
t_start
expect 6 "larger than max_response_bytes" "a 100 GB body against the 16 MiB default is refused" -- "$PHC_BIN" --config "$TMP/huge.cnf" request /v2/asset/sites
timed $SLACK "a 100 GB body is refused from its Content-Length, without reading it"

# --- a TLS server (OpenSSL, through Python) for what the mock cannot do: 100 KiB of header
# fields (/big-headers), and a TCP reset half-way through the body (/rst: SO_LINGER 0) ----
python3 - "$PHC_PKI/server.pem" "$PHC_PKI/server.key" "$TMP/py.port" <<'EOF' &
import os, socket, ssl, struct, sys
cert, key, portfile = sys.argv[1:4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(portfile + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(portfile + ".tmp", portfile)
big = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"f" * 1000) for i in range(100))
while True:
    c, _ = s.accept()
    t = c
    try:
        t = ctx.wrap_socket(c, server_side=True)
        req = b""
        while b"\r\n\r\n" not in req:
            d = t.recv(4096)
            if not d:
                break
            req += d
        if b" /rst " in req.split(b"\r\n")[0]:
            t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50000)
            t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            t.sendall(big + b"Content-Length: 2\r\n\r\n{}")
            t.unwrap()
    except (OSError, ssl.SSLError):
        pass
    t.close()
EOF
T_PIDS+=($!)
wait_port_file "$TMP/py.port" "${T_PIDS[-1]}"
prompt_config "$TMP/py.cnf" "$(cat "$TMP/py.port")"
t_start
expect 6 "response headers" "100 KiB of response headers is a policy error" -- "$PHC_BIN" --config "$TMP/py.cnf" request /big-headers
timed $SLACK "oversized header block refused at once"
t_start
expect 7 "api.powerhub.test" "TCP reset mid-body is a network error" -- "$PHC_BIN" --config "$TMP/py.cnf" request /rst
timed $SLACK "reset mid-body ends at once, not after timeout = 20"
check "reset mid-body: no partial body on stdout" test ! -s "$TMP/out"

# --- pinned addresses in order: a dead first address falls over to the next --------------
# 127.0.0.2 is loopback too; nothing listens there on the mock's port.
prompt_config "$TMP/fail1.cnf" "$OK_PORT"
set_key "$TMP/fail1.cnf" pinned_ips "127.0.0.2, 127.0.0.1"
before=$(requests_seen ok)
expect 0 "" "first pinned address refuses: the second one serves" -- "$PHC_BIN" --config "$TMP/fail1.cnf" -v request /v2/asset/sites
check "failover: the request reached the mock behind the second address" test "$(requests_seen ok)" -eq $((before + 1))
check "failover: -v shows the connection went to 127.0.0.1" grep -q "connection to 127.0.0.1" "$TMP/err"

# A first address whose connect hangs: the connect timeout is shared, the second still answers.
python3 - "$OK_PORT" "$TMP/full2.port" <<'EOF' &
import os, socket, sys, time
s = socket.socket()
s.bind(("127.0.0.2", int(sys.argv[1])))
s.listen(0)
fillers = []
for _ in range(4):
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.2", int(sys.argv[1])))
    fillers.append(c)
time.sleep(0.3)
open(sys.argv[2] + ".tmp", "w").write("ready")
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
time.sleep(120)
EOF
T_PIDS+=($!)
wait_port_file "$TMP/full2.port" "${T_PIDS[-1]}"
# libcurl gives the first of two addresses half of connect_timeout. (With curl 7.88 and
# a 2 s budget exactly, the second address then times out too; 3 leaves it room.)
prompt_config "$TMP/fail2.cnf" "$OK_PORT" && set_key "$TMP/fail2.cnf" connect_timeout 3
set_key "$TMP/fail2.cnf" pinned_ips "127.0.0.2, 127.0.0.1"
before=$(requests_seen ok)
t_start
expect 0 "" "first pinned address hangs: the second one serves within connect_timeout" -- "$PHC_BIN" --config "$TMP/fail2.cnf" request /v2/asset/sites
timed $((2 + SLACK)) "failover past a hanging address (1.5 s for the first)"
check "failover past a hang: served by the mock behind the second address" test "$(requests_seen ok)" -eq $((before + 1))

prompt_config "$TMP/alldown.cnf" "$GONE_PORT"
set_key "$TMP/alldown.cnf" pinned_ips "127.0.0.2, 127.0.0.1"
t_start
expect 7 "cannot connect" "every pinned address down is a network error" -- "$PHC_BIN" --config "$TMP/alldown.cnf" request /v2/asset/sites
timed $SLACK "all pinned addresses refused: fails at once"
check "all down: the message names every address tried" grep -q "127\.0\.0\.2, 127\.0\.0\.1" "$TMP/err"

finish
