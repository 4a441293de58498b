#!/usr/bin/env bash
# Who may use the agent: SO_PEERCRED on every Unix-socket connection against
# agent_allow_users. Two throwaway system users share the socket's group (agent_group), so
# both can connect; only the listed one gets through, the other gets 403 and nothing is
# forwarded. A user outside the group cannot even connect (mode 0660). Needs root (useradd).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

if [ "$(id -u)" != 0 ] || ! command -v useradd >/dev/null || ! command -v setpriv >/dev/null; then
    echo "skipped: needs root, useradd and setpriv to make throwaway users"
    finish
fi
TAG=phcag$$
GRP=${TAG}g
YES=${TAG}y
NO=${TAG}n
OUT=${TAG}o
peers_cleanup() {
    local u
    for u in "$YES" "$NO" "$OUT"; do userdel "$u" >/dev/null 2>&1; done
    groupdel "$GRP" >/dev/null 2>&1
}
trap 'peers_cleanup; t_cleanup' EXIT
groupadd --system "$GRP"
useradd --system --no-create-home --shell /usr/sbin/nologin -g "$GRP" "$YES"
useradd --system --no-create-home --shell /usr/sbin/nologin -g "$GRP" "$NO"
useradd --system --no-create-home --shell /usr/sbin/nologin "$OUT"
as() { # as USER CMD...: CMD with that user's uid and group only
    local u=$1
    shift
    setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups "$@"
}

make_token
start_mock mock
mkdir -m 0755 "$TMP/run"
chmod 0711 "$TMP"
SOCK=$TMP/run/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK" "agent_allow_users = root, $YES" "agent_group = $GRP"
start_agent agent "$TMP/a.cnf" || { not_ok "agent starts"; finish; }
check "socket group is agent_group, mode 0660" test "$(stat -c '%G %a' "$SOCK")" = "$GRP 660"

before=$(wc -l <"$TMP/mock.log")
code=$(as "$YES" curl -sS --max-time 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)
check "an allowed other user gets through ($code)" test "$code" = 200
check "its request reached the server" test "$(wc -l <"$TMP/mock.log")" -eq $((before + 1))

before=$(wc -l <"$TMP/mock.log")
as "$NO" curl -sS --max-time 10 --unix-socket "$SOCK" -i http://localhost/v2/asset/sites >"$TMP/no.out"
check "a user not in agent_allow_users: 403" grep -q '^HTTP/1.1 403' "$TMP/no.out"
check "403 carries Phc-Error: policy" grep -qi '^Phc-Error: policy' "$TMP/no.out"
check "and names the user id" grep -q "user $(id -u "$NO") is not in agent_allow_users of this agent" "$TMP/no.out"
expect 6 "user $(id -u "$NO") is not in agent_allow_users of this agent" "phc request as a refused user: exit 6" -- as "$NO" "$PHC_BIN" request --agent "unix:$SOCK" /v2/asset/sites
as "$NO" curl -sS --max-time 10 --unix-socket "$SOCK" -i http://localhost/_phc/metrics >"$TMP/no2.out"
check "a refused user does not get the metrics either" grep -q '^HTTP/1.1 403' "$TMP/no2.out"
check "nothing of the refused user was forwarded" test "$(wc -l <"$TMP/mock.log")" -eq "$before"
check "the refusal is in the access log with the peer's uid" grep -qE "uid=$(id -u "$NO") pid=[0-9]+ GET /v2/asset/sites 403 .*error=policy" "$TMP/agent.err"

expect 7 "cannot reach the phconnect agent at $SOCK: Permission denied" "a user outside the socket's group cannot connect: exit 7" -- as "$OUT" "$PHC_BIN" request --agent "unix:$SOCK" /v2/asset/sites

# The default allow-list: the agent's own user and root.
stop_agent "$AGENT_PID"
agent_config "$TMP/d.cnf" "$MOCK_PORT" "$SOCK" "agent_group = $GRP"
start_agent dflt "$TMP/d.cnf" || not_ok "agent with the default allow-list"
code=$(curl -sS --max-time 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)
check "default allow-list: the agent's own user (root) gets through" test "$code" = 200
code=$(as "$YES" curl -sS --max-time 10 --unix-socket "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)
check "default allow-list: another user is refused ($code)" test "$code" = 403
stop_agent "$AGENT_PID"

agent_config "$TMP/bad.cnf" "$MOCK_PORT" "$SOCK" "agent_allow_users = ${TAG}nosuchuser"
expect 2 "config key 'agent_allow_users': no user '${TAG}nosuchuser' on this host" "an unknown user in agent_allow_users: config error" -- timeout 20 "$PHC_BIN" --config "$TMP/bad.cnf" agent
finish
