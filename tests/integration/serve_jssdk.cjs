// The AWS SDK for JavaScript v3 against `pier serve`, with credentials from
// its default chain (the container provider: AWS_CONTAINER_CREDENTIALS_FULL_URI
// and AWS_CONTAINER_AUTHORIZATION_TOKEN point at the stack's endpoint).
// Run by test_serve_jssdk.sh (not a test by itself). Needs NODE_PATH to
// reach tests/node/node_modules. Env: PIER_S3_ENDPOINT, PIER_BUCKET,
// PIER_OTHER_BUCKET.
"use strict";
const crypto = require("crypto");
const { Readable } = require("stream");
const {
  S3Client,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  DeleteObjectCommand,
} = require("@aws-sdk/client-s3");
const { Upload } = require("@aws-sdk/lib-storage");

let passed = 0;
let failed = 0;
function check(what, cond) {
  if (cond) {
    passed++;
    console.log("ok - " + what);
  } else {
    failed++;
    console.error("FAIL - " + what);
  }
}

async function errorName(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e.name || e.Code || String(e);
  }
}

async function main() {
  const endpoint = process.env.PIER_S3_ENDPOINT;
  const bucket = process.env.PIER_BUCKET;
  const other = process.env.PIER_OTHER_BUCKET;
  const s3 = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, maxAttempts: 1 });

  // record how bodies were framed (aws-chunked with a trailing checksum?)
  const seen = [];
  s3.middlewareStack.add(
    (next) => async (args) => {
      const h = args.request.headers || {};
      seen.push({ encoding: h["content-encoding"] || "", trailer: h["x-amz-trailer"] || "", checksum: Object.keys(h).find((k) => k.startsWith("x-amz-checksum-")) || "" });
      return next(args);
    },
    { step: "finalizeRequest", name: "pierRecorder" },
  );

  const creds = await s3.config.credentials();
  check(
    "default chain found the container credentials (" + creds.accessKeyId.slice(0, 4) + "...)",
    creds.accessKeyId.startsWith("ASIA") && !!creds.sessionToken && !!creds.expiration,
  );

  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "js/hello.txt", Body: "hello from js", ContentType: "text/plain" }));
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/hello.txt" }));
  check("put then get", (await got.Body.transformToString()) === "hello from js");
  check("content type kept", got.ContentType === "text/plain");

  // a stream body of known length: the SDK sends it aws-chunked with a
  // trailing checksum
  seen.length = 0;
  const streamed = crypto.randomBytes(300000);
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: "js/stream.bin", Body: Readable.from([streamed]), ContentLength: streamed.length }));
  check("stream put used aws-chunked with a trailer (" + JSON.stringify(seen[0]) + ")", seen.length === 1 && seen[0].encoding.includes("aws-chunked") && seen[0].trailer.startsWith("x-amz-checksum-"));
  const sback = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/stream.bin" }));
  check("stream put round trip", Buffer.from(await sback.Body.transformToByteArray()).equals(streamed));
  seen.length = 0;

  const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "js/" }));
  check("list sees it", (list.Contents || []).some((o) => o.Key === "js/hello.txt"));

  // 50 MiB through lib-storage: multipart, with the SDK's default checksums
  // (aws-chunked bodies with a trailing CRC32 on recent versions)
  const size = 50 * 1024 * 1024;
  const data = crypto.randomBytes(size);
  const want = crypto.createHash("sha256").update(data).digest("hex");
  const upload = new Upload({
    client: s3,
    params: { Bucket: bucket, Key: "js/big.bin", Body: data },
    partSize: 8 * 1024 * 1024,
    queueSize: 4,
  });
  const done = await upload.done();
  check("lib-storage 50 MiB upload completes", !!done.ETag);
  const parts = seen.filter((x) => x.checksum || x.trailer);
  check("parts carried checksums (" + JSON.stringify(seen.slice(0, 2)) + ")", parts.length >= 7);
  check("it is a multipart object (" + done.ETag + ")", /-7"?$/.test(done.ETag));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: "js/big.bin" }));
  check("its size is 50 MiB", head.ContentLength === size);
  const back = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/big.bin" }));
  const hash = crypto.createHash("sha256");
  for await (const chunk of back.Body) hash.update(chunk);
  check("downloaded bytes match", hash.digest("hex") === want);

  const ranged = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "js/big.bin", Range: "bytes=1000-1009" }));
  const piece = Buffer.from(await ranged.Body.transformToByteArray());
  check("range get", piece.equals(data.subarray(1000, 1010)));

  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: "js/hello.txt" }));
  const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "js/hello" }));
  check("delete", (after.KeyCount || 0) === 0);

  const denied = await errorName(s3.send(new PutObjectCommand({ Bucket: other, Key: "x", Body: "no" })));
  check("out-of-scope bucket refused (" + denied + ")", denied === "AccessDenied");
}

main()
  .catch((e) => {
    failed++;
    console.error("FAIL - " + (e.stack || e));
  })
  .finally(() => {
    console.log(passed + " passed, " + failed + " failed");
    process.exit(failed ? 1 : 0);
  });
