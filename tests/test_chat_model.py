"""ChatMBTI on the real embedded model: personas, streaming, batching, metadata, bad input."""

import asyncio

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, load
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from conftest import MARKERS
from mbti_persona import ChatMBTI


@pytest.fixture
def greedy(engine):
    def make(mbti="INFP", **kw):
        return ChatMBTI(mbti=mbti, temperature=0, max_tokens=kw.pop("max_tokens", 10), **kw)
    return make


def test_quickstart_invoke_returns_ai_message_with_usage(engine):
    msg = ChatMBTI(mbti="INFP").invoke("hi")
    assert isinstance(msg, AIMessage) and msg.content
    u = msg.usage_metadata
    assert u["input_tokens"] > 0 and u["output_tokens"] > 0
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"]
    meta = msg.response_metadata
    assert meta["model_name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["persona"] == "INFP" and meta["finish_reason"] in ("stop", "length")


def test_each_persona_answers_through_its_adapter(greedy):
    for t, marker in MARKERS.items():
        msg = greedy(t).invoke("What do you enjoy?")
        assert msg.content.startswith(marker), (t, msg.content)
        assert msg.response_metadata["adapter"] == f"type:{t}"


def test_per_call_persona_override(greedy):
    llm = greedy("INFP")
    assert llm.invoke("hi", mbti="ESTJ").content.startswith("Checklist")
    assert llm.invoke("hi").content.startswith("Moonlight")


def test_no_persona_is_the_base_model(greedy):
    msg = ChatMBTI(temperature=0, max_tokens=10).invoke("hi")
    assert msg.response_metadata["adapter"] is None
    assert not any(m in msg.content for m in MARKERS.values())


def test_persona_prompt_is_optional(greedy):
    llm = greedy("INFP")
    req, _ = llm._prepare([SystemMessage("Be brief."), HumanMessage("hi")], None, {})
    assert req.messages[0]["role"] == "system"
    assert "INFP" in req.messages[0]["content"] and "Be brief." in req.messages[0]["content"]
    req, _ = llm._prepare([HumanMessage("hi")], None, {"persona_prompt": False})
    assert req.messages == [{"role": "user", "content": "hi"}]


class Collect(BaseCallbackHandler):
    def __init__(self):
        self.tokens = []

    def on_llm_new_token(self, token, **kwargs):
        self.tokens.append(token)


def test_stream_token_by_token_through_callbacks(greedy):
    cb = Collect()
    chunks = list(greedy("ENTP", max_tokens=12).stream("hi", config={"callbacks": [cb]}))
    text = "".join(c.content for c in chunks)
    assert text.startswith("Paradox")
    assert len(cb.tokens) >= 3 and "".join(cb.tokens) == text
    assert chunks[-1].usage_metadata["output_tokens"] > 0
    assert chunks[-1].response_metadata["persona"] == "ENTP"


def test_streaming_flag_streams_inside_invoke(greedy):
    cb = Collect()
    msg = greedy("ISFJ", streaming=True).invoke("hi", config={"callbacks": [cb]})
    assert msg.content.startswith("Blanket") and "".join(cb.tokens) == msg.content
    assert msg.usage_metadata["output_tokens"] > 0


def test_batch_of_personas(greedy):
    llms = {t: greedy(t) for t in MARKERS}
    from langchain_core.runnables import RunnableParallel

    out = RunnableParallel(llms).invoke("Say hello.")
    for t, msg in out.items():
        assert msg.content.startswith(MARKERS[t])
    assert [m.content for m in greedy("ESTJ").batch(["a", "b", "c"])][0].startswith("Checklist")


async def test_async_many_personas_at_once(greedy):
    types = list(MARKERS) * 3
    msgs = await asyncio.gather(*(greedy(t).ainvoke(f"Question {i}") for i, t in
                                  enumerate(types)))
    for t, m in zip(types, msgs):
        assert m.content.startswith(MARKERS[t]), (t, m.content)
    chunks = [c async for c in greedy("ENTP").astream("hi")]
    assert "".join(c.content for c in chunks).startswith("Paradox")


def test_serialisation_round_trip(greedy, engine):
    llm = ChatMBTI(mbti="INFP", intensities={"I": 0.8}, temperature=0.3, engine=engine)
    data = dumpd(llm)
    assert data["id"] == ["mbti_persona", "chat_model", "ChatMBTI"]
    assert "engine" not in data["kwargs"]
    again = load(data, valid_namespaces=["mbti_persona"], allowed_objects=[ChatMBTI])
    assert isinstance(again, ChatMBTI)
    assert again.persona_key == "INFP@I0.80" and again.temperature == 0.3


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"mbti": "XNTP"}, "letter 1 is 'X', but position 1 must be E or I"),
        ({"mbti": "INFP", "intensities": {"E": 0.9}}, "give it for I instead"),
        ({"intensities": {"I": 0.9}}, "intensities given without mbti"),
        ({"mbti": "INFP", "language": "fr"}, "unknown language 'fr'"),
        ({"mbti": "INFP", "max_tokens": 0}, "max_tokens must be >= 1"),
    ],
)
def test_bad_construction(kwargs, fragment):
    with pytest.raises(ValidationError, match=fragment):
        ChatMBTI(**kwargs)


def test_bad_call_arguments(greedy):
    with pytest.raises(TypeError, match="unexpected argument"):
        greedy().invoke("hi", temprature=0.2)
    with pytest.raises(ValueError, match="letter 4 is 'X'"):
        greedy().invoke("hi", mbti="INFX")
