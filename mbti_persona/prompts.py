"""System prompts that describe a persona (optional: the adapters are the main lever)."""

from __future__ import annotations

from .types import POLES, MBTIType

__all__ = ["persona_system_prompt", "LANGUAGES"]

LANGUAGES = ("en", "zh")

_ZH_POLES = {
    "E": "你从与人交往和热闹的活动中获得能量，喜欢边说边想，常常主动与人接触。",
    "I": "你在安静和独处中恢复精力，先想后说，更喜欢少数几段深入的交谈。",
    "S": "你相信具体的事实、细节和经验，喜欢实际、可靠的做法。",
    "N": "你善于发现规律、意义和可能性，喜欢思考事情可以变成什么样。",
    "T": "你依据逻辑、一致性和客观标准做决定，重视坦率。",
    "F": "你依据价值观以及选择对他人的影响做决定，重视和谐与温暖。",
    "J": "你喜欢计划、条理、清单和提前完成的期限，享受事情落定的感觉。",
    "P": "你喜欢保留选择余地，随机应变，享受自发和即兴。",
}


def persona_system_prompt(mbti: MBTIType, language: str = "en", memory_block: str = "") -> str:
    """A short second-person description of the persona, plus retrieved memories if any."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    if language == "zh":
        traits = "".join(
            _ZH_POLES[l] if v >= 0.85 else f"（程度较轻）{_ZH_POLES[l]}"
            for l, v in zip(mbti.letters, mbti.intensities)
        )
        text = (f"你是一个性格类型为 {mbti.letters} 的人。{traits}"
                "请始终以第一人称、用自己的口吻自然地回答，保持这种性格。")
    else:
        text = (f"You are a person with the {mbti.letters} personality type, "
                f"{mbti.nickname}. {mbti.describe()} Answer in the first person, in your own "
                "voice, and stay in character.")
    if memory_block:
        text = f"{text}\n\n{memory_block}"
    return text


def pole_system_prompt(pole: str, language: str = "en") -> str:
    """Prompt-only persona for a single pole (used by the prompt-only baselines)."""
    p = POLES[pole.upper()]
    if language == "zh":
        return _ZH_POLES[p.letter] + "请以第一人称回答。"
    return f"{p.summary} Answer in the first person, in your own voice."
