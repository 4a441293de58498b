#!/usr/bin/env bash
# Client credentials without a client certificate: the token is fetched from /v1/auth/token
# and sent as a bearer token, cached across requests and threads; every refusal is distinct
# (auth 8, network 7, trust 5, config 2); secrets come from file: and env:; nothing secret
# reaches -vv output or messages. Timing-dependent behaviour (refresh, deletion, 401, 429)
# is in t_auth_refresh.sh, the secret on the HSM token and mTLS + bearer in t_auth_token.sh.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/auth_lib.sh"

start_creds_mock mock
PORT=$MOCK_PORT
CFG=$TMP/phc.cnf
write_creds_config "$CFG" "$PORT"
URL="https://api.powerhub.test:$PORT"

# --- token fetched and used ---------------------------------------------------------------
aexpect 0 "API token for client credential 'cid-1' obtained" "request with client credentials only" \
    -- "$PHC_BIN" --config "$CFG" -vv request /v2/asset/sites
check "body is the sites fixture" grep -q STE-0001 "$TMP/out"
check "-vv says the connection has no client certificate" grep -q "client certificate '(none: client credentials)'" "$TMP/err"
check "the token was requested first, then the API answered 200" \
    bash -c "grep -E 'POST /v1/auth/token 200|GET /v2/asset/sites 200' '$TMP/mock.log' | awk '{print \$5}' | tr '\n' ' ' | grep -q '^/v1/auth/token /v2/asset/sites \$'"
check "one token request for one phc run" test "$(creds_stat "$PORT" token_requests)" -eq 1

# The server sees exactly the token it issued, as a bearer token.
aexpect 0 "" "request /echo shows the bearer token" -- "$PHC_BIN" --config "$CFG" -vv request /echo
check "Authorization: Bearer <the issued token>" \
    grep -qF "\"authorization\":\"Bearer $(tail -1 "$TMP/tokens")\"" "$TMP/out"
check "no client certificate on the connection" grep -q '"client_subject":""' "$TMP/out"

# --- cached across requests and threads ----------------------------------------------------
before=$(creds_stat "$PORT" token_requests)
api_before=$(creds_stat "$PORT" api_requests)
aexpect 0 "" "200 requests from 8 threads on one client" \
    -- "$AUTH_DRIVER" -v "$CFG" /v2/asset/sites 200 8
cat "$TMP/out" >>"$LOGS"
check "all 200 succeeded" grep -q '^ok 200 fail 0$' "$TMP/out"
after=$(creds_stat "$PORT" token_requests)
api_after=$(creds_stat "$PORT" api_requests)
echo "# 200 requests x 8 threads: $((after - before)) token request(s), $((api_after - api_before)) API+token requests"
check "200 requests x 8 threads used one token request ($before -> $after)" test "$((after - before))" -eq 1
check "and 200 API requests, no retries" test "$((api_after - api_before))" -eq 201
check "no 401 was needed" test "$(count_log mock ' 401 ')" -eq 0

# --- secret sources ------------------------------------------------------------------------
printf '%s\n' "$SECRET" >"$TMP/secret"
chmod 600 "$TMP/secret"
write_creds_config "$TMP/file.cnf" "$PORT"
set_key "$TMP/file.cnf" client_secret "file:$TMP/secret"
aexpect 0 "" "secret from file: (trailing newline dropped)" -- "$PHC_BIN" --config "$TMP/file.cnf" -vv request /v2/asset/sites
aexpect 0 "" "secret from env:" -- env PHC_TEST_SECRET="$SECRET" "$PHC_BIN" --config "$CFG" -vv request /v2/asset/sites
aexpect 2 "client secret source env:PHC_TEST_SECRET is not set" "unset env: source is a config error" \
    -- env -u PHC_TEST_SECRET "$PHC_BIN" --config "$CFG" -vv request /v2/asset/sites
set_key "$TMP/file.cnf" client_secret "file:$TMP/no-such-secret"
aexpect 2 "client secret file $TMP/no-such-secret does not exist" "missing secret file is a config error" \
    -- "$PHC_BIN" --config "$TMP/file.cnf" -vv request /v2/asset/sites
: >"$TMP/empty-secret"
set_key "$TMP/file.cnf" client_secret "file:$TMP/empty-secret"
aexpect 2 "client secret file $TMP/empty-secret is empty" "empty secret file is a config error" \
    -- "$PHC_BIN" --config "$TMP/file.cnf" -vv request /v2/asset/sites

# --- refusals ------------------------------------------------------------------------------
REFUSED="was refused by $URL/v1/auth/token (HTTP 401 invalid_client): it is wrong, expired or deleted"
before=$(creds_stat "$PORT" token_requests)
aexpect 8 "client credential 'cid-1' $REFUSED" "wrong secret: auth error" \
    -- env PHC_TEST_SECRET=not-the-secret "$PHC_BIN" --config "$CFG" -vv request /v2/asset/sites
check "refused credential: one token request, no retry" test "$(($(creds_stat "$PORT" token_requests) - before))" -eq 1
check "refused credential: the API was never called" bash -c "! grep -q 'GET /v2/asset/sites 401' '$TMP/mock.log'"
check "the message does not hold the wrong secret" bash -c "! grep -q not-the-secret '$TMP/err'"
write_creds_config "$TMP/exp.cnf" "$PORT"
set_key "$TMP/exp.cnf" client_id cid-exp
set_key "$TMP/exp.cnf" client_secret env:EXP_SECRET
aexpect 8 "client credential 'cid-exp' $REFUSED" "expired credential: auth error" \
    -- env EXP_SECRET=expired-9fT3xQ "$PHC_BIN" --config "$TMP/exp.cnf" -vv request /v2/asset/sites
