"""ChatMBTI: a LangChain chat model that answers as an MBTI persona on a local LLM."""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Iterator, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import (AIMessage, AIMessageChunk, BaseMessage, ChatMessage,
                                     HumanMessage, SystemMessage, ToolMessage)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import AliasChoices, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .generation import DEFAULTS, GenerationRequest, GenerationResult
from .prompts import LANGUAGES, persona_system_prompt
from .types import MBTIType

logger = logging.getLogger(__name__)

__all__ = ["ChatMBTI"]


class ChatMBTI(BaseChatModel):
    """Chat model that answers as an MBTI persona: LoRA personality adapters on a local LLM.

    Setup:
        .. code-block:: bash

            pip install mbti-persona

        The default base model (SmolLM2-135M-Instruct) ships inside the package, as do the eight
        dimension adapters (E, I, S, N, T, F, J, P) that compose into any of the 16 types. Nothing
        is downloaded.

    Key init args — persona:
        mbti: str | None
            The type, e.g. "INFP" (also "infp", "I-N-F-P"). None: the bare base model.
        intensities: dict[str, float] | None
            Per-pole strength in [0.5, 1], e.g. {"I": 0.8, "N": 0.6}.
        adapter_mode: "auto" | "dimensions" | "type" | "none"
            Compose the pole adapters, use a whole-type adapter, or neither (prompt only).
        persona_prompt: bool
            Also describe the persona in a system prompt (default True).
        memory: PersonaMemory | None
            Retrieval-backed self-knowledge and episodic memory put into the system context
            (``memory_k`` memories within ``memory_token_budget`` tokens; ``use_memory`` turns
            it off, ``memory_write_back`` stores each turn, ``memory_hint`` also repeats the
            best memory after the user's message, on by default: small models follow it).

    Key init args — completion params:
        model: str
            Base model: "embedded" (default), a Hugging Face hub id or a local folder.
        temperature, top_p, top_k, repetition_penalty, max_tokens, stop, seed, streaming

    Instantiate:
        .. code-block:: python

            from mbti_persona import ChatMBTI

            llm = ChatMBTI(mbti="ENFP", temperature=0.7, max_tokens=128)

    Invoke:
        .. code-block:: python

            msg = llm.invoke("What should we do this weekend?")
            msg.content, msg.usage_metadata, msg.response_metadata["persona"]

    Stream:
        .. code-block:: python

            for chunk in llm.stream("Describe your ideal holiday."):
                print(chunk.text, end="", flush=True)

    Async:
        .. code-block:: python

            await llm.ainvoke("hi")
            async for chunk in llm.astream("hi"):
                ...

    Per call: ``llm.invoke("hi", mbti="ISTJ")`` answers as another persona on the same engine.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True)

    mbti: str | None = None
    intensities: dict[str, float] | None = None
    model: str = Field(default="embedded", alias="model_name")
    adapter_mode: Literal["auto", "dimensions", "type", "none"] = "auto"
    adapter: str | None = None
    adapter_dirs: list[str] = Field(default_factory=list)
    device: str | None = None
    temperature: float = DEFAULTS["temperature"]
    top_p: float = DEFAULTS["top_p"]
    top_k: int | None = DEFAULTS["top_k"]
    repetition_penalty: float = DEFAULTS["repetition_penalty"]
    max_tokens: int = Field(default=DEFAULTS["max_new_tokens"],
                            validation_alias=AliasChoices("max_tokens", "max_new_tokens"))
    stop: list[str] | None = None
    seed: int | None = None
    streaming: bool = False
    persona_prompt: bool = True
    language: str = "en"
    memory: Any = Field(default=None, exclude=True)
    use_memory: bool = True
    memory_k: int = 4
    memory_token_budget: int = 200
    memory_write_back: bool = False
    memory_hint: bool = True
    session_id: str | None = None
    engine: Any = Field(default=None, exclude=True)

    _type: MBTIType | None = PrivateAttr(default=None)

    # -- validation ----------------------------------------------------------------------
    @field_validator("language")
    @classmethod
    def _check_language(cls, v: str) -> str:
        if v not in LANGUAGES:
            raise ValueError(f"unknown language {v!r}: use one of {', '.join(LANGUAGES)}")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _check_max_tokens(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"max_tokens must be >= 1, got {v}")
        return v

    @model_validator(mode="after")
    def _parse_type(self) -> "ChatMBTI":
        if self.mbti is not None:
            self._type = MBTIType.parse(self.mbti, self.intensities)
            self.mbti = self._type.letters
        elif self.intensities:
            raise ValueError("intensities given without mbti: set mbti='INFP' (for example) too")
        return self

    # -- LangChain plumbing ----------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "mbti-persona"

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["mbti_persona", "chat_model"]

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model": self.model, "mbti": self.persona_key, "adapter_mode": self.adapter_mode,
            "temperature": self.temperature, "top_p": self.top_p, "top_k": self.top_k,
            "repetition_penalty": self.repetition_penalty, "max_tokens": self.max_tokens,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "mbti-persona"
        params["ls_model_name"] = kwargs.get("model", self.model)
        params["ls_temperature"] = kwargs.get("temperature", self.temperature)
        params["ls_max_tokens"] = kwargs.get("max_tokens", self.max_tokens)
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    @property
    def persona_key(self) -> str | None:
        return self._type.key() if self._type else None

    # -- engine & requests -----------------------------------------------------------------
    def get_engine(self):
        """The engine this model runs on (the shared one for ``model`` unless one was given)."""
        if self.engine is None:
            from .engine import get_engine

            self.engine = get_engine(self.model, device=self.device,
                                     adapter_dirs=tuple(self.adapter_dirs))
        return self.engine

    def _persona_for_call(self, kwargs: dict[str, Any]) -> MBTIType | None:
        if "mbti" in kwargs or "intensities" in kwargs:
            m = kwargs.get("mbti", self.mbti)
            return MBTIType.parse(m, kwargs.get("intensities")) if m else None
        return self._type

    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None,
                 kwargs: dict[str, Any]) -> tuple[GenerationRequest, dict[str, Any]]:
        unknown = set(kwargs) - _CALL_KWARGS
        if unknown:
            raise TypeError(f"unexpected argument(s) {sorted(unknown)}; allowed per call: "
                            f"{sorted(_CALL_KWARGS)}")
        if kwargs.get("model", self.model) != self.model:
            raise ValueError(
                f"per-call model override ({kwargs['model']!r}) is not supported: the base model "
                f"is fixed per engine; create ChatMBTI(model={kwargs['model']!r}) instead")
        engine = self.get_engine()
        persona = self._persona_for_call(kwargs)
        language = kwargs.get("language", self.language)
        resolved = engine.persona(persona, kwargs.get("adapter_mode", self.adapter_mode),
                                  kwargs.get("adapter", self.adapter))
        chat = _to_chat(messages)
        meta: dict[str, Any] = {
            "model_name": engine.info.name,
            "model_provider": "mbti-persona",
            "persona": persona.key() if persona else None,
            "adapter": resolved.adapter,
            "adapter_source": resolved.source,
        }
        memory_block, items = "", []
        memory = kwargs.get("memory", self.memory)
        if memory is not None and kwargs.get("use_memory", self.use_memory):
            query = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
            memory_block, items = memory.context(
                query, k=self.memory_k, token_budget=self.memory_token_budget,
                count_tokens=engine.count_tokens, language=language)
            meta["memories"] = [
                {"id": m.id, "text": m.text, "kind": m.kind, "category": m.category,
                 "score": round(float(m.score), 4)} for m in items]
        if persona is not None and (kwargs.get("persona_prompt", self.persona_prompt)
                                    or memory_block):
            system = persona_system_prompt(persona, language, memory_block) \
                if kwargs.get("persona_prompt", self.persona_prompt) else memory_block
            chat = _merge_system(system, chat)
        elif memory_block:
            chat = _merge_system(memory_block, chat)
        if memory_block and items and kwargs.get("memory_hint", self.memory_hint):
            chat = _add_hint(chat, items[0], language)
        stops = list(stop or []) + list(self.stop or [])
        req = GenerationRequest(
            messages=chat,
            adapter=resolved.adapter,
            max_new_tokens=kwargs.get("max_tokens", self.max_tokens),
            temperature=kwargs.get("temperature", self.temperature),
            top_p=kwargs.get("top_p", self.top_p),
            top_k=kwargs.get("top_k", self.top_k),
            repetition_penalty=kwargs.get("repetition_penalty", self.repetition_penalty),
            stop=stops,
            seed=kwargs.get("seed", self.seed),
        )
        return req, meta

    def _finish(self, messages: list[BaseMessage], res: GenerationResult, meta: dict[str, Any],
                kwargs: dict[str, Any]) -> dict[str, Any]:
        meta = {**meta, "finish_reason": res.finish_reason}
        memory = kwargs.get("memory", self.memory)
        if memory is not None and kwargs.get("memory_write_back", self.memory_write_back):
            user = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
            if user is not None:
                memory.add_turn(user.text, res.text,
                                session=kwargs.get("session_id", self.session_id))
        return meta

    @staticmethod
    def _usage(res: GenerationResult) -> dict[str, int]:
        return {"input_tokens": res.input_tokens, "output_tokens": res.output_tokens,
                "total_tokens": res.input_tokens + res.output_tokens}

    def _result(self, messages, res, meta, kwargs) -> ChatResult:
        meta = self._finish(messages, res, meta, kwargs)
        msg = AIMessage(content=res.text, usage_metadata=self._usage(res),
                        response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(
            message=msg, generation_info={"finish_reason": res.finish_reason})],
            llm_output={"model_name": meta["model_name"]})

    def _last_chunk(self, messages, res, meta, kwargs) -> ChatGenerationChunk:
        meta = self._finish(messages, res, meta, kwargs)
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=self._usage(res),
                                   response_metadata=meta, chunk_position="last"),
            generation_info={"finish_reason": res.finish_reason})

    # -- the four entry points -------------------------------------------------------------
    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        if self.streaming:
            from langchain_core.language_models.chat_models import generate_from_stream

            return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
        req, meta = self._prepare(messages, stop, kwargs)
        res = self.get_engine().complete(req)
        return self._result(messages, res, meta, kwargs)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        if self.streaming:
            from langchain_core.language_models.chat_models import agenerate_from_stream

            return await agenerate_from_stream(
                self._astream(messages, stop, run_manager, **kwargs))
        req, meta = self._prepare(messages, stop, kwargs)
        res = await self.get_engine().acomplete(req)
        return self._result(messages, res, meta, kwargs)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        req, meta = self._prepare(messages, stop, kwargs)
        for item in self.get_engine().stream(req):
            if isinstance(item, GenerationResult):
                yield self._last_chunk(messages, item, meta, kwargs)
                return
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=item))
            if run_manager:
                run_manager.on_llm_new_token(item, chunk=chunk)
            yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        req, meta = self._prepare(messages, stop, kwargs)
        async for item in self.get_engine().astream(req):
            if isinstance(item, GenerationResult):
                yield self._last_chunk(messages, item, meta, kwargs)
                return
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=item))
            if run_manager:
                await run_manager.on_llm_new_token(item, chunk=chunk)
            yield chunk


_CALL_KWARGS = {
    "mbti", "intensities", "adapter", "adapter_mode", "language", "temperature", "top_p",
    "top_k", "repetition_penalty", "max_tokens", "seed", "persona_prompt", "memory",
    "use_memory", "memory_write_back", "memory_hint", "session_id", "model",
}


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    return message.text


def _to_chat(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages -> chat-template dicts (consecutive system messages are joined)."""
    chat: list[dict[str, str]] = []
    for m in messages:
        text = _text(m)
        if isinstance(m, SystemMessage):
            role = "system"
        elif isinstance(m, HumanMessage):
            role = "user"
        elif isinstance(m, AIMessage):
            role = "assistant"
        elif isinstance(m, ToolMessage):
            role, text = "user", f"Tool result: {text}"
        elif isinstance(m, ChatMessage):
            role = {"human": "user", "ai": "assistant"}.get(m.role, m.role)
        else:
            raise ValueError(f"unsupported message type {type(m).__name__}")
        if role == "system" and chat and chat[-1]["role"] == "system":
            chat[-1]["content"] += "\n\n" + text
        else:
            chat.append({"role": role, "content": text})
    if not chat:
        raise ValueError("no messages given")
    return chat


