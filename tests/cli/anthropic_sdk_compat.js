// Runs the official `@anthropic-ai/sdk` npm package (a client we did not
// write) against `llmrun serve --sim`. Driven by
// test_anthropic_sdk_compat.sh:
//   node anthropic_sdk_compat.js BASE_URL SDK_DIR
// Exits 0 when every check passed.
'use strict';
const path = require('path');
const [baseURL, sdkDir] = process.argv.slice(2);
const sdk = require(path.join(sdkDir, 'node_modules', '@anthropic-ai', 'sdk'));
const Anthropic = sdk.default || sdk.Anthropic || sdk;

let failed = 0;
function check(name, cond, detail) {
  if (cond) console.log('ok   ' + name);
  else {
    failed++;
    console.log('FAIL ' + name + (detail !== undefined ? ': ' + JSON.stringify(detail) : ''));
  }
}

async function stats() {
  const r = await fetch(baseURL + '/sim/stats');
  return r.json();
}

const WEATHER = {
  name: 'get_weather',
  description: 'Get the current weather for a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

async function main() {
  // the SDK appends /v1/messages to its base URL
  const client = new Anthropic({ apiKey: 'sk-ant-sim-not-a-real-key', baseURL, maxRetries: 2 });
  const model = 'claude-sonnet-4-5';
  const messages = [{ role: 'user', content: 'What is 12 + 30?' }];

  // messages.create, not streamed
  const msg = await client.messages.create({ model, max_tokens: 256, messages, system: 'Be brief.' });
  check('create: a message', msg.type === 'message' && msg.role === 'assistant' && msg.id.startsWith('msg_'), msg);
  check('create: the answer', msg.content[0].type === 'text' && msg.content[0].text === '42', msg.content);
  check('create: stop_reason', msg.stop_reason === 'end_turn');
  check('create: usage', msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0 &&
        msg.usage.cache_read_input_tokens === 0, msg.usage);
  check('create: the request id reached the SDK', typeof msg._request_id === 'string' &&
        msg._request_id.startsWith('req_'), msg._request_id);

  // streamed, through the SDK's helper: text events and the final message
  const story = [{ role: 'user', content: 'Describe a lighthouse.' }];
  const plain = await client.messages.create({ model, max_tokens: 400, messages: story });
  let text = '';
  const stream = client.messages.stream({ model, max_tokens: 400, messages: story });
  stream.on('text', (t) => { text += t; });
  const final = await stream.finalMessage();
  check('stream: the same text as the plain call', text === plain.content[0].text, { text, plain: plain.content[0].text });
  check('stream: final message', final.content[0].text === text && final.stop_reason === 'end_turn');
  check('stream: cumulative usage', final.usage.output_tokens === plain.usage.output_tokens &&
        final.usage.input_tokens === plain.usage.input_tokens, final.usage);

  // the raw events
  const raw = await client.messages.create({ model, max_tokens: 400, messages: story, stream: true });
  const kinds = [];
  for await (const ev of raw) kinds.push(ev.type);
  check('raw stream: event order', kinds[0] === 'message_start' && kinds[1] === 'content_block_start' &&
        kinds.includes('content_block_delta') && kinds[kinds.length - 2] === 'message_delta' &&
        kinds[kinds.length - 1] === 'message_stop', kinds.slice(0, 3).concat(kinds.slice(-3)));

  // tools: a call, then the answer from its result
  const ask = [{ role: 'user', content: "What's the weather in Paris?" }];
  const call = await client.messages.create({ model, max_tokens: 400, messages: ask, tools: [WEATHER] });
  const use = call.content.find((b) => b.type === 'tool_use');
  check('tools: stop_reason tool_use', call.stop_reason === 'tool_use');
  check('tools: a tool_use block', use && use.name === 'get_weather' && use.input.location === 'Paris' &&
        use.id.startsWith('toolu_'), call.content);
  const streamed = await client.messages.stream({ model, max_tokens: 400, messages: ask, tools: [WEATHER] }).finalMessage();
  const suse = streamed.content.find((b) => b.type === 'tool_use');
  check('tools: streamed input_json_delta parsed by the SDK', suse && suse.input.location === 'Paris', streamed.content);
  const answer = await client.messages.create({
    model, max_tokens: 400, tools: [WEATHER],
    messages: [...ask, { role: 'assistant', content: call.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '{"temperature": 18}' }] }],
  });
  check('tools: the answer uses the result', answer.stop_reason === 'end_turn' &&
        answer.content[0].text === 'According to get_weather, temperature is 18.', answer.content);

  // extended thinking
  const thought = await client.messages.create({
    model, max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 },
    messages: [{ role: 'user', content: 'Plan a small garden.' }],
  });
  check('thinking: a thinking block with a signature', thought.content[0].type === 'thinking' &&
        thought.content[0].thinking.length > 0 && thought.content[0].signature.length > 20, thought.content[0]);
  const tstream = await client.messages.stream({
    model, max_tokens: 4000, thinking: { type: 'enabled', budget_tokens: 2000 },
    messages: [{ role: 'user', content: 'Plan a small garden.' }],
  }).finalMessage();
  check('thinking: streamed thinking and signature deltas', tstream.content[0].type === 'thinking' &&
        tstream.content[0].thinking.length > 0 && tstream.content[0].signature.length > 20 &&
        tstream.content[1].type === 'text', tstream.content);

  // 529 and 429 that the SDK retries: the first attempt fails, the retry succeeds
  for (const fault of ['529', '429']) {
    const before = await stats();
    const t0 = Date.now();
    const ok = await client.messages.create({ model, max_tokens: 50, messages }, {
      headers: { 'x-sim-fault': fault, 'x-sim-fault-attempts': '1', 'x-sim-retry-after-ms': '200' },
    });
    const waited = Date.now() - t0;
    const after = await stats();
    check(fault + ': retried to success', ok.content[0].text === '42');
    check(fault + ': one fault injected, two requests made',
          (after.faults[fault] || 0) - (before.faults[fault] || 0) === 1 &&
          after.requests - before.requests === 3 /* + this stats request */, { before: before.requests, after: after.requests });
    check(fault + ': the SDK waited retry-after-ms (' + waited + ' ms)', waited >= 200);
  }

  // without retries the SDK raises its typed errors with the body's type
  try {
    await client.messages.create({ model, max_tokens: 50, messages }, { headers: { 'x-sim-fault': '529' }, maxRetries: 0 });
    check('529: raises without retries', false);
  } catch (e) {
    check('529: an APIError with status 529', e instanceof Anthropic.APIError && e.status === 529, String(e));
    check('529: overloaded_error in the body', e.error && e.error.error && e.error.error.type === 'overloaded_error', e.error);
  }
  try {
    await client.messages.create({ model, max_tokens: 50, messages }, { headers: { 'x-sim-fault': '429' }, maxRetries: 0 });
    check('429: raises without retries', false);
  } catch (e) {
    check('429: RateLimitError', e instanceof Anthropic.RateLimitError && e.status === 429, String(e));
  }
  try {
    await client.messages.create({ model, messages });
    check('400: max_tokens is required', false);
  } catch (e) {
    check('400: BadRequestError with the API\'s message', e instanceof Anthropic.BadRequestError &&
          /max_tokens: Field required/.test(e.message), e.message);
  }

  // an error event mid-stream raises in the iterator
  try {
    const s = await client.messages.create({ model, max_tokens: 400, messages: story, stream: true },
      { headers: { 'x-sim-fault': 'error_chunk', 'x-sim-fault-after': '2' } });
    for await (const _ of s) { /* consume */ }
    check('error event: raises mid-stream', false);
  } catch (e) {
    check('error event: raises mid-stream', /Overloaded|overloaded_error/.test(String(e.message || e)), String(e));
  }

  // Message Batches: create, retrieve (polled until ended), list, results
  // (the SDK fetches results_url as given and decodes the JSONL), delete
  const sync = await client.messages.create({ model, max_tokens: 64, messages });
  const before = (await stats()).batch.message_batches_created;
  const created = await client.messages.batches.create({ requests: [
    { custom_id: 'sum', params: { model, max_tokens: 64, messages } },
    { custom_id: 'too-long', params: { model, max_tokens: 10000000, messages } },
  ] }, { headers: { 'x-sim-batch-turnaround-s': '0.2' } });
  check('batch: created', created.type === 'message_batch' && /^msgbatch_01/.test(created.id) &&
        created.processing_status === 'in_progress' && created.results_url === null &&
        created.request_counts.processing === 2, created);
  let batch = created;
  for (let i = 0; i < 100 && batch.processing_status !== 'ended'; i++) {
    await new Promise((res) => setTimeout(res, 50));
    batch = await client.messages.batches.retrieve(created.id);
  }
  check('batch: ended', batch.processing_status === 'ended' && typeof batch.ended_at === 'string' &&
        !isNaN(Date.parse(batch.ended_at)) && batch.request_counts.succeeded === 1 &&
        batch.request_counts.errored === 1, batch);
  const page = await client.messages.batches.list({ limit: 1 });
  check('batch: list', page.data.length === 1 && page.data[0].id === created.id, page.data);
  const got = {};
  for await (const line of await client.messages.batches.results(created.id)) got[line.custom_id] = line.result;
  check('batch: a succeeded result with the Messages API answer', got.sum && got.sum.type === 'succeeded' &&
        got.sum.message.content[0].text === '42' && got.sum.message.usage.input_tokens === sync.usage.input_tokens &&
        got.sum.message.usage.output_tokens === sync.usage.output_tokens, got.sum);
  check('batch: an errored result with the API error', got['too-long'] && got['too-long'].type === 'errored' &&
        got['too-long'].error.error.type === 'invalid_request_error' &&
        /max_tokens/.test(got['too-long'].error.error.message), got['too-long']);
  check('batch: one create', (await stats()).batch.message_batches_created === before + 1);
  const deleted = await client.messages.batches.delete(created.id);
  check('batch: deleted', deleted.type === 'message_batch_deleted' && deleted.id === created.id, deleted);

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
