"""MBTIPersona: give a LangChain agent (or any chat model) a stable MBTI personality.

One object, three ways to use it::

    from langchain.agents import create_agent
    from mbti_persona import ChatMBTI
    from mbti_persona.persona import MBTIPersona

    persona = MBTIPersona(mbti="INTJ")

    # 1. agent middleware (LangChain 1.x): system context + adapter on every model call
    agent = create_agent(ChatMBTI(), tools=[], middleware=[persona])

    # 2. a Runnable around a chat model: messages in, AIMessage out
    persona.wrap(ChatMBTI()).invoke("What should we do this weekend?")

    # 3. a tool another agent can call: "what would this INTJ say or want?"
    tool = persona.as_tool()

On a :class:`~mbti_persona.chat_model.ChatMBTI` the persona drives the model itself: the call
runs with the persona's LoRA adapter (its type and intensities), and the persona's system
context (type description and memories) replaces ChatMBTI's own persona prompt. On any other
chat model the persona works in prompt mode: the system context is put in front of the
agent's system prompt.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Mapping, Sequence

from langchain.agents.middleware import AgentMiddleware, ModelRequest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, HumanMessage,
                                     SystemMessage, convert_to_messages)
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from .prompts import LANGUAGES, persona_system_prompt
from .types import MBTIType

if TYPE_CHECKING:  # pragma: no cover
    from .memory import PersonaMemory, RetrievedMemory

logger = logging.getLogger(__name__)

__all__ = ["MBTIPersona", "PersonaRunnable"]


def _is_chat_mbti(model: Any) -> bool:
    from .chat_model import ChatMBTI

    return isinstance(model, ChatMBTI)


def _supports_tools(model: Any) -> bool:
    """False when the model class keeps BaseChatModel.bind_tools (which only raises)."""
    return type(model).bind_tools is not BaseChatModel.bind_tools


def _message_text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else message.text


def _last_user_text(messages: Sequence[BaseMessage]) -> str:
    for m in reversed(messages):
        if isinstance(m, HumanMessage):
            return _message_text(m).strip()
    return ""


def _merge_system(persona_text: str, system: SystemMessage | None) -> SystemMessage:
    """The persona context first, then the caller's own system message (blocks kept)."""
    if system is None:
        return SystemMessage(content=persona_text)
    content = system.content
    if isinstance(content, str):
        merged: Any = f"{persona_text}\n\n{content}" if content.strip() else persona_text
    else:
        merged = [{"type": "text", "text": persona_text}, *content]
    return system.model_copy(update={"content": merged})


def _coerce_input(value: Any) -> list[BaseMessage]:
    """str, PromptValue, a message, a list of message-likes or {"messages": [...]}."""
    if isinstance(value, str):
        return [HumanMessage(content=value)]
    if isinstance(value, PromptValue):
        return value.to_messages()
    if isinstance(value, BaseMessage):
        return [value]
    if isinstance(value, Mapping) and "messages" in value:
        return convert_to_messages(value["messages"])
    if isinstance(value, Sequence):
        return convert_to_messages(value)
    raise TypeError(f"expected a string, messages or a PromptValue, got {type(value).__name__}")


class _Question(BaseModel):
    question: str = Field(description="The question to put to the persona, in plain language, "
                                      "e.g. 'What gift would you like for your birthday?'")


