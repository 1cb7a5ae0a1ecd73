// The embedded S3 endpoint (s3rver) in a process of its own, started by startS3 (index.ts) with
// Node's --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 only has in its legacy provider; without it any listing of more than 1,000
// keys answers 500. Exits when its parent goes away (the IPC channel closes), so a killed test
// run leaves no s3rver behind.
'use strict';
const S3rver = require('s3rver');

const [directory, bucket, port] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: '127.0.0.1', directory, silent: true, configureBuckets: [{ name: bucket }] });
const stop = () => server.close().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('disconnect', stop);
server.run().then(
  () => process.send('ready'),
  (e) => {
    process.stderr.write(`s3rver: ${e.message}\n`);
    process.exit(1);
  },
);
