"""MBTIPersona: agent middleware (adapter + system context), prompt mode, memory, wrap, tool."""

from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tools import tool

from conftest import MARKERS
from mbti_persona import ChatMBTI, MBTITypeError
from mbti_persona.persona import MBTIPersona


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class Spy(AgentMiddleware):
    """Innermost middleware: records the request the model receives."""

    def __init__(self):
        self.requests = []

    def wrap_model_call(self, request, handler):
        self.requests.append(request)
        return handler(request)

    async def awrap_model_call(self, request, handler):
        self.requests.append(request)
        return await handler(request)


class Recorder(GenericFakeChatModel):
    """A fake (non-ChatMBTI) chat model that records the messages it is called with."""

    seen: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.seen.append(list(messages))
        return super()._generate(messages, stop, run_manager, **kwargs)


class ToolRecorder(Recorder):
    """A fake model that accepts tools (binding is a no-op)."""

    def bind_tools(self, tools, **kwargs):
        return self


def fake(*answers, cls=Recorder):
    return cls(messages=iter(list(answers) or ["ok"]), seen=[])


def ask(agent, text):
    return agent.invoke({"messages": [{"role": "user", "content": text}]})["messages"][-1]


# -- the agent path on ChatMBTI: the persona drives the adapter and the system context ------

def test_agent_on_chatmbti_runs_the_persona_adapter(engine):
    spy = Spy()
    persona = MBTIPersona(mbti="ESTJ")
    model = ChatMBTI(mbti="INFP", temperature=0, max_tokens=6)  # the persona wins
    agent = create_agent(model, tools=[add], system_prompt="Be brief.",
                         middleware=[persona, spy])
    n = len(engine.call_log)
    answer = ask(agent, "What do you enjoy?")

    assert answer.content.startswith(MARKERS["ESTJ"]), answer.content
    assert [r.adapters for r in engine.call_log[n:]] == [("type:ESTJ",)]
    assert answer.response_metadata["adapter"] == "type:ESTJ"
    assert answer.response_metadata["mbti_persona"]["mbti"] == "ESTJ"
    (req,) = spy.requests
    # the model the agent calls is the persona's ChatMBTI ...
    assert isinstance(req.model, ChatMBTI) and req.model is not model
    assert req.model.mbti == "ESTJ" and req.model.persona_prompt is False
    assert req.model.get_engine() is engine and model.mbti == "INFP"
    # ... with the persona's system context before the agent's own system prompt
    assert req.system_prompt.startswith("You are a person with the ESTJ personality type")
    assert req.system_prompt.rstrip().endswith("Be brief.")
    # ChatMBTI cannot call tools: the persona calls it without them
    assert req.tools == []


def test_bind_sets_type_and_intensities_and_is_cached(engine):
    base = ChatMBTI(temperature=0.2, max_tokens=5, stop=["\n"])
    persona = MBTIPersona(mbti="infp", intensities={"I": 0.8}, language="zh")
    bound = persona.bind(base)
    assert bound.persona_key == "INFP@I0.80" and bound.language == "zh"
    assert (bound.temperature, bound.max_tokens, bound.stop) == (0.2, 5, ["\n"])
    assert persona.bind(base) is bound
    assert persona.intensities == {"I": 0.8} and persona.mbti == "INFP"
    other = fake()
    assert persona.bind(other) is other  # prompt mode leaves other models alone


async def test_async_agent_on_chatmbti(engine):
    agent = create_agent(ChatMBTI(temperature=0, max_tokens=5), tools=[],
                         middleware=[MBTIPersona(mbti="ENTP")])
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "hi"}]})
    assert out["messages"][-1].content.startswith(MARKERS["ENTP"])


# -- prompt mode: any other chat model --------------------------------------------------------

def test_prompt_mode_puts_persona_in_the_system_prompt():
    model = fake("Sure.")
    spy = Spy()
    agent = create_agent(model, tools=[], system_prompt="Be brief.",
                         middleware=[MBTIPersona(mbti="ISFJ", name="Joy"), spy])
    answer = ask(agent, "hello")
    assert answer.content == "Sure."
    assert answer.response_metadata["mbti_persona"] == {"name": "Joy", "mbti": "ISFJ",
                                                        "memories": []}
    (msgs,) = model.seen
    assert isinstance(msgs[0], SystemMessage)
    system = msgs[0].content
    assert system.startswith("Your name is Joy. You are a person with the ISFJ personality")
    assert "the quiet caretaker" in system and system.endswith("Be brief.")
    assert [type(m) for m in msgs[1:]] == [HumanMessage]
    assert spy.requests[0].model is model


def test_prompt_mode_without_agent_system_prompt_and_zh():
    model = fake()
    agent = create_agent(model, tools=[], middleware=[MBTIPersona(mbti="INTJ", language="zh")])
    ask(agent, "你好")
    system = model.seen[0][0].content
    assert system.startswith("你是一个性格类型为 INTJ 的人")


def test_tools_kept_for_tool_calling_models_and_dropped_otherwise():
    spy = Spy()
    agent = create_agent(fake(cls=ToolRecorder), tools=[add],
                         middleware=[MBTIPersona(mbti="ENTJ"), spy])
    ask(agent, "1+1?")
    assert [t.name for t in spy.requests[0].tools] == ["add"]

    spy = Spy()
    agent = create_agent(fake(), tools=[add], middleware=[MBTIPersona(mbti="ENTJ"), spy])
    assert ask(agent, "1+1?").content == "ok"  # no NotImplementedError from bind_tools
    assert spy.requests[0].tools == []

    agent = create_agent(fake(), tools=[add],
                         middleware=[MBTIPersona(mbti="ENTJ", drop_unsupported_tools=False)])
    with pytest.raises(NotImplementedError):
        ask(agent, "1+1?")