_HINT = {"en": {"self": "What you know about yourself", "episodic": "What you remember"},
         "zh": {"self": "你对自己的了解", "episodic": "你记得"}}


def _add_hint(chat: list[dict[str, str]], item: Any, language: str) -> list[dict[str, str]]:
    """Repeat the best memory right after the latest user message.

    A 135M model follows what it read last far more than its system prompt: asked "Are you an
    introvert or an extravert?", composed personas scored their own pole 11 of 16 times with
    the memories in the system prompt only, 16 of 16 with the best one repeated here
    (docs/memory.md).
    """
    last = max((i for i, m in enumerate(chat) if m["role"] == "user"), default=None)
    if last is None:
        return chat
    label = _HINT.get(language, _HINT["en"]).get(item.kind, _HINT["en"]["episodic"])
    note = f"（{label}：{item.text}）" if language == "zh" else f"({label}: {item.text})"
    out = list(chat)
    out[last] = {**chat[last], "content": f"{chat[last]['content']}\n\n{note}"}
    return out


def _merge_system(system: str, chat: list[dict[str, str]]) -> list[dict[str, str]]:
    """Put the persona text first in the system message (keeping the caller's own system text)."""
    if chat and chat[0]["role"] == "system":
        return [{"role": "system", "content": f"{system}\n\n{chat[0]['content']}"}] + chat[1:]
    return [{"role": "system", "content": system}] + chat
