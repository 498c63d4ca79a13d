// The node protocol test: a client that announces exactly the capabilities VS Code sends (computed
// by the installed vscode-languageclient itself, plus the extension's experimental.storyteller)
// drives the real storyteller-lsp with the provider simulator behind it: initialize → provider
// added → storyteller/status as the status bar shows it → inline completion → accept (feedback
// command) → code action → progress and a versioned workspace/applyEdit → shutdown, clean exit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { artifactsDir } from './support/paths.mjs';
import { startServer, startSimulator } from './support/real-server.mjs';
import { EditorDocument } from './support/text-document.mjs';
import { languageClientVersion, VSCODE_CLIENT_INFO, vscodeClientCapabilities } from './support/vscode-client-capabilities.mjs';

const require = createRequire(import.meta.url);
const { describeStatus } = require('../out/src/status.js');
const { withInstruction } = require('../out/src/steering.js');

const INLINE_TRIGGER_INVOKED = 1;
const INLINE_TRIGGER_AUTOMATIC = 2;
const CODE_ACTION_TRIGGER_INVOKED = 1;

/** Resolves once `check()` holds (polled), or rejects after `ms`. */
async function eventually(check, what, ms = 15000) {
    const until = Date.now() + ms;
    while (!check()) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

describe('VS Code client protocol against the real server', () => {
    const capabilities = vscodeClientCapabilities();
    let sim;
    let server;
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
        server = await startServer({
            capabilities,
            clientInfo: VSCODE_CLIENT_INFO,
            rootUri: pathToFileURL('/tmp/storyteller-protocol').href,
            // No debounce; a budget that a loaded CI machine cannot overrun (the default is 5 s).
            settings: { inline: { debounceMs: 0, timeoutMs: 30000 } },
            // What VS Code does with an edit: apply it to its copy and report the change.
            onApplyEdit: async (params) => {
                const changes = doc.apply(doc.editsIn(params.edit));
                await server.connection.sendNotification('textDocument/didChange', {
                    textDocument: { uri: doc.uri, version: doc.version },
                    contentChanges: changes,
                });
                return { applied: true };
            },
        });
    });

    after(() => {
        server?.kill();
        sim?.stop();
    });

    test('the announced capabilities are those of vscode-languageclient', () => {
        assert.deepEqual(capabilities.textDocument.inlineCompletion, { dynamicRegistration: true });
        assert.deepEqual(capabilities.general.positionEncodings, ['utf-16']);
        assert.equal(capabilities.window.workDoneProgress, true);
        assert.deepEqual(capabilities.window.showMessage, { messageActionItem: { additionalPropertiesSupport: true } });
        assert.equal(capabilities.textDocument.codeAction.disabledSupport, true);
        assert.equal(capabilities.workspace.applyEdit, true);
        assert.equal(capabilities.workspace.workspaceEdit.documentChanges, true);
        assert.deepEqual(capabilities.experimental.storyteller, {
            openSettings: true,
            statusNotification: true,
            askInstruction: true,
        });
    });

    test('initialize → inline completion → code action → applyEdit → shutdown', async () => {
        const { connection, initResult } = server;
        const caps = initResult.capabilities;
        assert.equal(caps.positionEncoding, 'utf-16', 'VS Code offers only utf-16');
        assert.equal(caps.inlineCompletionProvider, true);
        assert.deepEqual(caps.codeActionProvider.codeActionKinds, ['refactor.rewrite.storyteller', 'refactor.write.storyteller']);
        for (const command of ['storyteller.providers.add', 'storyteller.generate', 'storyteller.feedback', 'storyteller.status']) {
            assert.ok(caps.executeCommandProvider.commands.includes(command), `${command} is advertised`);
        }

        // Until a provider is added, the status bar offers the set-up.
        await eventually(() => server.seen.status.length > 0, 'the first storyteller/status');
        assert.equal(describeStatus(server.seen.status.at(-1)).text, '$(gear) StoryTeller: set up AI');

        const added = await server.execute('storyteller.providers.add', {
            provider: 'openai',
            apiKey: 'sk-editors-protocol-good-1234',
            endpoint: sim.endpoint('openai'),
            primary: true,
        });
        assert.equal(typeof added.id, 'number');
        await eventually(() => server.seen.status.at(-1)?.state === 'ready', 'storyteller/status ready');
        assert.equal(describeStatus(server.seen.status.at(-1)).text, '$(book) StoryTeller: OpenAI · 50/50 per min');

        await connection.sendNotification('textDocument/didOpen', {
            textDocument: { uri: doc.uri, languageId: doc.languageId, version: doc.version, text: doc.text },
        });

        // Inline completion at the end of the text, as VS Code asks while the author types.
        const inline = await connection.sendRequest('textDocument/inlineCompletion', {
            textDocument: { uri: doc.uri },
            position: doc.end(),
            context: { triggerKind: INLINE_TRIGGER_AUTOMATIC },
        });
        assert.equal(inline.items.length, 1, `one suggestion: ${JSON.stringify(inline)}`);
        const [item] = inline.items;
        assert.match(item.insertText, /[A-Za-z]/, 'the suggestion has words');
        assert.deepEqual(item.range, { start: doc.end(), end: doc.end() }, 'inserted at the cursor');
        // The completion fallback stays silent for a client with inline completion.
        const completion = await connection.sendRequest('textDocument/completion', {
            textDocument: { uri: doc.uri },
            position: doc.end(),
        });
        assert.equal(completion, null, 'no duplicate suggestion in the completion menu');
        // VS Code runs the item's command when the author accepts the ghost text.
        assert.equal(item.command.command, 'storyteller.feedback', 'acceptance is reported back');
        assert.deepEqual(await server.execute('storyteller.feedback', item.command.arguments[0]), { counted: true });

        // Asked for (Alt+\\ in VS Code): alternatives that Alt+] / Alt+[ cycle, each counted alone.
        const asked = await connection.sendRequest('textDocument/inlineCompletion', {
            textDocument: { uri: doc.uri },
            position: doc.end(),
            context: { triggerKind: INLINE_TRIGGER_INVOKED },
        });
        assert.ok(asked.items.length >= 2 && asked.items.length <= 3, `alternatives: ${JSON.stringify(asked)}`);
        const ids = asked.items.map((i) => i.command.arguments[0].suggestionId);
        assert.equal(new Set(ids).size, ids.length, 'each alternative has its own suggestion id');
        assert.equal(new Set(asked.items.map((i) => i.insertText)).size, ids.length, 'distinct alternatives');

        // Code actions at the cursor: listed without a provider call, run through storyteller.generate.
        const chatsBefore = (await sim.control('GET', '/_sim/requests?provider=openai')).length;
        const before = doc.text;
        const actions = await connection.sendRequest('textDocument/codeAction', {
            textDocument: { uri: doc.uri },
            range: { start: doc.end(), end: doc.end() },
            context: { diagnostics: [], triggerKind: CODE_ACTION_TRIGGER_INVOKED },
        });
        assert.equal((await sim.control('GET', '/_sim/requests?provider=openai')).length, chatsBefore, 'listing calls no provider');
        const titles = actions.map((a) => a.title);
        assert.ok(titles.includes('Continue scene'), `actions at the cursor: ${titles}`);
        const action = actions.find((a) => a.title === 'Continue scene');
        assert.equal(action.kind, 'refactor.write.storyteller');
        assert.equal(action.disabled, undefined);
        assert.equal(action.command.command, 'storyteller.generate');

        const result = await connection.sendRequest('workspace/executeCommand', {
            command: action.command.command,
            arguments: action.command.arguments,
        });
        assert.equal(result.applied, true, JSON.stringify(result));
        assert.equal(server.seen.applyEdits.length, 1, 'the text came as one workspace/applyEdit');
        const [change] = server.seen.applyEdits[0].edit.documentChanges;
        assert.equal(change.textDocument.version, 1, 'the edit names the version it was made for');
        assert.equal(doc.text, before + result.text, "the author's text is kept, the new text follows it");
        assert.match(result.text, /[A-Za-z]/);
        // VS Code shows the progress (cancellable) while the action runs. Notifications and the
        // answer travel separately: the end may arrive just after the result.
        await eventually(() => server.seen.progress.at(-1)?.value.kind === 'end', 'the end of the progress');
        assert.equal(server.seen.progress[0].value.kind, 'begin');
        assert.equal(server.seen.progress[0].value.cancellable, true);

        // "Continue scene with…": offered because the extension announces askInstruction, run by
        // the extension itself: it asks (input box), then sends storyteller.generate with the
        // action's arguments and the answer as `instruction`.
        const listed = await connection.sendRequest('textDocument/codeAction', {
            textDocument: { uri: doc.uri },
            range: { start: doc.end(), end: doc.end() },
            context: { diagnostics: [], triggerKind: CODE_ACTION_TRIGGER_INVOKED },
        });
        const withAction = listed.find((a) => a.title === 'Continue scene with…');
        assert.ok(withAction, `actions at the cursor: ${listed.map((a) => a.title)}`);
        assert.equal(withAction.command.command, 'storyteller.continueSceneWith');
        assert.ok(!caps.executeCommandProvider.commands.includes('storyteller.continueSceneWith'), 'the extension runs it');
        const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
        assert.ok(
            packageJson.contributes.commands.some((c) => c.command === 'storyteller.continueSceneWith'),
            'the extension contributes the command',
        );
        const [actionArguments] = withAction.command.arguments;
        assert.equal(withInstruction(actionArguments, undefined), undefined, 'Escape cancels');
        assert.equal(withInstruction(actionArguments, '  \n '), undefined, 'an empty answer cancels');
        const direction = 'Mara finds the keeper’s log open at the night of the wreck.';
        const steered = await connection.sendRequest('workspace/executeCommand', {
            command: 'storyteller.generate',
            arguments: [withInstruction(actionArguments, `  ${direction}\n`)],
        });
        assert.equal(steered.applied, true, JSON.stringify(steered));
        const chats = await sim.control('GET', '/_sim/requests?provider=openai');
        const prompt = chats.at(-1).body.messages[0].content;
        assert.ok(prompt.includes(`<author_direction>\n${direction}\n</author_direction>`), 'the direction reached the prompt');

        const code = await server.shutdown();
        server = undefined;
        assert.equal(code, 0, 'the server exits cleanly after shutdown/exit');
    });
});
