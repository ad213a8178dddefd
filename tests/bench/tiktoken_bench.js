// One-thread throughput of the npm tiktoken package (the official WASM
// build) on files, in bpe_bench's output format, for scripts/bench_tokens:
//   node tests/bench/tiktoken_bench.js REPEATS ENCODING[,ENCODING] FILE...
// prints: FILE ENCODING BYTES TOKENS MB/S IDS_SHA256 (best of REPEATS).
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const { get_encoding } = require("tiktoken");

const [reps, encs, ...files] = process.argv.slice(2);
const utf8 = new TextDecoder("utf-8", { fatal: true });
for (const file of files) {
  const bytes = fs.readFileSync(file);
  const text = utf8.decode(bytes);
  for (const name of encs.split(",")) {
    const enc = get_encoding(name);
    let best = Infinity, ids;
    for (let r = 0; r < Number(reps); r++) {
      const t0 = process.hrtime.bigint();
      ids = enc.encode_ordinary(text);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
    const le = Buffer.alloc(ids.length * 4);
    ids.forEach((id, i) => le.writeUInt32LE(id, i * 4));
    const sha = crypto.createHash("sha256").update(le).digest("hex");
    console.log([file, name, bytes.length, ids.length, (bytes.length / best / 1e6).toFixed(2), sha].join(" "));
    enc.free();
  }
}
