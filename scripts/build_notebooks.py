"""Writes the notebooks in notebooks/ from the cells below and executes them (fresh outputs).

Run it after changing a notebook's cells:  .venv/bin/python scripts/build_notebooks.py
The test suite executes every notebook again (nbmake), against the embedded local server.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "notebooks"

START_SERVER = '''from hfbridge.server.runner import EmbeddedServer

# hfbridge serve, in this process, on a free port of 127.0.0.1: no token, no hub access needed.
server = EmbeddedServer().start()
server.wait_until_loaded({models})
print("serving at", server.url)'''

STOP_SERVER = "server.stop()"

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_core_client.ipynb": [
        ("md", "# The core client\n\n`hfbridge.InferenceClient` (sync) and `AsyncInferenceClient` (async) have one typed "
               "method per task of the Hugging Face Inference API. Here they talk to `hfbridge serve`, started in-process; "
               "pointed at `https://router.huggingface.co/hf-inference` with a token they talk to the hosted API the same way."),
        ("code", START_SERVER.format(models='["HuggingFaceTB/SmolLM2-135M-Instruct", "sentence-transformers/all-MiniLM-L6-v2", "openai/whisper-tiny.en", "hfbridge/tiny-text-to-image"]')),
        ("code", "from hfbridge import InferenceClient\n\nclient = InferenceClient(server.url)\nclient"),
        ("md", "## Text generation, with a stop sequence and streaming"),
        ("code", 'result = client.text_generation("Q: What is the capital of France?\\nA:", model="HuggingFaceTB/SmolLM2-135M-Instruct",\n'
                 '                                 max_new_tokens=30, stop=["\\n"], return_full_text=False, details=True)\n'
                 'print(repr(result.generated_text), result.details.finish_reason, result.details.generated_tokens)'),
        ("code", 'for output in client.text_generation("The three primary colours are", model="HuggingFaceTB/SmolLM2-135M-Instruct",\n'
                 '                                      max_new_tokens=15, stream=True):\n    print(output.token.text, end="|")'),
        ("md", "## Embeddings and similarity (real all-MiniLM-L6-v2)"),
        ("code", 'vectors = client.feature_extraction(["A cat sleeps on the sofa.", "A kitten naps on a couch.", "Stocks fell."],\n'
                 '                                   model="sentence-transformers/all-MiniLM-L6-v2")\n'
                 'print(len(vectors), "vectors of", len(vectors[0]), "floats")\n'
                 'client.sentence_similarity("A cat sleeps on the sofa.", ["A kitten naps on a couch.", "Stocks fell."],\n'
                 '                           model="sentence-transformers/all-MiniLM-L6-v2")'),
        ("md", "## Speech recognition (real Whisper tiny.en) and binary inputs\n\nImages and audio can be bytes, a path, a binary file or a URL."),
        ("code", 'from importlib import resources\n\naudio = resources.files("hfbridge") / "data" / "speech.flac"\n'
                 'client.automatic_speech_recognition(audio.read_bytes(), model="openai/whisper-tiny.en")'),
        ("md", "## Text to image\n\nThe default text-to-image model is a tiny random-weight Stable Diffusion: real code path, meaningless picture."),
        ("code", 'image = client.text_to_image("An astronaut riding a horse", num_inference_steps=2, seed=0)\n'
                 'print(image.content_type, len(image), "bytes")\nimage.to_pil().resize((128, 128))'),
        ("md", "## Errors are typed, and bad input is refused before anything is sent"),
        ("code", 'from hfbridge import InvalidInputError, ModelNotFoundError\n\n'
                 'try:\n    client.zero_shot_classification("Some text", candidate_labels=[])\nexcept InvalidInputError as error:\n    print("refused:", error)\n\n'
                 'try:\n    client.fill_mask("Paris is the [MASK].", model="nobody/no-such-model")\nexcept ModelNotFoundError as error:\n    print(type(error).__name__, error.status_code, error)'),
        ("md", "## The async client: the same methods, awaited"),
        ("code", 'import asyncio\nfrom hfbridge import AsyncInferenceClient\n\n'
                 'async with AsyncInferenceClient(server.url, max_concurrency=4) as aclient:\n'
                 '    sentences = [f"Sentence number {i}." for i in range(8)]\n'
                 '    vectors = await asyncio.gather(*(aclient.feature_extraction(s, model="sentence-transformers/all-MiniLM-L6-v2") for s in sentences))\n'
                 'print(len(vectors), "embeddings computed concurrently")'),
        ("code", "client.close()\n" + STOP_SERVER),
    ],
    "02_langchain.ipynb": [
        ("md", "# LangChain: an LLM, embeddings and a tool per task\n\n`hfbridge.langchain` makes the core client first-class "
               "LangChain components. Everything below runs against `hfbridge serve`, started in-process."),
        ("code", START_SERVER.format(models='["HuggingFaceTB/SmolLM2-135M-Instruct", "sentence-transformers/all-MiniLM-L6-v2", "openai/whisper-tiny.en"]')),
        ("md", "## An LCEL chain"),
        ("code", 'from langchain_core.output_parsers import StrOutputParser\nfrom langchain_core.prompts import PromptTemplate\n'
                 'from hfbridge.langchain import HFInferenceLLM\n\n'
                 'llm = HFInferenceLLM(base_url=server.url, model="HuggingFaceTB/SmolLM2-135M-Instruct", max_new_tokens=30, stop=["\\n"])\n'
                 'chain = PromptTemplate.from_template("Q: {question}\\nA:") | llm | StrOutputParser()\n'
                 'chain.invoke({"question": "What is the capital of France?"})'),
        ("code", 'for piece in chain.stream({"question": "Name a primary colour."}):\n    print(piece, end="|")'),
        ("code", 'chain.batch([{"question": "What is 2 + 2?"}, {"question": "What colour is the sky?"}])'),
        ("md", "## Embeddings in a vector store"),
        ("code", 'from langchain_core.vectorstores import InMemoryVectorStore\nfrom hfbridge.langchain import HFInferenceEmbeddings\n\n'
                 'store = InMemoryVectorStore(HFInferenceEmbeddings(base_url=server.url, model="sentence-transformers/all-MiniLM-L6-v2"))\n'
                 'store.add_texts(["The Eiffel Tower is in Paris.", "Plants make sugar from sunlight.", "Stocks fell on Monday."])\n'
                 '[doc.page_content for doc in store.similarity_search("Which tower is in France?", k=2)]'),
        ("md", "## Tools, called the way an agent calls them"),
        ("code", 'from langchain_core.messages import ToolCall\nfrom hfbridge.langchain import HFInferenceToolkit\n\n'
                 'tools = {tool.name: tool for tool in HFInferenceToolkit(base_url=server.url).get_tools()}\nsorted(tools)'),
        ("code", 'print(tools["sentence_similarity"].description)\n'
                 'message = tools["sentence_similarity"].invoke(ToolCall(name="sentence_similarity", id="call-1", type="tool_call",\n'
                 '    args={"source_sentence": "A cat sleeps.", "sentences": ["A kitten naps.", "Taxes rose."]}))\nmessage'),
        ("code", 'from importlib import resources\n\nwith resources.as_file(resources.files("hfbridge") / "data" / "speech.flac") as path:\n'
                 '    message = tools["automatic_speech_recognition"].invoke(ToolCall(name="automatic_speech_recognition", id="call-2",\n'
                 '                                                                   type="tool_call", args={"audio": str(path)}))\nmessage.content'),
        ("code", STOP_SERVER),
    ],
    "03_llama_index_rag.ipynb": [
        ("md", "# LlamaIndex: retrieval-augmented generation\n\n`HFInferenceEmbedding` embeds the documents and the query, "
               "`HFInferenceLLM` writes the answer from what was retrieved."),
        ("code", START_SERVER.format(models='["HuggingFaceTB/SmolLM2-135M-Instruct", "sentence-transformers/all-MiniLM-L6-v2"]')),
        ("code", 'from llama_index.core import Document, VectorStoreIndex\nfrom hfbridge.llama_index import HFInferenceEmbedding, HFInferenceLLM\n\n'
                 'documents = [\n    Document(text="The Eiffel Tower is a wrought-iron tower in Paris, completed in 1889."),\n'
                 '    Document(text="Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar."),\n'
                 '    Document(text="The Great Wall of China is more than 20,000 kilometres long."),\n]\n'
                 'embed = HFInferenceEmbedding(base_url=server.url, model_name="sentence-transformers/all-MiniLM-L6-v2", embed_batch_size=16)\n'
                 'index = VectorStoreIndex.from_documents(documents, embed_model=embed)'),
        ("code", 'llm = HFInferenceLLM(base_url=server.url, model_name="HuggingFaceTB/SmolLM2-135M-Instruct", max_new_tokens=32, stop=["\\n"])\n'
                 'engine = index.as_query_engine(llm=llm, similarity_top_k=1)\nresponse = engine.query("When was the Eiffel Tower completed?")\n'
                 'print(response)\nprint("source:", response.source_nodes[0].node.get_content())'),
        ("md", "Async, streaming and the tool spec work the same way:"),
        ("code", 'response = await index.as_query_engine(llm=llm, similarity_top_k=1).aquery("How long is the Great Wall?")\nstr(response)'),
        ("code", 'for piece in llm.stream_complete("The capital of France is", max_new_tokens=8):\n    print(piece.delta, end="|")'),
        ("code", 'from hfbridge.llama_index import HFInferenceToolSpec\n\n'
                 'tool = {t.metadata.name: t for t in HFInferenceToolSpec(server.url).to_tool_list()}["sentence_similarity"]\n'
                 'tool.call(source_sentence="A cat sleeps.", sentences=["A kitten naps.", "Taxes rose."]).content'),
        ("code", STOP_SERVER),
    ],
    "05_chat_tools_agents.ipynb": [
        ("md", "# Chat, tools, structured output and agents\n\nThe OpenAI-compatible chat route with `tools`, `tool_choice` and `response_format`, "
               "from the core client, LangChain's `ChatHFInference` and LlamaIndex's `HFInferenceChat`; then an agent of each framework "
               "that calls hfbridge's speech tool and answers with its words. `hfbridge serve` enforces tool calls and schemas "
               "by constrained decoding, so even SmolLM2-135M writes valid calls; what it cannot be trusted to choose is in the README "
               "(\"Agents\")."),
        ("code", START_SERVER.format(models='["HuggingFaceTB/SmolLM2-135M-Instruct", "openai/whisper-tiny.en"]')),
        ("md", "## A tool call from the core client"),
        ("code", 'import json\nfrom hfbridge import InferenceClient\n\nLLM = "HuggingFaceTB/SmolLM2-135M-Instruct"\nclient = InferenceClient(server.url)\n'
                 'weather = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city.",\n'
                 '           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}\n'
                 'answer = client.chat_completion([{"role": "user", "content": "What is the weather in Paris?"}], model=LLM,\n'
                 '                                tools=[weather], tool_choice="required", temperature=0)\n'
                 'call = answer.choices[0].message.tool_calls[0]\nprint(call.function.name, json.loads(call.function.arguments), answer.choices[0].finish_reason)'),
        ("md", "## Structured output with LangChain"),
        ("code", 'from pydantic import BaseModel\nfrom hfbridge.langchain import ChatHFInference\n\n\n'
                 'class Person(BaseModel):\n    name: str\n    age: int\n\n\n'
                 'chat = ChatHFInference(base_url=server.url, model=LLM, temperature=0)\n'
                 'chat.with_structured_output(Person).invoke("Alice is 31 years old.")'),
        ("md", "## Agents\n\nThe user's folder holds `speech.flac`. SmolLM2-135M is told to call a tool first and to answer once "
               "the tool has answered (LangChain: the `ToolThenAnswer` middleware; LlamaIndex: `initial_tool_choice` and "
               "`answer_after_tool_results`). A bigger model, or the hosted API, needs neither."),
        ("code", 'import os, tempfile\nfrom hfbridge.samples import sample_speech\n\n'
                 'folder = tempfile.mkdtemp()\nos.chdir(folder)\nopen("speech.flac", "wb").write(sample_speech())\n'
                 'ASK = "Transcribe the audio file speech.flac and tell me what the man said."'),
        ("code", 'from langchain.agents import create_agent\nfrom hfbridge.langchain import HFInferenceToolkit\nfrom hfbridge.langchain.agents import ToolThenAnswer\n\n'
                 'tools = HFInferenceToolkit(base_url=server.url, tasks=["automatic-speech-recognition"]).get_tools()\n'
                 'agent = create_agent(chat, tools, middleware=[ToolThenAnswer()])\n'
                 'for message in agent.invoke({"messages": [("user", ASK)]})["messages"]:\n    message.pretty_print()'),
        ("code", 'from llama_index.core.agent.workflow import FunctionAgent\nfrom hfbridge.llama_index import HFInferenceChat, HFInferenceToolSpec\n\n'
                 'llm = HFInferenceChat(base_url=server.url, model_name=LLM, temperature=0, answer_after_tool_results=True)\n'
                 'spec = HFInferenceToolSpec(server.url, tasks=["automatic-speech-recognition"])\n'
                 'agent = FunctionAgent(tools=spec.to_tool_list(), llm=llm, initial_tool_choice="required")\n'
                 'print(await agent.run(ASK))'),
        ("code", STOP_SERVER),
    ],
    "04_local_server.ipynb": [
        ("md", "# The local reference server\n\n`hfbridge serve` answers the Inference API's routes (the spec's and the hosted "
               "API's) with real transformers inference. From a shell: `hfbridge serve --port 8000`; here it runs in-process."),
        ("code", 'import subprocess, sys\nprint(subprocess.run([sys.executable, "-m", "hfbridge.cli", "models", "list"], capture_output=True, text=True).stdout)'),
        ("code", 'from hfbridge.server.app import ServerSettings\nfrom hfbridge.server.runner import EmbeddedServer\n\n'
                 '# A server that wants a token and allows 5 requests per minute per token.\n'
                 'server = EmbeddedServer(ServerSettings(tokens=["hf_notebook_demo_token"], rate_limit=5)).start()\nserver.url'),
        ("md", "The first request for a model that is not loaded yet gets a 503 with `estimated_time`, as on the hosted API; "
               "`X-Wait-For-Model: true` waits instead."),
        ("code", 'import requests\n\nauth = {"Authorization": "Bearer hf_notebook_demo_token"}\n'
                 'first = requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "Paris is the [MASK] of France."}, headers=auth)\n'
                 'print(first.status_code, first.json())\n'
                 'waited = requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "Paris is the [MASK] of France."},\n'
                 '                       headers={**auth, "X-Wait-For-Model": "true"})\nprint(waited.status_code, waited.headers["X-Compute-Time"], waited.json()[0])'),
        ("md", "Errors are `{\"error\": ...}` bodies that name the field; authentication and rate limits answer 401/403/429:"),
        ("code", 'print(requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "no mask here"}, headers=auth).json())\n'
                 'print(requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "a [MASK]"}).status_code, "without a token")\n'
                 'print(requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "a [MASK]"}, headers={"Authorization": "Bearer wrong"}).status_code, "with a wrong one")\n'
                 'statuses = [requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "a [MASK]"}, headers=auth).status_code for _ in range(3)]\n'
                 'limited = requests.post(f"{server.url}/pipeline/fill-mask", json={"inputs": "a [MASK]"}, headers=auth)\n'
                 'print(statuses, limited.status_code, "Retry-After:", limited.headers["Retry-After"])'),
        ("md", "The client handles all of that: it retries the 503 with `wait_for_model` and honours `Retry-After`. "
               "(The object detector here is a tiny random-weight model: real code path, meaningless labels.)"),
        ("code", 'from hfbridge import InferenceClient\n\nwith InferenceClient(server.url, token="hf_notebook_demo_token") as client:\n'
                 '    print(client.object_detection(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (64, 48), "white"), threshold=0.0)[:2])'),
        ("code", STOP_SERVER),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src) for kind, src in cells]
    return notebook


def main(names: list[str]) -> None:
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        notebook = build(name, cells)
        NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(FOLDER)}}).execute()
        nbformat.write(notebook, FOLDER / name)
        print("wrote", FOLDER / name)


if __name__ == "__main__":
    main(sys.argv[1:])