class MBTIPersona(AgentMiddleware):
    """An MBTI personality for agents and chat models.

    Args:
        mbti: the type ("INTJ", "i-n-t-j", an :class:`MBTIType`).
        intensities: per-pole strength in [0.5, 1], e.g. ``{"I": 0.8}``.
        language: "en" or "zh": the language of the system context and memories.
        memory: ``None`` (no memory), a :class:`~mbti_persona.memory.PersonaMemory`, ``True``
            (a persistent PersonaMemory for this persona and ``user`` in the default store,
            opened on first use), or a folder path (a persistent store there).
        memory_k, memory_token_budget: how many memories, and at most how many tokens of
            them, go into the system context of each model call.
        write_back: store each finished turn (the user's message and the final answer) in the
            memory.
        session_id: the session recorded with written-back turns.
        name: the persona's display name (default: the type letters); also names the tool.
        user: the user whose conversations ``memory=True`` opens.
        adapter_mode: how a ChatMBTI picks the adapter ("auto", "dimensions", "type", "none").
        adapter: a loaded adapter name to use instead (wins over ``mbti`` for the adapter).
        persona_prompt: put the type description in the system context (default True);
            with False only memories go there (the adapter alone carries the personality).
        drop_unsupported_tools: when the model cannot call tools (its class has no
            ``bind_tools``, as ChatMBTI), call it without the agent's tools instead of
            failing. The agent then simply answers.
    """

    def __init__(
        self,
        mbti: "str | MBTIType" = "INTJ",
        intensities: Mapping[str, float] | None = None,
        language: str = "en",
        memory: Any = None,
        memory_k: int = 4,
        memory_token_budget: int = 200,
        write_back: bool = False,
        session_id: str | None = None,
        name: str | None = None,
        *,
        user: str = "default",
        adapter_mode: str = "auto",
        adapter: str | None = None,
        persona_prompt: bool = True,
        drop_unsupported_tools: bool = True,
    ) -> None:
        super().__init__()
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
        if adapter_mode not in ("auto", "dimensions", "type", "none"):
            raise ValueError(f"unknown adapter_mode {adapter_mode!r}: use auto, dimensions, "
                             "type or none")
        if memory_k < 1:
            raise ValueError(f"memory_k must be >= 1, got {memory_k}")
        if memory_token_budget < 0:
            raise ValueError(f"memory_token_budget must be >= 0, got {memory_token_budget}")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        self.mbti_type: MBTIType = MBTIType.parse(mbti, intensities)
        self.language = language
        self.memory_k = int(memory_k)
        self.memory_token_budget = int(memory_token_budget)
        self.write_back = bool(write_back)
        self.session_id = session_id
        self.persona_name = name.strip() if name else self.mbti_type.letters
        self.user = user
        self.adapter_mode = adapter_mode
        self.adapter = adapter
        self.persona_prompt = bool(persona_prompt)
        self.drop_unsupported_tools = bool(drop_unsupported_tools)
        if memory is False:
            memory = None
        self._memory_arg = memory
        self._memory: Any = None if memory is None or memory is True \
            or isinstance(memory, (str, os.PathLike)) else memory
        if self._memory is not None and not hasattr(self._memory, "context"):
            raise TypeError("memory must be a PersonaMemory (or True, a folder path, or None), "
                            f"got {type(memory).__name__}")
        if write_back and memory is None:
            raise ValueError("write_back=True needs a memory: pass memory=True or a PersonaMemory")
        self._lock = threading.RLock()
        self._bound: dict[int, tuple[Any, Any]] = {}
        self._warned_tools = False
        self.last_memories: list["RetrievedMemory"] = []

    # -- identity ---------------------------------------------------------------------------
    @property
    def name(self) -> str:  # the middleware's name in the agent graph
        return f"MBTIPersona[{self.persona_name}]"

    @property
    def mbti(self) -> str:
        return self.mbti_type.letters

    @property
    def intensities(self) -> dict[str, float] | None:
        """Pole -> intensity for the poles below 1.0 (None when the type is full)."""
        out = {l: v for l, v in zip(self.mbti_type.letters, self.mbti_type.intensities)
               if v != 1.0}
        return out or None

    def __repr__(self) -> str:
        mem = "none" if self._memory_arg is None else type(self._memory_arg).__name__
        return (f"MBTIPersona(mbti={self.mbti_type.key()!r}, name={self.persona_name!r}, "
                f"language={self.language!r}, memory={mem})")

    # -- memory -----------------------------------------------------------------------------
    @property
    def memory(self) -> "PersonaMemory | None":
        """The persona's memory (opened on first use for ``memory=True`` or a path)."""
        if self._memory is None and self._memory_arg is not None:
            with self._lock:
                if self._memory is None:
                    from .memory import PersonaMemory

                    path = None if self._memory_arg is True else self._memory_arg
                    self._memory = PersonaMemory(
                        self.mbti_type, user=self.user, path=path,
                        persona_id=None if self.persona_name == self.mbti else self.persona_name,
                        languages=self.language)
        return self._memory

    def memories(self, query: str, *, count_tokens: Any = None) -> tuple[str, list[Any]]:
        """The memory block for ``query`` (and the memories in it); ("", []) without memory."""
        mem = self.memory
        if mem is None or not query or not query.strip() or self.memory_token_budget == 0:
            return "", []
        return mem.context(query, k=self.memory_k, token_budget=self.memory_token_budget,
                           count_tokens=count_tokens, language=self.language)

    def system_context(self, query: str | None = None, *, count_tokens: Any = None) -> str:
        """What this persona puts in a model's system prompt: the type description (unless
        ``persona_prompt=False``) and the memories retrieved for ``query``."""
        return self._context(query, count_tokens)[0]

    def _context(self, query: str | None, count_tokens: Any) -> tuple[str, list[Any]]:
        block, items = self.memories(query or "", count_tokens=count_tokens)
        if self.persona_prompt:
            text = persona_system_prompt(self.mbti_type, self.language, block)
            if self.persona_name != self.mbti:
                text = (f"你的名字是{self.persona_name}。" if self.language == "zh"
                        else f"Your name is {self.persona_name}. ") + text
        else:
            text = block
        return text, items

    def remember_turn(self, user_text: str, ai_text: str) -> str | None:
        """Write one exchange to the memory (returns the memory id; None without memory)."""
        mem = self.memory
        if mem is None or not user_text.strip() or not ai_text.strip():
            return None
        return mem.add_turn(user_text, ai_text, session=self.session_id)

    # -- the model --------------------------------------------------------------------------
    def bind(self, chat_model: BaseChatModel) -> BaseChatModel:
        """The model this persona runs on: for a ChatMBTI, a copy set to this persona's type,
        intensities and adapter, with its own persona prompt and memory handling turned off
        (the persona supplies the system context); any other model is returned as is."""
        if not _is_chat_mbti(chat_model):
            return chat_model
        with self._lock:
            hit = self._bound.get(id(chat_model))
            if hit is not None and hit[0] is chat_model:
                return hit[1]
            fields = {n: getattr(chat_model, n) for n in type(chat_model).model_fields}
            fields.update(mbti=self.mbti, intensities=self.intensities,
                          adapter_mode=self.adapter_mode, adapter=self.adapter,
                          persona_prompt=False, language=self.language,
                          engine=chat_model.get_engine())
            if self._memory_arg is not None:
                fields.update(use_memory=False, memory_write_back=False)
            bound = type(chat_model)(**fields)
            if len(self._bound) > 32:
                self._bound.clear()
            self._bound[id(chat_model)] = (chat_model, bound)
            return bound

    def _count_tokens(self, model: Any) -> Any:
        if _is_chat_mbti(model):
            return model.get_engine().count_tokens
        return None

    def apply(self, messages: Sequence[BaseMessage], chat_model: BaseChatModel | None = None
              ) -> list[BaseMessage]:
        """``messages`` with this persona's system context merged into the system message."""
        msgs = list(messages)
        system = msgs[0] if msgs and isinstance(msgs[0], SystemMessage) else None
        rest = msgs[1:] if system is not None else msgs
        text, items = self._context(_last_user_text(rest), self._count_tokens(chat_model))
        self.last_memories = items
        if not text:
            return msgs
        return [_merge_system(text, system), *rest]

    # -- middleware -------------------------------------------------------------------------
    def prepare_request(self, request: ModelRequest) -> ModelRequest:
        """The request with this persona applied (system context, adapter, tools)."""
        model = request.model
        text, items = self._context(_last_user_text(request.messages),
                                    self._count_tokens(model))
        self.last_memories = items
        overrides: dict[str, Any] = {}
        if text:
            overrides["system_message"] = _merge_system(text, request.system_message)
        bound = self.bind(model)
        if bound is not model:
            overrides["model"] = bound
        if request.tools and self.drop_unsupported_tools and not _supports_tools(bound):
            if not self._warned_tools:
                self._warned_tools = True
                logger.info("%s cannot call tools: %s answers without the agent's %d tool(s)",
                            type(bound).__name__, self.persona_name, len(request.tools))
            overrides["tools"] = []
            overrides["tool_choice"] = None
        return request.override(**overrides) if overrides else request

    def _annotate(self, response: Any) -> Any:
        msgs = getattr(response, "result", None)
        if msgs is None and hasattr(response, "model_response"):
            msgs = response.model_response.result
        if isinstance(response, AIMessage):
            msgs = [response]
        for m in msgs or []:
            if isinstance(m, AIMessage):
                m.response_metadata["mbti_persona"] = {
                    "name": self.persona_name, "mbti": self.mbti_type.key(),
                    "memories": [x.id for x in self.last_memories]}
        return response

    def wrap_model_call(self, request: ModelRequest, handler: Any) -> Any:
        return self._annotate(handler(self.prepare_request(request)))

    async def awrap_model_call(self, request: ModelRequest, handler: Any) -> Any:
        if self._memory_arg is not None:
            prepared = await asyncio.to_thread(self.prepare_request, request)
        else:
            prepared = self.prepare_request(request)
        return self._annotate(await handler(prepared))

    def _turn_from_state(self, messages: Sequence[BaseMessage]) -> tuple[str, str] | None:
        answer = None
        for m in reversed(messages):
            if answer is None and isinstance(m, AIMessage) and not m.tool_calls \
                    and _message_text(m).strip():
                answer = _message_text(m)
            elif answer is not None and isinstance(m, HumanMessage):
                return _message_text(m), answer
            elif answer is None and isinstance(m, HumanMessage):
                return None  # the last user message has no answer yet
        return None

    def after_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self.write_back:
            turn = self._turn_from_state(state.get("messages", []))
            if turn is not None:
                self.remember_turn(*turn)
        return None

    async def aafter_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if self.write_back:
            await asyncio.to_thread(self.after_agent, state, runtime)
        return None

    # -- without an agent -------------------------------------------------------------------
    def wrap(self, chat_model: BaseChatModel | None = None) -> "PersonaRunnable":
        """A Runnable: messages (or a string) in, the persona's AIMessage out.

        ``chat_model`` defaults to a ChatMBTI on the shared engine.
        """
        if chat_model is None:
            from .chat_model import ChatMBTI

            chat_model = ChatMBTI()
        return PersonaRunnable(self, chat_model)

    def as_tool(self, chat_model: BaseChatModel | None = None, *, name: str | None = None,
                description: str | None = None) -> BaseTool:
        """A tool that asks this persona a question and returns its first-person answer."""
        runnable = self.wrap(chat_model)
        slug = re.sub(r"[^a-z0-9_-]+", "_", self.persona_name.lower()).strip("_") or "persona"
        t = self.mbti_type
        who = (f"{self.persona_name}, a person" if self.persona_name != t.letters else "a person")
        desc = description or (
            f"Ask {who} with the {t.letters} personality type ({t.nickname}) what they would "
            "say, think, want or feel about something. Input: a question in plain language. "
            "Output: their answer, in the first person.")

        def ask(question: str) -> str:
            return runnable.invoke([HumanMessage(content=question)]).text

        async def aask(question: str) -> str:
            return (await runnable.ainvoke([HumanMessage(content=question)])).text

        return StructuredTool.from_function(func=ask, coroutine=aask, name=name or f"ask_{slug}",
                                            description=desc, args_schema=_Question)


