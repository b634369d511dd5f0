#!/usr/bin/python3
"""botocore as an oracle for pier's SigV4 signer (test_sigv4_oracle.c).

Usage: botocore_oracle.py python|crt

Builds real API requests with botocore's own clients (S3 PutObject and
ListObjectsV2, CloudFront CreateInvalidation, STS AssumeRoleWithWebIdentity,
CodePipeline PutJobSuccessResult) and an S3 presigned GET, signed with fixed
credentials at a fixed time, and prints them as one JSON object
{"signer": ..., "requests": [...]}, each request being
{name, service, region, s3, method, url, headers: [[name, value]...] (as
they were just before signing), body_b64, body_sha256, expect: {the
Authorization, X-Amz-Date, X-Amz-Content-SHA256 and X-Amz-Security-Token
botocore set}, access_key, secret, token, timestamp}; the presigned GET has
presigned: true, an empty header list and the signed URL.

"python" signs with botocore.auth's SigV4Auth / S3SigV4Auth (botocore's own
code, BOTO_DISABLE_CRT=true); "crt" with botocore.crt.auth, which signs
through awscrt (aws-c-auth). "crt" prints {"skipped": reason} when awscrt
is not installed.

The signer's add_auth is wrapped to copy the headers it starts from; the
last "request-created" handler reads the signed request and aborts the
call, so nothing is sent and no network is needed.
botocore does not sign AssumeRoleWithWebIdentity (its model says auth
"none"), so that one is signed here by the signer class botocore would use.
Run with Debian's /usr/bin/python3 (python3-botocore).
"""
import base64
import calendar
import datetime
import hashlib
import json
import os
import sys
import types
from unittest import mock

SIGNER = sys.argv[1] if len(sys.argv) > 1 else "python"
if SIGNER not in ("python", "crt"):
    raise SystemExit("usage: botocore_oracle.py python|crt")
for k in list(os.environ):
    if k.startswith("AWS_") or k.startswith("BOTO"):
        del os.environ[k]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["BOTO_DISABLE_CRT"] = "true" if SIGNER == "python" else "false"

import botocore.auth  # noqa: E402
import botocore.compat  # noqa: E402
import botocore.session  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

if SIGNER == "crt" and not botocore.compat.HAS_CRT:
    json.dump({"skipped": "awscrt is not installed"}, sys.stdout)
    sys.stdout.write("\n")
    sys.exit(0)
if SIGNER == "crt":
    import botocore.crt.auth  # noqa: E402

    AUTH_MODULE = botocore.crt.auth
    SIGV4 = botocore.crt.auth.CrtSigV4Auth
else:
    AUTH_MODULE = botocore.auth
    SIGV4 = botocore.auth.SigV4Auth

FIXED = datetime.datetime(2024, 3, 1, 12, 34, 56)
KEY = "AKIAPIERORACLE000001"
SECRET = "pier/oracle+secret/KEYwJalrXUtnFEMI0123456789"
TOKEN = "FwoGZXIvYXdzEPIER//////////wEaDPierOracleToken+/=="


