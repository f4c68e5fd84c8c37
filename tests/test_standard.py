"""LangChain's standard test suites, run against the real embedded model."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from mbti_persona import ChatMBTI

# max_new_tokens (an alias of max_tokens) keeps the answers short; the suite itself sets
# max_tokens in one test.
PARAMS = {"mbti": "ENFP", "max_new_tokens": 24, "temperature": 0.7, "seed": 1}


class TestChatMBTIUnit(ChatModelUnitTests):
    @pytest.mark.xfail(strict=True, reason=(
        "langchain-core's load(allowed_objects='all') admits only the classes in its own "
        "mapping, which no third-party package is in; ChatMBTI round-trips through dumpd/load "
        "with allowed_objects=[ChatMBTI] (tests/test_chat_model.py)"))
    def test_serdes(self, model, snapshot) -> None:
        super().test_serdes(model, snapshot)

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
