"""Several MBTI personas talking on one engine: conversations, debates, repeated questions.

    from mbti_persona.simulation import Simulation

    sim = Simulation(["INFP", "ESTJ", "ENTP", "ISFJ"], "Plan a weekend trip", rounds=3,
                     max_tokens=48, transcript="trip.jsonl")
    for turn in sim.run():
        print(f"{turn.name}: {turn.text}")

The simulation is a LangGraph ``StateGraph`` (one node generates a round, a conditional edge
loops until the last round or a stop). All personas' turns of a round are generated in ONE
batched ``engine.generate`` call in which every row runs its own persona adapter
(``batched=False`` generates them one after another, for comparison). Every persona sees the
transcript as it stood at the end of the previous round, so both ways build the same prompts.

Each finished round is appended to a JSONL transcript (one line per turn) with a
``.meta.json`` beside it; :meth:`Simulation.resume` continues a transcript from its last
complete round. :meth:`Simulation.stop` (or Ctrl-C) ends a run between rounds: a round is
written only once all its turns exist, so the transcript is always consistent.
"""

from __future__ import annotations

import json
import logging
import operator
import os
import random
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, Mapping, Sequence, TypedDict

from .generation import DEFAULTS, GenerationRequest, GenerationResult
from .persona import MBTIPersona
from .types import MBTIType

logger = logging.getLogger(__name__)

__all__ = ["Simulation", "Turn", "SimulationError", "turn_stats", "meta_path_for"]

Mode = Literal["conversation", "debate", "question"]
MODES: tuple[str, ...] = ("conversation", "debate", "question")
TRANSCRIPT_VERSION = 1


class SimulationError(ValueError):
    """A simulation that cannot be set up or resumed; the message says what to do."""


@dataclass
class Turn:
    """One persona's turn: a line of the JSONL transcript.

    ``time`` is the wall-clock seconds of the generation call that produced the turn (with
    ``batched=True`` that call produced the whole round: ``batch_size`` turns). ``at`` is
    when the turn was produced (POSIX seconds).
    """

    round: int
    persona: str  # the type key, e.g. "INFP" or "INFP@I0.80"
    name: str
    text: str
    tokens: int
    time: float
    index: int = 0  # the persona's place in the simulation
    adapter: str | None = None
    batch_size: int = 1
    finish_reason: str = "stop"
    at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time"] = round(self.time, 4)
        d["at"] = round(self.at, 3)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Turn":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        missing = {"round", "persona", "name", "text"} - set(known)
        if missing:
            raise ValueError(f"transcript line lacks {sorted(missing)}")
        known.setdefault("tokens", 0)
        known.setdefault("time", 0.0)
        return cls(**known)


class _State(TypedDict):
    round: int  # rounds completed
    target: int  # the run ends after this round
    turns: Annotated[list[Turn], operator.add]


def meta_path_for(path: str | os.PathLike[str]) -> Path:
    """The settings file kept beside a transcript: ``trip.jsonl`` -> ``trip.meta.json``."""
    p = Path(path)
    return p.with_name(p.stem + ".meta.json") if p.suffix else p.with_name(p.name + ".meta.json")


# -- prompts ----------------------------------------------------------------------------------

_T = {
    "en": {
        "conversation": "You are {name}, in a group chat with {others} about: {topic}. "
                        "Reply to the others in one or two short sentences.",
        "debate": "You are {name}, in a debate on the motion: {topic}. You argue {side} the "
                  "motion. Make one short point in one or two sentences.",
        "question": "Answer in one or two short sentences.",
        "start": "Topic: {topic}\nYou speak first. What do you say?",
        "next": "Topic: {topic}\n\n{history}\n\nWhat do you say next?",
        "debate_start": "Motion: {topic}\nGive your opening argument {side} the motion.",
        "debate_next": "Motion: {topic}\n\n{history}\n\nYour rebuttal ({side} the motion)?",
        "for": "for", "against": "against",
        "others_many": "{n} others",
    },
    "zh": {
        "conversation": "你是{name}，正在和{others}群聊，话题是：{topic}。请用一两句简短的话回应大家。",
        "debate": "你是{name}，正在参加辩论，辩题是：{topic}。你是{side}。请用一两句话提出一个简短的论点。",
        "question": "请用一两句简短的话回答。",
        "start": "话题：{topic}\n你先发言。你会说什么？",
        "next": "话题：{topic}\n\n{history}\n\n接下来你会说什么？",
        "debate_start": "辩题：{topic}\n请作为{side}做开场陈述。",
        "debate_next": "辩题：{topic}\n\n{history}\n\n请作为{side}进行反驳。",
        "for": "正方", "against": "反方",
        "others_many": "另外{n}个人",
    },
}


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _coerce_persona(p: Any, language: str) -> MBTIPersona:
    if isinstance(p, MBTIPersona):
        return p
    if isinstance(p, (str, MBTIType)):
        return MBTIPersona(mbti=p, language=language)
    if isinstance(p, tuple) and len(p) == 2:
        name, mbti = p
        return MBTIPersona(mbti=mbti, name=name, language=language)
    if isinstance(p, Mapping):
        d = dict(p)
        d.setdefault("language", language)
        return MBTIPersona(**d)
    raise SimulationError(f"a persona must be an MBTIPersona, a type such as 'INFP', a "
                          f"(name, type) pair or a dict, got {p!r}")


