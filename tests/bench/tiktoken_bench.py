"""One-thread throughput of Python's tiktoken on files, in bpe_bench's
output format, for scripts/bench_tokens_device.sh:
    python3 tests/bench/tiktoken_bench.py REPEATS ENCODING[,ENCODING] FILE...
prints: FILE ENCODING BYTES TOKENS MB/S IDS_SHA256 (best of REPEATS)."""
import array
import hashlib
import sys
import time

import tiktoken

reps, encs, files = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3:]
for path in files:
    data = open(path, "rb").read()
    text = data.decode("utf-8")
    for name in encs:
        enc = tiktoken.get_encoding(name)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            ids = enc.encode_ordinary(text)
            best = min(best, time.perf_counter() - t0)
        le = array.array("I", ids)
        if sys.byteorder != "little":
            le.byteswap()
        sha = hashlib.sha256(le.tobytes()).hexdigest()
        print(path, name, len(data), len(ids), "%.2f" % (len(data) / best / 1e6), sha, flush=True)
