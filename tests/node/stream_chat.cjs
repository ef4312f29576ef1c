// Stream one chat completion with the Node `openai` package and print what it assembled, as JSON.
//   OPENAI_MODULE=<path to node_modules/openai> BASE_URL=http://127.0.0.1:PORT/v1 node stream_chat.cjs
const { OpenAI } = require(process.env.OPENAI_MODULE);

async function main() {
  const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: "sk-test-node", maxRetries: 0 });
  const out = { text: "", finish: null, error: null };
  try {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Say hello from Node" }],
      stream: true,
    });
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        out.text += choice.delta.content || "";
        out.finish = choice.finish_reason || out.finish;
      }
    }
  } catch (err) {
    out.error = err.constructor.name;
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main();
