"""Real usage: an LCEL chain, a vector store, an agent-style tool call; all on hfbridge serve."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.messages import ToolCall
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.vectorstores import InMemoryVectorStore

from hfbridge.langchain import HFInferenceEmbeddings, HFInferenceLLM, HFInferenceToolkit

from .conftest import BASE_URL, EMBED_MODEL, LLM_MODEL

pytestmark = pytest.mark.hf_cassette


def test_lcel_chain() -> None:
    llm = HFInferenceLLM(base_url=BASE_URL, model=LLM_MODEL, max_new_tokens=16, stop=["\n"])
    chain = PromptTemplate.from_template("Q: {question}\nA:") | llm | StrOutputParser()
    answer = chain.invoke({"question": "What is the capital of France?"})
    assert isinstance(answer, str) and answer.strip() and "\n" not in answer
    assert "Paris" in answer  # real SmolLM2, greedy


async def test_lcel_chain_async_batch() -> None:
    llm = HFInferenceLLM(base_url=BASE_URL, model=LLM_MODEL, max_new_tokens=8, stop=["\n"])
    chain = PromptTemplate.from_template("Q: {question}\nA:") | llm | StrOutputParser()
    answers = await chain.abatch([{"question": "What is 2 + 2?"}, {"question": "What colour is the sky?"}])
    assert len(answers) == 2 and all(a.strip() for a in answers)


def test_vector_store_similarity_search() -> None:
    store = InMemoryVectorStore(HFInferenceEmbeddings(base_url=BASE_URL, model=EMBED_MODEL, batch_size=2))
    store.add_documents([
        Document(page_content="The Eiffel Tower is in Paris.", metadata={"id": "paris"}),
        Document(page_content="Photosynthesis turns sunlight into sugar in plants.", metadata={"id": "plants"}),
        Document(page_content="The stock market fell three percent on Monday.", metadata={"id": "stocks"}),
    ])
    best = store.similarity_search("Which famous tower stands in France?", k=1)
    assert best[0].metadata["id"] == "paris"  # real MiniLM embeddings
    ranked = store.similarity_search("How do plants make food?", k=3)
    assert ranked[0].metadata["id"] == "plants"


def test_agent_style_tool_call() -> None:
    tools = {t.name: t for t in HFInferenceToolkit(base_url=BASE_URL, tasks=["sentence-similarity", "automatic-speech-recognition"]).get_tools()}
    call = ToolCall(name="sentence_similarity", id="call-1", type="tool_call",
                    args={"source_sentence": "A cat sits on the mat.", "sentences": ["A kitten rests on a rug.", "Stocks fell sharply."]})
    message = tools["sentence_similarity"].invoke(call)
    scores = message.artifact
    assert message.tool_call_id == "call-1" and scores[0] > scores[1]
