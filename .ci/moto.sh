#!/usr/bin/env bash
# A real S3 server on loopback for the remote-cache tests: moto (PyPI `moto[server]`)
# in its own virtualenv, with authentication on.
#   .ci/moto.sh start ENVFILE   install (once), start, make a user, its keys and the
#                               bucket `pipe-ci`; write the variables the tests read
#                               (PIPE_S3, PIPE_S3_BUCKET, AWS_*) to ENVFILE
#   .ci/moto.sh stop            stop it by its PID file
# State (virtualenv, PID, log) lives under $MOTO_STATE (default /tmp/pipe-ci-moto).
# Authentication: moto accepts anything unless INITIAL_NO_AUTH_ACTION_COUNT is set;
# with it, the first requests (creating the user and its keys) go unchecked and every
# later one must be signed with a real key, so wrong credentials are refused.
set -euo pipefail
M=${MOTO_STATE:-/tmp/pipe-ci-moto}

start() {
  local envfile=$1
  stop
  mkdir -p "$M"
  if [ ! -x "$M/venv/bin/moto_server" ]; then
    if ! python3 -c 'import ensurepip' 2>/dev/null; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    python3 -m venv "$M/venv"
    "$M/venv/bin/pip" install -q 'moto[server]' >/dev/null
  fi
  local port
  port=$("$M/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  INITIAL_NO_AUTH_ACTION_COUNT=4 "$M/venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$M/moto.log" 2>&1 &
  echo $! >"$M/moto.pid"
  local t=0
  until "$M/venv/bin/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; do
    sleep 0.2
    t=$((t + 1))
    if [ $t -gt 100 ]; then echo "moto: the server did not start" >&2; tail "$M/moto.log" >&2; exit 1; fi
  done
  "$M/venv/bin/python" - "$port" "$envfile" <<'PY'
import sys, boto3
port, envfile = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}"
anon = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="pipe-ci")
doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
arn = iam.create_policy(PolicyName="pipe-ci", PolicyDocument=doc)["Policy"]["Arn"]
iam.attach_user_policy(UserName="pipe-ci", PolicyArn=arn)
key = iam.create_access_key(UserName="pipe-ci")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket="pipe-ci")
with open(envfile, "w") as f:
    f.write(f"export PIPE_S3={url}\nexport PIPE_S3_BUCKET=pipe-ci\n")
    f.write(f"export AWS_ACCESS_KEY_ID={key['AccessKeyId']}\nexport AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}\n")
    f.write("export AWS_DEFAULT_REGION=us-east-1\n")
PY
  echo "moto: S3 on http://127.0.0.1:$port, bucket pipe-ci (state in $M)"
}

stop() {
  local pid
  pid=$(cat "$M/moto.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "moto: stopped PID $pid"
  fi
  rm -f "$M/moto.pid"
}

case "${1:-}" in
  start) start "${2:?usage: $0 start ENVFILE}" ;;
  stop) stop ;;
  *) echo "usage: $0 start ENVFILE | stop" >&2; exit 2 ;;
esac