class FixedDatetime(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return FIXED


FAKE_DATETIME = types.SimpleNamespace(
    datetime=FixedDatetime, timedelta=datetime.timedelta, timezone=datetime.timezone
)


class Captured(Exception):
    pass


# The headers each signature starts from, copied as the signer is entered
# (the retry headers botocore adds later in "request-created" are not signed).
SNAPSHOT = {}
ORIGINAL_ADD_AUTH = SIGV4.add_auth


def add_auth_spy(self, request):
    SNAPSHOT["headers"] = [[str(k), str(v)] for k, v in request.headers.items()]
    return ORIGINAL_ADD_AUTH(self, request)


def body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    pos = body.tell()
    data = body.read()
    body.seek(pos)
    return data


def entry(name, service, region, method, url, headers, body, expect, token):
    return {
        "name": name,
        "service": service,
        "region": region,
        "s3": service == "s3",
        "method": method,
        "url": url,
        "headers": headers,
        "body_b64": base64.b64encode(body).decode("ascii"),
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "expect": expect,
        "access_key": KEY,
        "secret": SECRET,
        "token": token,
        "timestamp": calendar.timegm(FIXED.timetuple()),
    }


def capture(session, service, region, token, call, name, sign_here=False, config=None):
    client = session.create_client(
        service,
        region_name=region,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        config=config,
    )
    out = {}

    def before(request, **kwargs):
        if sign_here:
            SIGV4(Credentials(KEY, SECRET, token), service, region).add_auth(request)

    def after(request, **kwargs):
        h = request.headers
        expect = {
            "authorization": h.get("Authorization"),
            "x-amz-date": h.get("X-Amz-Date"),
            "x-amz-content-sha256": h.get("X-Amz-Content-SHA256"),
            "x-amz-security-token": h.get("X-Amz-Security-Token"),
        }
        out["req"] = entry(
            name,
            service,
            region,
            request.method,
            request.url,
            SNAPSHOT.pop("headers"),
            body_bytes(request.body),
            expect,
            token,
        )
        raise Captured()

    client.meta.events.register_first("request-created", before)
    client.meta.events.register_last("request-created", after)
    try:
        call(client)
    except Captured:
        pass
    if "req" not in out:
        raise SystemExit(f"{name}: the request was not captured")
    if not out["req"]["expect"]["authorization"]:
        raise SystemExit(f"{name}: botocore did not sign the request")
    return out["req"]


def presigned(session):
    client = session.create_client(
        "s3",
        region_name="eu-central-1",
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        aws_session_token=TOKEN,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": "pier-site", "Key": "site/a b+c.html"},
        ExpiresIn=900,
    )
    e = entry(
        "S3 presigned GetObject", "s3", "eu-central-1", "GET", url, [], b"", {}, TOKEN
    )
    e["presigned"] = True
    e["expires"] = 900
    return e


def main():
    session = botocore.session.get_session()
    path_style = {"addressing_style": "path"}
    out = []
    with mock.patch.object(AUTH_MODULE, "datetime", FAKE_DATETIME), mock.patch.object(
        SIGV4, "add_auth", add_auth_spy
    ):
        out.append(
            capture(
                session,
                "s3",
                "us-east-1",
                TOKEN,
                lambda c: c.put_object(
                    Bucket="pier-site",
                    Key="site/docs/a b+c.html",
                    Body=b"<!doctype html><title>pier</title>\n",
                    ContentType="text/html; charset=utf-8",
                    CacheControl="max-age=60",
                    Metadata={"pier-hash": "3f2a"},
                ),
                "S3 PutObject",
                config=Config(s3=dict(path_style, payload_signing_enabled=True)),
            )
        )
        out.append(
            capture(
                session,
                "s3",
                "eu-west-1",
                None,
                lambda c: c.list_objects_v2(
                    Bucket="pier-site",
                    Prefix="site/docs/",
                    Delimiter="/",
                    MaxKeys=100,
                    ContinuationToken="1/abc+def= ~x",
                ),
                "S3 ListObjectsV2",
                config=Config(s3=path_style),
            )
        )
        out.append(
            capture(
                session,
                "cloudfront",
                "us-east-1",
                None,
                lambda c: c.create_invalidation(
                    DistributionId="E2EXAMPLE0PIER",
                    InvalidationBatch={
                        "Paths": {"Quantity": 2, "Items": ["/index.html", "/docs/*"]},
                        "CallerReference": "run-42",
                    },
                ),
                "CloudFront CreateInvalidation",
            )
        )
        # Not one of the five: a path with an escaped byte, where every
        # service but S3 encodes the path a second time.
        out.append(
            capture(
                session,
                "cloudfront",
                "us-east-1",
                None,
                lambda c: c.get_invalidation(DistributionId="E2EXAMPLE0PIER", Id="I2 a+b/c"),
                "CloudFront GetInvalidation (escaped id)",
            )
        )
        out.append(
            capture(
                session,
                "sts",
                "us-east-1",
                None,
                lambda c: c.assume_role_with_web_identity(
                    RoleArn="arn:aws:iam::123456789012:role/pier-deploy",
                    RoleSessionName="pier-run-42",
                    WebIdentityToken="eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOnBpZXIifQ.c2ln",
                    DurationSeconds=3600,
                ),
                "STS AssumeRoleWithWebIdentity",
                sign_here=True,
            )
        )
        out.append(
            capture(
                session,
                "codepipeline",
                "eu-west-1",
                TOKEN,
                lambda c: c.put_job_success_result(
                    jobId="11111111-abcd-1111-abcd-111111abcdef",
                    executionDetails={"summary": "deployed 12 files", "percentComplete": 100},
                ),
                "CodePipeline PutJobSuccessResult",
            )
        )
        out.append(presigned(session))
    json.dump({"signer": SIGNER, "requests": out}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
