#!/usr/bin/env bash
# Builds the tokenizer's exactness corpus, tests/tokens/corpus/*.txt, from
# text that Debian 12 ships (licenses, headers, Python and Lua sources, man
# pages in many languages, gettext catalogs, Unicode data, emoji sequences).
# Dev-time only: the files are committed, and their expected token ids come
# from the npm tiktoken package via scripts/tokens_fixtures.js. Every file
# is valid UTF-8 (the oracle reads text) and at most ~300 KB.
#   scripts/tokens_corpus.sh     (needs: gettext, man-db, unicode-data, python3.11)
# No pipefail: `head` ends its producers early on purpose.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/tests/tokens/corpus"
mkdir -p "$out"
export LC_ALL=C.UTF-8

# Keeps at most $1 bytes of stdin, cut back to a whole UTF-8 character,
# with invalid sequences dropped.
clip() { head -c "$1" | { iconv -f UTF-8 -t UTF-8 -c || true; }; }

# English prose: licenses and package documentation.
cat /usr/share/common-licenses/GPL-3 /usr/share/common-licenses/Apache-2.0 \
    /usr/share/common-licenses/MPL-2.0 /usr/share/doc/bash/README.abs-guide \
  | clip 300000 >"$out/en_prose.txt"

# C: system and Lua headers.
cat /usr/include/stdio.h /usr/include/string.h /usr/include/stdlib.h \
    /usr/include/lua5.4/lua.h /usr/include/lua5.4/lauxlib.h /usr/include/x86_64-linux-gnu/curl/curl.h \
  | clip 250000 >"$out/c_source.txt"

# Python: a few standard-library modules.
cat /usr/lib/python3.11/textwrap.py /usr/lib/python3.11/json/decoder.py \
    /usr/lib/python3.11/argparse.py /usr/lib/python3.11/string.py \
  | clip 200000 >"$out/python_source.txt"

# Lua: llmrun's own library (any Lua text would do).
cat "$root"/lualib/llm/*.lua | clip 120000 >"$out/lua_source.txt"

# Man pages as roff source, English and translated.
for p in bash ls grep tar; do
  f=$(ls /usr/share/man/man1/$p.1.gz 2>/dev/null || true)
  [[ -n "$f" ]] && zcat "$f"
done | clip 250000 >"$out/man_en.txt"
for lang in de fr ja ko ru zh_CN uk pl tr; do
  for f in /usr/share/man/$lang/man1/*.1.gz; do
    [[ -e "$f" ]] && zcat "$f" | head -c 12000
  done | clip 30000
done >"$out/man_i18n.txt"

# Many languages and scripts: country names in every catalog's language,
# then GLib's messages in ~30 languages (format strings, quotes, ellipses).
for mo in /usr/share/locale/*/LC_MESSAGES/iso_3166-1.mo; do
  msgunfmt "$mo" 2>/dev/null | grep '^msgstr' | head -60
done | clip 300000 >"$out/languages.txt"
for lang in ar he hi th ka hy am ta bn el ja ko zh_CN zh_TW ru uk vi fa ur ml te kn gu pa si km lo my; do
  mo=/usr/share/locale/$lang/LC_MESSAGES/glib20.mo
  [[ -e "$mo" ]] && msgunfmt "$mo" 2>/dev/null | head -c 9000
done | clip 300000 >"$out/messages_i18n.txt"

# Rare scripts: 300 characters of every script in Scripts.txt, in words.
python3 - /usr/share/unicode/Scripts.txt >"$out/scripts.txt" <<'EOF'
import sys, collections
by = collections.OrderedDict()
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#")[0].strip()
    if not line:
        continue
    rng, script = [x.strip() for x in line.split(";")]
    a, _, b = rng.partition("..")
    for cp in range(int(a, 16), int(b or a, 16) + 1):
        if len(by.setdefault(script, [])) < 300:
            by[script].append(cp)
out = []
for script, cps in by.items():
    words = [cps[i:i + 5] for i in range(0, len(cps), 5)]
    out.append(script + ": " + " ".join("".join(chr(c) for c in w) for w in words))
sys.stdout.write("\n".join(out) + "\n")
EOF

# Emoji: every sequence with its test line (ZWJ, skin tones, flags, keycaps).
grep -v '^#' /usr/share/unicode/emoji/emoji-test.txt | grep . | clip 300000 >"$out/emoji.txt"
cat /usr/share/unicode/emoji/emoji-zwj-sequences.txt | clip 150000 >"$out/emoji_zwj.txt"

wc -c "$out"/*.txt
