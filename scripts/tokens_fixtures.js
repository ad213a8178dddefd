// Regenerates tests/tokens/fixtures.tsv: the token ids that the official
// WASM build of OpenAI's tiktoken (npm "tiktoken") gives for every input of
// the exactness corpus, as a count and a sha256 of the ids (little-endian
// uint32), so CI checks llmrun's tokenizer against it without Node
// (tests/c/test_bpe_corpus.c). Dev-time only:
//
//   npm install --prefix /tmp/tok-npm tiktoken@1.0.22
//   NODE_PATH=/tmp/tok-npm/node_modules node scripts/tokens_fixtures.js
//
// Inputs: tests/tokens/corpus/*.txt (scripts/tokens_corpus.sh), the
// adversarial runs of tests/tokens/adversarial.spec, and a sweep of code
// points in contexts that show how each is classified; the last two are
// generated here and in the C test by the same rules.
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const { get_encoding } = require("tiktoken");

const root = path.resolve(__dirname, "..");
const dir = path.join(root, "tests/tokens");
const encodings = ["cl100k_base", "o200k_base", "p50k_base", "r50k_base"];

// "COUNT HEX" lines, '#' comments: the bytes repeated COUNT times.
function adversarial() {
  const parts = [];
  for (const line of fs.readFileSync(path.join(dir, "adversarial.spec"), "utf8").split("\n")) {
    const m = line.match(/^(\d+) ([0-9a-f]+)\s*$/);
    if (m) parts.push(Buffer.from(m[2], "hex").toString("latin1").repeat(Number(m[1])));
  }
  return Buffer.from(parts.join(""), "latin1");
}

// Every scalar value in these ranges, each in one line of contexts:
// "a" c "'s" c "A" c "1 " c "!" c c "\n".
const sweepRanges = [[0x0, 0xd7ff], [0xe000, 0x3ffff], [0xe0000, 0xe0fff]];
function sweep() {
  const parts = [];
  for (const [lo, hi] of sweepRanges) {
    for (let cp = lo; cp <= hi; cp++) {
      const c = String.fromCodePoint(cp);
      parts.push("a" + c + "'s" + c + "A" + c + "1 " + c + "!" + c + c + "\n");
    }
  }
  return Buffer.from(parts.join(""), "utf8");
}

const inputs = [];
for (const f of fs.readdirSync(path.join(dir, "corpus")).sort()) {
  if (f.endsWith(".txt")) inputs.push([f, fs.readFileSync(path.join(dir, "corpus", f))]);
}
inputs.push(["@adversarial", adversarial()]);
inputs.push(["@sweep", sweep()]);

const sha256 = (buf) => crypto.createHash("sha256").update(buf).digest("hex");
const utf8 = new TextDecoder("utf-8", { fatal: true });
// package.json is not in the package's exports: find it beside the entry.
const pkg = path.join(path.dirname(require.resolve("tiktoken")), "package.json");
const version = JSON.parse(fs.readFileSync(pkg, "utf8")).version;
const lines = ["# name\tinput_sha256\tinput_bytes\tencoding\ttokens\tids_sha256 (uint32 LE); "
  + "made by scripts/tokens_fixtures.js with npm tiktoken " + version];
for (const name of encodings) {
  const enc = get_encoding(name);
  for (const [file, bytes] of inputs) {
    const text = utf8.decode(bytes); // throws on invalid UTF-8: the oracle reads text
    const ids = enc.encode_ordinary(text);
    const le = Buffer.alloc(ids.length * 4);
    ids.forEach((id, i) => le.writeUInt32LE(id, i * 4));
    lines.push([file, sha256(bytes), bytes.length, name, ids.length, sha256(le)].join("\t"));
  }
  enc.free();
}
fs.writeFileSync(path.join(dir, "fixtures.tsv"), lines.join("\n") + "\n");
console.log(`${path.join(dir, "fixtures.tsv")}: ${lines.length - 1} rows`);