def _persona_meta(p: MBTIPersona) -> dict[str, Any]:
    mem = p._memory_arg
    return {"name": p.persona_name, "mbti": p.mbti, "intensities": p.intensities,
            "language": p.language, "adapter_mode": p.adapter_mode, "adapter": p.adapter,
            "persona_prompt": p.persona_prompt,
            "memory": True if mem is True else (str(mem) if isinstance(mem, (str, os.PathLike))
                                                else None)}


class Simulation:
    """Several personas converse, debate, or answer the same question, round by round.

    Args:
        personas: MBTIPersona objects, types ("INFP"), (name, type) pairs or dicts of
            MBTIPersona arguments. Names must be unique (plain duplicate types get numbered).
        topic: what they talk about (conversation), the motion (debate) or the question.
        mode: "conversation" (every round each persona replies to the shared transcript),
            "debate" (sides alternate for/against unless ``sides`` says otherwise) or
            "question" (each round every persona answers ``questions[round - 1]``, cycling,
            or ``topic``; nobody sees the others' answers).
        rounds: how many rounds in all.
        max_tokens: the most tokens per turn.
        context_turns: how many of the latest turns each persona sees (keeps prompts short
            with many personas).
        batched: one generation call per round for all personas (default), or one per turn.
        engine: the PersonaEngine (default: the shared one).
        transcript: a JSONL file to write; an existing non-empty one is refused unless
            ``overwrite=True`` (use :meth:`resume` to continue it).
        temperature, top_p, repetition_penalty: sampling.
        seed: base seed; each turn's seed derives from it, the round and the persona, so a
            resumed run continues as the uninterrupted one would (default: a random base).
        language: "en" or "zh" for personas given as types, and the prompts.
        sides: debate sides by persona name ("for" / "against").
        on_round: called with the list of turns after each round is written; may call
            :meth:`stop`.
        on_interrupt: "stop" (default: Ctrl-C during a run ends it, keeping the completed
            rounds; :attr:`interrupted` is set) or "raise" (re-raise after the same cleanup).
        fixed_length: generate exactly ``max_tokens`` per turn (benchmarks).
    """

    def __init__(
        self,
        personas: Sequence[Any],
        topic: str,
        *,
        mode: Mode = "conversation",
        rounds: int = 3,
        max_tokens: int = 48,
        context_turns: int = 4,
        batched: bool = True,
        engine: Any = None,
        transcript: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        temperature: float = DEFAULTS["temperature"],
        top_p: float = DEFAULTS["top_p"],
        repetition_penalty: float = DEFAULTS["repetition_penalty"],
        seed: int | None = None,
        language: str = "en",
        questions: Sequence[str] | None = None,
        sides: Mapping[str, str] | None = None,
        on_round: Callable[[list[Turn]], None] | None = None,
        on_interrupt: Literal["stop", "raise"] = "stop",
        fixed_length: bool = False,
    ) -> None:
        if mode not in MODES:
            raise SimulationError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        if language not in _T:
            raise SimulationError(f"unknown language {language!r}: use en or zh")
        if not isinstance(topic, str) or not topic.strip():
            raise SimulationError("the simulation needs a topic (or question): a non-empty string")
        if rounds < 1:
            raise SimulationError(f"rounds must be >= 1, got {rounds}")
        if max_tokens < 1:
            raise SimulationError(f"max_tokens must be >= 1, got {max_tokens}")
        if context_turns < 0:
            raise SimulationError(f"context_turns must be >= 0, got {context_turns}")
        if on_interrupt not in ("stop", "raise"):
            raise SimulationError("on_interrupt must be 'stop' or 'raise'")
        self.personas: list[MBTIPersona] = [_coerce_persona(p, language) for p in personas]
        if not self.personas:
            raise SimulationError("a simulation needs at least one persona")
        self._name_personas()
        self.topic = topic.strip()
        self.mode: Mode = mode
        self.rounds = int(rounds)
        self.max_tokens = int(max_tokens)
        self.context_turns = int(context_turns)
        self.batched = bool(batched)
        self._engine = engine
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.repetition_penalty = float(repetition_penalty)
        self.seed = int(seed) if seed is not None else random.getrandbits(31)
        self.language = language
        self.questions = [q for q in (questions or []) if q and q.strip()]
        self.sides = self._check_sides(sides)
        self.on_round = on_round
        self.on_interrupt = on_interrupt
        self.fixed_length = bool(fixed_length)
        self.turns: list[Turn] = []
        self.interrupted = False
        self._stop = threading.Event()
        self._adapters: list[str | None] | None = None
        self.path: Path | None = None
        if transcript is not None:
            path = Path(transcript)
            if path.exists() and path.stat().st_size > 0 and not overwrite:
                raise SimulationError(
                    f"transcript {path} already holds turns: continue it with "
                    f"Simulation.resume({str(path)!r}) or pass overwrite=True to start afresh")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
            self.path = path
            self._write_meta()
        self._graph = self._build_graph()

    # -- set-up ---------------------------------------------------------------------------
    def _name_personas(self) -> None:
        seen: dict[str, int] = {}
        for p in self.personas:
            seen[p.persona_name] = seen.get(p.persona_name, 0) + 1
        if any(n > 1 for n in seen.values()):
            explicit = [p.persona_name for p in self.personas if p.persona_name != p.mbti]
            dup = sorted({n for n in explicit if explicit.count(n) > 1})
            if dup:
                raise SimulationError(f"persona names must be unique; repeated: {', '.join(dup)}")
            count: dict[str, int] = {}
            for p in self.personas:
                if seen[p.persona_name] > 1:
                    count[p.persona_name] = count.get(p.persona_name, 0) + 1
                    if count[p.persona_name] > 1:
                        p.persona_name = f"{p.persona_name}-{count[p.persona_name]}"

    def _check_sides(self, sides: Mapping[str, str] | None) -> dict[str, str]:
        names = [p.persona_name for p in self.personas]
        out = {n: ("for" if i % 2 == 0 else "against") for i, n in enumerate(names)}
        for n, s in (sides or {}).items():
            if n not in out:
                raise SimulationError(f"sides names {n!r}, who is not in the simulation "
                                      f"({', '.join(names)})")
            if s not in ("for", "against"):
                raise SimulationError(f"side of {n} must be 'for' or 'against', got {s!r}")
            out[n] = s
        return out

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from .engine import get_engine

            self._engine = get_engine()
        return self._engine

    @property
    def names(self) -> list[str]:
        return [p.persona_name for p in self.personas]

    @property
    def rounds_done(self) -> int:
        return self.turns[-1].round if self.turns else 0

    def adapters(self) -> list[str | None]:
        """The engine adapter of each persona (resolved, and composed if needed, once)."""
        if self._adapters is None:
            self._adapters = [self.engine.persona(p.mbti_type, p.adapter_mode, p.adapter).adapter
                              for p in self.personas]
        return self._adapters

    def settings(self) -> dict[str, Any]:
        """What :meth:`resume` needs to rebuild this simulation (saved beside the transcript)."""
        return {
            "version": TRANSCRIPT_VERSION, "mode": self.mode, "topic": self.topic,
            "questions": self.questions, "rounds": self.rounds, "max_tokens": self.max_tokens,
            "context_turns": self.context_turns, "batched": self.batched,
            "temperature": self.temperature, "top_p": self.top_p,
            "repetition_penalty": self.repetition_penalty, "seed": self.seed,
            "language": self.language, "sides": self.sides, "fixed_length": self.fixed_length,
            "personas": [_persona_meta(p) for p in self.personas],
        }

    def _write_meta(self) -> None:
        if self.path is None:
            return
        mp = meta_path_for(self.path)
        tmp = mp.with_name(mp.name + ".tmp")
        tmp.write_text(json.dumps(self.settings(), ensure_ascii=False, indent=1))
        tmp.replace(mp)

    # -- prompts --------------------------------------------------------------------------
    def _history(self, upto: Sequence[Turn], index: int) -> list[Turn]:
        if self.mode == "question" or self.context_turns == 0:
            return []
        return list(upto[-self.context_turns:])

    def _line(self, t: Turn) -> str:
        label = t.name
        if self.mode == "debate":
            label = f"{t.name} ({_T[self.language][self.sides.get(t.name, 'for')]})"
        return f"{label}: {_clip(t.text, 240)}"

    def question_for(self, round_no: int) -> str:
        if self.mode == "question" and self.questions:
            return self.questions[(round_no - 1) % len(self.questions)]
        return self.topic

    def messages_for(self, index: int, round_no: int, transcript: Sequence[Turn] | None = None
                     ) -> list[dict[str, str]]:
        """The chat that persona ``index`` gets in round ``round_no`` (a system message and
        one user message), built from the transcript before that round."""
        tr = self.turns if transcript is None else transcript
        before = [t for t in tr if t.round < round_no]
        p = self.personas[index]
        T = _T[self.language]
        others = [n for n in self.names if n != p.persona_name]
        sep = "、" if self.language == "zh" else ", "
        others_text = sep.join(others) if len(others) <= 5 else \
            T["others_many"].format(n=len(others))
        if not others:
            others_text = "nobody" if self.language == "en" else "自己"
        side = T[self.sides.get(p.persona_name, "for")]
        topic = self.question_for(round_no)
        role = T[self.mode].format(name=p.persona_name, others=others_text, topic=topic,
                                   side=side)
        history = self._history(before, index)
        query = history[-1].text if history else topic
        system = p.system_context(query, count_tokens=self.engine.count_tokens)
        system = f"{system}\n{role}" if system else role
        if self.mode == "question":
            user = topic
        elif self.mode == "debate":
            key = "debate_next" if history else "debate_start"
            user = T[key].format(topic=topic, side=side,
                                 history="\n".join(self._line(t) for t in history))
        else:
            key = "next" if history else "start"
            user = T[key].format(topic=topic, history="\n".join(self._line(t) for t in history))
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def _clean(self, text: str, name: str) -> str:
        text = text.strip()
        for n in (name, *self.names):
            m = re.match(rf"^\**{re.escape(n)}(\s*\([^)]*\))?\**\s*[:：]\s*", text)
            if m:
                text = text[m.end():]
                break
        return text.strip()

    def requests_for(self, round_no: int) -> list[GenerationRequest]:
        """The generation requests of one round, one per persona (row order = personas)."""
        adapters = self.adapters()
        stops = [f"\n{n}:" for n in self.names] + [f"\n{n} (" for n in self.names]
        return [
            GenerationRequest(
                messages=self.messages_for(i, round_no), adapter=adapters[i],
                max_new_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                repetition_penalty=self.repetition_penalty,
                stop=() if self.fixed_length else stops,
                seed=(self.seed * 1_000_003 + round_no * 1_009 + i) % (2**63),
                ignore_eos=self.fixed_length, tag=i)
            for i in range(len(self.personas))
        ]

    # -- running --------------------------------------------------------------------------
    def _generate(self, reqs: list[GenerationRequest]) -> tuple[list[GenerationResult], list[float]]:
        if self.batched:
            t0 = time.perf_counter()
            res = self.engine.generate(reqs)
            dt = time.perf_counter() - t0
            return res, [dt] * len(reqs)
        results, times = [], []
        for r in reqs:
            t0 = time.perf_counter()
            results.extend(self.engine.generate([r]))
            times.append(time.perf_counter() - t0)
        return results, times

    def step(self) -> list[Turn]:
        """Generate the next round, append it to the transcript and return its turns."""
        r = self.rounds_done + 1
        reqs = self.requests_for(r)
        results, times = self._generate(reqs)
        now = time.time()
        size = len(reqs) if self.batched else 1
        turns = [
            Turn(round=r, persona=p.mbti_type.key(), name=p.persona_name,
                 text=self._clean(res.text, p.persona_name), tokens=res.output_tokens,
                 time=round(dt, 4), index=i, adapter=res.adapter, batch_size=size,
                 finish_reason=res.finish_reason, at=round(now, 3))
            for i, (p, res, dt) in enumerate(zip(self.personas, results, times))
        ]
        self._append(turns)
        self.turns.extend(turns)
        return turns

    def _append(self, turns: list[Turn]) -> None:
        if self.path is None:
            return
        data = "".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in turns)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(data)  # one write per round
            f.flush()
            os.fsync(f.fileno())

    def _build_graph(self) -> Any:
        from langgraph.graph import END, START, StateGraph

        def play_round(state: _State) -> dict[str, Any]:
            turns = self.step()
            if self.on_round is not None:
                self.on_round(turns)
            return {"round": turns[0].round, "turns": turns}

        def next_step(state: _State) -> str:
            if self._stop.is_set() or state["round"] >= state["target"]:
                return END
            return "round"

        g = StateGraph(_State)
        g.add_node("round", play_round)
        g.add_conditional_edges(START, next_step, ["round", END])
        g.add_conditional_edges("round", next_step, ["round", END])
        return g.compile(name="mbti-simulation")

    @property
    def graph(self) -> Any:
        """The compiled LangGraph graph (state: round, target, turns)."""
        return self._graph

    def run(self, max_rounds: int | None = None) -> list[Turn]:
        """Play rounds until ``rounds`` in all (or ``max_rounds`` more, or a stop) and return
        the whole transcript."""
        target = self.rounds if max_rounds is None else min(self.rounds,
                                                             self.rounds_done + max_rounds)
        if self.rounds_done >= target:
            return list(self.turns)
        self._stop.clear()
        self.interrupted = False
        state: _State = {"round": self.rounds_done, "target": target, "turns": []}
        try:
            self._graph.invoke(state, {"recursion_limit": 2 * (target - self.rounds_done) + 10})
        except KeyboardInterrupt:
            self.interrupted = True
            logger.warning("simulation interrupted after round %d; the transcript holds the "
                           "completed rounds", self.rounds_done)
            if self.on_interrupt == "raise":
                raise
        return list(self.turns)

    def stop(self) -> None:
        """End the run after the round in progress (safe from another thread or on_round)."""
        self._stop.set()

    @property
    def done(self) -> bool:
        return self.rounds_done >= self.rounds

    # -- transcripts ----------------------------------------------------------------------
    @staticmethod
    def load_transcript(path: str | os.PathLike[str]) -> list[Turn]:
        """Every readable turn of a JSONL transcript (stops at a damaged line)."""
        return _read_lines(Path(path))[0]

    @classmethod
    def resume(cls, path: str | os.PathLike[str], *, engine: Any = None,
               personas: Sequence[Any] | None = None, rounds: int | None = None,
               **overrides: Any) -> "Simulation":
        """Continue a transcript from its last complete round.

        The settings come from the ``.meta.json`` beside it (``personas=`` re-attaches
        persona objects, e.g. with memories; ``rounds=`` changes the total; other keyword
        arguments override settings such as ``batched`` or ``on_round``). An incomplete last
        round or a damaged last line is dropped from the file. Call :meth:`run` to go on.
        """
        path = Path(path)
        if not path.is_file():
            raise SimulationError(f"no transcript at {path}")
        mp = meta_path_for(path)
        if not mp.is_file() and personas is None:
            raise SimulationError(f"{mp} is missing: pass personas=..., topic=... and mode=... "
                                  "to resume without it")
        meta: dict[str, Any] = json.loads(mp.read_text()) if mp.is_file() else {}
        if meta and meta.get("version") != TRANSCRIPT_VERSION:
            raise SimulationError(f"{mp} has version {meta.get('version')!r}; this library "
                                  f"reads version {TRANSCRIPT_VERSION}")
        settings = {k: v for k, v in meta.items() if k not in ("version", "personas")}
        if rounds is not None:
            settings["rounds"] = rounds
        settings.update(overrides)
        plist = personas if personas is not None else [dict(d) for d in meta["personas"]]
        topic = settings.pop("topic", None)
        if topic is None:
            raise SimulationError("resume needs topic=... (the .meta.json is missing)")
        sim = cls(plist, topic, engine=engine, **settings)
        turns, good_lines, total_lines = _read_lines(path)
        n = len(sim.personas)
        kept: list[Turn] = []
        r = 1
        while True:
            chunk = turns[len(kept):len(kept) + n]
            if len(chunk) < n or any(t.round != r for t in chunk) \
                    or [t.index for t in chunk] != list(range(n)):
                break
            if [t.name for t in chunk] != sim.names:
                raise SimulationError(
                    f"round {r} of {path} was spoken by {[t.name for t in chunk]}, but the "
                    f"simulation has {sim.names}: pass the same personas to resume")
            kept.extend(chunk)
            r += 1
        if len(kept) != len(turns) or good_lines != total_lines:
            logger.warning("dropping %d turn(s) of an incomplete round %d (and %d damaged "
                           "line(s)) from %s", len(turns) - len(kept), r, total_lines - good_lines,
                           path)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n"
                                   for t in kept), encoding="utf-8")
            tmp.replace(path)
        sim.turns = kept
        sim.path = path
        if sim.rounds < sim.rounds_done:
            sim.rounds = sim.rounds_done
        sim._write_meta()
        return sim

    # -- summaries ------------------------------------------------------------------------
    def stats(self) -> dict[str, dict[str, float]]:
        """:func:`turn_stats` of this transcript, by persona name."""
        return turn_stats(self.turns)

    def format_transcript(self, turns: Iterable[Turn] | None = None) -> str:
        lines, last = [], None
        for t in (self.turns if turns is None else turns):
            if t.round != last:
                lines.append(f"-- round {t.round} --")
                last = t.round
            lines.append(f"{t.name} ({t.persona}): {t.text}")
        return "\n".join(lines)


