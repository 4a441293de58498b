#!/usr/bin/env bash
# The token's life in a running client: refreshed before it expires (one refresh for all
# threads), replaced once after a 401 and never in a loop, kept in use after the credential
# is deleted until it expires (then exit 8), and 429 from the token endpoint honoured.
# Short token lifetimes from the mock keep this at a few seconds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/auth_lib.sh"

# --- refreshed before expiry ----------------------------------------------------------------
# Lifetime 6 s: refreshed after 3 s (half-way; see phc__access_schedule), sent until 5 s.
start_creds_mock short --token-lifetime 6
write_creds_config "$TMP/short.cnf" "$MOCK_PORT"
t0=$(now_ms)
aexpect 0 "refreshed after 3 s" "4 threads x 50 requests over 5 s with 6 s tokens" \
    -- "$AUTH_DRIVER" -v -i 100 "$TMP/short.cnf" /v2/asset/sites 200 4
cat "$TMP/out" >>"$LOGS"
echo "# took $(($(now_ms) - t0)) ms; token requests: $(creds_stat "$MOCK_PORT" token_requests)"
check "all 200 succeeded" grep -q '^ok 200 fail 0$' "$TMP/out"
check "exactly two token requests: the first and one refresh for all threads" \
    test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 2
check "the refresh came before expiry: the API never answered 401" test "$(count_log short ' 401 ')" -eq 0
check "two tokens obtained" test "$(grep -c 'API token for client credential .cid-1. obtained' "$TMP/err")" -eq 2

# --- 401: one refresh, one retry ---------------------------------------------------------------
start_creds_mock revoke
write_creds_config "$TMP/revoke.cnf" "$MOCK_PORT"
aexpect 0 "requesting a new API token and retrying once" "tokens revoked mid-run: the next request refreshes and retries" \
    -- "$AUTH_DRIVER" -v -r 3 "$TMP/revoke.cnf" /v2/asset/sites 6 1
cat "$TMP/out" >>"$LOGS"
check "all 6 succeeded" grep -q '^ok 6 fail 0$' "$TMP/out"
check "one 401, then the retry succeeded" test "$(count_log revoke 'GET /v2/asset/sites 401')" -eq 1
check "one new token for the 401 (two in all)" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 2

# With 4 threads, each 401 in flight with the revoked token shares one new token.
start_creds_mock revoke4
write_creds_config "$TMP/revoke4.cnf" "$MOCK_PORT"
aexpect 0 "" "4 threads, tokens revoked mid-run" -- "$AUTH_DRIVER" -v -i 20 -r 5 "$TMP/revoke4.cnf" /v2/asset/sites 80 4
cat "$TMP/out" >>"$LOGS"
echo "# 4 threads: $(count_log revoke4 'GET /v2/asset/sites 401') x 401, $(creds_stat "$MOCK_PORT" token_requests) token requests"
check "all 80 succeeded" grep -q '^ok 80 fail 0$' "$TMP/out"
check "at least one 401 after the revocation" test "$(count_log revoke4 'GET /v2/asset/sites 401')" -ge 1
check "one new token for all the 401s (two in all)" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 2

# Never a loop: with tokens that are dead on arrival the retry's 401 is the answer.
start_creds_mock dead --token-lifetime 0
write_creds_config "$TMP/dead.cnf" "$MOCK_PORT"
aexpect 1 "server answered HTTP 401 for GET /v2/asset/sites even with a newly issued API token (client credential 'cid-1')" \
    "a second 401 is returned as it is (exit 1)" -- "$PHC_BIN" --config "$TMP/dead.cnf" -vv request /v2/asset/sites
check "the 401 body is still written" grep -q invalid_token "$TMP/out"
check "exactly two API requests (one retry)" test "$(count_log dead 'GET /v2/asset/sites 401')" -eq 2
check "exactly two token requests (one refresh)" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 2

# --- deleted credential in a running client ------------------------------------------------------
# The mock issues one token for cid-del (lifetime 4 s) and refuses every later request. The
# client keeps using the issued token while it is valid (the refresh after 2 s fails and is
# retried), then fails with exit 8.
start_creds_mock del --token-lifetime 4
write_creds_config "$TMP/del.cnf" "$MOCK_PORT"
set_key "$TMP/del.cnf" client_id cid-del
set_key "$TMP/del.cnf" client_secret env:DEL_SECRET
aexpect 8 "[warning] could not refresh the API token (client credential 'cid-del' was refused" \
    "deleted credential: the issued token keeps working, then exit 8" \
    -- env DEL_SECRET="$DEL_SECRET" "$AUTH_DRIVER" -v -i 500 "$TMP/del.cnf" /v2/asset/sites 12 1
cat "$TMP/out" >>"$LOGS"
grep '^req' "$TMP/out" | sed 's/^/# /'
codes=$(grep '^req' "$TMP/out" | sed 's/.* exit=\([0-9]*\).*/\1/' | tr -d '\n')
check "successes first, then only failures ($codes)" bash -c "[[ '$codes' =~ ^0{3,}8+$ ]]"
check "the failures say the credential was refused" \
    bash -c "grep 'exit=8' '$TMP/out' | grep -vq \"client credential 'cid-del' was refused\" && exit 1 || exit 0"
check "the issued token was still accepted after the first refused token request" \
    bash -c "sed -n '/POST \/v1\/auth\/token 401/,\$p' '$TMP/del.log' | grep -q 'GET /v2/asset/sites 200'"
check "the API never saw an expired token" test "$(count_log del 'GET /v2/asset/sites 401')" -eq 0

# --- 429 from the token endpoint ------------------------------------------------------------------
start_creds_mock busy --fault status429=1
write_creds_config "$TMP/busy.cnf" "$MOCK_PORT"
t0=$(now_ms)
aexpect 0 "answered HTTP 429; asking again in 1 s as Retry-After says (attempt 2 of 3)" \
    "429 with Retry-After 1: waited and asked again" -- "$PHC_BIN" --config "$TMP/busy.cnf" -vv request /v2/asset/sites
took=$(($(now_ms) - t0))
check "waited at least the 1 s Retry-After asks for (${took} ms)" test "$took" -ge 1000
check "two token requests" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 2

start_creds_mock busy2 --fault status429always=1
write_creds_config "$TMP/busy2.cnf" "$MOCK_PORT"
t0=$(now_ms)
aexpect 8 "token endpoint https://api.powerhub.test:$MOCK_PORT/v1/auth/token is busy (HTTP 429, Retry-After 1 s) after 3 attempts" \
    "always 429: gives up after 3 attempts (exit 8)" -- "$PHC_BIN" --config "$TMP/busy2.cnf" -vv request /v2/asset/sites
took=$(($(now_ms) - t0))
check "waited 2 x 1 s, not longer (${took} ms)" bash -c "[ $took -ge 2000 ] && [ $took -lt 10000 ]"
check "three token requests" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 3

start_creds_mock busy3 --fault status429always=45
write_creds_config "$TMP/busy3.cnf" "$MOCK_PORT"
t0=$(now_ms)
aexpect 8 "is busy (HTTP 429, Retry-After 45 s) after 1 attempt and 0 s of waiting (at most 3 attempts, 30 s)" \
    "Retry-After beyond the 30 s budget: fails at once" -- "$PHC_BIN" --config "$TMP/busy3.cnf" -vv request /v2/asset/sites
took=$(($(now_ms) - t0))
check "did not wait (${took} ms)" test "$took" -lt 5000
check "one token request" test "$(creds_stat "$MOCK_PORT" token_requests)" -eq 1

leak_check
finish
