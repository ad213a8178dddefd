// Runs the official `openai` and `@anthropic-ai/sdk` npm packages (clients
// we did not write), unchanged, against `llmrun serve --proxy` in front of
// the simulator. Driven by test_proxy_sdk_compat.sh:
//   node proxy_sdk_compat.js GATEWAY_BASE_URL OPENAI_SDK_DIR ANTHROPIC_SDK_DIR
// Exits 0 when every check passed.
'use strict';
const path = require('path');
const [baseURL, openaiDir, anthropicDir] = process.argv.slice(2);
const OpenAI = require(path.join(openaiDir, 'node_modules', 'openai'));
const AnthropicMod = require(path.join(anthropicDir, 'node_modules', '@anthropic-ai', 'sdk'));
const Anthropic = AnthropicMod.default || AnthropicMod.Anthropic || AnthropicMod;

let failed = 0;
function check(name, cond, detail) {
  if (cond) console.log('ok   ' + name);
  else {
    failed++;
    console.log('FAIL ' + name + (detail !== undefined ? ': ' + JSON.stringify(detail) : ''));
  }
}

const tools = [{
  type: 'function',
  function: { name: 'get_weather', description: 'The weather in a city',
              parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
}];

async function openaiChecks() {
  const client = new OpenAI({ apiKey: 'sk-client-key', baseURL, maxRetries: 0,
                              defaultHeaders: { 'x-llmrun-tag': 'sdk-openai' } });
  const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 12 + 30?' }];
  const chat = await client.chat.completions.create({ model: 'gpt-4o-mini', messages, seed: 1 });
  const text = chat.choices[0].message.content;
  check('openai chat: an answer', typeof text === 'string' && text.length > 0, chat);
  check('openai chat: usage', chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens);

  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini', messages, seed: 1, stream: true, stream_options: { include_usage: true } });
  let streamed = '', last = null;
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (c) streamed += c.delta.content || '';
    last = chunk;
  }
  check('openai stream: the same text as the plain call', streamed === text, { streamed, text });
  check('openai stream: usage chunk last, choices []', last && last.choices.length === 0 && last.usage &&
        last.usage.completion_tokens === chat.usage.completion_tokens, last);

  // the SDK's stream helper accumulates chunks into a completion
  const runner = client.chat.completions.stream({ model: 'gpt-4o-mini', messages, seed: 1 });
  const final = await runner.finalChatCompletion();
  check('openai stream helper: final completion', final.choices[0].message.content === text, final.choices[0]);

  // tools: the request with tools and a tool round trip go through
  const withTools = await client.chat.completions.create({
    model: 'gpt-4o-mini', tools, tool_choice: 'auto',
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 21 C' },
    ] });
  check('openai tools: an answer', withTools.choices[0].message.role === 'assistant', withTools.choices[0]);

  const emb = await client.embeddings.create({ model: 'text-embedding-3-small',
                                               input: ['a cat sat on the mat', 'a cat sat on a mat'] });
  const v0 = emb.data[0].embedding;
  const norm = Math.sqrt(v0.reduce((s, x) => s + x * x, 0));
  check('openai embeddings (base64, decoded by the SDK): unit vectors', emb.data.length === 2 &&
        Math.abs(norm - 1) < 1e-3, { len: v0.length, norm });
  const floats = await client.embeddings.create({ model: 'text-embedding-3-small',
                                                  input: 'a cat sat on the mat', encoding_format: 'float' });
  check('openai embeddings: float and base64 agree',
        floats.data[0].embedding.every((x, i) => Math.abs(x - v0[i]) < 1e-6));

  const models = await client.models.list();
  check('openai models: a list', models.data.length > 0);

  try {
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: 'not a list' });
    check('openai: a bad request raises', false);
  } catch (e) {
    check('openai: a bad request raises BadRequestError', e instanceof OpenAI.BadRequestError, String(e));
  }
}

async function anthropicChecks() {
  const client = new Anthropic({ apiKey: 'sk-ant-client-key', baseURL: baseURL.replace(/\/v1$/, ''),
                                 maxRetries: 0, defaultHeaders: { 'x-llmrun-tag': 'sdk-anthropic' } });
  const msg = await client.messages.create({
    model: 'claude-3-5-haiku-latest', max_tokens: 64, system: 'Be brief.',
    messages: [{ role: 'user', content: 'What is 12 + 30?' }] });
  const text = msg.content[0] && msg.content[0].text;
  check('anthropic messages: a text block', msg.type === 'message' && typeof text === 'string' && text.length > 0, msg);
  check('anthropic messages: usage', msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0, msg.usage);

  const stream = client.messages.stream({
    model: 'claude-3-5-haiku-latest', max_tokens: 64, system: 'Be brief.',
    messages: [{ role: 'user', content: 'What is 12 + 30?' }] });
  let streamed = '';
  stream.on('text', (t) => { streamed += t; });
  const final = await stream.finalMessage();
  check('anthropic stream: the same text as the plain call', streamed === text && final.content[0].text === text,
        { streamed, text });
  check('anthropic stream: stop_reason', final.stop_reason === 'end_turn' || final.stop_reason === 'max_tokens',
        final.stop_reason);

  const withTools = await client.messages.create({
    model: 'claude-3-5-haiku-latest', max_tokens: 64,
    tools: [{ name: 'get_weather', description: 'The weather in a city',
              input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Paris' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'sunny, 21 C' }] },
    ] });
  check('anthropic tools: a tool round trip answers', withTools.role === 'assistant' && withTools.content.length > 0,
        withTools);

  try {
    await client.messages.create({ model: 'claude-3-5-haiku-latest', messages: [] });
    check('anthropic: a bad request raises', false);
  } catch (e) {
    check('anthropic: a bad request raises BadRequestError with its message',
          e.status === 400 && /max_tokens/.test(e.message), String(e));
  }
}

async function main() {
  await openaiChecks();
  await anthropicChecks();
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