def _read_lines(path: Path) -> tuple[list[Turn], int, int]:
    """(turns up to the first damaged line, lines read well, non-empty lines in all)."""
    turns: list[Turn] = []
    raw = path.read_bytes().decode("utf-8", errors="replace")
    lines = raw.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        pass  # a last line without a newline: a write cut short, unless it parses
    total = sum(1 for ln in lines if ln.strip())
    good = 0
    for i, ln in enumerate(lines):
        if not ln.strip():
            continue
        try:
            turns.append(Turn.from_dict(json.loads(ln)))
        except (ValueError, TypeError):
            break
        if i == len(lines) - 1 and not raw.endswith("\n"):
            turns.pop()  # complete JSON but no newline: not known to be whole
            break
        good += 1
    return turns, good, total


# -- style statistics -------------------------------------------------------------------------

_WORDS = {
    "plan": {"plan", "plans", "planned", "planning", "schedule", "scheduled", "book", "booked",
             "booking", "list", "first", "then", "itinerary", "organise", "organize",
             "organised", "organized", "reserve", "reservation", "deadline", "budget",
             "time", "early", "fixed", "decide", "decided", "agenda", "step"},
    "options": {"maybe", "perhaps", "could", "might", "or", "option", "options", "flexible",
                "spontaneous", "explore", "whatever", "see", "possibly", "alternatively",
                "improvise", "open", "wander", "idea", "ideas", "what if"},
    "feeling": {"feel", "feels", "feeling", "love", "loved", "happy", "enjoy", "fun", "heart",
                "care", "cozy", "cosy", "comfortable", "worry", "worried", "excited", "warm",
                "together", "everyone", "hope", "dream", "beautiful", "lovely", "meaningful"},
    "logic": {"because", "therefore", "efficient", "efficiency", "cost", "costs", "logical",
              "practical", "reason", "reasons", "sense", "makes", "fact", "facts", "data",
              "analysis", "optimal", "so", "thus", "best", "compare", "value", "price"},
}
_TOKEN = re.compile(r"[A-Za-z']+")


