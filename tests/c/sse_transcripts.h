/* Realistic provider stream bodies, written from the wire formats in
 * RELIABILITY.md §C.2 (OpenAI chat.completion.chunk with
 * stream_options.include_usage, ending in `data: [DONE]`; the Anthropic
 * Messages event sequence with ping and a mid-stream error), with the
 * payloads each must yield. Ids and numbers are made up. Shared by
 * tests/c/test_sse.c and tests/bench/bench_sse.c. */
#ifndef LLMRUN_SSE_TRANSCRIPTS_H
#define LLMRUN_SSE_TRANSCRIPTS_H

#define OAI_HEAD "{\"id\":\"chatcmpl-7Qx2kQ9VbT0w1ZyX3aB4cD5eF6gH\",\"object\":\"chat.completion.chunk\"," \
                 "\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\"," \
                 "\"system_fingerprint\":\"fp_0ba0d124f1\","
#define OAI_DELTA(content) \
  OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" content "\"},\"logprobs\":null," \
           "\"finish_reason\":null}],\"usage\":null}"

/* The data payload of every event, in order. */
static const char *const openai_payloads[] = {
  OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
           "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}",
  OAI_DELTA("Two"),
  OAI_DELTA(","),
  OAI_DELTA(" three"),
  OAI_DELTA(" and"),
  OAI_DELTA(" five"),
  OAI_DELTA(" \\u2014 caf\xC3\xA9 \xE2\x98\x95"),
  OAI_DELTA(" \xF0\x9F\x8E\x89"),
  OAI_DELTA(".\\n"),
  OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}",
  OAI_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":9,\"total_tokens\":23,"
           "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
           "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}",
  "[DONE]",
};

/* The same stream as it crosses the wire. */
static const char openai_wire[] =
  "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},"
           "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
  "data: " OAI_DELTA("Two") "\n\n"
  "data: " OAI_DELTA(",") "\n\n"
  "data: " OAI_DELTA(" three") "\n\n"
  "data: " OAI_DELTA(" and") "\n\n"
  "data: " OAI_DELTA(" five") "\n\n"
  "data: " OAI_DELTA(" \\u2014 caf\xC3\xA9 \xE2\x98\x95") "\n\n"
  "data: " OAI_DELTA(" \xF0\x9F\x8E\x89") "\n\n"
  "data: " OAI_DELTA(".\\n") "\n\n"
  "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
           "\"usage\":null}\n\n"
  "data: " OAI_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":14,\"completion_tokens\":9,\"total_tokens\":23,"
           "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
           "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n"
  "data: [DONE]\n\n";

/* Anthropic: event type + payload pairs, ping included. */
static const char *const anthropic_events[][2] = {
  {"message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
                    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\","
                    "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"
                    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}"},
  {"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}"},
  {"ping", "{\"type\": \"ping\"}"},
  {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}"},
  {"content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
                          "\"text\":\"! \xC3\x87" "a va? \xF0\x9F\x91\x8B\"}}"},
  {"content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}"},
  {"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                    "\"usage\":{\"output_tokens\":15}}"},
  {"message_stop", "{\"type\":\"message_stop\"}"},
};

static const char anthropic_wire[] =
  "event: message_start\n"
  "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
  "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\","
  "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,"
  "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n"
  "event: content_block_start\n"
  "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
  "event: ping\n"
  "data: {\"type\": \"ping\"}\n\n"
  "event: content_block_delta\n"
  "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello\"}}\n\n"
  "event: content_block_delta\n"
  "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
  "\"text\":\"! \xC3\x87" "a va? \xF0\x9F\x91\x8B\"}}\n\n"
  "event: content_block_stop\n"
  "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
  "event: message_delta\n"
  "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
  "\"usage\":{\"output_tokens\":15}}\n\n"
  "event: message_stop\n"
  "data: {\"type\":\"message_stop\"}\n\n";

/* A stream that fails after its first delta (RELIABILITY.md item 27). */
static const char anthropic_error_wire[] =
  "event: message_start\n"
  "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01A\",\"type\":\"message\",\"role\":\"assistant\","
  "\"content\":[],\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
  "event: content_block_delta\n"
  "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Par\"}}\n\n"
  "event: error\n"
  "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n";

#endif
