"""The request bodies the claude and gemini providers send, checked against the vendors' own SDK
request types (PyPI ``anthropic`` and ``google-genai``, pinned in requirements.txt), as
``tests/providers_openai_schema.rs`` checks the OpenAI ones against the OpenAPI schema.

Every body is what the simulator recorded (``/_sim/requests``) while the built server, over LSP,
tested the provider, answered inline completions (one automatic, one invoked: alternatives) and
ran every code action (streamed).

- Anthropic: the ``MessageCreateParams`` TypedDicts (streaming and not), walked by a small
  checker of their annotations: no key the type does not declare, every required key, the
  declared value types and literals. Pydantic cannot be used here: it ignores unknown keys of a
  TypedDict and validates ``Iterable`` fields lazily.
- Gemini: the REST body's ``contents`` and ``systemInstruction`` as ``types.Content``, its
  ``generationConfig`` as ``types.GenerationConfig`` and, with the system instruction, as
  ``types.GenerateContentConfig`` (pydantic models that forbid unknown fields), in strict mode."""

from __future__ import annotations

import asyncio
import collections.abc
import types as pytypes
import typing
from typing import Any

import pytest
import typing_extensions
from anthropic.types import message_create_params
from conftest import (
    PATIENCE,
    Recorder,
    Simulator,
    TextModel,
    as_dict,
    code_actions,
    credentials_in_file,
    execute_command,
    initialize,
    read_code_actions_by_shape,
    rich_capabilities,
)
from google.genai import types as genai
from lsprotocol import types
from pytest_lsp import LanguageClient

SETTINGS = {"credentialStore": "file", "inline": {"debounceMs": 0}}
URI = "file:///novel/chapter-3.md"
MANUSCRIPT = (
    "# Chapter 3: Ice\n"
    "\n"
    "Mara crossed the frozen harbour. The boats were locked in, and nobody had come to meet her.\n"
    "She set down her bag."
)
SELECTED = "The boats were locked in, and nobody had come to meet her."


class Mismatch(Exception):
    pass


