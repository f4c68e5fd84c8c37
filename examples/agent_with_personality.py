"""An existing tool-using LangChain agent, given a personality with one line.

    python examples/agent_with_personality.py
    python examples/agent_with_personality.py --mbti INFP --question "How should we split the bill?"
    python examples/agent_with_personality.py --smoke        # fast CI mode

The agent below is an ordinary ``create_agent`` agent with a calculator tool. Adding
``middleware=[MBTIPersona(mbti="ENTJ")]`` gives it a personality:

* on ChatMBTI (the embedded local model used here) the persona sets the LoRA personality
  adapter AND the system context (type description, plus memories when it has a memory);
* on any other chat model it works in prompt mode: the system context goes in front of the
  agent's own system prompt, the model is unchanged (see the bottom of this file).

The embedded 135M model cannot call tools: MBTIPersona notices that ChatMBTI has no tool
calling and runs it without the tools (the agent simply answers). With a tool-calling model
the same agent uses the calculator as usual.
"""

from __future__ import annotations

import argparse
import ast
import operator
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from langchain.agents import create_agent  # noqa: E402
from langchain_core.tools import tool  # noqa: E402

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv, ast.Pow: operator.pow, ast.USub: operator.neg,
        ast.Mod: operator.mod, ast.FloorDiv: operator.floordiv}


def _eval(node):
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.operand))
    raise ValueError("only numbers and + - * / % ** are allowed")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression such as '360 / 4' or '(120 + 45) * 2'."""
    try:
        return str(round(_eval(ast.parse(expression, mode="eval")), 6))
    except (ValueError, SyntaxError, ZeroDivisionError) as e:
        return f"error: {e}"


SYSTEM_PROMPT = ("You help a group of friends with their weekend trip budget. Use the "
                 "calculator for arithmetic.")


def build_agent(model, mbti: str = "ENTJ"):
    from mbti_persona.persona import MBTIPersona

    # The existing agent ...
    #     agent = create_agent(model, tools=[calculator], system_prompt=SYSTEM_PROMPT)
    # ... with a personality: one more line.
    return create_agent(model, tools=[calculator], system_prompt=SYSTEM_PROMPT,
                        middleware=[MBTIPersona(mbti=mbti)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mbti", default="ENTJ")
    ap.add_argument("--question", default="Four of us have 360 euros for a weekend away. "
                                          "How should we plan and split it?")
    ap.add_argument("--max-tokens", type=int, default=80)
    ap.add_argument("--smoke", action="store_true", help="fast CI mode: 8 tokens")
    args = ap.parse_args(argv)
    if args.smoke:
        args.max_tokens = min(args.max_tokens, 8)

    import torch

    if args.smoke:  # CI: one thread; on a shared machine extra threads only spin
        torch.set_num_threads(1)
    from mbti_persona import ChatMBTI
    from mbti_persona.persona import MBTIPersona
    from mbti_persona.types import MBTITypeError

    try:
        agent = build_agent(ChatMBTI(max_tokens=args.max_tokens, temperature=0.5, seed=3),
                            args.mbti)
    except MBTITypeError as e:
        print(f"agent_with_personality: {e}", file=sys.stderr)
        return 2
    print(f"Q: {args.question}\n")
    out = agent.invoke({"messages": [{"role": "user", "content": args.question}]})
    answer = out["messages"][-1]
    meta = answer.response_metadata
    print(f"{args.mbti} agent: {answer.text.strip()}")
    print(f"   (persona {meta.get('persona')}, adapter {meta.get('adapter')} "
          f"[{meta.get('adapter_source')}], {answer.usage_metadata['output_tokens']} tokens)")

    # The tool still works on its own, e.g. for a model that can call it:
    print(f"\ncalculator('360 / 4') -> {calculator.invoke({'expression': '360 / 4'})}")

    # A persona as a tool: another agent could ask "what would an INFP say?".
    ask_infp = MBTIPersona(mbti="INFP").as_tool(ChatMBTI(max_tokens=args.max_tokens,
                                                         temperature=0.5, seed=3))
    reply = ask_infp.invoke({"question": args.question})
    print(f"{ask_infp.name}: {reply.strip()}")

    # Prompt mode, shown offline with a fake model that records what it receives: any other
    # chat model keeps its own weights, the persona arrives as system context.
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    seen = []

    class Recorder(GenericFakeChatModel):
        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            seen.append(messages)
            return super()._generate(messages, stop, run_manager, **kwargs)

    fake_agent = build_agent(Recorder(messages=iter(["(a real model would answer here)"])),
                             args.mbti)
    fake_agent.invoke({"messages": [{"role": "user", "content": args.question}]})
    print("\nPrompt mode: the system message another chat model receives:\n"
          + seen[0][0].text)
    return 0


# Prompt mode with a real tool-calling model (needs its provider package and an API key):
#
#     from langchain.agents import create_agent
#     from mbti_persona.persona import MBTIPersona
#
#     agent = create_agent("openai:gpt-4.1-mini", tools=[calculator],
#                          system_prompt=SYSTEM_PROMPT,
#                          middleware=[MBTIPersona(mbti="ENTJ")])
#     agent.invoke({"messages": [{"role": "user", "content": "How do we split 360 euros?"}]})
#
# The model calls the calculator as usual; MBTIPersona only adds the ENTJ system context
# (and, with memory=PersonaMemory(...) or memory=True, the memories retrieved for the user's
# latest message; write_back=True stores each finished turn).

if __name__ == "__main__":
    sys.exit(main())