def test_persona_prompt_false_sends_only_memories():
    model = fake()
    agent = create_agent(model, tools=[], system_prompt="Be brief.",
                         middleware=[MBTIPersona(mbti="ESTP", persona_prompt=False)])
    ask(agent, "hi")
    assert model.seen[0][0].content == "Be brief."


# -- memory -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def estj_memory():
    from mbti_persona.memory import PersonaMemory

    mem = PersonaMemory("ESTJ", user="persona-tests", in_memory=True)
    yield mem
    mem.close()


def test_memory_retrieval_and_write_back(estj_memory):
    persona = MBTIPersona(mbti="ESTJ", memory=estj_memory, memory_k=3, memory_token_budget=150,
                          write_back=True, session_id="s1")
    model = fake("I would book the train early.", "You told me about Lisbon.")
    agent = create_agent(model, tools=[], middleware=[persona])
    ask(agent, "We are going to Lisbon in May, how would you plan the trip?")
    system = model.seen[0][0].content
    assert system.startswith("You are a person with the ESTJ personality type")
    assert "Things you know about yourself and remember:" in system
    assert len(persona.last_memories) >= 1
    assert all(m.kind == "self" for m in persona.last_memories)

    episodes = estj_memory.get_all("episodic", session="s1")
    assert len(episodes) == 1
    assert "Lisbon in May" in episodes[0].text and "book the train early" in episodes[0].text

    ask(agent, "Where did I say we are going in May?")
    assert "The user said: We are going to Lisbon in May" in model.seen[1][0].content


def test_chatmbti_memory_is_left_to_the_persona(estj_memory, engine):
    persona = MBTIPersona(mbti="ESTJ", memory=estj_memory)
    bound = persona.bind(ChatMBTI(memory=estj_memory, memory_write_back=True))
    assert bound.use_memory is False and bound.memory_write_back is False
    req, meta = bound._prepare(persona.apply([HumanMessage("plans?")], bound), None, {})
    assert req.messages[0]["content"].count("Things you know about yourself") == 1
    assert "memories" not in meta


# -- without an agent: wrap() and as_tool() ---------------------------------------------------

def test_wrap_invoke_stream_and_inputs(engine):
    runnable = MBTIPersona(mbti="INFP").wrap(ChatMBTI(temperature=0, max_tokens=5))
    msg = runnable.invoke("hi")
    assert isinstance(msg, AIMessage) and msg.content.startswith(MARKERS["INFP"])
    assert msg.response_metadata["adapter"] == "type:INFP"
    chunks = list(runnable.stream([SystemMessage("Be brief."), ("human", "hi")]))
    assert "".join(c.content for c in chunks).startswith(MARKERS["INFP"])


async def test_wrap_async_and_batch(engine):
    runnable = MBTIPersona(mbti="ISFJ").wrap(ChatMBTI(temperature=0, max_tokens=4))
    assert (await runnable.ainvoke({"messages": [("human", "hi")]})).content.startswith(
        MARKERS["ISFJ"])


def test_wrap_prompt_mode_keeps_the_callers_system_message():
    model = fake()
    MBTIPersona(mbti="ENFP").wrap(model).invoke([SystemMessage("Reply in French."),
                                                 HumanMessage("hi")])
    (msgs,) = model.seen
    assert len(msgs) == 2 and "ENFP" in msgs[0].content
    assert msgs[0].content.endswith("Reply in French.")


def test_as_tool_answers_as_the_persona(engine):
    t = MBTIPersona(mbti="ENTP").as_tool(ChatMBTI(temperature=0, max_tokens=5))
    assert t.name == "ask_entp" and "ENTP" in t.description
    assert set(t.args) == {"question"}
    assert t.invoke({"question": "What would you want for your birthday?"}).startswith(
        MARKERS["ENTP"])
    named = MBTIPersona(mbti="INFP", name="Ivy Lane").as_tool(fake("a book"))
    assert named.name == "ask_ivy_lane" and "Ivy Lane" in named.description
    assert named.invoke({"question": "gift?"}) == "a book"


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, err, fragment", [
    ({"mbti": "XNTP"}, MBTITypeError, "letter 1 is 'X'"),
    ({"mbti": "INFP", "intensities": {"E": 0.9}}, MBTITypeError, "give it for I instead"),
    ({"mbti": "INFP", "language": "fr"}, ValueError, "unknown language 'fr'"),
    ({"mbti": "INFP", "write_back": True}, ValueError, "write_back=True needs a memory"),
    ({"mbti": "INFP", "memory": 42}, TypeError, "memory must be a PersonaMemory"),
    ({"mbti": "INFP", "adapter_mode": "both"}, ValueError, "unknown adapter_mode"),
])
def test_bad_arguments(kwargs, err, fragment):
    with pytest.raises(err, match=fragment):
        MBTIPersona(**kwargs)


def test_default_and_repr():
    p = MBTIPersona()
    assert p.mbti == "INTJ" and p.persona_name == "INTJ" and p.memory is None
    assert p.name == "MBTIPersona[INTJ]" and "INTJ" in repr(p)