def check(value: Any, annotation: Any, at: str) -> None:
    """Raises ``Mismatch`` unless ``value`` (decoded JSON) is of the SDK type ``annotation``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return
    if origin in (typing.Annotated, typing.Required, typing.NotRequired, typing_extensions.Required, typing_extensions.NotRequired):
        return check(value, args[0], at)
    if origin in (typing.Union, pytypes.UnionType):
        reasons = []
        for option in args:
            try:
                return check(value, option, at)
            except Mismatch as e:
                reasons.append(str(e))
        raise Mismatch(f"{at}: {value!r} matches none of {len(args)} types ({'; '.join(reasons)[:300]})")
    if origin is typing.Literal:
        if value not in args:
            raise Mismatch(f"{at}: {value!r} is not one of {args}")
        return
    # The SDK declares its TypedDicts with typing_extensions.
    if typing_extensions.is_typeddict(annotation):
        if not isinstance(value, dict):
            raise Mismatch(f"{at}: {annotation.__name__} wants an object, got {value!r}")
        hints = typing.get_type_hints(annotation, include_extras=True)
        for key in value:
            if key not in hints:
                raise Mismatch(f"{at}: `{key}` is not a field of {annotation.__name__}")
        # The SDK's modules postpone annotations, so `__required_keys__` misses `Required[...]`.
        required = set(annotation.__required_keys__) | {
            k for k, h in hints.items() if typing.get_origin(h) in (typing.Required, typing_extensions.Required)
        }
        for key in sorted(required):
            if key not in value:
                raise Mismatch(f"{at}: {annotation.__name__} requires `{key}`")
        for key, item in value.items():
            check(item, hints[key], f"{at}.{key}")
        return
    sequence_like = origin in (list, collections.abc.Iterable, collections.abc.Sequence) or (
        origin is not None and getattr(origin, "__name__", "") == "SequenceNotStr"
    )
    if sequence_like:
        if not isinstance(value, list):
            raise Mismatch(f"{at}: wants a list, got {value!r}")
        for i, item in enumerate(value):
            check(item, args[0] if args else Any, f"{at}[{i}]")
        return
    if origin in (dict, collections.abc.Mapping):
        if not isinstance(value, dict):
            raise Mismatch(f"{at}: wants an object")
        return
    plain = {
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        type(None): lambda v: v is None,
    }
    if annotation in plain:
        if not plain[annotation](value):
            raise Mismatch(f"{at}: {value!r} is not {annotation.__name__}")
        return
    raise Mismatch(f"{at}: the checker does not know {annotation!r}")


def check_anthropic(body: dict[str, Any]) -> None:
    params = (
        message_create_params.MessageCreateParamsStreaming
        if body.get("stream") is True
        else message_create_params.MessageCreateParamsNonStreaming
    )
    check(body, params, "body")
    # What the TypedDicts cannot say (PROVIDERS.md): the user first, then turns alternate.
    roles = [m["role"] for m in body["messages"]]
    assert roles and roles[0] == "user", roles
    assert all(a != b for a, b in zip(roles, roles[1:])), roles


GEMINI_FIELDS = {"contents", "systemInstruction", "generationConfig"}


def check_gemini(body: dict[str, Any]) -> None:
    unknown = set(body) - GEMINI_FIELDS
    assert not unknown, f"fields we never meant to send: {unknown}"
    assert body["contents"], body
    for content in body["contents"]:
        genai.Content.model_validate(content, strict=True)
        assert content["role"] in {"user", "model"}, content
    config = dict(body.get("generationConfig", {}))
    genai.GenerationConfig.model_validate(config, strict=True)
    if "systemInstruction" in body:
        genai.Content.model_validate(body["systemInstruction"], strict=True)
        config["systemInstruction"] = body["systemInstruction"]
    genai.GenerateContentConfig.model_validate(config, strict=True)


CHECKERS = {"claude": check_anthropic, "gemini": check_gemini}


def test_the_checkers_reject_bodies_the_sdk_types_forbid():
    claude = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "You continue fiction.",
        "messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        "stop_sequences": ["\n\n"],
        "stream": True,
    }
    check_anthropic(claude)
    check_anthropic({**claude, "stream": False})
    for broken in [
        {**claude, "max_tokens": "64"},
        {**claude, "messages": [{"role": "narrator", "content": "x"}]},
        {**claude, "messages": [{"role": "assistant", "content": "x"}]},
        {**claude, "stop_sequences": "\n\n"},
        {**claude, "maxTokens": 64},
        {k: v for k, v in claude.items() if k != "max_tokens"},
    ]:
        with pytest.raises((Mismatch, AssertionError)):
            check_anthropic(broken)

    gemini = {
        "contents": [{"role": "user", "parts": [{"text": "a"}]}],
        "systemInstruction": {"parts": [{"text": "s"}]},
        "generationConfig": {"maxOutputTokens": 64, "temperature": 0.7, "stopSequences": ["\n\n"]},
    }
    check_gemini(gemini)
    for broken in [
        {**gemini, "generationConfig": {"maxTokens": 64}},
        {**gemini, "generationConfig": {"maxOutputTokens": "64"}},
        {**gemini, "contents": [{"role": "assistant", "parts": [{"text": "a"}]}]},
        {**gemini, "contents": [{"role": "user", "parts": [{"txt": "a"}]}]},
        {**gemini, "system_instruction": {"parts": [{"text": "s"}]}},
    ]:
        with pytest.raises(Exception):
            check_gemini(broken)


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return credentials_in_file(server_env)


@pytest.mark.parametrize("provider", ["claude", "gemini"])
async def test_request_bodies_match_the_vendor_sdk_types(
    client: LanguageClient, simulator: Simulator, provider: str
):
    read_code_actions_by_shape(client)
    recorder = Recorder(client)
    await initialize(client, rich_capabilities(), SETTINGS)
    await execute_command(
        client,
        "storyteller.providers.add",
        {"provider": provider, "apiKey": "sk-e2e-types-0801", "endpoint": simulator.endpoint(provider)},
    )
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=URI, language_id="markdown", version=1, text=MANUSCRIPT)
        )
    )
    model = TextModel(MANUSCRIPT, "utf-16")
    end = model.position(len(MANUSCRIPT))
    for trigger in (types.InlineCompletionTriggerKind.Automatic, types.InlineCompletionTriggerKind.Invoked):
        answer = await asyncio.wait_for(
            client.text_document_inline_completion_async(
                types.InlineCompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=URI),
                    position=end,
                    context=types.InlineCompletionContext(trigger_kind=trigger),
                )
            ),
            PATIENCE,
        )
        assert answer, trigger
    start = MANUSCRIPT.index(SELECTED)
    selection = types.Range(start=model.position(start), end=model.position(start + len(SELECTED)))
    actions = await code_actions(client, URI, types.Range(start=end, end=end))
    actions += await code_actions(client, URI, selection)
    for action in actions:
        assert action.command is not None
        result = as_dict(
            await asyncio.wait_for(
                client.workspace_execute_command_async(
                    types.ExecuteCommandParams(command=action.command.command, arguments=action.command.arguments)
                ),
                PATIENCE,
            )
        )
        assert result.get("applied") is True, (action.title, result)
    assert len(recorder.edits) == len(actions)

    bodies = [r["body"] for r in await simulator.requests(provider) if r["method"] == "POST"]
    # Two inline requests (the invoked one asks for alternatives) and one per action.
    assert len(bodies) >= 2 + len(actions), len(bodies)
    streamed = 0
    for body in bodies:
        CHECKERS[provider](body)
        streamed += provider == "claude" and body.get("stream") is True
    if provider == "claude":
        assert streamed == len(actions)
    await client.shutdown_session()
