// The official openai package for Node against the service: a streamed chat completion,
// and a background response followed, dropped mid-answer and resumed after the last
// sequence number seen. Prints one JSON line for tests/test_openai_node.py to check.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
const model = process.env.MODEL || "offline/simulated";

const chat = await client.chat.completions.create({
  model, stream: true, stream_options: { include_usage: true },
  messages: [{ role: "user", content: "Hello from Node" }],
});
let chatText = "";
let chatId = null;
let usage = null;
for await (const chunk of chat) {
  chatId = chunk.id;
  if (chunk.choices.length) chatText += chunk.choices[0].delta.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}

const created = await client.responses.create({ model, input: "A background answer for Node", background: true });
const first = await client.responses.retrieve(created.id, { stream: true });
let before = "";
let last = -1;
let count = 0;
for await (const event of first) {
  last = event.sequence_number;
  if (event.type === "response.output_text.delta") {
    before += event.delta;
    if (++count === 10) break; // leaving the loop aborts the request: the client dropped
  }
}
const resumed = await client.responses.retrieve(created.id, { stream: true, starting_after: last });
let after = "";
const numbers = [];
let final = null;
for await (const event of resumed) {
  numbers.push(event.sequence_number);
  if (event.type === "response.output_text.delta") after += event.delta;
  if (event.type === "response.completed") final = event.response;
}
console.log(JSON.stringify({ chatId, chatText, usage, responseId: created.id, last, before, after, numbers,
                             status: final && final.status, outputText: final && final.output_text }));
