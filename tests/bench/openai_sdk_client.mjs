// The official openai npm SDK doing the same calls as tests/bench/calls_client.lua:
// N non-streaming chat calls at a given concurrency against BASE_URL.
//   node openai_sdk_client.mjs BASE_URL N CONCURRENCY
import OpenAI from "openai";

const [base, nArg, concArg] = process.argv.slice(2);
const n = Number(nArg), conc = Number(concArg);
const client = new OpenAI({ baseURL: base, apiKey: "sk-bench", maxRetries: 0 });

// the same request as tests/bench/wrk_chat.lua
async function call() {
  return client.chat.completions.create({
    model: "gpt-4o-mini", max_tokens: 16,
    messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Name three primes." }],
  });
}

for (let i = 0; i < 4; i++) await call(i); // warm up
let next = 0, errors = 0;
const cpu0 = process.cpuUsage(), t0 = performance.now();
async function worker() {
  while (next < n) {
    const i = next++;
    try { await call(i); } catch { errors++; }
  }
}
await Promise.all(Array.from({ length: conc }, worker));
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(JSON.stringify({
  calls: n, concurrency: conc, errors, wall_s: wall, calls_per_s: n / wall,
  cpu_us_per_call: (cpu.user + cpu.system) / n,
  peak_rss_mb: process.resourceUsage().maxRSS / 1024,
}));
