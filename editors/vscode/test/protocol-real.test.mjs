// The node protocol test: a client that announces exactly the capabilities VS Code sends (computed
// by the installed vscode-languageclient itself) drives the real storyteller-lsp with the provider
// simulator behind it: initialize → provider added → inline completion → accept (feedback command)
// → code action → workspace/applyEdit → shutdown and a clean exit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { artifactsDir } from './support/paths.mjs';
import { missingFeatures, startServer, startSimulator } from './support/real-server.mjs';
import { EditorDocument } from './support/text-document.mjs';
import { languageClientVersion, VSCODE_CLIENT_INFO, vscodeClientCapabilities } from './support/vscode-client-capabilities.mjs';

const INLINE_TRIGGER_AUTOMATIC = 2;
const CODE_ACTION_TRIGGER_INVOKED = 1;

describe('VS Code client protocol against the real server', () => {
    const capabilities = vscodeClientCapabilities();
    let sim;
    let server;
    let skip;
    const doc = new EditorDocument(
        pathToFileURL('/tmp/storyteller-protocol/chapter-01.md').href,
        'markdown',
        '# Chapter One\n\nMara pushed open the lighthouse door. The stairs spiralled up into the dark, and somewhere above her',
    );

    before(async () => {
        mkdirSync(artifactsDir, { recursive: true });
        writeFileSync(
            join(artifactsDir, 'vscode-client-capabilities.json'),
            JSON.stringify({ languageClient: languageClientVersion(), capabilities }, null, 2),
        );
        sim = await startSimulator();
        if (sim.skip) {
            skip = sim.skip;
            return;
        }
        server = await startServer({
            capabilities,
            clientInfo: VSCODE_CLIENT_INFO,
            rootUri: pathToFileURL('/tmp/storyteller-protocol').href,
            settings: { inline: { debounceMs: 0 } },
            onApplyEdit: async (params) => {
                const changes = doc.apply(doc.editsIn(params.edit));
                await server.connection.sendNotification('textDocument/didChange', {
                    textDocument: { uri: doc.uri, version: doc.version },
                    contentChanges: changes,
                });
                return { applied: true };
            },
        });
        if (server.skip) {
            skip = server.skip;
            server = undefined;
            return;
        }
        skip = missingFeatures(server.initResult, {
            inline: true,
            codeActions: true,
            commands: ['storyteller.providers.add', 'storyteller.generate', 'storyteller.feedback'],
        });
    });

    after(() => {
        server?.kill();
        sim?.stop?.();
    });

    test('the announced capabilities are those of vscode-languageclient', () => {
        assert.deepEqual(capabilities.textDocument.inlineCompletion, { dynamicRegistration: true });
        assert.deepEqual(capabilities.general.positionEncodings, ['utf-16']);
        assert.equal(capabilities.window.workDoneProgress, true);
        assert.deepEqual(capabilities.window.showMessage, { messageActionItem: { additionalPropertiesSupport: true } });
        assert.equal(capabilities.textDocument.codeAction.disabledSupport, true);
        assert.equal(capabilities.workspace.applyEdit, true);
    });

    test('initialize → inline completion → code action → applyEdit → shutdown', async (t) => {
        if (skip) return t.skip(skip);
        const { connection, initResult } = server;
        const encoding = initResult.capabilities.positionEncoding ?? 'utf-16';
        assert.equal(encoding, 'utf-16', 'VS Code offers only utf-16');

        const added = await server.execute('storyteller.providers.add', {
            provider: 'openai',
            apiKey: 'sk-editors-protocol-good-1234',
            endpoint: sim.endpoint('openai'),
            primary: true,
        });
        assert.ok(added && added.id !== undefined, `add returned ${JSON.stringify(added)}`);

        await connection.sendNotification('textDocument/didOpen', {
            textDocument: { uri: doc.uri, languageId: doc.languageId, version: doc.version, text: doc.text },
        });

        // Inline completion at the end of the text, as VS Code asks while the author types.
        const inline = await connection.sendRequest('textDocument/inlineCompletion', {
            textDocument: { uri: doc.uri },
            position: doc.end(),
            context: { triggerKind: INLINE_TRIGGER_AUTOMATIC },
        });
        const items = Array.isArray(inline) ? inline : inline?.items ?? [];
        assert.ok(items.length >= 1, `no inline completion: ${JSON.stringify(inline)}`);
        const [item] = items;
        const insertText = typeof item.insertText === 'string' ? item.insertText : item.insertText?.value;
        assert.ok(insertText && insertText.trim().length > 0, 'the suggestion has text');
        assert.equal(item.command?.command, 'storyteller.feedback', 'acceptance is reported back');
        // VS Code runs the item's command when the author accepts the ghost text.
        await server.execute('storyteller.feedback', item.command.arguments?.[0] ?? {});

        // Code actions at the cursor: listed instantly, run through storyteller.generate.
        const before = doc.text;
        const actions = await connection.sendRequest('textDocument/codeAction', {
            textDocument: { uri: doc.uri },
            range: { start: doc.end(), end: doc.end() },
            context: { diagnostics: [], triggerKind: CODE_ACTION_TRIGGER_INVOKED },
        });
        assert.ok(Array.isArray(actions) && actions.length > 0, `no code actions: ${JSON.stringify(actions)}`);
        let action = actions.find((a) => /continue/i.test(a.title)) ?? actions[0];
        assert.match(action.kind ?? '', /storyteller/, 'actions carry the storyteller kinds');
        if (!action.command && !action.edit) {
            action = await connection.sendRequest('codeAction/resolve', action);
        }
        if (action.edit) {
            doc.apply(doc.editsIn(action.edit));
        }
        if (action.command) {
            await connection.sendRequest('workspace/executeCommand', {
                command: action.command.command,
                arguments: action.command.arguments,
            });
        }
        assert.ok(server.seen.applyEdits.length >= 1 || action.edit, 'the action was applied with workspace/applyEdit');
        assert.ok(doc.text.length > before.length, 'the action added text');
        assert.ok(doc.text.startsWith(before.slice(0, 20)), "the author's text was kept");

        const code = await server.shutdown();
        server = undefined;
        assert.equal(code, 0, 'the server exits cleanly after shutdown/exit');
    });
});
