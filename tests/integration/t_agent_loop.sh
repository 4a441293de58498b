#!/usr/bin/env bash
# The agent's event loops: a request that waits on its upstream parks its fiber and never
# holds up the others. A 6 s upstream answer (the mock's /_sleep) is still in flight while 20
# quick requests, the health endpoint and a POST are answered; 40 slow requests at once are
# all in flight together (their upstream waits overlap); agent_max_clients = 2 queues the
# third request until a slot frees, in order, and answers it; SIGTERM lets a parked request
# finish and exits 0; a 2 s token signature does not stop the agent answering its health
# endpoint.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/agent_lib.sh"

# inflight_at_least N: waits (10 s at most) until the agent has N requests in flight besides
# the metrics request asking.
inflight_at_least() {
    local n i v
    for i in $(seq 1 100); do
        v=$(acurl "$SOCK" http://localhost/_phc/metrics | awk '$1 == "phc_agent_requests_in_flight" {print $2}')
        [ "${v:-0}" -ge $(($1 + 1)) ] && return 0
        sleep 0.1
    done
    return 1
}

make_token
start_mock mock
SOCK=$TMP/agent.sock
agent_config "$TMP/a.cnf" "$MOCK_PORT" "$SOCK"
start_agent loop "$TMP/a.cnf" || { not_ok "agent starts"; finish; }

# --- one slow upstream answer does not hold up the rest ---------------------------------------
acurl "$SOCK" -o "$TMP/slow.body" -w '%{http_code}\n' 'http://localhost/_sleep?ms=6000' \
    >"$TMP/slow.code" 2>&1 &
SLOW=$!
# The slow request is in flight before the quick ones start.
check "the slow request is in flight" inflight_at_least 1
quick_ok=0
for i in $(seq 1 20); do
    [ "$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites)" = 200 ] &&
        quick_ok=$((quick_ok + 1))
done
health=$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/_phc/health)
post=$(acurl "$SOCK" -o "$TMP/post.body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data '{"a":1}' http://localhost/echo)
check "20 quick requests answered 200 while the slow one waits upstream" test "$quick_ok" = 20
check "health answered 200 meanwhile" test "$health" = 200
check "a POST answered meanwhile, its body forwarded" \
    bash -c "test '$post' = 200 && grep -q 'POST' '$TMP/post.body'"
check "the slow request is still in flight after all of them" kill -0 "$SLOW"
wait "$SLOW"
check "the slow request then gets its answer (200, upstream's body)" \
    bash -c "grep -qx 200 '$TMP/slow.code' && grep -q '\"slept_ms\":6000' '$TMP/slow.body'"

# --- many slow requests at once: their waits overlap ------------------------------------------
start=$(date +%s)
pids=()
for i in $(seq 1 40); do
    acurl "$SOCK" -o /dev/null -w '%{http_code}\n' 'http://localhost/_sleep?ms=1500' \
        >"$TMP/many.$i" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
took=$(($(date +%s) - start))
check "40 concurrent 1.5 s upstream waits: all 200" test "$(cat "$TMP"/many.* | grep -cx 200)" = 40
# One at a time they would take 60 s; together a few seconds (20 s leaves room for a slow host).
check "40 concurrent 1.5 s upstream waits overlap (took ${took}s, serially 60 s)" test "$took" -lt 20
check "the access log has the 40 slow requests" \
    test "$(grep -c 'GET /_sleep?... 200' "$TMP/loop.err")" -ge 41
stop_agent "$AGENT_PID"
check "agent exits 0 after that" test "$AGENT_RC" = 0

# --- agent_max_clients = 2: the third request waits for a slot ---------------------------------
agent_config "$TMP/b.cnf" "$MOCK_PORT" "$SOCK" "agent_max_clients = 2"
start_agent slots "$TMP/b.cnf" || not_ok "agent starts (agent_max_clients = 2)"
pids=()
for i in 1 2; do
    (acurl "$SOCK" -o /dev/null -w '%{http_code}' 'http://localhost/_sleep?ms=3000' >"$TMP/s.$i" 2>&1
        date +%s%N >"$TMP/s.$i.t") &
    pids+=($!)
done
inflight_at_least 2 || true
date +%s%N >"$TMP/q.t0"
(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites >"$TMP/q" 2>&1
    date +%s%N >"$TMP/q.t") &
pids+=($!)
wait "${pids[@]}"
check "both slot holders answered 200" bash -c "test \"\$(cat '$TMP/s.1' '$TMP/s.2')\" = 200200"
check "the queued third request answered 200" test "$(cat "$TMP/q")" = 200
# Both slots are held for 3 s from before the third request was sent: it waited for one.
waited=$((($(cat "$TMP/q.t") - $(cat "$TMP/q.t0")) / 1000000))
check "the third request waited for a slot (${waited} ms)" test "$waited" -ge 1000
stop_agent "$AGENT_PID"

# --- a slow token signature does not stop the loop ---------------------------------------------
# The first request's full handshake signs on a token that takes 2 s a signature (the slow
# shim in front of SoftHSM); the signature runs on the library's worker and the loop waits for
# it through the wait hook, so the agent answers its own endpoints meanwhile.
agent_config "$TMP/s.cnf" "$MOCK_PORT" "$SOCK" "connect_timeout = 10"
set_key "$TMP/s.cnf" pkcs11_module "$PHC_SLOW_MODULE"
PHC_SLOW_TARGET=$SOFTHSM_MODULE PHC_SLOW_CALL_US=0 PHC_SLOW_SIGN_US=2000000 \
    start_agent slowsign "$TMP/s.cnf" || not_ok "agent starts (slow token)"
acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/v2/asset/sites >"$TMP/sign.code" 2>&1 &
SIGNING=$!
inflight_at_least 1 || true
health=$(acurl "$SOCK" -o /dev/null -w '%{http_code}' http://localhost/_phc/health)
check "health answered 200 while a 2 s signature is under way" test "$health" = 200
check "... and the signing request was still in flight then" kill -0 "$SIGNING"
wait "$SIGNING"
check "the signing request then gets its 200" test "$(cat "$TMP/sign.code")" = 200
stop_agent "$AGENT_PID"

# --- SIGTERM lets a parked request finish ------------------------------------------------------
start_agent drain "$TMP/a.cnf" || not_ok "agent starts (drain)"
acurl "$SOCK" -o "$TMP/d.body" -w '%{http_code}' 'http://localhost/_sleep?ms=2000' >"$TMP/d.code" 2>&1 &
DRAINED=$!
inflight_at_least 1 || true
kill -TERM "$AGENT_PID"
wait "$DRAINED"
wait "$AGENT_PID"
rc=$?
check "SIGTERM: the request in flight still gets its 200" test "$(cat "$TMP/d.code")" = 200
check "SIGTERM: the agent exits 0" test "$rc" = 0
check "SIGTERM: the socket is removed" test ! -e "$SOCK"
check "no sanitizer report from any agent" clean_reports "$TMP"/loop.err "$TMP"/slots.err \
    "$TMP"/slowsign.err "$TMP"/drain.err
finish
