// Runs the official `openai` npm package (a client we did not write)
// against `llmrun serve --sim`. Driven by test_openai_sdk_compat.sh:
//   node openai_sdk_compat.js BASE_URL SDK_DIR
// Exits 0 when every check passed.
'use strict';
const path = require('path');
const [baseURL, sdkDir] = process.argv.slice(2);
const OpenAI = require(path.join(sdkDir, 'node_modules', 'openai'));

let failed = 0;
function check(name, cond, detail) {
  if (cond) console.log('ok   ' + name);
  else {
    failed++;
    console.log('FAIL ' + name + (detail !== undefined ? ': ' + JSON.stringify(detail) : ''));
  }
}

async function stats() {
  const r = await fetch(baseURL.replace(/\/v1$/, '') + '/sim/stats');
  return r.json();
}

async function main() {
  const client = new OpenAI({ apiKey: 'sk-sim-not-a-real-key', baseURL, maxRetries: 2 });
  const messages = [{ role: 'system', content: 'Be brief.' },
                    { role: 'user', content: 'What is 12 + 30?' }];

  // chat, not streamed
  const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, seed: 1 });
  const text = chat.choices[0].message.content;
  check('chat: an answer', typeof text === 'string' && text.length > 0, chat);
  check('chat: a chat.completion id', chat.object === 'chat.completion' && chat.id.startsWith('chatcmpl-'));
  check('chat: usage adds up', chat.usage.total_tokens ===
        chat.usage.prompt_tokens + chat.usage.completion_tokens && chat.usage.completion_tokens > 0,
        chat.usage);
  check('chat: finish_reason', chat.choices[0].finish_reason === 'stop');

  // streamed, with include_usage
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, seed: 1, stream: true, stream_options: { include_usage: true },
  });
  let streamed = '', chunks = 0, nullUsage = 0, last = null, finish = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage === null) nullUsage++;
    const c = chunk.choices[0];
    if (c) {
      streamed += c.delta.content || '';
      if (c.finish_reason) finish = c.finish_reason;
    }
    last = chunk;
  }
  check('stream: the same text as the plain call', streamed === text, { streamed, text });
  check('stream: finish_reason', finish === 'stop');
  check('stream: usage chunk last, with choices []', last && last.choices.length === 0 &&
        last.usage && last.usage.completion_tokens === chat.usage.completion_tokens, last);
  check('stream: usage null on the other chunks', nullUsage === chunks - 1, { nullUsage, chunks });

  // embeddings: the SDK asks for base64 and decodes it
  const emb = await client.embeddings.create({
    model: 'text-embedding-3-small', input: ['a cat sat on the mat', 'a cat sat on a mat'],
  });
  const v0 = emb.data[0].embedding, v1 = emb.data[1].embedding;
  const norm = Math.sqrt(v0.reduce((s, x) => s + x * x, 0));
  check('embeddings: two vectors', emb.data.length === 2 && emb.data[1].index === 1);
  check('embeddings: decoded floats, unit length', Array.isArray(v0) && v0.length >= 256 &&
        Math.abs(norm - 1) < 1e-3, { len: v0.length, norm });
  check('embeddings: usage', emb.usage.prompt_tokens > 0);
  const floats = await client.embeddings.create({
    model: 'text-embedding-3-small', input: 'a cat sat on the mat', encoding_format: 'float',
  });
  check('embeddings: float and base64 agree', floats.data[0].embedding.every((x, i) => Math.abs(x - v0[i]) < 1e-6));
  const small = await client.embeddings.create({
    model: 'text-embedding-3-small', input: 'hello', dimensions: 64,
  });
  check('embeddings: dimensions', small.data[0].embedding.length === 64);
  check('embeddings: similar texts are close', v0.reduce((s, x, i) => s + x * v1[i], 0) > 0.5);

  // a 429 that the SDK retries: the first attempt fails, the retry succeeds
  const before = await stats();
  const t0 = Date.now();
  const retried = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }, {
    headers: { 'x-sim-fault': '429', 'x-sim-fault-attempts': '1', 'x-sim-retry-after-ms': '200' },
  });
  const waited = Date.now() - t0;
  const after = await stats();
  check('429: retried to success', retried.choices[0].message.content.length > 0);
  check('429: one fault injected, two requests made',
        (after.faults['429'] || 0) - (before.faults['429'] || 0) === 1 &&
        after.requests - before.requests === 3 /* + this stats request */, { before, after });
  check('429: the SDK waited retry-after-ms (' + waited + ' ms)', waited >= 200);

  // without retries the SDK raises its typed error
  try {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages },
                                         { headers: { 'x-sim-fault': '429' }, maxRetries: 0 });
    check('429: RateLimitError without retries', false);
  } catch (e) {
    check('429: RateLimitError without retries', e instanceof OpenAI.RateLimitError && e.status === 429,
          String(e));
    check('429: the error body reached the SDK', /rate_limit_exceeded/.test(e.code || '') ||
          /Rate limit/.test(e.message), e.message);
  }

  // tools: a call with its id and arguments, streamed as fragments
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } }];
  const ask = [{ role: 'user', content: "What's the weather in Paris?" }];
  const called = await client.chat.completions.create({ model: 'gpt-4o', messages: ask, tools });
  const tc = called.choices[0].message.tool_calls && called.choices[0].message.tool_calls[0];
  check('tools: a tool call', called.choices[0].finish_reason === 'tool_calls' && tc &&
        tc.function.name === 'get_weather' && JSON.parse(tc.function.arguments).location === 'Paris', called.choices[0]);
  let args = '';
  for await (const chunk of await client.chat.completions.create({ model: 'gpt-4o', messages: ask, tools, stream: true })) {
    const d = chunk.choices[0] && chunk.choices[0].delta;
    if (d && d.tool_calls) args += d.tool_calls[0].function.arguments || '';
  }
  check('tools: streamed argument fragments', args === tc.function.arguments, { args });
  const answered = await client.chat.completions.create({ model: 'gpt-4o', tools, messages: [...ask,
    called.choices[0].message, { role: 'tool', tool_call_id: tc.id, content: '{"temperature": 18}' }] });
  check('tools: the answer uses the result',
        answered.choices[0].message.content === 'According to get_weather, temperature is 18.', answered.choices[0]);

  // a reasoning model: reasoning tokens in the usage, and what it refuses
  const reasoned = await client.chat.completions.create({ model: 'o3', messages, reasoning_effort: 'low' });
  check('reasoning: reasoning tokens', reasoned.usage.completion_tokens_details.reasoning_tokens > 0 &&
        reasoned.usage.completion_tokens > reasoned.usage.completion_tokens_details.reasoning_tokens, reasoned.usage);
  try {
    await client.chat.completions.create({ model: 'o3', messages, max_tokens: 100 });
    check('reasoning: max_tokens refused', false);
  } catch (e) {
    check('reasoning: max_tokens refused', e instanceof OpenAI.BadRequestError && e.code === 'unsupported_parameter' &&
          e.param === 'max_tokens' && /Use 'max_completion_tokens' instead/.test(e.message), e.message);
  }

  // an error event mid-stream raises in the iterator
  try {
    const s = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages, stream: true },
      { headers: { 'x-sim-fault': 'error_chunk', 'x-sim-fault-after': '1' } });
    for await (const _ of s) { /* consume */ }
    check('error_chunk: raises mid-stream', false);
  } catch (e) {
    check('error_chunk: raises mid-stream', /server had an error/.test(e.message), e.message);
  }

  if (failed) {
    console.log(failed + ' failed');
    process.exit(1);
  }
  console.log('all passed');
}

main().catch((e) => {
  console.log('FAIL unexpected error: ' + (e && e.stack || e));
  process.exit(1);
});
