"""LangChain's standard test suites, run against the real embedded model."""

from __future__ import annotations

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from mbti_persona import ChatMBTI

PARAMS = {"mbti": "ENFP", "max_tokens": 24, "temperature": 0.7, "seed": 1}


class TestChatMBTIUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatMBTI]:
        return ChatMBTI

    @property
    def chat_model_params(self) -> dict:
        return PARAMS

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_model_override(self) -> bool:
        return False


class TestChatMBTIIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatMBTI]:
        return ChatMBTI

    @property
    def chat_model_params(self) -> dict:
        return PARAMS

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False

    @property
    def supports_image_inputs(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False