def turn_stats(turns: Iterable[Turn]) -> dict[str, dict[str, float]]:
    """Simple style statistics per persona name: turns, words per turn, questions asked, and
    the share (per 100 words) of planning vs option words and feeling vs logic words."""
    acc: dict[str, dict[str, float]] = {}
    for t in turns:
        a = acc.setdefault(t.name, {"persona": t.persona, "turns": 0, "words": 0,
                                    "questions": 0, "plan": 0, "options": 0, "feeling": 0,
                                    "logic": 0, "tokens": 0})
        words = [w.lower() for w in _TOKEN.findall(t.text)]
        a["turns"] += 1
        a["words"] += len(words)
        a["tokens"] += t.tokens
        a["questions"] += t.text.count("?") + t.text.count("？")
        for key, vocab in _WORDS.items():
            a[key] += sum(1 for w in words if w in vocab)
    out: dict[str, dict[str, float]] = {}
    for name, a in acc.items():
        w = max(a["words"], 1)
        out[name] = {
            "persona": a["persona"], "turns": a["turns"],
            "words_per_turn": round(a["words"] / max(a["turns"], 1), 1),
            "questions": a["questions"], "tokens": a["tokens"],
            **{f"{k}_per_100w": round(100 * a[k] / w, 1) for k in _WORDS},
        }
    return out