set_key "$TMP/exp.cnf" client_id no-such-client
aexpect 8 "client credential 'no-such-client' $REFUSED" "unknown client_id: auth error" \
    -- env EXP_SECRET=expired-9fT3xQ "$PHC_BIN" --config "$TMP/exp.cnf" -vv request /v2/asset/sites

# Deleted credential, seen from the command line: the first token is issued, then nothing.
write_creds_config "$TMP/del.cnf" "$PORT"
set_key "$TMP/del.cnf" client_id cid-del
set_key "$TMP/del.cnf" client_secret env:DEL_SECRET
aexpect 0 "" "credential works until it is deleted" -- env DEL_SECRET="$DEL_SECRET" "$PHC_BIN" --config "$TMP/del.cnf" -vv request /v2/asset/sites
aexpect 8 "client credential 'cid-del' $REFUSED" "deleted credential: new token requests fail at once (exit 8)" \
    -- env DEL_SECRET="$DEL_SECRET" "$PHC_BIN" --config "$TMP/del.cnf" -vv request /v2/asset/sites

write_creds_config "$TMP/path.cnf" "$PORT" "token_path = /v1/auth/nothing"
aexpect 8 "token endpoint $URL/v1/auth/nothing answered HTTP 404: no API token for client credential 'cid-1'" \
    "wrong token_path: auth error naming the endpoint" -- "$PHC_BIN" --config "$TMP/path.cnf" -vv request /v2/asset/sites

write_creds_config "$TMP/colon.cnf" "$PORT"
set_key "$TMP/colon.cnf" client_id "cid:1"
aexpect 2 "config key 'client_id': 'cid:1' must not contain ':'" "client_id with ':' is a config error" \
    -- "$PHC_BIN" --config "$TMP/colon.cnf" -vv request /v2/asset/sites

aexpect 2 "the request has its own Authorization header" "a caller's Authorization header is refused" \
    -- "$PHC_BIN" --config "$CFG" -vv request -H 'Authorization: Bearer mine' /v2/asset/sites

# An expired credential_expires only warns: the server decides.
write_creds_config "$TMP/old.cnf" "$PORT" "credential_expires = 2020-01-31"
aexpect 0 "[warning] client credential 'cid-1' expired on 2020-01-31 (credential_expires)" \
    "past credential_expires warns and still asks the server" -- "$PHC_BIN" --config "$TMP/old.cnf" request /v2/asset/sites
write_creds_config "$TMP/new.cnf" "$PORT" "credential_expires = 2999-12-31"
aexpect 0 "client credential 'cid-1' expires on 2999-12-31 (" "-v shows the credential's expiry" \
    -- "$PHC_BIN" --config "$TMP/new.cnf" -v request /v2/asset/sites

# phc status and phc check report the credential's expiry without a token key as well.
soon=$(date -u -d '+5 days' +%F)
write_creds_config "$TMP/soon.cnf" "$PORT" "credential_expires = $soon"
aexpect 0 "" "phc status, credentials only" -- "$PHC_BIN" --config "$TMP/soon.cnf" status
check "status names the credential and its expiry" grep -q "client credential 'cid-1': expires $soon" "$TMP/out"
aexpect 2 "" "phc check: credential expiring in 5 days is CRITICAL at --crit-days 7" \
    -- "$PHC_BIN" --config "$TMP/soon.cnf" check --warn-days 30 --crit-days 7
check "check's summary names the credential" grep -q "^PHC CRITICAL - .*client credential expires in" "$TMP/out"
aexpect 1 "" "phc check: the same credential is WARNING at --crit-days 3" \
    -- "$PHC_BIN" --config "$TMP/soon.cnf" check --warn-days 30 --crit-days 3
aexpect 0 "" "phc check: and OK at --warn-days 2 --crit-days 1" \
    -- "$PHC_BIN" --config "$TMP/soon.cnf" check --warn-days 2 --crit-days 1

# --- the token endpoint is under the same trust and address policy -----------------------
launch_mock other --cert "$PHC_PKI/server-other.pem" --key "$PHC_PKI/server-other.key" \
    --credentials "$TMP/creds" --token-log "$TMP/tokens"
OTHER=$MOCK_PORT
write_creds_config "$TMP/other.cnf" "$OTHER"
aexpect 5 "requesting an API token from https://api.powerhub.test:$OTHER/v1/auth/token: " \
    "token endpoint with a certificate from another CA: trust error" -- "$PHC_BIN" --config "$TMP/other.cnf" -vv request /v2/asset/sites
check "the secret never reached the untrusted server" test ! -s "$TMP/other.log"

# A closed port: network error, not auth.
python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' >"$TMP/closed.port"
write_creds_config "$TMP/closed.cnf" "$(cat "$TMP/closed.port")"
aexpect 7 "requesting an API token from https://api.powerhub.test:$(cat "$TMP/closed.port")/v1/auth/token: cannot connect" \
    "token endpoint unreachable: network error" -- "$PHC_BIN" --config "$TMP/closed.cnf" -vv request /v2/asset/sites

leak_check
finish