class PersonaRunnable(Runnable[Any, AIMessage]):
    """``persona.wrap(model)``: the persona's system context and adapter around a chat model."""

    def __init__(self, persona: MBTIPersona, chat_model: BaseChatModel) -> None:
        self.persona = persona
        self.chat_model = chat_model

    @property
    def InputType(self) -> Any:  # noqa: N802 (LangChain's name)
        return Any

    @property
    def OutputType(self) -> Any:  # noqa: N802
        return AIMessage

    def __repr__(self) -> str:
        return f"{self.persona!r}.wrap({type(self.chat_model).__name__})"

    def _prepare(self, value: Any) -> tuple[BaseChatModel, list[BaseMessage], str]:
        messages = _coerce_input(value)
        if not messages:
            raise ValueError("no messages given")
        model = self.persona.bind(self.chat_model)
        return model, self.persona.apply(messages, model), _last_user_text(messages)

    def _done(self, user_text: str, message: AIMessage) -> AIMessage:
        self.persona._annotate(message)
        if self.persona.write_back and user_text:
            self.persona.remember_turn(user_text, message.text)
        return message

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> AIMessage:
        model, messages, user = self._prepare(input)
        return self._done(user, model.invoke(messages, config, **kwargs))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AIMessage:
        model, messages, user = await asyncio.to_thread(self._prepare, input)
        msg = await model.ainvoke(messages, config, **kwargs)
        if self.persona.write_back:
            return await asyncio.to_thread(self._done, user, msg)
        return self._done(user, msg)

    def stream(self, input: Any, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[AIMessageChunk]:
        model, messages, user = self._prepare(input)
        full: AIMessageChunk | None = None
        for chunk in model.stream(messages, config, **kwargs):
            full = chunk if full is None else full + chunk
            yield chunk
        if full is not None and self.persona.write_back and user:
            self.persona.remember_turn(user, full.text)

    async def astream(self, input: Any, config: RunnableConfig | None = None,
                      **kwargs: Any) -> AsyncIterator[AIMessageChunk]:
        model, messages, user = await asyncio.to_thread(self._prepare, input)
        full: AIMessageChunk | None = None
        async for chunk in model.astream(messages, config, **kwargs):
            full = chunk if full is None else full + chunk
            yield chunk
        if full is not None and self.persona.write_back and user:
            await asyncio.to_thread(self.persona.remember_turn, user, full.text)
