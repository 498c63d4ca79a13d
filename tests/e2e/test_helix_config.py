"""The Helix snippet (editors/helix/languages.toml) parses as TOML, registers storyteller-lsp for
Markdown and plain text, and its `config.storyteller` keys and defaults are the server's settings
(editors/vscode/settings-defaults.json, kept equal to `Settings::default()` by a Rust test)."""

import json
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "editors" / "helix" / "languages.toml"
DEFAULTS = json.loads((ROOT / "editors" / "vscode" / "settings-defaults.json").read_text())


def load():
    return tomllib.loads(SNIPPET.read_text())


def test_snippet_is_valid_toml_with_the_server_command():
    server = load()["language-server"]["storyteller"]
    assert server["command"] == "storyteller-lsp"
    assert server["args"] == ["serve"]


def test_markdown_and_text_use_the_server_and_markdown_keeps_its_defaults():
    languages = {lang["name"]: lang for lang in load()["language"]}
    assert "storyteller" in languages["markdown"]["language-servers"]
    # Helix 25.07's own Markdown servers stay in the list the user's file replaces.
    assert languages["markdown"]["language-servers"][:2] == ["marksman", "markdown-oxide"]
    text = [lang for lang in languages.values() if lang.get("language-id") == "plaintext"]
    assert len(text) == 1 and text[0]["language-servers"] == ["storyteller"]
    assert "txt" in text[0]["file-types"] and text[0]["scope"]


def walk(config, defaults, path="storyteller"):
    """Yields (key path, snippet value, default) for every leaf of the snippet's config."""
    for key, value in config.items():
        assert key in defaults, f"{path}.{key} is not a server setting"
        if isinstance(value, dict) and key != "rateLimits":
            yield from walk(value, defaults[key], f"{path}.{key}")
        else:
            yield f"{path}.{key}", value, defaults[key]


def test_config_keys_are_server_settings_with_their_defaults():
    config = load()["language-server"]["storyteller"]["config"]
    # Helix answers workspace/configuration("storyteller") by looking up this key.
    assert list(config) == ["storyteller"]
    leaves = list(walk(config["storyteller"], DEFAULTS))
    assert len(leaves) >= 12
    for key, value, default in leaves:
        assert value == default, f"{key}: snippet has {value!r}, the server default is {default!r}"
